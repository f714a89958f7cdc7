//! Header rewriting between the client and the app.
//!
//! The app trusts `X-User-Id` because only the proxy can reach it, so the
//! proxy must be the only one who ever sets it: every spelling a client might
//! use is removed before the proxy adds its own.

use std::net::IpAddr;

use http::HeaderMap;
use http::header::{AUTHORIZATION, CONNECTION, COOKIE, HeaderName, HeaderValue};

/// Headers that carry an identity the app trusts. Compared after
/// lower-casing and reading `_` as `-`, because some servers (and CGI-style
/// frameworks) treat `X_User_Id` and `X-User-Id` as the same header.
pub const IDENTITY_HEADERS: &[&str] = &["x-user-id"];

/// The header the proxy sets from the token's `sub`.
pub const USER_ID: HeaderName = HeaderName::from_static("x-user-id");
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Headers some frameworks use to route on a path other than the request
/// line's. The proxy authorises the request line's path, so any of these
/// reaching the app would let a public path stand in for a private one.
pub const PATH_OVERRIDE_HEADERS: &[&str] = &[
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-forwarded-prefix",
    "x-envoy-original-path",
];

/// The Clerk session cookie.
pub const SESSION_COOKIE: &str = "__session";

/// Longest client request id we keep; longer ones are replaced, not cut,
/// so logs never hold a prefix that collides with another request's id.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Removes hop-by-hop headers: RFC 9110 §7.6.1 says "a proxy or gateway MUST
/// parse a received Connection header field before a message is forwarded
/// and, for each connection-option in this field, remove any header or
/// trailer field(s) from the message with the same name as the
/// connection-option, and then remove the Connection header field itself",
/// and names Proxy-Connection, Keep-Alive, TE, Transfer-Encoding and Upgrade
/// as fields that must not be forwarded either.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|option| HeaderName::from_bytes(option.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

fn normalised_name(name: &HeaderName) -> String {
    name.as_str().replace('_', "-")
}

/// Removes every client-supplied identity and path-override header, in
/// every spelling.
pub fn strip_client_identity(headers: &mut HeaderMap) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let normal = normalised_name(name);
            IDENTITY_HEADERS.contains(&normal.as_str())
                || PATH_OVERRIDE_HEADERS.contains(&normal.as_str())
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// Appends the peer to `X-Forwarded-For`, keeping what earlier hops wrote.
pub fn append_forwarded_for(headers: &mut HeaderMap, peer: IpAddr) {
    let earlier: Vec<&str> = headers
        .get_all(&FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .collect();
    let value = if earlier.is_empty() {
        peer.to_string()
    } else {
        format!("{}, {peer}", earlier.join(", "))
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(FORWARDED_FOR, value);
    }
}

/// The client's request id when it is a sane token, a fresh one otherwise.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    let mut given = headers.get_all(&REQUEST_ID).iter();
    if let (Some(value), None) = (given.next(), given.next()) {
        let bytes = value.as_bytes();
        let sane = !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID_LEN
            && bytes.iter().all(|b| (0x21..=0x7e).contains(b));
        if sane {
            return value.clone();
        }
    }
    let fresh = uuid::Uuid::new_v4().to_string();
    HeaderValue::from_str(&fresh).expect("a UUID is a valid header value")
}

/// Where the token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    Bearer,
    SessionCookie,
}

/// What the request offers as a credential.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential {
    None,
    Token(String, CredentialSource),
    /// More than one, and they differ: refuse rather than pick one, since the
    /// proxy and something downstream could pick differently.
    Ambiguous,
    /// `Authorization: Bearer` with nothing usable after it.
    MalformedBearer,
}

/// Finds the token: `Authorization: Bearer` (scheme case-insensitive,
/// exactly one such header), else the Clerk `__session` cookie.
///
/// The header wins over the cookie, as in Clerk's own SDKs: a browser sends
/// the cookie along with a fresher token in the header, and the two may
/// legitimately differ.
pub fn find_credential(headers: &HeaderMap) -> Credential {
    let mut authorizations = headers.get_all(AUTHORIZATION).iter();
    match (authorizations.next(), authorizations.next()) {
        (Some(_), Some(_)) => return Credential::Ambiguous,
        (Some(value), None) => {
            let Ok(text) = value.to_str() else {
                return Credential::MalformedBearer;
            };
            if let Some((scheme, rest)) = text.split_once(' ') {
                if scheme.eq_ignore_ascii_case("bearer") {
                    let token = rest.trim();
                    if token.is_empty() || token.contains(' ') {
                        return Credential::MalformedBearer;
                    }
                    return Credential::Token(token.to_owned(), CredentialSource::Bearer);
                }
            } else if text.eq_ignore_ascii_case("bearer") {
                return Credential::MalformedBearer;
            }
        }
        (None, _) => {}
    }
    let mut found: Option<String> = None;
    for (name, value) in cookie_pairs(headers) {
        if name != SESSION_COOKIE || value.is_empty() {
            continue;
        }
        match &found {
            Some(existing) if existing != value => return Credential::Ambiguous,
            Some(_) => {}
            None => found = Some(value.to_owned()),
        }
    }
    match found {
        Some(token) => Credential::Token(token, CredentialSource::SessionCookie),
        None => Credential::None,
    }
}

fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            Some((name.trim(), value.trim().trim_matches('"')))
        })
}

/// Removes the credential (the `Authorization` header and the `__session`
/// cookie), keeping every other cookie.
pub fn strip_credentials(headers: &mut HeaderMap) {
    headers.remove(AUTHORIZATION);
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .map(str::trim)
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name).trim();
            !pair.is_empty() && name != SESSION_COOKIE
        })
        .map(str::to_owned)
        .collect();
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_removed() {
        let mut map = headers(&[
            ("connection", "keep-alive, X-User-Id, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("x-user-id", "spoof"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic abc"),
            ("accept", "text/csv"),
        ]);
        strip_hop_by_hop(&mut map);
        let left: Vec<&str> = map.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["accept"]);
    }

    #[test]
    fn identity_headers_are_removed_in_every_spelling() {
        let mut map = headers(&[
            ("x-user-id", "a"),
            ("x-user-id", "b"),
            ("x_user_id", "c"),
            ("x-user_id", "d"),
            ("x-original-url", "/api/uploads"),
            ("x_rewrite_url", "/api/uploads"),
            ("x-user-idx", "kept"),
        ]);
        strip_client_identity(&mut map);
        let left: Vec<&str> = map.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-user-idx"]);
    }

    #[test]
    fn forwarded_for_appends_the_peer() {
        let mut map = headers(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-for", "10.0.0.1"),
        ]);
        append_forwarded_for(&mut map, "127.0.0.1".parse().expect("ip"));
        assert_eq!(map[&FORWARDED_FOR], "203.0.113.7, 10.0.0.1, 127.0.0.1");
        let mut empty = HeaderMap::new();
        append_forwarded_for(&mut empty, "::1".parse().expect("ip"));
        assert_eq!(empty[&FORWARDED_FOR], "::1");
    }

    #[test]
    fn request_ids_are_kept_when_sane() {
        let kept = request_id(&headers(&[("x-request-id", "abc-123")]));
        assert_eq!(kept, "abc-123");
        let long = "a".repeat(129);
        for bad in [
            headers(&[("x-request-id", &long)]),
            headers(&[("x-request-id", "a b")]),
            headers(&[("x-request-id", "a"), ("x-request-id", "b")]),
            HeaderMap::new(),
        ] {
            let fresh = request_id(&bad);
            assert_eq!(fresh.len(), 36, "{fresh:?}");
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for value in [
            "Bearer abc.def.ghi",
            "bearer abc.def.ghi",
            "BEARER  abc.def.ghi",
        ] {
            assert_eq!(
                find_credential(&headers(&[("authorization", value)])),
                Credential::Token("abc.def.ghi".to_owned(), CredentialSource::Bearer)
            );
        }
    }

    #[test]
    fn credential_edge_cases() {
        assert_eq!(find_credential(&HeaderMap::new()), Credential::None);
        assert_eq!(
            find_credential(&headers(&[("authorization", "Basic dXNlcjpwYXNz")])),
            Credential::None
        );
        assert_eq!(
            find_credential(&headers(&[("authorization", "Bearer")])),
            Credential::MalformedBearer
        );
        assert_eq!(
            find_credential(&headers(&[("authorization", "Bearer a b")])),
            Credential::MalformedBearer
        );
        assert_eq!(
            find_credential(&headers(&[
                ("authorization", "Bearer a"),
                ("authorization", "Bearer a")
            ])),
            Credential::Ambiguous
        );
        assert_eq!(
            find_credential(&headers(&[("cookie", "theme=dark; __session=tok")])),
            Credential::Token("tok".to_owned(), CredentialSource::SessionCookie)
        );
        assert_eq!(
            find_credential(&headers(&[
                ("cookie", "__session=a"),
                ("cookie", "__session=b")
            ])),
            Credential::Ambiguous
        );
        assert_eq!(
            find_credential(&headers(&[
                ("authorization", "Bearer hdr"),
                ("cookie", "__session=old")
            ])),
            Credential::Token("hdr".to_owned(), CredentialSource::Bearer)
        );
    }

    #[test]
    fn credentials_are_stripped_and_other_cookies_kept() {
        let mut map = headers(&[
            ("authorization", "Bearer x"),
            ("cookie", "theme=dark; __session=tok; lang=en"),
            ("cookie", "__session=tok"),
        ]);
        strip_credentials(&mut map);
        assert!(map.get(AUTHORIZATION).is_none());
        assert_eq!(map.get_all(COOKIE).iter().count(), 1);
        assert_eq!(map[COOKIE], "theme=dark; lang=en");
    }
}
