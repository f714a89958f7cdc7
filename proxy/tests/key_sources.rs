//! Networkless key sources: a JWKS file (`PROXY_JWKS_FILE`, re-read every
//! TTL) and a PEM public key (`CLERK_JWT_KEY`).

mod support;

use support::jwks::jwks_of;
use support::*;

fn networkless(upstream: &Upstream) -> Settings {
    Settings::bare()
        .with("CLERK_ISSUER_URL", ISSUER)
        .with("PROXY_UPSTREAM", upstream.url())
}

async fn status_for(proxy: &Proxy, token: &str) -> u16 {
    send(proxy.get("/api/uploads").bearer_auth(token))
        .await
        .status
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jwks_file_verifies_tokens_and_is_reread() {
    let dir = TempDir::new();
    let file = dir.write("jwks.json", jwks_of(&[key_a()]).to_string());
    let upstream = start_upstream().await;
    let proxy = start_proxy(
        networkless(&upstream)
            .with("PROXY_JWKS_FILE", file.to_str().expect("utf-8 path"))
            .with("JWKS_CACHE_TTL", "1"),
    )
    .await;

    assert_eq!(status_for(&proxy, &token(key_a(), "user_file")).await, 200);
    assert_eq!(upstream.last().header("x-user-id"), Some("user_file"));
    assert_eq!(status_for(&proxy, &valid_token(key_b())).await, 401);

    let replacement = dir.write("jwks.json.new", jwks_of(&[key_b()]).to_string());
    std::fs::rename(&replacement, &file).expect("JWKS file replaced");
    eventually("key B from the rewritten file works", async || {
        status_for(&proxy, &valid_token(key_b())).await == 200
    })
    .await;
    eventually("key A, gone from the file, stops working", async || {
        status_for(&proxy, &valid_token(key_a())).await == 401
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pem_key_verifies_tokens_of_any_kid() {
    let upstream = start_upstream().await;
    let proxy =
        start_proxy(networkless(&upstream).with("CLERK_JWT_KEY", key_a().public_pem())).await;

    let listed_kid = token(key_a(), "user_pem");
    let other_kid = TokenBuilder::new(key_a())
        .header("kid", serde_json::json!("ins_not_in_any_jwks"))
        .build();
    assert_eq!(status_for(&proxy, &listed_kid).await, 200);
    assert_eq!(upstream.last().header("x-user-id"), Some("user_pem"));
    assert_eq!(status_for(&proxy, &other_kid).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pem_key_still_requires_a_kid_and_its_own_signature() {
    let upstream = start_upstream().await;
    let proxy =
        start_proxy(networkless(&upstream).with("CLERK_JWT_KEY", key_a().public_pem())).await;

    let no_kid = TokenBuilder::new(key_a()).without_header("kid").build();
    let reply = send(proxy.get("/api/uploads").bearer_auth(&no_kid)).await;
    assert_invalid_token(&reply);
    let foreign = valid_token(foreign_key());
    let reply = send(proxy.get("/api/uploads").bearer_auth(&foreign)).await;
    assert_invalid_token(&reply);
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pem_key_and_a_jwks_url_work_together() {
    let jwks = start_jwks(&[key_b()]).await;
    let upstream = start_upstream().await;
    let proxy =
        start_proxy(settings(&jwks, &upstream).with("CLERK_JWT_KEY", key_a().public_pem())).await;

    eventually("a token of the JWKS key is accepted", async || {
        status_for(&proxy, &valid_token(key_b())).await == 200
    })
    .await;
    let pem_signed = TokenBuilder::new(key_a())
        .header("kid", serde_json::json!("ins_pem_only"))
        .build();
    assert_eq!(status_for(&proxy, &pem_signed).await, 200, "PEM key");
    assert_eq!(status_for(&proxy, &valid_token(foreign_key())).await, 401);
}

/// A PEM key is a fallback for kids the JWKS does not have; it must not
/// stop a new kid from triggering the fetch that picks up a rotated key.
#[tokio::test(flavor = "multi_thread")]
async fn with_a_pem_key_a_rotated_jwks_key_still_works_on_its_first_request() {
    let jwks = start_jwks(&[key_b()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(
        settings(&jwks, &upstream)
            .with("CLERK_JWT_KEY", key_a().public_pem())
            .with("PROXY_JWKS_MIN_REFRESH_INTERVAL", "1"),
    )
    .await;
    eventually("a token of the JWKS key is accepted", async || {
        status_for(&proxy, &valid_token(key_b())).await == 200
    })
    .await;
    // Step out of the one-second window that the last fetch may count in.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    jwks.serve(&[key_b(), key_c()]);
    let reply = send(
        proxy
            .get("/api/uploads")
            .bearer_auth(token(key_c(), "user_rotated")),
    )
    .await;

    assert_eq!(
        reply.status,
        200,
        "the rotated key works at once: {}",
        reply.text()
    );
    assert_eq!(upstream.last().header("x-user-id"), Some("user_rotated"));
}
