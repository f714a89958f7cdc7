//! Session tokens in Clerk's exact shape (DESIGN.md §2):
//!
//! ```text
//! {"alg":"RS256","kid":"ins_...","typ":"JWT"}
//! {"azp":"...","exp":...,"fva":[0,-1],"iat":...,"iss":"...","nbf":...,
//!  "sid":"sess_...","sub":"user_...","v":2}
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::keys::TestKey;

/// The issuer every e2e proxy expects (`CLERK_ISSUER_URL`).
pub const ISSUER: &str = "https://clerk.retainwise.test";
/// The authorized party the tokens carry.
pub const AZP: &str = "https://app.retainwise.test";

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Claims of a Clerk session token for `sub`, valid for `ttl` seconds from `iat`.
pub fn claims(sub: &str, iat: i64, ttl: i64) -> Value {
    json!({
        "azp": AZP,
        "exp": iat + ttl,
        "fva": [0, -1],
        "iat": iat,
        "iss": ISSUER,
        "nbf": iat - 10,
        "sid": format!("sess_{:016x}", rand::random::<u64>()),
        "sub": sub,
        "v": 2,
    })
}

/// A valid token for `sub` (five minutes), signed by `key`.
pub fn token(key: &TestKey, sub: &str) -> String {
    sign(key, &key.kid, &claims(sub, now(), 300))
}

/// A token for `sub` that expired two minutes ago (far past the 5 s leeway).
pub fn expired_token(key: &TestKey, sub: &str) -> String {
    sign(key, &key.kid, &claims(sub, now() - 600, 480))
}

/// A token naming `listed`'s `kid` but signed by `forger`.
pub fn forged_token(listed: &TestKey, forger: &TestKey, sub: &str) -> String {
    sign(forger, &listed.kid, &claims(sub, now(), 300))
}

/// RS256 token with Clerk's header, `kid` as given, signed by `key`.
pub fn sign(key: &TestKey, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "RS256", "kid": kid, "typ": "JWT"});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign_rs256(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}
