//! Session tokens in Clerk's exact shape, and a builder for forged ones.
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

/// The issuer every test proxy is configured with (`CLERK_ISSUER_URL`).
pub const ISSUER: &str = "https://clerk.retainwise.test";
/// The authorized party tokens carry by default.
pub const AZP: &str = "https://app.retainwise.test";

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Claims of a fresh Clerk session token for `sub`, valid for a minute.
pub fn clerk_claims(sub: &str) -> Value {
    let now = now();
    json!({
        "azp": AZP,
        "exp": now + 60,
        "fva": [0, -1],
        "iat": now,
        "iss": ISSUER,
        "nbf": now - 10,
        "sid": format!("sess_{}", super::hex(&rand::random::<[u8; 8]>())),
        "sub": sub,
        "v": 2,
    })
}

/// An RS256 token signed by `key` with Clerk's header and the given claims.
pub fn mint_token(key: &'static TestKey, claims: Value) -> String {
    TokenBuilder::new(key).claims(claims).build()
}

/// A valid token for `sub`, signed by `key`.
pub fn token(key: &'static TestKey, sub: &str) -> String {
    mint_token(key, clerk_claims(sub))
}

/// A valid token for `user_2def`, signed by `key`.
pub fn valid_token(key: &'static TestKey) -> String {
    token(key, "user_2def")
}

/// How a forged token is signed.
#[derive(Debug, Clone)]
enum Signature {
    Rs256(&'static TestKey),
    Rs384(&'static TestKey),
    Ps256(&'static TestKey),
    Hs256(Vec<u8>),
    Bytes(Vec<u8>),
}

/// Builds tokens, honest or not. Starts as a valid Clerk token signed RS256
/// by `key` under `key.kid`; every part can then be bent.
#[derive(Debug, Clone)]
pub struct TokenBuilder {
    header: Value,
    claims: Value,
    signature: Signature,
}

impl TokenBuilder {
    pub fn new(key: &'static TestKey) -> Self {
        Self {
            header: json!({"alg": "RS256", "kid": key.kid, "typ": "JWT"}),
            claims: clerk_claims("user_2def"),
            signature: Signature::Rs256(key),
        }
    }

    pub fn claims(mut self, claims: Value) -> Self {
        self.claims = claims;
        self
    }

    /// Sets (or replaces) one claim.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims[name] = value;
        self
    }

    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims
            .as_object_mut()
            .expect("claims are an object")
            .remove(name);
        self
    }

    /// Sets (or replaces) one header field.
    pub fn header(mut self, name: &str, value: Value) -> Self {
        self.header[name] = value;
        self
    }

    pub fn without_header(mut self, name: &str) -> Self {
        self.header
            .as_object_mut()
            .expect("header is an object")
            .remove(name);
        self
    }

    /// Signs RS256 with another key (the header keeps its `kid`).
    pub fn signed_by(mut self, key: &'static TestKey) -> Self {
        self.signature = Signature::Rs256(key);
        self
    }

    /// Signs RS384 with `key` and says so in the header.
    pub fn rs384(mut self, key: &'static TestKey) -> Self {
        self.header["alg"] = json!("RS384");
        self.signature = Signature::Rs384(key);
        self
    }

    /// Signs PS256 with `key` and says so in the header.
    pub fn ps256(mut self, key: &'static TestKey) -> Self {
        self.header["alg"] = json!("PS256");
        self.signature = Signature::Ps256(key);
        self
    }

    /// Signs HMAC-SHA256 with `secret` and says HS256 in the header.
    pub fn hs256(mut self, secret: &[u8]) -> Self {
        self.header["alg"] = json!("HS256");
        self.signature = Signature::Hs256(secret.to_vec());
        self
    }

    /// Uses these bytes as the signature, whatever the header says.
    pub fn signature_bytes(mut self, bytes: &[u8]) -> Self {
        self.signature = Signature::Bytes(bytes.to_vec());
        self
    }

    pub fn build(&self) -> String {
        let header = serde_json::to_vec(&self.header).expect("header serialises");
        let claims = serde_json::to_vec(&self.claims).expect("claims serialise");
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&header),
            URL_SAFE_NO_PAD.encode(&claims)
        );
        let message = signing_input.as_bytes();
        let signature = match &self.signature {
            Signature::Rs256(key) => key.sign_rs256(message),
            Signature::Rs384(key) => {
                key.sign_with(&aws_lc_rs::signature::RSA_PKCS1_SHA384, message)
            }
            Signature::Ps256(key) => key.sign_with(&aws_lc_rs::signature::RSA_PSS_SHA256, message),
            Signature::Hs256(secret) => {
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
                aws_lc_rs::hmac::sign(&key, message).as_ref().to_vec()
            }
            Signature::Bytes(bytes) => bytes.clone(),
        };
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// A token from raw parts: any header bytes, claims bytes and signature bytes.
pub fn encode_parts(header: &[u8], claims: &[u8], signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// Splits a token into its three base64url segments.
pub fn segments(token: &str) -> [&str; 3] {
    let mut parts = token.splitn(3, '.');
    let mut next = || parts.next().expect("token has three segments");
    [next(), next(), next()]
}

/// Decodes one base64url segment as JSON.
pub fn decode_segment(segment: &str) -> Value {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .expect("segment is base64url");
    serde_json::from_slice(&bytes).expect("segment is JSON")
}
