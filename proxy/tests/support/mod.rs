//! Test harness for the proxy's integration tests.
//!
//! The proxy is a black box: every test starts real servers on
//! `127.0.0.1:0` (a JWKS server over HTTPS, an upstream app), spawns the
//! `retainwise-proxy` binary in front of them, and talks HTTP to it.
//!
//! - [`keys`]: RSA keys generated at run time (never committed) and their JWKs.
//! - [`tokens`]: Clerk-shaped session tokens, and a builder for forged ones.
//! - [`jwks`]: `start_jwks()`, an HTTPS JWKS server whose behaviour can be
//!   switched while the proxy runs (good keys, 500, garbage, huge, slow,
//!   redirect, down and back).
//! - [`upstream`]: `start_upstream()`, an app stand-in recording every request.
//! - [`proxy`]: `start_proxy()`, the binary with its log lines captured.
//! - [`raw`]: a plain TCP HTTP/1.1 client for requests normal clients refuse to send.
//! - [`wire`]: responses read off raw sockets as fields and bytes, to compare.
//!
//! Each test binary uses only part of the harness.
#![allow(dead_code, unused_imports)]

pub mod jwks;
pub mod keys;
pub mod proxy;
pub mod raw;
pub mod tokens;
pub mod upstream;
pub mod wire;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;

pub use jwks::{JwksMode, JwksServer, start_jwks, start_plain_jwks};
pub use keys::{TestKey, foreign_key, key_a, key_b, key_c, weak_key};
pub use proxy::{Exit, Proxy, Settings, run_until_exit, settings, spawn_proxy, start_proxy};
pub use raw::RawRequest;
pub use tokens::{
    AZP, ISSUER, TokenBuilder, clerk_claims, encode_parts, mint_token, now, token, valid_token,
};
pub use upstream::{Seen, Upstream, start_upstream};
// The parts every suite shares live in the workspace's test harness.
pub use retainwise_testkit::{
    EVENTUALLY, Reply, TempDir, eventually, eventually_within, free_port, hex, send,
};

/// The proxy in front of `app` with the bare settings and a JWKS server
/// holding [`key_a`]; keep the JWKS server alive as long as the proxy.
pub async fn proxy_in_front_of(app: std::net::SocketAddr) -> (JwksServer, Proxy) {
    let jwks = start_jwks(&[key_a()]).await;
    let proxy = start_proxy(
        Settings::bare()
            .with("CLERK_JWKS_URL", jwks.url())
            .with("PROXY_JWKS_CA_FILE", jwks.ca_file())
            .with("CLERK_ISSUER_URL", ISSUER)
            .with("PROXY_UPSTREAM", format!("http://{app}")),
    )
    .await;
    (jwks, proxy)
}

/// Runs `future`, failing the test if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {limit:?}"))
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref())
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_port() -> std::net::SocketAddr {
    free_port()
}

/// A fresh request id, to find a request's log line.
pub fn request_id() -> String {
    format!("test-{}", hex(&rand::random::<[u8; 12]>()))
}

/// The proxy's answer to a missing token (DESIGN.md §2, RFC 6750).
pub fn assert_missing_token(reply: &Reply) {
    assert_eq!(reply.status, 401, "no token is 401: {}", reply.text());
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="retainwise""#)
    );
    assert_eq!(reply.error(), "missing_token");
    assert_error_shape(reply);
}

/// The proxy's answer to an invalid token (DESIGN.md §2, RFC 6750).
pub fn assert_invalid_token(reply: &Reply) {
    assert_eq!(
        reply.status,
        401,
        "an invalid token is 401: {}",
        reply.text()
    );
    let challenge = reply
        .header("www-authenticate")
        .expect("a WWW-Authenticate header");
    assert!(
        challenge.starts_with(
            r#"Bearer realm="retainwise", error="invalid_token", error_description=""#
        ),
        "unexpected challenge: {challenge}"
    );
    assert_eq!(reply.error(), "invalid_token");
    assert_error_shape(reply);
}

/// Every error body is `{"error": "...", "message": "..."}` and every
/// response carries `X-Request-Id`.
pub fn assert_error_shape(reply: &Reply) {
    let body = reply.json();
    assert!(
        body["error"].is_string(),
        "error body {body} has an error string"
    );
    assert!(
        body["message"].is_string(),
        "error body {body} has a message string"
    );
    assert!(
        reply.header("x-request-id").is_some(),
        "error response has an X-Request-Id"
    );
}

/// Fails the test if the body contains the token or any of its segments.
pub fn assert_not_echoed(reply: &Reply, token: &str) {
    let text = reply.text();
    for part in std::iter::once(token).chain(token.split('.').filter(|s| s.len() > 8)) {
        assert!(
            !text.contains(part),
            "the response echoes (part of) the token: {text}"
        );
    }
    for (name, value) in &reply.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        for part in std::iter::once(token).chain(token.split('.').filter(|s| s.len() > 8)) {
            assert!(
                !value.contains(part),
                "header {name} echoes (part of) the token: {value}"
            );
        }
    }
}
