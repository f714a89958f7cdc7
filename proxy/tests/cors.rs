//! Browsers on another origin: preflights answered by the proxy, CORS
//! headers on every answer to an allowed origin, nothing for others.

mod support;

use support::*;

const FRONT_END: &str = "https://app.retainwise.test";

async fn stack(origins: Option<&str>) -> (JwksServer, Upstream, Proxy) {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let mut settings = settings(&jwks, &upstream);
    if let Some(origins) = origins {
        settings = settings.with("PROXY_CORS_ALLOWED_ORIGINS", origins);
    }
    let proxy = start_proxy(settings).await;
    (jwks, upstream, proxy)
}

fn preflight(proxy: &Proxy, origin: &str) -> reqwest::RequestBuilder {
    proxy
        .client
        .request(reqwest::Method::OPTIONS, proxy.url("/api/uploads"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
}

fn cors_headers(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preflight_from_an_allowed_origin_is_answered_by_the_proxy() {
    let (_jwks, upstream, proxy) = stack(Some(
        "https://other.retainwise.test, https://app.retainwise.test",
    ))
    .await;
    let reply = send(preflight(&proxy, FRONT_END)).await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.header("access-control-allow-origin"), Some(FRONT_END));
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        reply.header("access-control-allow-methods"),
        Some("GET, HEAD, POST, PUT, PATCH, DELETE")
    );
    assert_eq!(
        reply.header("access-control-allow-headers"),
        Some("Authorization, Content-Type, X-Request-Id")
    );
    assert_eq!(reply.header("access-control-max-age"), Some("600"));
    assert_eq!(reply.header("vary"), Some("Origin"));
    assert!(reply.header("x-request-id").is_some());
    assert_eq!(upstream.count(), 0, "a preflight was forwarded");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preflight_from_another_origin_is_refused_without_cors_headers() {
    let (_jwks, upstream, proxy) = stack(Some(FRONT_END)).await;
    for origin in [
        "https://evil.test",
        "https://app.retainwise.test.evil.test",
        "http://app.retainwise.test",
        "null",
    ] {
        let reply = send(preflight(&proxy, origin)).await;
        assert_eq!(reply.status, 403, "{origin}");
        assert!(
            cors_headers(&reply).is_empty(),
            "{origin}: {:?}",
            cors_headers(&reply)
        );
    }
    assert_eq!(upstream.count(), 0);
    assert_eq!(
        proxy
            .metric(r#"retainwise_proxy_cors_preflights_total{result="refused"}"#)
            .await,
        4.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_to_an_allowed_origin_carry_cors_headers_401s_included() {
    let (_jwks, upstream, proxy) = stack(Some(FRONT_END)).await;
    upstream.set_response_headers(&[("access-control-allow-origin", "*")]);
    let reply = send(
        proxy
            .get("/api/uploads")
            .header("origin", FRONT_END)
            .bearer_auth(valid_token(key_a())),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), Some(FRONT_END));
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        reply.header("access-control-expose-headers"),
        Some("WWW-Authenticate, X-Request-Id, Retry-After, Content-Disposition")
    );
    // The front end can read why it was refused.
    let reply = send(proxy.get("/api/uploads").header("origin", FRONT_END)).await;
    assert_missing_token(&reply);
    assert_eq!(reply.header("access-control-allow-origin"), Some(FRONT_END));
    // Another origin gets no CORS header, not even the app's wildcard.
    let reply = send(
        proxy
            .get("/api/uploads")
            .header("origin", "https://evil.test")
            .bearer_auth(valid_token(key_a())),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(
        cors_headers(&reply).is_empty(),
        "{:?}",
        cors_headers(&reply)
    );
    assert_eq!(reply.header("vary"), Some("Origin"));
}

/// Unset, nothing changes: a preflight is an unauthenticated request.
#[tokio::test(flavor = "multi_thread")]
async fn without_allowed_origins_there_are_no_cors_headers() {
    let (_jwks, upstream, proxy) = stack(None).await;
    let reply = send(preflight(&proxy, FRONT_END)).await;
    assert_missing_token(&reply);
    assert!(cors_headers(&reply).is_empty());
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wildcard_origin_is_a_settings_error() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let exit =
        run_until_exit(settings(&jwks, &upstream).with("PROXY_CORS_ALLOWED_ORIGINS", "*")).await;
    assert_eq!(exit.code, Some(2));
    assert!(
        exit.stderr.contains("PROXY_CORS_ALLOWED_ORIGINS"),
        "{}",
        exit.stderr
    );
}
