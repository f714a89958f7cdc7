//! Identity spoofing: whatever identity headers a client sends, under any
//! spelling, the upstream sees only the proxy's `X-User-Id` (none on public
//! paths). Credentials and path-override headers never reach the app.

mod support;

use support::*;

/// Every way a client might try to smuggle an identity header in.
fn spoofed(request: RawRequest) -> RawRequest {
    request
        .header("X-User-Id", "user_admin")
        .header("x-user-id", "user_admin2")
        .header("X_User_Id", "user_admin3")
        .header("x_uSeR-iD", "user_admin4")
        .header("X-USER-ID", "user_admin5")
}

async fn stack() -> (JwksServer, Upstream, Proxy) {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    (jwks, upstream, proxy)
}

fn only_the_proxys_identity(seen: &Seen, sub: &str) {
    assert_eq!(
        seen.identity_headers(),
        [("x-user-id".to_owned(), sub.to_owned())],
        "upstream headers: {:?}",
        seen.headers
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_identity_headers_are_replaced_on_private_paths() {
    let (_jwks, upstream, proxy) = stack().await;
    let token = token(key_a(), "user_alice");

    let reply = proxy
        .raw(spoofed(RawRequest::get("/api/uploads").bearer(&token)))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    only_the_proxys_identity(&upstream.last(), "user_alice");
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_identity_headers_are_removed_on_public_paths() {
    let (_jwks, upstream, proxy) = stack().await;

    let anonymous = proxy.raw(spoofed(RawRequest::get("/api/health"))).await;
    assert_eq!(anonymous.status, 200, "{}", anonymous.text());
    assert!(upstream.last().identity_headers().is_empty());

    let with_token = spoofed(RawRequest::get("/api/health")).bearer(&valid_token(key_a()));
    let reply = proxy.raw(with_token).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        upstream.last().identity_headers().is_empty(),
        "public paths are forwarded without identity: {:?}",
        upstream.last().headers
    );

    let with_forged = spoofed(RawRequest::get("/api/health"))
        .bearer(&TokenBuilder::new(key_a()).signed_by(foreign_key()).build());
    let reply = proxy.raw(with_forged).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(upstream.last().identity_headers().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_identity_without_a_token_is_401_and_not_forwarded() {
    let (_jwks, upstream, proxy) = stack().await;

    let reply = proxy.raw(spoofed(RawRequest::get("/api/uploads"))).await;

    assert_missing_token(&reply);
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_identity_with_an_invalid_token_is_401_and_not_forwarded() {
    let (_jwks, upstream, proxy) = stack().await;
    let forged = TokenBuilder::new(key_a()).signed_by(foreign_key()).build();

    let reply = proxy
        .raw(spoofed(RawRequest::get("/api/uploads")).bearer(&forged))
        .await;

    assert_invalid_token(&reply);
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identity_header_named_in_connection_cannot_remove_or_replace_the_proxys() {
    let (_jwks, upstream, proxy) = stack().await;
    let token = token(key_a(), "user_alice");

    for connection in ["X-User-Id", "x_user_id", "keep-alive, X-User-Id"] {
        let request = RawRequest::get("/api/uploads")
            .bearer(&token)
            .header("Connection", connection)
            .header("X-User-Id", "user_admin");
        let reply = proxy.raw(request).await;
        assert_eq!(reply.status, 200, "{connection}: {}", reply.text());
        only_the_proxys_identity(&upstream.last(), "user_alice");
    }

    let public = RawRequest::get("/api/health")
        .header("Connection", "X-User-Id")
        .header("X-User-Id", "user_admin");
    assert_eq!(proxy.raw(public).await.status, 200);
    assert!(upstream.last().identity_headers().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_identity_over_h2c_is_replaced() {
    let (_jwks, upstream, proxy) = stack().await;
    let h2c = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .expect("h2c client");

    let reply = send(
        h2c.get(proxy.url("/api/uploads"))
            .bearer_auth(token(key_a(), "user_alice"))
            .header("x-user-id", "user_admin")
            .header("x_user_id", "user_admin2"),
    )
    .await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    only_the_proxys_identity(&upstream.last(), "user_alice");
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_removed_and_other_cookies_kept() {
    let (_jwks, upstream, proxy) = stack().await;
    let token = token(key_a(), "user_alice");

    let by_header = RawRequest::get("/api/uploads")
        .bearer(&token)
        .header("Cookie", "theme=dark")
        .header("Cookie", "lang=en");
    assert_eq!(proxy.raw(by_header).await.status, 200);
    let seen = upstream.last();
    assert!(!seen.has("authorization"));
    assert!(seen.cookies().contains("theme=dark") && seen.cookies().contains("lang=en"));

    let by_cookie = RawRequest::get("/api/uploads")
        .header("Cookie", &format!("theme=dark; __session={token}; lang=en"))
        .header("Cookie", "__client_uat=1764000000");
    assert_eq!(proxy.raw(by_cookie).await.status, 200);
    let cookies = upstream.last().cookies();
    for kept in ["theme=dark", "lang=en", "__client_uat=1764000000"] {
        assert!(cookies.contains(kept), "{kept} kept: {cookies}");
    }
    assert!(
        !cookies.contains("__session="),
        "__session removed: {cookies}"
    );
    assert!(!cookies.contains(&token));

    let public = RawRequest::get("/api/health")
        .bearer(&token)
        .header("Cookie", &format!("__session={token}"));
    assert_eq!(proxy.raw(public).await.status, 200);
    let seen = upstream.last();
    assert!(!seen.has("authorization"), "removed on public paths too");
    assert!(
        !seen.cookies().contains(&token),
        "removed on public paths too"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_are_forwarded_only_when_configured() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy =
        start_proxy(settings(&jwks, &upstream).with("PROXY_FORWARD_CREDENTIALS", "true")).await;
    let token = token(key_a(), "user_alice");

    let reply = send(proxy.get("/api/uploads").bearer_auth(&token)).await;

    assert_eq!(reply.status, 200);
    let seen = upstream.last();
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    only_the_proxys_identity(&seen, "user_alice");
}

#[tokio::test(flavor = "multi_thread")]
async fn path_override_headers_are_removed() {
    let (_jwks, upstream, proxy) = stack().await;
    let overrides = [
        "X-Original-URL",
        "X-Rewrite-URL",
        "X-Original-URI",
        "X-Forwarded-Uri",
        "X-Forwarded-Path",
        "X-Forwarded-Prefix",
    ];
    let with_overrides = |mut request: RawRequest| {
        for name in overrides {
            request = request.header(name, "/api/admin");
        }
        request
    };

    let private = with_overrides(RawRequest::get("/api/uploads").bearer(&valid_token(key_a())));
    assert_eq!(proxy.raw(private).await.status, 200);
    let public = with_overrides(RawRequest::get("/api/health"));
    assert_eq!(proxy.raw(public).await.status, 200);

    for seen in upstream.seen() {
        for name in overrides {
            assert!(
                !seen.has(&name.to_lowercase()),
                "{name} reached the upstream"
            );
        }
        assert!(seen.target == "/api/uploads" || seen.target == "/api/health");
    }
    let unauthenticated = with_overrides(RawRequest::get("/api/uploads"));
    assert_missing_token(&proxy.raw(unauthenticated).await);
    assert_eq!(upstream.count(), 2);
}
