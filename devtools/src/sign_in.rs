//! `retainwise-dev sign-in`: a local stand-in for Clerk's hosted sign-in.
//!
//! It serves one small form on a loopback port. Submitting it mints a
//! session token with the dev key (the one `keygen` wrote; the proxy never
//! holds it), sets it as the `__session` cookie and redirects back. Browsers
//! scope cookies by host, not port (RFC 6265 §8.5), so a cookie set by
//! `127.0.0.1:8081` is sent to the proxy on `127.0.0.1:8080`, exactly as
//! Clerk's cookie set on the app's domain reaches the app.
//!
//! Rules, each a test in `devtools/tests/sign_in.rs`:
//! - it listens on loopback only;
//! - `redirect_url` must be an absolute `http`/`https` URL whose origin is
//!   one of `--allowed-origin` (no open redirect, no user info);
//! - the form refuses a cross-site submission (`Sec-Fetch-Site` or `Origin`
//!   from elsewhere), so no other page can sign a browser in as someone else;
//! - the token lives [`DEFAULT_TTL_SECS`] (8 hours) unless `--ttl` says
//!   otherwise, and the cookie's `Max-Age` is the same, so the browser drops
//!   the cookie when the token expires.

use std::net::SocketAddr;
use std::sync::Arc;

use aws_lc_rs::rsa::KeyPair;
use axum::Form;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::keys::{Claims, sign};

/// A dev session lasts a working day, so a page left open does not need
/// a refresher (ClerkJS refreshes Clerk's one-minute tokens; nothing does
/// here).
pub const DEFAULT_TTL_SECS: u64 = 8 * 60 * 60;

/// The cookie Clerk's SDKs read on the application's own domain.
const SESSION_COOKIE: &str = "__session";

/// The longest user id the form takes; Clerk's ids are about 32 bytes.
const MAX_USER_ID: usize = 64;

/// What `sign-in` was started with.
#[derive(Debug, Clone)]
pub struct Options {
    /// Loopback address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Origins (`scheme://host:port`) that `redirect_url` may point at.
    pub allowed_origins: Vec<String>,
    /// `iss` of minted tokens.
    pub issuer: String,
    /// Token lifetime, seconds.
    pub ttl: u64,
}

struct Shared {
    key: KeyPair,
    options: Options,
}

/// Serves the sign-in page until the process is stopped.
///
/// # Errors
/// A non-loopback `listen` address, an allowed origin that is not a bare
/// origin, or a listener that cannot bind.
pub fn run(key: KeyPair, options: Options) -> Result<(), String> {
    if !options.listen.ip().is_loopback() {
        return Err(format!(
            "sign-in listens on loopback only, not {}",
            options.listen
        ));
    }
    if options.allowed_origins.is_empty() {
        return Err("give at least one --allowed-origin (the proxy's origin)".into());
    }
    for origin in &options.allowed_origins {
        if origin_of(origin).as_deref() != Some(origin.as_str()) {
            return Err(format!(
                "--allowed-origin {origin:?} is not an origin like http://127.0.0.1:8080"
            ));
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("no local address: {e}"))?;
        println!(
            "{}",
            serde_json::json!({"message": "listening", "listener": "sign-in", "addr": addr.to_string()})
        );
        eprintln!("retainwise-dev: sign-in page on http://{addr}/sign-in");
        let shared = Arc::new(Shared { key, options });
        axum::serve(listener, router(shared))
            .await
            .map_err(|e| format!("sign-in server failed: {e}"))
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/sign-in", get(form).post(submit))
        .route("/sign-out", get(sign_out))
        .with_state(shared)
}

#[derive(Debug, Deserialize)]
struct RedirectQuery {
    redirect_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    user_id: String,
    redirect_url: String,
}

/// `scheme://host[:port]` of an absolute http(s) URL, lower-cased, with the
/// default port left out (RFC 6454 §6.2); `None` for anything else,
/// including URLs with user info, which browsers would show misleadingly.
fn origin_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    if !matches!(scheme.as_str(), "http" | "https") || authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    let default = if scheme == "https" { 443 } else { 80 };
    Some(match authority.port_u16() {
        Some(port) if port != default => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

impl Shared {
    /// The redirect target if it is allowed, else why not.
    fn check_redirect(&self, url: Option<&str>) -> Result<String, String> {
        let url = url.ok_or("redirect_url is missing")?;
        let origin = origin_of(url)
            .ok_or_else(|| format!("redirect_url {url:?} is not an absolute http(s) URL"))?;
        if self.options.allowed_origins.contains(&origin) {
            Ok(url.to_owned())
        } else {
            Err(format!(
                "redirect_url {url:?} is not on an allowed origin ({})",
                self.options.allowed_origins.join(", ")
            ))
        }
    }
}

fn page(status: StatusCode, title: &str, body: &str, form_targets: &[String]) -> Response {
    // Chrome applies form-action to the redirect after a submission too, so
    // the allowed origins are listed beside 'self'.
    let csp = format!(
        "default-src 'none'; form-action 'self' {}; frame-ancestors 'none'; base-uri 'none'",
        form_targets.join(" ")
    );
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · RetainWise (local)</title></head>\n<body><main>\n\
         <h1>{title}</h1>\n{body}</main></body></html>\n"
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        html,
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn refusal(shared: &Shared, status: StatusCode, why: &str) -> Response {
    page(
        status,
        "Cannot sign in",
        &format!("<p role=\"alert\">{}</p>\n", escape(why)),
        &shared.options.allowed_origins,
    )
}

async fn form(State(shared): State<Arc<Shared>>, Query(query): Query<RedirectQuery>) -> Response {
    let target = match shared.check_redirect(query.redirect_url.as_deref()) {
        Ok(target) => target,
        Err(why) => return refusal(&shared, StatusCode::BAD_REQUEST, &why),
    };
    let hours = shared.options.ttl as f64 / 3600.0;
    let body = format!(
        "<p>Local development sign-in: no password, any user id. The session lasts {hours} hours.</p>\n\
         <form method=\"post\" action=\"/sign-in\">\n\
         <label for=\"user_id\">User id</label>\n\
         <input id=\"user_id\" name=\"user_id\" value=\"user_dev\" required maxlength=\"{MAX_USER_ID}\" \
         pattern=\"[A-Za-z0-9_\\-]+\" autocomplete=\"username\">\n\
         <input type=\"hidden\" name=\"redirect_url\" value=\"{}\">\n\
         <button type=\"submit\">Sign in</button>\n</form>\n",
        escape(&target)
    );
    page(
        StatusCode::OK,
        "Sign in",
        &body,
        &shared.options.allowed_origins,
    )
}

/// A form post from another site (login CSRF) is refused; a browser sends
/// `Sec-Fetch-Site` and `Origin` with every form post (Fetch Metadata,
/// W3C; RFC 6454 §7), so a missing header means a non-browser client.
fn cross_site(headers: &HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(site, Some("cross-site" | "same-site")) {
        return true;
    }
    let own = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        own,
    ) {
        (Some(origin), Some(host)) => {
            origin_of(origin).as_deref() != Some(format!("http://{host}").as_str())
        }
        (Some(_), None) => true,
        (None, _) => false,
    }
}

async fn submit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if cross_site(&headers) {
        return refusal(
            &shared,
            StatusCode::FORBIDDEN,
            "this form only accepts submissions from its own page",
        );
    }
    let target = match shared.check_redirect(Some(&form.redirect_url)) {
        Ok(target) => target,
        Err(why) => return refusal(&shared, StatusCode::BAD_REQUEST, &why),
    };
    let user = form.user_id.trim();
    if user.is_empty()
        || user.len() > MAX_USER_ID
        || !user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return refusal(
            &shared,
            StatusCode::BAD_REQUEST,
            &format!("a user id is 1 to {MAX_USER_ID} letters, digits, '_' or '-', not {user:?}"),
        );
    }
    let azp = origin_of(&target);
    let claims = Claims {
        sub: user,
        ttl: shared.options.ttl,
        issuer: &shared.options.issuer,
        azp: azp.as_deref(),
    };
    let token = match sign(&shared.key, claims) {
        Ok(token) => token,
        Err(why) => return refusal(&shared, StatusCode::INTERNAL_SERVER_ERROR, &why),
    };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}",
        shared.options.ttl
    );
    redirect(&target, &cookie)
}

async fn sign_out(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<RedirectQuery>,
) -> Response {
    match shared.check_redirect(query.redirect_url.as_deref()) {
        Ok(target) => redirect(
            &target,
            &format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
        ),
        Err(why) => refusal(&shared, StatusCode::BAD_REQUEST, &why),
    }
}

fn redirect(target: &str, cookie: &str) -> Response {
    let (Ok(location), Ok(cookie)) = (HeaderValue::from_str(target), HeaderValue::from_str(cookie))
    else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_non_default_port() {
        assert_eq!(
            origin_of("http://127.0.0.1:8080/predictions/x?y=1").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin_of("HTTPS://App.Example:443/").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(origin_of("//evil.example/"), None);
        assert_eq!(origin_of("/relative"), None);
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("http://127.0.0.1:8080@evil.example/"), None);
        assert_eq!(origin_of("ftp://127.0.0.1/"), None);
    }

    #[test]
    fn cross_site_posts_are_recognised() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8081"));
        assert!(!cross_site(&headers), "no browser headers: a tool");
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8081"),
        );
        assert!(!cross_site(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(cross_site(&headers));
        headers.remove(header::ORIGIN);
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&headers));
    }
}
