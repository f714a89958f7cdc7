//! # retainwise-testkit: the harness every RetainWise test suite shares
//!
//! Tests here are black-box: they start real servers and binaries on
//! loopback, real PostgreSQL and moto, and talk to them. This crate holds
//! the parts every suite needs, once, so that a fix reaches all of them.
//!
//! ## What it does
//! - Waits for conditions instead of sleeping ([`wait`]): one
//!   implementation, with the limit as an argument or one of its named
//!   constants.
//! - Makes scratch directories ([`TempDir`]) and free loopback ports
//!   ([`free_port`]).
//! - Finds and spawns the workspace's binaries with their log lines kept
//!   ([`process`]).
//! - Sends a request and reads the whole reply ([`http`]).
//! - Builds customer CSVs in the Telco layout and checks scored ones
//!   ([`telco`]), and finds the Telco data set.
//! - Gives each test its own backends ([`backends`]): a fresh PostgreSQL
//!   database (feature `postgres`), a fresh S3 bucket and SQS queue with a
//!   dead-letter queue on moto (feature `aws`).
//! - Drives headless Chromium over WebDriver and checks pages with the
//!   vendored axe-core (module `browser`, feature `browser`).
//! - Checks that memory a structure held is given back ([`memory`]; the
//!   histogram check and jemalloc's count behind feature `jemalloc`).
//! - Checks that vendored third-party files match the checksums in their
//!   `VENDOR.md` (`vendor`, tests only).
//!
//! ## What it refuses to do
//! - Depend on a crate under test: it starts servers and binaries and
//!   speaks HTTP, SQL and S3/SQS to them, so a suite tests the real thing.
//! - Skip a test: a missing service or data set fails the test with the
//!   command that provides it.
//! - Compile a backend a suite does not use: sqlx, the AWS SDK and the
//!   WebDriver client are behind the `postgres`, `aws` and `browser`
//!   features.
//! - Assert durations: a limit is a bound on waiting for an event, never
//!   the thing checked.
//!
//! ## Design
//! Plain functions and small structs; panics carry the message a failing
//! test should show. Suite-specific harness parts (the proxy's keys,
//! tokens and HTTPS JWKS server, the app's in-process server) live beside
//! their suites and build on these; keys, tokens and the JWKS server can
//! move here behind a feature when a second suite needs them directly.
#![forbid(unsafe_code)]

pub mod backends;
#[cfg(feature = "browser")]
pub mod browser;
pub mod http;
pub mod memory;
pub mod process;
pub mod sign_in;
pub mod telco;
pub mod wait;

mod fs;
mod net;
mod vendor;

pub use fs::TempDir;
pub use http::{Reply, send};
pub use net::free_port;
pub use wait::{EVENTUALLY, eventually, eventually_within, wait_for};

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
