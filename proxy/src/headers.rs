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
    // Only the options that name a field present are made into names: the
    // usual `keep-alive` and `close` name none, and parsing them allocated.
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        // A hop-by-hop name (`keep-alive`, in almost every response from
        // the app) goes in the pass below anyway: looking it up here parsed
        // and hashed it for nothing. One spelt in capitals is looked up.
        .filter(|option| !is_hop_by_hop(option) && headers.contains_key(*option))
        .filter_map(|option| HeaderName::from_bytes(option.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    // Found by a pass over the names, then removed: removing each of the
    // nine by its text parsed and hashed all nine, twice a request, 5,900
    // instructions of the proxy's 64,500 (callgrind, issue 11); now about
    // 1,500. A request rarely carries any of them; a response from the app
    // usually carries `Connection`.
    while let Some(name) = headers
        .keys()
        .find(|name| is_hop_by_hop(name.as_str()))
        .cloned()
    {
        headers.remove(name);
    }
}

/// The fields RFC 9110 §7.6.1 names as hop-by-hop, besides those a
/// `Connection` header lists; `name` in lower case, as `HeaderName` keeps
/// it.
fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Whether `name` (lower case, as `HeaderName` keeps it) is `expected` when
/// `_` is read as `-`.
fn same_normalised(name: &str, expected: &str) -> bool {
    name.len() == expected.len()
        && name
            .bytes()
            .zip(expected.bytes())
            .all(|(got, want)| got == want || (got == b'_' && want == b'-'))
}

/// Removes every client-supplied identity and path-override header, in
/// every spelling.
pub fn strip_client_identity(headers: &mut HeaderMap) {
    // Compared in place: building the normalised name as a `String` cost an
    // allocation for every header of every request.
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            IDENTITY_HEADERS
                .iter()
                .chain(PATH_OVERRIDE_HEADERS)
                .any(|expected| same_normalised(name.as_str(), expected))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// The peer's address as an `X-Forwarded-For` element, made once per
/// connection: formatting the address for every request showed in the
/// profile (issue 11).
pub fn forwarded_for_value(peer: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&peer.to_string()).expect("an IP address is a valid header value")
}

/// Appends the peer (from [`forwarded_for_value`]) to `X-Forwarded-For`,
/// keeping what earlier hops wrote.
pub fn append_forwarded_for(headers: &mut HeaderMap, peer: &HeaderValue) {
    let earlier: Vec<&str> = headers
        .get_all(&FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .collect();
    if earlier.is_empty() {
        headers.insert(FORWARDED_FOR, peer.clone());
        return;
    }
    let peer = peer.to_str().expect("made from an IP address");
    if let Ok(value) = HeaderValue::from_str(&format!("{}, {peer}", earlier.join(", "))) {
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
    // Encoded on the stack: `to_string` went through the formatter.
    let mut text = uuid::Uuid::encode_buffer();
    let fresh = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(fresh).expect("a UUID is a valid header value")
}

/// What the request offers as a credential.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential<'a> {
    None,
    /// `Authorization: Bearer`: the token, borrowed from the header.
    Bearer(&'a str),
    /// Session cookie values (`__session`, `__session_<suffix>`), distinct,
    /// in the order the client sent them; at least one. Which of them are
    /// ours, and valid, is for the verifier to say.
    Cookies(Vec<String>),
    /// Two `Authorization` headers: refuse rather than pick one, since the
    /// proxy and something downstream could pick differently.
    Ambiguous,
    /// `Authorization: Bearer` with nothing usable after it.
    MalformedBearer,
}

/// Whether a cookie name is a Clerk session cookie: `__session`, or
/// `__session_<suffix>`, which ClerkJS writes beside it so that several
/// instances can share a parent domain (its suffix is derived from the
/// publishable key).
pub fn is_session_cookie(name: &[u8]) -> bool {
    name == SESSION_COOKIE.as_bytes()
        || name
            .strip_prefix(SESSION_COOKIE.as_bytes())
            .is_some_and(|rest| rest.len() > 1 && rest[0] == b'_')
}

/// Finds the credential: `Authorization: Bearer` (scheme case-insensitive,
/// exactly one such header), else every session cookie.
///
/// The header wins over cookies, as in Clerk's own SDKs: a browser sends
/// the cookie along with a fresher token in the header, and the two may
/// legitimately differ.
pub fn find_credential(headers: &HeaderMap) -> Credential<'_> {
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
                    // Folded without an early exit, so that it vectorizes
                    // as `to_str` does: `contains(' ')` walked a 700-byte
                    // token at 800 instructions a request, this at a
                    // quarter of that (callgrind, issue 11).
                    let has_space = token
                        .bytes()
                        .fold(false, |seen, byte| seen | (byte == b' '));
                    if token.is_empty() || has_space {
                        return Credential::MalformedBearer;
                    }
                    return Credential::Bearer(token);
                }
            } else if text.eq_ignore_ascii_case("bearer") {
                return Credential::MalformedBearer;
            }
        }
        (None, _) => {}
    }
    let mut found: Vec<String> = Vec::new();
    for value in headers.get_all(COOKIE) {
        for pair in cookie_pairs(value.as_bytes()) {
            let Some((name, value)) = pair.split_name_value() else {
                continue;
            };
            if !is_session_cookie(name) || value.is_empty() {
                continue;
            }
            // A JWT is ASCII; anything else cannot verify, and is kept as
            // text only so the verifier can call it malformed.
            let token = String::from_utf8_lossy(value).into_owned();
            if !found.contains(&token) {
                found.push(token);
            }
        }
    }
    if found.is_empty() {
        Credential::None
    } else {
        Credential::Cookies(found)
    }
}

/// One `name=value` pair of a `Cookie` header, as the bytes the client sent
/// with the surrounding whitespace removed.
///
/// The header is handled as bytes, never as text: browsers send cookie
/// values as they were set, UTF-8 (`city=München`) included, and one such
/// byte must neither hide the session cookie nor cost the app its other
/// cookies. `;`, `=` and a JWT are ASCII, so splitting bytes is exact.
#[derive(Debug, Clone, Copy)]
struct CookiePair<'a>(&'a [u8]);

impl<'a> CookiePair<'a> {
    /// The name and the value (surrounding double quotes removed, RFC 6265
    /// §4.1.1), or `None` for a pair without `=`.
    fn split_name_value(self) -> Option<(&'a [u8], &'a [u8])> {
        let at = self.0.iter().position(|&b| b == b'=')?;
        let name = self.0[..at].trim_ascii();
        let mut value = self.0[at + 1..].trim_ascii();
        if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
            value = &value[1..value.len() - 1];
        }
        Some((name, value))
    }

    fn name(self) -> &'a [u8] {
        self.split_name_value().map_or(self.0, |(name, _)| name)
    }
}

/// The non-empty pairs of one `Cookie` header value (RFC 6265 §5.4: pairs
/// separated by `; `; lenient about the space, as browsers and servers are).
fn cookie_pairs(value: &[u8]) -> impl Iterator<Item = CookiePair<'_>> {
    value
        .split(|&b| b == b';')
        .map(<[u8]>::trim_ascii)
        .filter(|pair| !pair.is_empty())
        .map(CookiePair)
}

/// Removes the credentials: the `Authorization` header and every session
/// cookie (ours or another Clerk instance's: all are credentials). Every
/// other cookie reaches the app byte for byte, in its order. A `Cookie`
/// header without a session cookie is left exactly as it came; when one is
/// rewritten, all pairs go into one header joined by `; `, which is also
/// how HTTP/2's split cookie fields are joined for HTTP/1.1 (RFC 9113
/// §8.2.3).
pub fn strip_credentials(headers: &mut HeaderMap) {
    headers.remove(AUTHORIZATION);
    let has_session = headers
        .get_all(COOKIE)
        .iter()
        .any(|value| cookie_pairs(value.as_bytes()).any(|pair| is_session_cookie(pair.name())));
    let several = headers.get_all(COOKIE).iter().nth(1).is_some();
    if !has_session && !several {
        return;
    }
    let mut kept: Vec<u8> = Vec::new();
    for value in headers.get_all(COOKIE) {
        for pair in cookie_pairs(value.as_bytes()) {
            if is_session_cookie(pair.name()) {
                continue;
            }
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(pair.0);
        }
    }
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_bytes(&kept)
    {
        headers.insert(COOKIE, value);
    }
}

/// Whether a comma-separated field value lists `token` (RFC 9110 §5.6.1),
/// compared without regard to case.
pub fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|byte| *byte == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// A `Content-Length` value: digits, or a list of the same digits
/// repeated (RFC 9110 §8.6); anything else is `None`.
pub fn content_length(value: &[u8]) -> Option<u64> {
    let mut length = None;
    for item in value.split(|byte| *byte == b',') {
        let item = item.trim_ascii();
        if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let parsed: u64 = std::str::from_utf8(item).ok()?.parse().ok()?;
        if length.is_some_and(|seen| seen != parsed) {
            return None;
        }
        length = Some(parsed);
    }
    length
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn content_lengths_are_digits_or_the_same_digits_repeated() {
        assert_eq!(content_length(b"0"), Some(0));
        assert_eq!(content_length(b"42"), Some(42));
        assert_eq!(content_length(b"42, 42"), Some(42));
        for bad in [
            &b""[..],
            b"-1",
            b"+4",
            b"4 2",
            b"42, 43",
            b"0x10",
            b"1,",
            b"99999999999999999999",
        ] {
            assert_eq!(
                content_length(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// A header map from name/value pairs, duplicates kept (shared by the
    /// crate's header-reading tests).
    pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
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
    fn connection_options_naming_hop_by_hop_fields_remove_them_in_any_case() {
        // The hop-by-hop names among the options are left to the pass over
        // the fields; whatever their case, nothing named stays.
        let mut map = headers(&[
            ("connection", "Keep-Alive, te, CLOSE, Upgrade"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("close", "a field named close"),
            ("upgrade", "h2c"),
            ("content-type", "text/csv"),
        ]);
        strip_hop_by_hop(&mut map);
        let left: Vec<&str> = map.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["content-type"]);
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
            ("x-user-ie", "kept"),
            ("x-user", "kept"),
            ("x-forwarded_uri", "/api/uploads"),
        ]);
        strip_client_identity(&mut map);
        let mut left: Vec<&str> = map.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["x-user", "x-user-idx", "x-user-ie"]);
    }

    #[test]
    fn forwarded_for_appends_the_peer() {
        let mut map = headers(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-for", "10.0.0.1"),
        ]);
        append_forwarded_for(
            &mut map,
            &forwarded_for_value("127.0.0.1".parse().expect("ip")),
        );
        assert_eq!(map[&FORWARDED_FOR], "203.0.113.7, 10.0.0.1, 127.0.0.1");
        let mut empty = HeaderMap::new();
        append_forwarded_for(&mut empty, &forwarded_for_value("::1".parse().expect("ip")));
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
                Credential::Bearer("abc.def.ghi")
            );
        }
    }

    #[test]
    fn a_space_anywhere_inside_a_long_token_is_found() {
        // Longer than any vector the space search works in, with the
        // space at each place a vector could start or end.
        let token = "a".repeat(700);
        for at in [1, 15, 16, 31, 32, 333, 698] {
            let mut spaced = token.clone();
            spaced.replace_range(at..=at, " ");
            assert_eq!(
                find_credential(&headers(&[("authorization", &format!("Bearer {spaced}"))])),
                Credential::MalformedBearer,
                "space at {at}"
            );
        }
        // Spaces and tabs around it are not inside it.
        let padded = format!("Bearer  \t{token} \t ");
        assert_eq!(
            find_credential(&headers(&[("authorization", &padded)])),
            Credential::Bearer(&token)
        );
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
            Credential::Cookies(vec!["tok".to_owned()])
        );
        assert_eq!(
            find_credential(&headers(&[
                ("cookie", "__session=a; __session_Xy1=a"),
                ("cookie", "__session=b; __sessionx=c; __session_=d")
            ])),
            Credential::Cookies(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(
            find_credential(&headers(&[
                ("authorization", "Bearer hdr"),
                ("cookie", "__session=old")
            ])),
            Credential::Bearer("hdr")
        );
    }

    fn raw_cookie(value: &[u8]) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.append(
            COOKIE,
            HeaderValue::from_bytes(value).expect("obs-text is allowed"),
        );
        map
    }

    #[test]
    fn non_ascii_cookies_neither_hide_the_session_nor_get_lost() {
        let mut map = raw_cookie(b"city=M\xc3\xbcnchen; __session=tok; csrf=abc");
        assert_eq!(
            find_credential(&map),
            Credential::Cookies(vec!["tok".to_owned()])
        );
        strip_credentials(&mut map);
        assert_eq!(map[COOKIE].as_bytes(), b"city=M\xc3\xbcnchen; csrf=abc");
        // Latin-1 bytes (not UTF-8 at all) pass through unchanged as well.
        let mut latin1 = raw_cookie(b"name=Jos\xe9; __session_abc=t2");
        strip_credentials(&mut latin1);
        assert_eq!(latin1[COOKIE].as_bytes(), b"name=Jos\xe9");
    }

    #[test]
    fn a_cookie_header_without_a_session_is_left_as_it_came() {
        let mut map = raw_cookie(b"a=1;b=2;  c=\"x y\"");
        strip_credentials(&mut map);
        assert_eq!(map[COOKIE].as_bytes(), b"a=1;b=2;  c=\"x y\"");
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
