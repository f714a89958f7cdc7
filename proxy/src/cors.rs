//! Cross-origin requests from browsers (the Fetch standard's CORS protocol).
//!
//! The Clerk front end usually runs on its own origin (`app.example.com`)
//! and calls the API on another (`api.example.com`). A browser asks first
//! with a *preflight* (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`), which carries no credentials, so it
//! must be answered here, before authentication: forwarded, it would get a
//! 401 without CORS headers and the browser would block every call.
//!
//! With `PROXY_CORS_ALLOWED_ORIGINS` unset the proxy adds no CORS header
//! at all. With it set, the proxy owns CORS: it answers preflights itself
//! (never forwarded), adds the response headers to every answer for an
//! allowed origin (its own 401s included, so the front end can read the
//! error), and removes any `Access-Control-*` header the app sent. Origins
//! are compared exactly (RFC 6454 serialisation: scheme, host, port); there
//! is no wildcard, because `*` is not allowed with credentials (Fetch
//! standard, "CORS protocol and credentials").

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_METHOD, HeaderMap, HeaderValue, ORIGIN, VARY,
};
use http::{Method, Response, StatusCode};

use crate::error::{Body, full};

/// Methods a preflight may ask for: the API's.
const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";
/// Request headers the front end sends beyond the CORS-safelisted ones.
const ALLOW_HEADERS: &str = "Authorization, Content-Type, X-Request-Id";
/// Response headers the front end needs to read: the RFC 6750 challenge,
/// the request id for support, when to retry, and the download's name.
const EXPOSE_HEADERS: &str = "WWW-Authenticate, X-Request-Id, Retry-After, Content-Disposition";
/// Ten minutes: Chromium caps a preflight cache at two hours, Firefox at a
/// day; ten minutes keeps a changed policy effective quickly.
const MAX_AGE_SECS: u32 = 600;

/// The origins allowed to call cross-origin.
#[derive(Debug, Clone)]
pub struct CorsPolicy {
    origins: Vec<HeaderValue>,
}

impl CorsPolicy {
    /// Parses exact origins (`https://app.example.com`, `http://localhost:5173`).
    ///
    /// # Errors
    /// A line naming the entry that is not an origin: `*`, a path, a query,
    /// a trailing slash, user info, or anything not in its serialised form.
    pub fn parse(entries: &[String]) -> Result<CorsPolicy, String> {
        let mut origins = Vec::new();
        for entry in entries {
            if entry == "*" || entry == "null" {
                return Err(format!(
                    "{entry:?} is not allowed: list exact origins (a wildcard cannot go with credentials)"
                ));
            }
            let url = reqwest::Url::parse(entry)
                .map_err(|err| format!("{entry:?} is not an origin: {err}"))?;
            let serialised = url.origin().ascii_serialization();
            if !matches!(url.scheme(), "http" | "https") || serialised != *entry {
                return Err(format!(
                    "{entry:?} is not an origin: expected scheme://host[:port] with no path or \
                     trailing slash, such as {serialised:?}"
                ));
            }
            let value = HeaderValue::from_str(entry)
                .map_err(|_| format!("{entry:?} is not a header value"))?;
            origins.push(value);
        }
        Ok(CorsPolicy { origins })
    }

    /// The request's `Origin` when it is one of ours (exact, byte for byte).
    pub fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let mut given = headers.get_all(ORIGIN).iter();
        match (given.next(), given.next()) {
            (Some(origin), None) if self.origins.contains(origin) => Some(origin.clone()),
            _ => None,
        }
    }

    /// The allowed origins, as configured.
    pub fn origins(&self) -> impl Iterator<Item = &str> {
        self.origins
            .iter()
            .filter_map(|origin| origin.to_str().ok())
    }

    /// Whether `origin` is one of ours.
    pub fn allows(&self, origin: &HeaderValue) -> bool {
        self.origins.contains(origin)
    }
}

/// A preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`
/// (Fetch standard, "CORS-preflight request").
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(ORIGIN)
        && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight from an allowed origin: 204 with the policy.
pub fn preflight_response(origin: HeaderValue) -> Response<Body> {
    let mut response = Response::new(full(""));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(MAX_AGE_SECS));
    response
}

/// Removes the app's own `Access-Control-*` headers: with a policy set,
/// the proxy owns CORS, and an app's `*` must not reach another origin.
pub fn strip_upstream(headers: &mut HeaderMap) {
    let foreign: Vec<_> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in foreign {
        headers.remove(name);
    }
}

/// Applies the policy to a response on its way out: `Vary: Origin` is
/// added (the answer depends on it, for every cache between), and an
/// allowed origin gets the headers that let the browser read the answer.
pub fn apply(headers: &mut HeaderMap, origin: Option<HeaderValue>) {
    let varies = headers
        .get_all(VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case("origin") || item.trim() == "*");
    if !varies {
        headers.append(VARY, HeaderValue::from_static("Origin"));
    }
    let Some(origin) = origin else { return };
    if !headers.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN) {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    headers.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> Result<CorsPolicy, String> {
        CorsPolicy::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn only_exact_origins_are_accepted() {
        assert!(policy(&["https://app.example.com", "http://localhost:5173"]).is_ok());
        for bad in [
            "*",
            "null",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://APP.example.com",
            "https://app.example.com:443",
            "app.example.com",
            "ftp://app.example.com",
            "https://user@app.example.com",
        ] {
            assert!(policy(&[bad]).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn origins_match_exactly() {
        let policy = policy(&["https://app.example.com"]).expect("valid");
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, HeaderValue::from_static("https://app.example.com"));
        assert!(policy.allowed_origin(&headers).is_some());
        for other in [
            "https://app.example.com.evil.test",
            "http://app.example.com",
            "https://app.example.co",
            "null",
        ] {
            headers.insert(ORIGIN, HeaderValue::from_static(other));
            assert!(policy.allowed_origin(&headers).is_none(), "{other}");
        }
    }

    #[test]
    fn the_apps_cors_headers_are_replaced_and_vary_is_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        strip_upstream(&mut headers);
        apply(
            &mut headers,
            Some(HeaderValue::from_static("https://app.example.com")),
        );
        assert_eq!(
            headers[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
        let vary: Vec<_> = headers.get_all(VARY).iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"]);
        let mut none = HeaderMap::new();
        none.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        strip_upstream(&mut none);
        apply(&mut none, None);
        assert!(none.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }
}
