//! What goes through: large bodies both ways, hop-by-hop headers removed
//! both ways, `X-Forwarded-For` appended, the rest passed through, h2c.

mod support;

use support::upstream::pattern;
use support::*;

async fn stack() -> (JwksServer, Upstream, Proxy) {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    (jwks, upstream, proxy)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_50_mib_request_body_arrives_intact() {
    let (_jwks, upstream, proxy) = stack().await;
    let body = pattern(50 * 1024 * 1024);
    let expected = sha256_hex(&body);

    let reply = send(
        proxy
            .post("/api/uploads")
            .bearer_auth(valid_token(key_a()))
            .header("content-type", "text/csv")
            .body(body),
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = upstream.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.body_len, 50 * 1024 * 1024);
    assert_eq!(seen.body_sha256, expected);
    assert_eq!(seen.header("content-type"), Some("text/csv"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_response_streams_back_intact() {
    let (_jwks, upstream, proxy) = stack().await;
    upstream.set_response_len(32 * 1024 * 1024);

    let reply = send(
        proxy
            .get("/api/predictions/p1/download")
            .bearer_auth(valid_token(key_a())),
    )
    .await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), 32 * 1024 * 1024);
    assert_eq!(
        sha256_hex(&reply.body),
        sha256_hex(&pattern(32 * 1024 * 1024))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn methods_paths_and_queries_pass_through() {
    let (_jwks, upstream, proxy) = stack().await;
    let token = valid_token(key_a());

    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] {
        let request = RawRequest::new(method, "/api/predictions/p%201?x=1&y=%2F")
            .bearer(&token)
            .body(if method == "GET" || method == "HEAD" {
                b""
            } else {
                b"a,b\n1,2\n"
            });
        let reply = proxy.raw(request).await;
        assert_eq!(reply.status, 200, "{method}");
        let seen = upstream.last();
        assert_eq!(seen.method, method);
        assert_eq!(seen.target, "/api/predictions/p%201?x=1&y=%2F");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hop_by_hop_request_headers_are_removed() {
    let (_jwks, upstream, proxy) = stack().await;

    let request = RawRequest::get("/api/uploads")
        .bearer(&valid_token(key_a()))
        .header("Connection", "keep-alive, X-Custom-Hop, x-other-hop")
        .header("X-Custom-Hop", "1")
        .header("X-Other-Hop", "2")
        .header("Keep-Alive", "timeout=5")
        .header("Proxy-Connection", "keep-alive")
        .header("X-End-To-End", "kept")
        .bare()
        .header("Host", "app.retainwise.test");
    let reply = proxy.raw(request).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = upstream.last();
    for name in [
        "x-custom-hop",
        "x-other-hop",
        "keep-alive",
        "proxy-connection",
    ] {
        assert!(
            !seen.has(name),
            "{name} reached the upstream: {:?}",
            seen.headers
        );
    }
    for value in seen.all("connection") {
        assert!(!value.to_lowercase().contains("hop"), "connection: {value}");
    }
    assert_eq!(seen.header("x-end-to-end"), Some("kept"));
}

#[tokio::test(flavor = "multi_thread")]
async fn hop_by_hop_response_headers_are_removed() {
    let (_jwks, upstream, proxy) = stack().await;
    upstream.set_response_headers(&[
        ("connection", "x-upstream-hop"),
        ("x-upstream-hop", "1"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("x-end-to-end", "kept"),
    ]);

    let reply = proxy
        .raw(RawRequest::get("/api/uploads").bearer(&valid_token(key_a())))
        .await;

    assert_eq!(reply.status, 200);
    for name in ["x-upstream-hop", "keep-alive", "proxy-connection"] {
        assert!(reply.header(name).is_none(), "{name} reached the client");
    }
    for value in reply.headers.get_all("connection") {
        let value = value.to_str().expect("text").to_lowercase();
        assert!(!value.contains("x-upstream-hop"), "connection: {value}");
    }
    assert_eq!(reply.header("x-end-to-end"), Some("kept"));
}

#[tokio::test(flavor = "multi_thread")]
async fn x_forwarded_for_gets_the_peer_appended_and_the_rest_passes_through() {
    let (_jwks, upstream, proxy) = stack().await;

    let request = RawRequest::get("/api/uploads")
        .bare()
        .header("Host", "app.retainwise.test")
        .bearer(&valid_token(key_a()))
        .header("X-Forwarded-For", "203.0.113.7")
        .header("X-Forwarded-Proto", "https")
        .header(
            "X-Amzn-Trace-Id",
            "Root=1-67891233-abcdef012345678912345678",
        )
        .header("Connection", "close");
    assert_eq!(proxy.raw(request).await.status, 200);
    let seen = upstream.last();
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("203.0.113.7, 127.0.0.1")
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(
        seen.header("x-amzn-trace-id"),
        Some("Root=1-67891233-abcdef012345678912345678")
    );
    assert_eq!(seen.header("host"), Some("app.retainwise.test"));

    let reply = proxy.raw(RawRequest::get("/api/health")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(upstream.last().header("x-forwarded-for"), Some("127.0.0.1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn h2c_with_prior_knowledge_is_proxied() {
    let (_jwks, upstream, proxy) = stack().await;
    let h2c = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .expect("h2c client");
    let body = pattern(3 * 1024 * 1024);

    let reply = send(
        h2c.post(proxy.url("/api/uploads?via=h2c"))
            .bearer_auth(token(key_a(), "user_h2"))
            .header("x-request-id", "h2c-request")
            .body(body.clone()),
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-request-id"), Some("h2c-request"));
    let seen = upstream.last();
    assert_eq!(seen.target, "/api/uploads?via=h2c");
    assert_eq!(seen.header("x-user-id"), Some("user_h2"));
    assert_eq!(seen.body_sha256, sha256_hex(&body));

    let anonymous = send(h2c.get(proxy.url("/api/uploads"))).await;
    assert_missing_token(&anonymous);
}
