//! Public-path matching and path-normalisation bypass attempts. Public
//! entries: `/api/health` (exact) and `/static/` (a prefix of whole
//! segments). Matching is case-sensitive; ambiguous targets are 400 and
//! never forwarded, with or without a token.

mod support;

use support::*;

async fn stack() -> (JwksServer, Upstream, Proxy) {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy =
        start_proxy(settings(&jwks, &upstream).with("PROXY_PUBLIC_PATHS", "/api/health,/static/"))
            .await;
    (jwks, upstream, proxy)
}

#[tokio::test(flavor = "multi_thread")]
async fn public_entries_match_exactly_or_by_whole_segments() {
    let (_jwks, upstream, proxy) = stack().await;

    for target in [
        "/api/health",
        "/api/health?probe=1",
        "/static",
        "/static/",
        "/static/app.js",
        "/static/a/b/c.css?v=3",
    ] {
        let reply = proxy.raw(RawRequest::get(target)).await;
        assert_eq!(reply.status, 200, "{target} is public: {}", reply.text());
        let seen = upstream.last();
        assert_eq!(seen.target, target, "forwarded unchanged");
        assert!(seen.identity_headers().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn near_misses_of_public_entries_need_a_token() {
    let (_jwks, upstream, proxy) = stack().await;

    for target in [
        "/api/health/",
        "/api/health/x",
        "/api/healthz",
        "/api/healt",
        "/api",
        "/staticx",
        "/staticx/app.js",
        "/API/health",
        "/Api/Health",
        "/api/HEALTH",
        "/STATIC/app.js",
        "/Static/app.js",
    ] {
        let reply = proxy.raw(RawRequest::get(target)).await;
        assert_eq!(reply.status, 401, "{target} needs a token");
        assert_missing_token(&reply);
    }
    assert_eq!(upstream.count(), 0, "nothing forwarded without a token");
}

/// Targets that could be read as a public path by one parser and as a
/// private one by another.
const AMBIGUOUS: &[&str] = &[
    "/api/health/../uploads",
    "/api/health/./../uploads",
    "/static/../api/uploads",
    "/static/./app.js",
    "/static/..",
    "/api/health/%2e%2e/uploads",
    "/api/health/%2E%2E/uploads",
    "/static/%2e%2e/api/uploads",
    "/static/.%2e/api/uploads",
    "/api/health%2f..%2fuploads",
    "/api/health%2F..%2Fuploads",
    "/static%2fapp.js",
    "/static/..%5capi%5cuploads",
    "/static/%5C..%5Capi",
    "/api/health;/../uploads",
    "/api/health;x=1",
    "/static;/app.js",
    "//api/health",
    "/api//health",
    "/static//app.js",
    "/static/app.js%00",
    "/static/%00/../api/uploads",
    "/static/%zz",
    "/static/%2",
    "/static/%",
];

#[tokio::test(flavor = "multi_thread")]
async fn ambiguous_targets_are_400_bad_request_and_never_forwarded() {
    let (_jwks, upstream, proxy) = stack().await;

    for target in AMBIGUOUS {
        let reply = proxy.raw(RawRequest::get(target)).await;
        assert_eq!(reply.status, 400, "{target}: {}", reply.text());
        assert_eq!(reply.error(), "bad_request", "{target}");
        assert_error_shape(&reply);
    }
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn ambiguous_targets_are_400_even_with_a_valid_token() {
    let (_jwks, upstream, proxy) = stack().await;
    let token = valid_token(key_a());

    for target in AMBIGUOUS {
        let reply = proxy.raw(RawRequest::get(target).bearer(&token)).await;
        assert_eq!(reply.status, 400, "{target}: {}", reply.text());
    }
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_backslashes_and_control_characters_are_400_and_never_forwarded() {
    let (_jwks, upstream, proxy) = stack().await;

    for target in [
        "/static/..\\api\\uploads",
        "/api/health\\..\\uploads",
        "/static/a\tb",
        "/static/a\x7fb",
    ] {
        let reply = proxy.raw(RawRequest::get(target)).await;
        assert_eq!(reply.status, 400, "{target:?}: {}", reply.text());
    }
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn absolute_authority_and_asterisk_forms_are_400() {
    let (_jwks, upstream, proxy) = stack().await;

    let requests = [
        RawRequest::get("http://localhost/api/health"),
        RawRequest::get("http://evil.example/api/health"),
        RawRequest::get("https://localhost/static/app.js"),
        RawRequest::new("CONNECT", "localhost:443"),
        RawRequest::new("CONNECT", "127.0.0.1:3000"),
        RawRequest::new("OPTIONS", "*"),
    ];
    for request in requests {
        let reply = proxy.raw(request.clone()).await;
        assert_eq!(reply.status, 400, "{request:?}: {}", reply.text());
        assert_eq!(reply.error(), "bad_request", "{request:?}");
    }
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn encoded_characters_that_are_not_ambiguous_pass_through_unchanged() {
    let (_jwks, upstream, proxy) = stack().await;

    let target = "/static/my%20file%2B1.css?q=1";
    let reply = proxy.raw(RawRequest::get(target)).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(upstream.last().target, target);
}
