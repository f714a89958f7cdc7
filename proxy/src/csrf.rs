//! Cross-site request forgery, for requests authenticated by the session
//! cookie.
//!
//! A browser attaches the `__session` cookie to requests that another site
//! makes it send (a form posted from `evil.example`). A bearer token cannot
//! be attached that way, and a request without the browser's `Origin` and
//! `Sec-Fetch-Site` headers is not a browser's, so only cookie-authenticated,
//! state-changing requests are checked. The rules follow the Fetch
//! standard's `Origin` header and the W3C Fetch Metadata `Sec-Fetch-Site`
//! header (OWASP CSRF Prevention Cheat Sheet, "Verifying origin with
//! standard headers" and "Fetch Metadata headers"):
//!
//! | request | answer |
//! |---|---|
//! | `GET`, `HEAD`, `OPTIONS`, or a bearer token | not checked |
//! | `Sec-Fetch-Site: same-origin` | allowed |
//! | `Origin` present and not an allowed origin | 403 |
//! | `Sec-Fetch-Site: cross-site` or `same-site` without an allowed `Origin` | 403 |
//! | neither header (not a browser) | allowed |
//!
//! Allowed origins are `PROXY_CORS_ALLOWED_ORIGINS` and
//! `CLERK_AUTHORIZED_PARTIES` (the front ends Clerk issues tokens to).

use http::header::{HeaderMap, HeaderValue, ORIGIN};
use http::{HeaderName, Method};

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The origins a cookie-authenticated, state-changing request may come from.
#[derive(Debug, Clone, Default)]
pub struct CsrfPolicy {
    allowed: Vec<HeaderValue>,
}

impl CsrfPolicy {
    /// From the CORS origins and the authorized parties (exact strings).
    pub fn new<'a>(origins: impl IntoIterator<Item = &'a str>) -> Self {
        CsrfPolicy {
            allowed: origins
                .into_iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok())
                .collect(),
        }
    }

    /// Whether a request authenticated by the session cookie may go on.
    pub fn allows(&self, method: &Method, headers: &HeaderMap) -> bool {
        if !matches!(
            *method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        ) {
            return true;
        }
        let site = headers
            .get(SEC_FETCH_SITE)
            .map(|value| value.as_bytes().to_ascii_lowercase());
        if site.as_deref() == Some(b"same-origin") {
            return true;
        }
        let mut origins = headers.get_all(ORIGIN).iter();
        let origin_allowed = match (origins.next(), origins.next()) {
            (None, _) => None,
            (Some(origin), None) => Some(self.allowed.contains(origin)),
            // Two Origin headers: no browser sends that.
            (Some(_), Some(_)) => Some(false),
        };
        match origin_allowed {
            Some(allowed) => allowed,
            None => !matches!(site.as_deref(), Some(b"cross-site" | b"same-site")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::tests::headers;

    /// Method, request headers, whether the request may go on.
    type Case<'a> = (&'a Method, &'a [(&'a str, &'a str)], bool);

    #[test]
    fn the_table_in_the_module_docs() {
        let policy = CsrfPolicy::new(["https://app.example.com"]);
        let post = Method::POST;
        let cases: &[Case] = &[
            (&Method::GET, &[("origin", "https://evil.test")], true),
            (
                &post,
                &[
                    ("sec-fetch-site", "same-origin"),
                    ("origin", "http://127.0.0.1:8080"),
                ],
                true,
            ),
            (&post, &[("origin", "https://evil.test")], false),
            (&post, &[("origin", "https://app.example.com")], true),
            (&post, &[("origin", "null")], false),
            (&post, &[("sec-fetch-site", "cross-site")], false),
            (&post, &[("sec-fetch-site", "same-site")], false),
            (
                &post,
                &[
                    ("sec-fetch-site", "same-site"),
                    ("origin", "https://app.example.com"),
                ],
                true,
            ),
            (&post, &[("sec-fetch-site", "none")], true),
            (&post, &[], true),
            (&Method::DELETE, &[("origin", "https://evil.test")], false),
            (
                &Method::PATCH,
                &[
                    ("origin", "https://app.example.com"),
                    ("origin", "https://app.example.com"),
                ],
                false,
            ),
        ];
        for (method, pairs, expected) in cases {
            assert_eq!(
                policy.allows(method, &headers(pairs)),
                *expected,
                "{method} {pairs:?}"
            );
        }
    }
}
