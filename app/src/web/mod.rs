//! The web app's pages: one HTML shell and the assets it loads, all
//! embedded in the binary.
//!
//! The pages are client-rendered: the shell and `/assets/` carry no user
//! data, so the proxy serves them without a token (`PROXY_PUBLIC_PATHS`),
//! and every piece of user data comes from the JSON API, authenticated by
//! the `__session` cookie the proxy verifies like any token. A page that
//! gets 401 from the API sends the user to sign in ([`SignIn`]) and back.
//!
//! | method, path | answer |
//! |---|---|
//! | `GET /` | the shell; the script draws the uploads page |
//! | `GET /predictions/{id}` | the shell; the script draws that prediction |
//! | `GET /assets/{path}` | an embedded asset, `ETag` and `304` on revalidation |

mod assets;
pub mod charts;
pub mod csp;
pub mod sign_in;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use sign_in::SignIn;

use crate::http::errors::json_error;

/// The shell, rendered once at startup: it depends only on settings.
#[derive(Debug)]
pub struct Pages {
    html: String,
    csp: HeaderValue,
}

const SHELL: &str = include_str!("../../assets/shell.html");

impl Pages {
    /// Renders the shell for `sign_in`.
    pub fn new(sign_in: &SignIn) -> Self {
        let config = serde_json::json!({
            "sign_in": sign_in,
            "charts": charts::CHART_SIZES,
        });
        let clerk_script = match sign_in {
            // Clerk's documented loader: the key in a data attribute, the
            // script from the instance's Frontend API, major version pinned.
            SignIn::Clerk {
                publishable_key,
                frontend_api,
            } => format!(
                "<script async crossorigin=\"anonymous\" data-clerk-publishable-key=\"{}\" \
                 src=\"{}/npm/@clerk/clerk-js@5/dist/clerk.browser.js\"></script>",
                escape_attribute(publishable_key),
                escape_attribute(frontend_api)
            ),
            _ => String::new(),
        };
        let html = SHELL
            .replace("{{config}}", &json_for_script(&config))
            .replace("{{clerk_script}}", &clerk_script);
        let csp = HeaderValue::from_str(&csp::policy(sign_in.frontend_api()))
            .expect("the policy is ASCII without control characters");
        Pages { html, csp }
    }
}

/// JSON safe inside `<script type="application/json">`: `<` is written as
/// `\u003c`, so no `</script>` or `<!--` can end or change the element
/// (HTML §4.12.1.3, restrictions for contents of script elements).
fn json_for_script(value: &serde_json::Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

fn escape_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

/// The pages' routes, to merge into the API router.
pub fn router<S: Clone + Send + Sync + 'static>(pages: Arc<Pages>) -> Router<S> {
    Router::new()
        .route("/", get(shell))
        .route("/predictions/{id}", get(shell))
        .route("/assets/{*path}", get(asset))
        .with_state(pages)
}

/// Headers every page and asset carries.
fn hardened(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
}

async fn shell(State(pages): State<Arc<Pages>>) -> Response {
    let mut response = (StatusCode::OK, pages.html.clone()).into_response();
    let headers = response.headers_mut();
    hardened(headers);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CONTENT_SECURITY_POLICY, pages.csp.clone());
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The shell is the same for everyone, but names this build's assets:
    // revalidate so a deploy is picked up at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn asset(Path(path): Path<String>, request_headers: HeaderMap) -> Response {
    let Some(asset) = assets::find(&path) else {
        return json_error(StatusCode::NOT_FOUND, "not_found", "no such asset");
    };
    let etag = asset.etag();
    let fresh = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, asset.bytes).into_response()
    };
    let headers = response.headers_mut();
    hardened(headers);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(etag).expect("an ETag is hex in quotes"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_cannot_close_its_script_element() {
        let text = json_for_script(&serde_json::json!({"x": "</script><script>alert(1)//"}));
        assert!(!text.contains('<'), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).expect("still JSON");
        assert_eq!(back["x"], "</script><script>alert(1)//");
    }

    #[test]
    fn the_shell_has_no_inline_script_and_carries_the_config() {
        let pages = Pages::new(&SignIn::Local {
            url: "http://127.0.0.1:8081/sign-in".into(),
            sign_out_url: None,
        });
        assert!(pages.html.contains("\"kind\":\"local\""), "{}", pages.html);
        assert!(!pages.html.contains("{{"), "every placeholder is filled");
        // Only the JSON data block and external scripts: CSP has no
        // 'unsafe-inline' for scripts.
        for script in pages.html.split("<script").skip(1) {
            let (attributes, rest) = script.split_once('>').expect("a tag");
            let inline = !rest.starts_with("</script>");
            assert!(
                !inline || attributes.contains("type=\"application/json\""),
                "inline script: {script}"
            );
        }
    }
}
