//! JSON Web Key Sets: parsing, key by key.
//!
//! A JWKS is read one key at a time: a key of another type, use or
//! algorithm, or an RSA key under 2048 bits, is skipped and logged, never a
//! reason to drop the whole set (Clerk may add key types we do not use).

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// RSA keys below this are factorable by a determined attacker.
pub const MIN_RSA_BITS: usize = 2048;
/// Anything larger is not a key Clerk would publish, and costs CPU to use.
pub const MAX_RSA_BITS: usize = 8192;

/// One public key, ready to verify RS256 signatures.
pub struct VerifyingKey {
    pub kid: String,
    pub bits: usize,
    /// Compared when a cached token is reused: the key that signed it must
    /// still be the key published under its kid.
    pub modulus: Arc<[u8]>,
    /// Parsed once, when the key set is loaded: building the RSA key from
    /// its components on every verification cost about as much as the
    /// RSA arithmetic itself (see the README's "Benchmarks"). Bound to
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RS256) and 2048 to 8192 bits.
    public: ParsedPublicKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Builds a key from its big-endian modulus and exponent.
    pub fn from_components(kid: String, n: &[u8], e: &[u8]) -> Result<Self, String> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bits = bit_length(n);
        if bits < MIN_RSA_BITS {
            return Err(format!("RSA key of {bits} bits is under {MIN_RSA_BITS}"));
        }
        if bits > MAX_RSA_BITS {
            return Err(format!("RSA key of {bits} bits is over {MAX_RSA_BITS}"));
        }
        if e.is_empty() || e.len() > 4 || e.last().is_some_and(|b| b & 1 == 0) {
            return Err("RSA exponent is not a small odd number".to_owned());
        }
        let public = RsaPublicKeyComponents { n, e }
            .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
            .map_err(|err| format!("not a usable RSA public key: {err}"))?;
        Ok(VerifyingKey {
            kid,
            bits,
            modulus: Arc::from(n),
            public,
        })
    }

    /// Whether `signature` is this key's RS256 signature (RFC 7518 §3.3:
    /// RSASSA-PKCS1-v1_5 with SHA-256) of `message`.
    pub fn verifies_rs256(&self, message: &[u8], signature: &[u8]) -> bool {
        self.public.verify_sig(message, signature).is_ok()
    }

    /// Reads a PEM public key (`BEGIN PUBLIC KEY`, as Clerk shows it, or
    /// `BEGIN RSA PUBLIC KEY`).
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        use aws_lc_rs::rsa::{PublicKey, PublicKeyComponents};
        // Operators paste keys into environment variables with literal "\n".
        let pem = pem.replace("\\n", "\n");
        let der = pem_body(&pem)?;
        // Reads both SubjectPublicKeyInfo and PKCS#1 RSAPublicKey.
        let public = PublicKey::from_der(&der).map_err(|_| "not an RSA public key".to_owned())?;
        let components = PublicKeyComponents::<Vec<u8>>::from(&public);
        VerifyingKey::from_components("pem".to_owned(), &components.n, &components.e)
    }
}

fn pem_body(pem: &str) -> Result<Vec<u8>, String> {
    let mut inside = false;
    let mut body = String::new();
    let mut label = String::new();
    for line in pem.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("-----BEGIN ") {
            inside = true;
            label = rest.trim_end_matches('-').to_owned();
        } else if line.starts_with("-----END ") {
            break;
        } else if inside {
            body.push_str(line);
        }
    }
    if !inside {
        return Err("no PEM block found".to_owned());
    }
    if label.contains("PRIVATE") {
        return Err("this is a private key; give the public key".to_owned());
    }
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| "PEM body is not base64".to_owned())
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn bit_length(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(top) => n.len() * 8 - top.leading_zeros() as usize,
    }
}

/// The usable keys of one JWKS document, by kid.
#[derive(Debug, Default, Clone)]
pub struct KeySet {
    pub keys: HashMap<String, Arc<VerifyingKey>>,
}

/// A key that was left out, and why; logged by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    pub kid: Option<String>,
    pub reason: String,
}

/// Why a whole document was refused (the current keys stay in place).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("no \"keys\" array")]
    NoKeysArray,
    #[error("no usable RS256 key among {0} entries")]
    NoUsableKeys(usize),
}

impl JwksError {
    pub fn reason(&self) -> &'static str {
        match self {
            JwksError::NotJson(_) => "not_json",
            JwksError::NoKeysArray => "no_keys",
            JwksError::NoUsableKeys(_) => "no_usable_keys",
        }
    }
}

/// Parses a JWKS document, keeping every usable key and listing the rest.
///
/// An empty result is an error: replacing a good set with nothing would turn
/// a publishing mistake into an outage.
pub fn parse_jwks(body: &[u8]) -> Result<(KeySet, Vec<SkippedKey>), JwksError> {
    let document: Value =
        serde_json::from_slice(body).map_err(|err| JwksError::NotJson(err.to_string()))?;
    let entries = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(JwksError::NoKeysArray)?;
    let mut set = KeySet::default();
    let mut skipped = Vec::new();
    for entry in entries {
        let kid = entry.get("kid").and_then(Value::as_str).map(str::to_owned);
        match parse_key(entry) {
            Ok(key) => {
                if set.keys.contains_key(&key.kid) {
                    skipped.push(SkippedKey {
                        kid,
                        reason: "duplicate kid; the first one is kept".to_owned(),
                    });
                } else {
                    set.keys.insert(key.kid.clone(), Arc::new(key));
                }
            }
            Err(reason) => skipped.push(SkippedKey { kid, reason }),
        }
    }
    if set.keys.is_empty() {
        return Err(JwksError::NoUsableKeys(entries.len()));
    }
    Ok((set, skipped))
}

fn parse_key(entry: &Value) -> Result<VerifyingKey, String> {
    let field = |name: &str| entry.get(name).and_then(Value::as_str);
    if !entry.is_object() {
        return Err("entry is not an object".to_owned());
    }
    match field("kty") {
        Some("RSA") => {}
        Some(other) => return Err(format!("key type {other} is not RSA")),
        None => return Err("no kty".to_owned()),
    }
    if let Some(key_use) = entry.get("use")
        && key_use.as_str() != Some("sig")
    {
        return Err(format!("use {key_use} is not sig"));
    }
    if let Some(alg) = entry.get("alg")
        && alg.as_str() != Some("RS256")
    {
        return Err(format!("alg {alg} is not RS256"));
    }
    if let Some(ops) = entry.get("key_ops").and_then(Value::as_array)
        && !ops.iter().any(|op| op.as_str() == Some("verify"))
    {
        return Err("key_ops does not include verify".to_owned());
    }
    let kid = match field("kid") {
        Some(kid) if !kid.is_empty() => kid.to_owned(),
        _ => return Err("no kid".to_owned()),
    };
    let n = decode_b64(field("n"), "n")?;
    let e = decode_b64(field("e"), "e")?;
    VerifyingKey::from_components(kid, &n, &e)
}

fn decode_b64(value: Option<&str>, name: &str) -> Result<Vec<u8>, String> {
    let text = value.ok_or_else(|| format!("no {name}"))?;
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| format!("{name} is not base64url"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rsa_jwk(kid: &str, bits: usize) -> Value {
        let mut n = vec![0xc5u8; bits / 8];
        n[0] = 0xc5;
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
               "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB"})
    }

    #[test]
    fn usable_keys_are_kept_and_the_rest_skipped_one_by_one() {
        let document = json!({"keys": [
            rsa_jwk("good", 2048),
            rsa_jwk("weak", 1024),
            {"kty": "EC", "crv": "P-256", "kid": "ec", "x": "AA", "y": "AA"},
            {"kty": "RSA", "use": "enc", "kid": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "alg": "RS512", "kid": "rs512", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "bad-n", "n": "!!!", "e": "AQAB"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
            "not an object",
            rsa_jwk("good", 4096),
        ]});
        let (set, skipped) = parse_jwks(document.to_string().as_bytes()).expect("one usable");
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.keys["good"].bits, 2048);
        assert_eq!(skipped.len(), 8, "{skipped:?}");
        assert!(skipped.iter().any(|s| s.reason.contains("1024 bits")));
    }

    #[test]
    fn documents_without_usable_keys_are_refused() {
        assert!(matches!(parse_jwks(b"<html>"), Err(JwksError::NotJson(_))));
        assert_eq!(parse_jwks(b"{}").err(), Some(JwksError::NoKeysArray));
        assert_eq!(
            parse_jwks(br#"{"keys": []}"#).err(),
            Some(JwksError::NoUsableKeys(0))
        );
        let weak = json!({"keys": [rsa_jwk("weak", 1024)]}).to_string();
        assert_eq!(
            parse_jwks(weak.as_bytes()).err(),
            Some(JwksError::NoUsableKeys(1))
        );
    }

    #[test]
    fn bit_length_ignores_leading_zero_bytes() {
        let mut n = vec![0u8; 257];
        n[1] = 0x80;
        let key = VerifyingKey::from_components("k".to_owned(), &n, &[1, 0, 1]).expect("2048");
        assert_eq!(key.bits, 2048);
        let mut short = vec![0u8; 256];
        short[0] = 0x7f;
        assert!(VerifyingKey::from_components("k".to_owned(), &short, &[1, 0, 1]).is_err());
    }

    #[test]
    fn even_or_huge_exponents_are_refused() {
        let n = vec![0xc5u8; 256];
        assert!(VerifyingKey::from_components("k".to_owned(), &n, &[2]).is_err());
        assert!(VerifyingKey::from_components("k".to_owned(), &n, &[1, 0, 0, 0, 1]).is_err());
    }

    /// Built at run time so no file in the repository holds a private-key
    /// block, even a dummy one.
    fn pem_block(label: &str) -> String {
        format!("-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n")
    }

    #[test]
    fn private_keys_are_refused_as_pem() {
        let err = VerifyingKey::from_pem(&pem_block("PRIVATE KEY")).expect_err("private");
        assert!(err.contains("private"), "{err}");
    }
}
