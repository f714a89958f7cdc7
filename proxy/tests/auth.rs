//! The rows of the contract's behaviour table (DESIGN.md §2): public path,
//! valid token by header and by cookie, no token, invalid token, ambiguous
//! credentials, no usable keys, upstream refused and slow; error bodies and
//! request ids.

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_public_path_is_forwarded_without_identity() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;

    let reply = send(proxy.get("/api/health")).await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), support::upstream::UPSTREAM_BODY);
    let seen = upstream.last();
    assert_eq!(seen.target, "/api/health");
    assert!(seen.identity_headers().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_bearer_token_is_forwarded_with_the_user_id() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    let token = token(key_a(), "user_2def");
    let id = request_id();

    let reply = send(
        proxy
            .get("/api/uploads?page=2")
            .bearer_auth(&token)
            .header("x-request-id", &id),
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = upstream.last();
    assert_eq!(seen.target, "/api/uploads?page=2");
    assert_eq!(
        seen.identity_headers(),
        [("x-user-id".to_owned(), "user_2def".to_owned())]
    );
    assert!(!seen.has("authorization"), "the token is not forwarded");
    let log = proxy.request_log(&id).await;
    assert_eq!(log["user_id"], "user_2def");
    assert_eq!(log["status"], 200);
    assert_eq!(log["method"], "GET");
    assert_eq!(log["path"], "/api/uploads");
    assert!(log["latency_ms"].is_number());
    proxy.assert_logs_never_contain(&token);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_session_cookie_is_forwarded_with_the_user_id() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    let token = token(key_a(), "user_cookie");

    let reply = send(
        proxy
            .get("/api/uploads")
            .header("cookie", format!("theme=dark; __session={token}; lang=en")),
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = upstream.last();
    assert_eq!(seen.header("x-user-id"), Some("user_cookie"));
    let cookies = seen.cookies();
    assert!(
        cookies.contains("theme=dark"),
        "other cookies kept: {cookies}"
    );
    assert!(cookies.contains("lang=en"), "other cookies kept: {cookies}");
    assert!(
        !cookies.contains("__session"),
        "session cookie removed: {cookies}"
    );
    assert!(!cookies.contains(&token));
    proxy.assert_logs_never_contain(&token);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_without_a_token_is_401_missing_token_and_not_forwarded() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    let id = request_id();

    let reply = send(proxy.get("/api/uploads").header("x-request-id", &id)).await;

    assert_missing_token(&reply);
    assert_eq!(reply.header("x-request-id"), Some(id.as_str()));
    assert_eq!(upstream.count(), 0);
    assert_eq!(proxy.request_log(&id).await["reason"], "missing_token");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_token_is_401_invalid_token_and_never_echoed() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    let forged = TokenBuilder::new(key_a()).signed_by(foreign_key()).build();

    let by_header = send(proxy.get("/api/uploads").bearer_auth(&forged)).await;
    let by_cookie = send(
        proxy
            .get("/api/uploads")
            .header("cookie", format!("__session={forged}")),
    )
    .await;

    for reply in [by_header, by_cookie] {
        assert_invalid_token(&reply);
        assert_not_echoed(&reply, &forged);
    }
    assert_eq!(upstream.count(), 0);
    proxy.assert_logs_never_contain(&forged);
}

/// Sends `request` (carrying two credentials) and checks the 400
/// `invalid_request` answer; nothing is forwarded.
async fn assert_ambiguous(request: RawRequest, tokens: &[&str]) {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;

    let reply = proxy.raw(request).await;

    assert_eq!(
        (
            reply.status,
            upstream
                .seen()
                .first()
                .and_then(|s| s.header("x-user-id").map(str::to_owned))
        ),
        (400, None),
        "two credentials are 400 and not forwarded; got {}: {}",
        reply.status,
        reply.text()
    );
    assert_eq!(reply.error(), "invalid_request");
    assert_error_shape(&reply);
    let challenge = reply.header("www-authenticate").expect("a challenge");
    assert!(
        challenge.starts_with(r#"Bearer realm="retainwise", error="invalid_request""#),
        "unexpected challenge: {challenge}"
    );
    for token in tokens {
        assert_not_echoed(&reply, token);
    }
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_authorization_headers_are_400_invalid_request() {
    let alice = token(key_a(), "user_alice");
    let mallory = token(key_a(), "user_mallory");
    let request = RawRequest::get("/api/uploads")
        .bearer(&alice)
        .bearer(&mallory);
    assert_ambiguous(request, &[&alice, &mallory]).await;
}

/// Clerk's own rule: a browser sends its session cookie along with a fresher
/// token in the header, so the header wins and the cookie is not a second
/// credential. Neither reaches the app.
#[tokio::test(flavor = "multi_thread")]
async fn a_bearer_token_wins_over_a_different_session_cookie() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    let alice = token(key_a(), "user_alice");
    let mallory = token(key_a(), "user_mallory");

    let reply = send(
        proxy
            .get("/api/uploads")
            .bearer_auth(&alice)
            .header("cookie", format!("theme=dark; __session={mallory}")),
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = upstream.last();
    assert_eq!(seen.all("x-user-id"), ["user_alice"]);
    assert!(!seen.has("authorization"));
    assert_eq!(seen.cookies(), "theme=dark");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_different_session_cookies_are_400_invalid_request() {
    let alice = token(key_a(), "user_alice");
    let mallory = token(key_a(), "user_mallory");
    let one_header = RawRequest::get("/api/uploads")
        .header("Cookie", &format!("__session={alice}; __session={mallory}"));
    assert_ambiguous(one_header, &[&alice, &mallory]).await;
    let two_headers = RawRequest::get("/api/uploads")
        .header("Cookie", &format!("__session={alice}"))
        .header("Cookie", &format!("__session={mallory}"));
    assert_ambiguous(two_headers, &[&alice, &mallory]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_token_as_header_and_cookie_is_accepted() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    let token = token(key_a(), "user_both");

    let reply = send(
        proxy
            .get("/api/uploads")
            .bearer_auth(&token)
            .header("cookie", format!("__session={token}")),
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(upstream.last().header("x-user-id"), Some("user_both"));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_usable_keys_is_503_with_retry_after() {
    let jwks = start_jwks(&[key_a()]).await;
    jwks.go_down().await;
    let upstream = start_upstream().await;
    let proxy = spawn_proxy(settings(&jwks, &upstream)).await;

    let reply = send(proxy.get("/api/uploads").bearer_auth(valid_token(key_a()))).await;

    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.error(), "keys_unavailable");
    assert_error_shape(&reply);
    let retry_after = reply.header("retry-after").expect("a Retry-After header");
    assert!(
        retry_after.parse::<u64>().is_ok(),
        "Retry-After is whole seconds: {retry_after}"
    );
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_path_needs_no_keys() {
    let jwks = start_jwks(&[key_a()]).await;
    jwks.go_down().await;
    let upstream = start_upstream().await;
    let proxy = spawn_proxy(settings(&jwks, &upstream)).await;

    let reply = send(proxy.get("/api/health")).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(upstream.last().identity_headers().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_upstream_is_502_bad_gateway() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    upstream.stop().await;

    let reply = send(proxy.get("/api/uploads").bearer_auth(valid_token(key_a()))).await;

    assert_eq!(reply.status, 502, "{}", reply.text());
    assert_eq!(reply.error(), "bad_gateway");
    assert_error_shape(&reply);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_upstream_is_504_gateway_timeout() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream).with("PROXY_UPSTREAM_TIMEOUT", "1")).await;
    // The upstream would answer 200 after a minute: a 504 can only be the
    // proxy's own timeout, whatever the machine's load.
    upstream.set_delay(Duration::from_secs(60));

    let reply = send(proxy.get("/api/uploads").bearer_auth(valid_token(key_a()))).await;

    assert_eq!(reply.status, 504, "{}", reply.text());
    assert_eq!(reply.error(), "gateway_timeout");
    assert_error_shape(&reply);
    assert_eq!(
        proxy
            .metric(r#"retainwise_proxy_upstream_errors_total{kind="timeout"}"#)
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_incoming_request_id_is_kept_and_sent_upstream() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;

    let reply = send(
        proxy
            .get("/api/uploads")
            .bearer_auth(valid_token(key_a()))
            .header("x-request-id", "req-from-alb-42"),
    )
    .await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-request-id"), Some("req-from-alb-42"));
    assert_eq!(
        upstream.last().header("x-request-id"),
        Some("req-from-alb-42")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_id_is_generated_when_absent_and_sent_upstream() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;

    let reply = send(proxy.get("/api/uploads").bearer_auth(valid_token(key_a()))).await;

    assert_eq!(reply.status, 200);
    let id = reply
        .header("x-request-id")
        .expect("a generated X-Request-Id");
    assert!(looks_like_uuid(id), "generated id is a UUID: {id}");
    assert_eq!(upstream.last().header("x-request-id"), Some(id));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overlong_request_id_is_replaced() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    let overlong = "r".repeat(129);

    let reply = send(proxy.get("/api/health").header("x-request-id", &overlong)).await;

    let id = reply.header("x-request-id").expect("an X-Request-Id");
    assert!(looks_like_uuid(id), "replaced by a UUID: {id}");
    assert_eq!(upstream.last().header("x-request-id"), Some(id));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_response_carries_a_request_id() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;

    let missing = send(proxy.get("/api/uploads")).await;
    let invalid = send(proxy.get("/api/uploads").bearer_auth("not.a.token")).await;
    let ambiguous = proxy.raw(RawRequest::get("/api/../health")).await;

    for reply in [missing, invalid, ambiguous] {
        let id = reply.header("x-request-id").expect("an X-Request-Id");
        assert!(looks_like_uuid(id), "{id}");
    }
}

fn looks_like_uuid(id: &str) -> bool {
    id.len() == 36
        && id.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}
