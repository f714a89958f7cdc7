//! Tokens for the end-to-end tests, built with the proxy harness's
//! [`TokenBuilder`]. They live five minutes rather than Clerk's one, since a
//! single end-to-end test (upload, scoring, download, a scrape) can outlast
//! a minute on a loaded machine.

use serde_json::json;

use super::keys::TestKey;
pub use super::proxy_tokens::{AZP, ISSUER, TokenBuilder, clerk_claims, now};

/// A valid token for `sub` (five minutes), signed by `key`.
pub fn token(key: &'static TestKey, sub: &str) -> String {
    TokenBuilder::new(key)
        .claims(clerk_claims(sub))
        .claim("exp", json!(now() + 300))
        .build()
}

/// A token for `sub` that expired two minutes ago (far past the 5 s leeway).
pub fn expired_token(key: &'static TestKey, sub: &str) -> String {
    TokenBuilder::new(key)
        .claims(clerk_claims(sub))
        .claim("iat", json!(now() - 600))
        .claim("nbf", json!(now() - 610))
        .claim("exp", json!(now() - 120))
        .build()
}

/// A token naming `listed`'s `kid` but signed by `forger`.
pub fn forged_token(listed: &'static TestKey, forger: &'static TestKey, sub: &str) -> String {
    TokenBuilder::new(listed)
        .claims(clerk_claims(sub))
        .signed_by(forger)
        .build()
}
