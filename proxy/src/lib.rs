//! # retainwise-proxy
//!
//! An authentication sidecar. It sits in front of an application in the
//! same ECS task, verifies the caller's RS256 session token (Clerk) against
//! a JWKS it keeps fresh, and forwards the request with `X-User-Id` set to
//! the token's subject. The application trusts that header because only the
//! proxy can reach it.
//!
//! ## What it does
//! - Verifies RS256 JWTs from `Authorization: Bearer` or the `__session`
//!   cookie: signature, `exp`/`nbf`/`iat` with a small leeway, exact `iss`,
//!   `aud`/`azp` allow-lists, `sub` shape ([`verify`], [`jose`], [`claims`]).
//! - Keeps the key set in an `ArcSwap` so readers never wait, refreshes it
//!   in the background, rides out JWKS outages on stale keys up to a limit,
//!   and picks up rotated keys on their first use ([`keystore`]).
//! - Strips every client-supplied identity header and refuses ambiguous
//!   request targets, so a public path can never reach a private route
//!   ([`headers`], [`path`]).
//! - Streams bodies both ways, with timeouts, hop-by-hop stripping and a
//!   graceful drain on SIGTERM ([`forward`], [`server`]).
//! - Bounds every state of a client connection ([`conn`]) and parks idle
//!   HTTP/1.1 connections without their buffers ([`park`]).
//!
//! ## What it refuses to do
//! - Accept a token whose signature it did not verify. There is no
//!   "development" or "fallback" mode and no setting that relaxes the
//!   algorithm: the previous system was breached through exactly that.
//! - Accept any algorithm but RS256, or take a key from the token itself
//!   (`jwk`, `jku`, `x5u`, `x5c`).
//! - Normalise ambiguous paths: it answers 400 instead, because any
//!   normalisation is a guess about how the application will route.
//! - Terminate TLS or proxy WebSockets: the load balancer terminates TLS,
//!   and the application has no upgrade endpoints.
//!
//! ## Design
//! ```text
//!  client ──▶ data listener ──▶ Pipeline::handle ──▶ Upstream (pool: h1client / hyper) ──▶ app
//!                                   │
//!                                   ▼
//!                       Verifier ─▶ token cache (SHA-256 of token)
//!                           │
//!                           ▼
//!                       KeyStore ─▶ ArcSwap<Snapshot> ◀── refresh loop / unknown kid
//!  Prometheus ──▶ admin listener (/metrics, /healthz, /readyz)
//! ```
#![forbid(unsafe_code)]

pub mod admin;
pub mod claims;
pub mod conn;
pub mod cors;
pub mod csrf;
pub mod error;
pub mod fastpath;
pub mod fetch;
pub mod forward;
pub mod h1client;
pub mod headers;
pub mod healthcheck;
pub mod jose;
pub mod jwks;
pub mod keystore;
pub mod metrics;
pub mod park;
pub mod path;
pub mod pipeline;
pub mod pool;
pub mod runtime;
pub mod server;
pub mod settings;
pub mod telemetry;
pub mod verify;
