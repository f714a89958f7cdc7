//! Cross-site requests with the session cookie: a state-changing request
//! that another site makes the browser send is refused (403) before it
//! reaches the app; bearer tokens and non-browser clients are not affected.

mod support;

use support::*;

const FRONT_END: &str = "https://app.retainwise.test";

async fn stack() -> (JwksServer, Upstream, Proxy) {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    // The authorized party is an allowed origin; CORS adds another.
    let proxy = start_proxy(
        settings(&jwks, &upstream)
            .with("CLERK_AUTHORIZED_PARTIES", AZP)
            .with("PROXY_CORS_ALLOWED_ORIGINS", FRONT_END),
    )
    .await;
    (jwks, upstream, proxy)
}

fn cookie_post(proxy: &Proxy, token: &str) -> reqwest::RequestBuilder {
    proxy
        .post("/api/uploads")
        .header("cookie", format!("__session={token}"))
        .body("customerID\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cross_site_post_with_the_cookie_is_refused() {
    let (_jwks, upstream, proxy) = stack().await;
    let token = valid_token(key_a());
    let refused = [
        vec![("origin", "https://evil.test")],
        vec![("sec-fetch-site", "cross-site")],
        vec![
            ("sec-fetch-site", "same-site"),
            ("origin", "https://shop.retainwise.test"),
        ],
        vec![("sec-fetch-site", "same-site")],
    ];
    for headers in &refused {
        let mut request = cookie_post(&proxy, &token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let reply = send(request).await;
        assert_eq!(reply.status, 403, "{headers:?}: {}", reply.text());
        assert_eq!(reply.error(), "cross_site_request");
    }
    assert_eq!(upstream.count(), 0, "a cross-site request reached the app");
    assert_eq!(
        proxy
            .metric(r#"retainwise_proxy_auth_decisions_total{result="rejected",reason="cross_site_request"}"#)
            .await,
        refused.len() as f64
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn same_origin_allowed_origins_bearer_tokens_and_non_browsers_pass() {
    let (_jwks, upstream, proxy) = stack().await;
    let token = valid_token(key_a());
    let allowed: [Vec<(&str, &str)>; 5] = [
        vec![
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://127.0.0.1:8080"),
        ],
        vec![("origin", AZP)],
        vec![("sec-fetch-site", "cross-site"), ("origin", FRONT_END)],
        vec![],
        vec![("sec-fetch-site", "none")],
    ];
    for headers in &allowed {
        let mut request = cookie_post(&proxy, &token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let reply = send(request).await;
        assert_eq!(reply.status, 200, "{headers:?}: {}", reply.text());
    }
    // A bearer token is not sent by the browser on its own: not checked.
    let reply = send(
        proxy
            .post("/api/uploads")
            .bearer_auth(&token)
            .header("origin", "https://evil.test"),
    )
    .await;
    assert_eq!(reply.status, 200);
    // Reads are not state-changing.
    let reply = send(
        proxy
            .get("/api/uploads")
            .header("cookie", format!("__session={token}"))
            .header("origin", "https://evil.test"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(upstream.count(), allowed.len() + 2);
}
