//! Claim rules, checked only after the signature is.
//!
//! Each rule is written out here rather than left to a library's defaults:
//! `exp` required, `nbf` and `iat` honoured, all three with the configured
//! leeway (5 s by default, Clerk's own); `iss` an exact string; `aud` and
//! `azp` from allow-lists when configured; `sub` a short visible-ASCII string,
//! since it becomes a header value and a database key downstream.

use std::time::Duration;

use crate::jose::{Claims, Member};
use crate::settings::ClaimRules;

/// Longest `sub` accepted; Clerk's user ids are about 30 characters.
pub const MAX_SUBJECT_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimsError {
    MissingExp,
    Expired,
    NotYetValid,
    IssuedInFuture,
    BadTime,
    BadIssuer,
    BadAudience,
    BadAzp,
    BadSubject,
}

impl ClaimsError {
    pub fn reason(self) -> &'static str {
        match self {
            ClaimsError::MissingExp => "missing_exp",
            ClaimsError::Expired => "expired",
            ClaimsError::NotYetValid => "not_yet_valid",
            ClaimsError::IssuedInFuture => "issued_in_future",
            ClaimsError::BadTime => "malformed",
            ClaimsError::BadIssuer => "bad_issuer",
            ClaimsError::BadAudience => "bad_audience",
            ClaimsError::BadAzp => "bad_azp",
            ClaimsError::BadSubject => "bad_subject",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            ClaimsError::MissingExp => "the token has no expiry",
            ClaimsError::Expired => "the token has expired",
            ClaimsError::NotYetValid => "the token is not valid yet",
            ClaimsError::IssuedInFuture => "the token was issued in the future",
            ClaimsError::BadTime => "a time claim is not a number",
            ClaimsError::BadIssuer => "the token issuer is not accepted",
            ClaimsError::BadAudience => "the token audience is not accepted",
            ClaimsError::BadAzp => "the token authorized party is not accepted",
            ClaimsError::BadSubject => "the token subject is missing or malformed",
        }
    }
}

/// The time claims, as seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeClaims {
    pub exp: f64,
    pub nbf: Option<f64>,
    pub iat: Option<f64>,
}

/// What a token proved, kept for cache hits.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidClaims {
    pub subject: String,
    pub times: TimeClaims,
}

/// Checks every rule against `now` (seconds since the epoch).
pub fn check_claims(
    claims: &Claims<'_>,
    rules: &ClaimRules,
    now: f64,
) -> Result<ValidClaims, ClaimsError> {
    let times = TimeClaims {
        exp: match &claims.exp {
            None | Some(Member::Null) => return Err(ClaimsError::MissingExp),
            Some(value) => numeric_date(value)?,
        },
        nbf: claims.nbf.as_ref().map(numeric_date).transpose()?,
        iat: claims.iat.as_ref().map(numeric_date).transpose()?,
    };
    check_clock(&times, now, rules.leeway)?;
    if claims.iss.as_ref().and_then(Member::as_str) != Some(rules.issuer.as_str()) {
        return Err(ClaimsError::BadIssuer);
    }
    if let Some(accepted) = &rules.audiences
        && !audience_matches(claims.aud.as_ref(), accepted)
    {
        return Err(ClaimsError::BadAudience);
    }
    if let Some(accepted) = &rules.authorized_parties {
        // Required when configured: a token without azp could have been
        // minted for any origin, which is what the check is there to stop.
        let azp = claims.azp.as_ref().and_then(Member::as_str);
        if !azp.is_some_and(|azp| accepted.iter().any(|a| a == azp)) {
            return Err(ClaimsError::BadAzp);
        }
    }
    let subject = claims
        .sub
        .as_ref()
        .and_then(Member::as_str)
        .filter(|sub| valid_subject(sub))
        .ok_or(ClaimsError::BadSubject)?;
    Ok(ValidClaims {
        subject: subject.to_owned(),
        times,
    })
}

/// The clock rules alone, re-run on every cache hit.
pub fn check_clock(times: &TimeClaims, now: f64, leeway: Duration) -> Result<(), ClaimsError> {
    let leeway = leeway.as_secs_f64();
    if now >= times.exp + leeway {
        return Err(ClaimsError::Expired);
    }
    if times.nbf.is_some_and(|nbf| now + leeway < nbf) {
        return Err(ClaimsError::NotYetValid);
    }
    if times.iat.is_some_and(|iat| iat > now + leeway) {
        return Err(ClaimsError::IssuedInFuture);
    }
    Ok(())
}

fn numeric_date(value: &Member<'_>) -> Result<f64, ClaimsError> {
    value
        .as_f64()
        .filter(|secs| secs.is_finite())
        .ok_or(ClaimsError::BadTime)
}

fn audience_matches(aud: Option<&Member<'_>>, accepted: &[String]) -> bool {
    let accepts = |value: &Member<'_>| {
        value
            .as_str()
            .is_some_and(|aud| accepted.iter().any(|a| a == aud))
    };
    match aud {
        Some(Member::String(_)) => aud.is_some_and(accepts),
        Some(Member::Array(items)) => items.iter().any(accepts),
        _ => false,
    }
}

/// Visible ASCII only: no spaces, no CR/LF (header injection), no
/// non-ASCII that a database or log might read differently.
pub fn valid_subject(sub: &str) -> bool {
    !sub.is_empty()
        && sub.len() <= MAX_SUBJECT_LEN
        && sub.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value, json};

    /// The rules over claims written as JSON values, read as the verifier
    /// reads a token's payload.
    fn check_claims(
        claims: &Map<String, Value>,
        rules: &ClaimRules,
        now: f64,
    ) -> Result<ValidClaims, ClaimsError> {
        let json = serde_json::to_vec(claims).expect("json");
        super::check_claims(&Claims::parse(&json).expect("object"), rules, now)
    }

    const NOW: f64 = 1_764_000_000.0;

    fn rules() -> ClaimRules {
        ClaimRules {
            issuer: "https://clerk.retainwise.example".to_owned(),
            audiences: None,
            authorized_parties: None,
            leeway: Duration::from_secs(5),
        }
    }

    fn clerk_claims() -> Map<String, Value> {
        let value = json!({
            "azp": "https://app.retainwise.example", "exp": NOW + 60.0, "fva": [0, -1],
            "iat": NOW, "iss": "https://clerk.retainwise.example", "nbf": NOW - 10.0,
            "sid": "sess_2xyz", "sub": "user_2def", "v": 2
        });
        value.as_object().expect("object").clone()
    }

    fn with(key: &str, value: Value) -> Map<String, Value> {
        let mut claims = clerk_claims();
        claims.insert(key.to_owned(), value);
        claims
    }

    fn without(key: &str) -> Map<String, Value> {
        let mut claims = clerk_claims();
        claims.remove(key);
        claims
    }

    #[test]
    fn a_clerk_token_passes() {
        let valid = check_claims(&clerk_claims(), &rules(), NOW).expect("valid");
        assert_eq!(valid.subject, "user_2def");
    }

    #[test]
    fn exp_is_honoured_at_the_leeway_boundary() {
        let claims = with("exp", json!(NOW));
        assert!(check_claims(&claims, &rules(), NOW + 4.999).is_ok());
        assert_eq!(
            check_claims(&claims, &rules(), NOW + 5.0).err(),
            Some(ClaimsError::Expired)
        );
        assert_eq!(
            check_claims(&claims, &rules(), NOW + 5.001).err(),
            Some(ClaimsError::Expired)
        );
    }

    #[test]
    fn nbf_is_honoured_at_the_leeway_boundary() {
        let claims = with("nbf", json!(NOW + 10.0));
        assert!(check_claims(&claims, &rules(), NOW + 5.0).is_ok());
        assert_eq!(
            check_claims(&claims, &rules(), NOW + 4.999).err(),
            Some(ClaimsError::NotYetValid)
        );
    }

    #[test]
    fn iat_in_the_future_beyond_leeway_is_refused() {
        let claims = with("iat", json!(NOW + 5.0));
        assert!(check_claims(&claims, &rules(), NOW).is_ok());
        let claims = with("iat", json!(NOW + 5.001));
        assert_eq!(
            check_claims(&claims, &rules(), NOW).err(),
            Some(ClaimsError::IssuedInFuture)
        );
    }

    #[test]
    fn a_zero_leeway_is_exact() {
        let rules = ClaimRules {
            leeway: Duration::ZERO,
            ..rules()
        };
        let mut claims = with("exp", json!(NOW));
        claims.insert("iat".to_owned(), json!(NOW - 10.0));
        assert!(check_claims(&claims, &rules, NOW - 0.001).is_ok());
        assert_eq!(
            check_claims(&claims, &rules, NOW).err(),
            Some(ClaimsError::Expired)
        );
    }

    #[test]
    fn exp_is_required_and_numeric() {
        assert_eq!(
            check_claims(&without("exp"), &rules(), NOW).err(),
            Some(ClaimsError::MissingExp)
        );
        assert_eq!(
            check_claims(&with("exp", json!(null)), &rules(), NOW).err(),
            Some(ClaimsError::MissingExp)
        );
        assert_eq!(
            check_claims(&with("exp", json!("1764000060")), &rules(), NOW).err(),
            Some(ClaimsError::BadTime)
        );
        assert_eq!(
            check_claims(&with("nbf", json!([1])), &rules(), NOW).err(),
            Some(ClaimsError::BadTime)
        );
    }

    #[test]
    fn issuer_must_be_the_exact_string() {
        for bad in [
            json!("https://clerk.retainwise.example/"),
            json!("https://CLERK.retainwise.example"),
            json!(["https://clerk.retainwise.example"]),
            json!(null),
            json!(42),
        ] {
            assert_eq!(
                check_claims(&with("iss", bad.clone()), &rules(), NOW).err(),
                Some(ClaimsError::BadIssuer),
                "{bad}"
            );
        }
        assert_eq!(
            check_claims(&without("iss"), &rules(), NOW).err(),
            Some(ClaimsError::BadIssuer)
        );
    }

    #[test]
    fn audience_is_checked_only_when_configured() {
        assert!(check_claims(&with("aud", json!("other")), &rules(), NOW).is_ok());
        let rules = ClaimRules {
            audiences: Some(vec!["retainwise".to_owned()]),
            ..rules()
        };
        assert!(check_claims(&with("aud", json!("retainwise")), &rules, NOW).is_ok());
        assert!(check_claims(&with("aud", json!(["x", "retainwise"])), &rules, NOW).is_ok());
        for bad in [json!("other"), json!(["x"]), json!([]), json!(7)] {
            assert_eq!(
                check_claims(&with("aud", bad), &rules, NOW).err(),
                Some(ClaimsError::BadAudience)
            );
        }
        assert_eq!(
            check_claims(&clerk_claims(), &rules, NOW).err(),
            Some(ClaimsError::BadAudience)
        );
    }

    #[test]
    fn azp_is_required_from_the_list_when_configured() {
        let rules = ClaimRules {
            authorized_parties: Some(vec!["https://app.retainwise.example".to_owned()]),
            ..rules()
        };
        assert!(check_claims(&clerk_claims(), &rules, NOW).is_ok());
        assert_eq!(
            check_claims(&with("azp", json!("https://evil.example")), &rules, NOW).err(),
            Some(ClaimsError::BadAzp)
        );
        assert_eq!(
            check_claims(&without("azp"), &rules, NOW).err(),
            Some(ClaimsError::BadAzp)
        );
    }

    #[test]
    fn subject_shape_is_enforced() {
        let long = "u".repeat(MAX_SUBJECT_LEN + 1);
        let max = "u".repeat(MAX_SUBJECT_LEN);
        assert!(check_claims(&with("sub", json!(max)), &rules(), NOW).is_ok());
        for bad in [
            json!(""),
            json!(long),
            json!("user\r\nx-user-id: admin"),
            json!("user 1"),
            json!("usér"),
            json!(12345),
            json!(null),
        ] {
            assert_eq!(
                check_claims(&with("sub", bad.clone()), &rules(), NOW).err(),
                Some(ClaimsError::BadSubject),
                "{bad}"
            );
        }
        assert_eq!(
            check_claims(&without("sub"), &rules(), NOW).err(),
            Some(ClaimsError::BadSubject)
        );
    }
}
