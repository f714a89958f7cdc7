//! Token verification: RS256 only, every rule explicit.
//!
//! There is no unverified mode. The order is fixed: parse the header and
//! refuse anything but a plain RS256 header with a kid; find the key; check
//! the signature; only then read the claims. aws-lc-rs does the RSA
//! arithmetic, with each key parsed once when the key set is loaded; no
//! JWT library's validation defaults (jsonwebtoken's 60 s leeway, no `nbf`,
//! loose `iss`/`aud` typing) are involved.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::claims::{ClaimsError, ValidClaims, check_claims, check_clock};
use crate::jose::{Claims, Header, Member};
use crate::keystore::{KeyLookup, KeyStore};
use crate::metrics as m;
use crate::settings::ClaimRules;

/// Clerk's tokens are around 1 KiB; anything past this is an attack on the
/// parser, refused before a byte is decoded.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Kids are short identifiers; a long one is junk.
const MAX_KID_BYTES: usize = 256;

/// Why a token was refused: the `reason` label and log field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    TooLarge,
    BadAlg,
    MissingKid,
    ForbiddenHeader,
    UnknownKid,
    BadSignature,
    Claims(ClaimsError),
}

impl Rejection {
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::TooLarge => "too_large",
            Rejection::BadAlg => "bad_alg",
            Rejection::MissingKid => "missing_kid",
            Rejection::ForbiddenHeader => "forbidden_header",
            Rejection::UnknownKid => "unknown_kid",
            Rejection::BadSignature => "bad_signature",
            Rejection::Claims(err) => err.reason(),
        }
    }

    /// Text for `error_description`: fixed strings, never token content.
    pub fn description(self) -> &'static str {
        match self {
            Rejection::Malformed => "the token is not a well-formed JWT",
            Rejection::TooLarge => "the token is too large",
            Rejection::BadAlg => "the token is not signed with RS256",
            Rejection::MissingKid => "the token header has no usable kid",
            Rejection::ForbiddenHeader => "the token header carries a forbidden parameter",
            Rejection::UnknownKid => "the token was signed by an unknown key",
            Rejection::BadSignature => "the token signature is invalid",
            Rejection::Claims(err) => err.description(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    Invalid(Rejection),
    /// No usable keys: a 503, never the caller's fault.
    KeysUnavailable,
}

impl From<Rejection> for VerifyError {
    fn from(rejection: Rejection) -> Self {
        VerifyError::Invalid(rejection)
    }
}

/// Who the token says the caller is, once everything checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
}

/// A token whose signature was verified, remembered so the RSA check runs
/// once per token; the clock and the key are checked again on every use.
#[derive(Debug)]
struct VerifiedToken {
    claims: ValidClaims,
    kid: String,
    modulus: Arc<[u8]>,
}

#[derive(Debug)]
pub struct Verifier {
    keys: Arc<KeyStore>,
    rules: ClaimRules,
    /// Keyed by the whole token, so a hit is a token byte for byte equal to
    /// the one verified. It was keyed by the token's SHA-256 (32 bytes
    /// instead of about a kilobyte), but hashing every request's token was
    /// the largest user-space item of a cached request under `perf` (2.5 %
    /// of the proxy's CPU, about 0.8 µs a request); the cache's own hasher
    /// (foldhash, randomly seeded) and the equality check take 0.2 %.
    /// Envoy's `jwt_authn` cache is keyed by the token string too. What it
    /// costs: a full cache of 10,000 Clerk tokens holds about 10 MB more,
    /// and live tokens (Clerk's last 60 s) stay in memory until evicted
    /// rather than only while their request runs. Only verified tokens
    /// are ever inserted, so a caller cannot fill it with large ones.
    verified: quick_cache::sync::Cache<Box<str>, Arc<VerifiedToken>>,
    metrics: Arc<m::HotMetrics>,
}

impl Verifier {
    pub fn new(
        keys: Arc<KeyStore>,
        rules: ClaimRules,
        cache_size: usize,
        metrics: Arc<m::HotMetrics>,
    ) -> Self {
        Verifier {
            keys,
            rules,
            verified: quick_cache::sync::Cache::new(cache_size.max(1)),
            metrics,
        }
    }

    pub fn keys(&self) -> &Arc<KeyStore> {
        &self.keys
    }

    /// Whether the token's *unverified* payload names another issuer: a
    /// session cookie of another Clerk instance on the same parent domain.
    ///
    /// Used only to pass over such cookies without verifying them (and so
    /// without fetching the JWKS for their unknown kid), as Clerk's SDK
    /// does; never to accept anything. A token that cannot be read is not
    /// "foreign": it is verified, and refused as malformed.
    pub fn names_other_issuer(&self, token: &str) -> bool {
        let mut parts = token.split('.');
        let (Some(_), Some(payload)) = (parts.next(), parts.next()) else {
            return false;
        };
        if payload.len() > MAX_TOKEN_BYTES {
            return false;
        }
        let Ok(json) = decode_part(payload) else {
            return false;
        };
        match Claims::parse(&json) {
            Ok(claims) => claims
                .iss
                .as_ref()
                .and_then(Member::as_str)
                .is_some_and(|iss| iss != self.rules.issuer),
            Err(_) => false,
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Identity, VerifyError> {
        let started = Instant::now();
        let result = self.verify_at(token, unix_now()).await;
        self.metrics
            .verify_duration
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// [`Verifier::verify`] with the clock passed in, for tests at the edges.
    pub async fn verify_at(&self, token: &str, now: f64) -> Result<Identity, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::TooLarge.into());
        }
        if let Some(cached) = self.verified.get(token) {
            match self.keys.lookup_now(&cached.kid) {
                // The same `Arc` while the key set is unchanged: no compare
                // of 256 bytes on every cached request.
                KeyLookup::Found(key)
                    if Arc::ptr_eq(&key.modulus, &cached.modulus)
                        || key.modulus == cached.modulus =>
                {
                    self.metrics.token_cache_hits.increment(1);
                    check_clock(&cached.claims.times, now, self.rules.leeway)
                        .map_err(Rejection::Claims)?;
                    return Ok(Identity {
                        user_id: cached.claims.subject.clone(),
                    });
                }
                KeyLookup::Unavailable => return Err(VerifyError::KeysUnavailable),
                // The key was removed or replaced: verify from scratch, which
                // refuses the token unless its kid is back with the same key.
                _ => {
                    self.verified.remove(token);
                }
            }
        }
        self.metrics.token_cache_misses.increment(1);
        let verified = self.verify_uncached(token, now).await?;
        let identity = Identity {
            user_id: verified.claims.subject.clone(),
        };
        self.verified.insert(token.into(), Arc::new(verified));
        Ok(identity)
    }

    async fn verify_uncached(&self, token: &str, now: f64) -> Result<VerifiedToken, VerifyError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::Malformed.into());
        };
        // The header first: an unsigned `alg: none` token is reported as
        // bad_alg, which is what an operator should see in the metrics.
        let kid = {
            let json = decode_part(header_b64)?;
            check_header(&Header::parse(&json).map_err(|_| Rejection::Malformed)?)?
        };
        if signature_b64.is_empty() {
            return Err(Rejection::BadSignature.into());
        }
        let key = match self.keys.lookup(&kid).await {
            KeyLookup::Found(key) => key,
            KeyLookup::UnknownKid => return Err(Rejection::UnknownKid.into()),
            KeyLookup::Unavailable => return Err(VerifyError::KeysUnavailable),
        };
        let signed_part = &token[..header_b64.len() + 1 + payload_b64.len()];
        let signature_ok = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .is_ok_and(|signature| key.verifies_rs256(signed_part.as_bytes(), &signature));
        if !signature_ok {
            return Err(Rejection::BadSignature.into());
        }
        let json = decode_part(payload_b64)?;
        let payload = Claims::parse(&json).map_err(|_| Rejection::Malformed)?;
        let claims = check_claims(&payload, &self.rules, now).map_err(Rejection::Claims)?;
        Ok(VerifiedToken {
            claims,
            kid,
            modulus: Arc::clone(&key.modulus),
        })
    }
}

/// Checks the JOSE header and returns its kid.
fn check_header(header: &Header<'_>) -> Result<String, Rejection> {
    // An allow-list of exactly one, compared as the exact string: "none",
    // "NoNe", "HS256" and "RS384" all fail here, before any key is chosen.
    if header.alg.as_ref().and_then(Member::as_str) != Some("RS256") {
        return Err(Rejection::BadAlg);
    }
    if header.forbidden {
        return Err(Rejection::ForbiddenHeader);
    }
    match header.kid.as_ref().and_then(Member::as_str) {
        Some(kid) if !kid.is_empty() && kid.len() <= MAX_KID_BYTES => Ok(kid.to_owned()),
        _ => Err(Rejection::MissingKid),
    }
}

/// The JSON of a header or payload segment (base64url without padding).
fn decode_part(part: &str) -> Result<Vec<u8>, Rejection> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Rejection::Malformed)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}
