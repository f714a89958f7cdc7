//! The JWKS cache over time: rotation, kid floods, the JWKS server going
//! down and coming back, bad responses that must not replace good keys,
//! mixed key types, removed keys, redirects.

mod support;

use std::time::Duration;

use serde_json::json;
use support::jwks::jwks_of;
use support::*;

async fn status_for(proxy: &Proxy, token: &str) -> u16 {
    send(proxy.get("/api/uploads").bearer_auth(token))
        .await
        .status
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_added_to_the_jwks_works_on_its_first_request() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy =
        start_proxy(settings(&jwks, &upstream).with("PROXY_JWKS_MIN_REFRESH_INTERVAL", "1")).await;
    // Step out of the one-second window that the startup fetch may count in.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fetches = jwks.fetches();

    jwks.serve(&[key_a(), key_b()]);
    let reply = send(
        proxy
            .get("/api/uploads")
            .bearer_auth(token(key_b(), "user_rotated")),
    )
    .await;

    assert_eq!(
        reply.status,
        200,
        "the rotated key works at once: {}",
        reply.text()
    );
    assert_eq!(upstream.last().header("x-user-id"), Some("user_rotated"));
    assert_eq!(jwks.fetches(), fetches + 1, "one fetch for the new kid");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kid_flood_does_not_become_a_fetch_flood() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = std::sync::Arc::new(start_proxy(settings(&jwks, &upstream)).await);
    let fetches = jwks.fetches();

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let proxy = proxy.clone();
        tasks.spawn(async move {
            for _ in 0..125 {
                let kid = format!("ins_flood_{}", hex(&rand::random::<[u8; 8]>()));
                let forged = TokenBuilder::new(key_a())
                    .header("kid", json!(kid))
                    .signature_bytes(&rand::random::<[u8; 32]>().repeat(8))
                    .build();
                assert_eq!(status_for(&proxy, &forged).await, 401);
            }
        });
    }
    within(Duration::from_secs(60), "2,000 flood requests", async {
        while let Some(done) = tasks.join_next().await {
            done.expect("flood task");
        }
    })
    .await;

    assert!(
        jwks.fetches() <= fetches + 2,
        "2,000 unknown kids caused {} JWKS fetches",
        jwks.fetches() - fetches
    );
    assert_eq!(upstream.count(), 0);
    assert_eq!(status_for(&proxy, &valid_token(key_a())).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_keys_keep_working_while_the_jwks_server_is_down() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream).with("JWKS_CACHE_TTL", "1")).await;

    jwks.go_down().await;
    // Several one-second refreshes fail meanwhile.
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert_eq!(status_for(&proxy, &valid_token(key_a())).await, 200);
    eventually("the stale-serving gauge is 1", async || {
        proxy
            .metrics()
            .await
            .lines()
            .any(|l| l.starts_with("retainwise_proxy_jwks_stale") && l.ends_with(" 1"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_older_than_max_age_give_503_never_401_and_recover_without_restart() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(
        settings(&jwks, &upstream)
            .with("JWKS_CACHE_TTL", "1")
            .with("JWKS_CACHE_MAX_AGE", "2"),
    )
    .await;
    let token = valid_token(key_a());

    jwks.go_down().await;
    let mut statuses = Vec::new();
    let unavailable = loop {
        let reply = send(proxy.get("/api/uploads").bearer_auth(&token)).await;
        statuses.push(reply.status);
        if reply.status == 503 {
            break reply;
        }
        assert!(statuses.len() < 200, "still {statuses:?} after 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "only 200 then 503, never 401: {statuses:?}"
    );
    assert_eq!(unavailable.error(), "keys_unavailable");
    assert!(
        unavailable
            .header("retry-after")
            .is_some_and(|v| v.parse::<u64>().is_ok())
    );
    let readyz = proxy.readyz().await;
    assert_eq!(readyz.status, 503);
    assert!(readyz.text().contains("keys stale"), "{}", readyz.text());

    jwks.come_back().await;
    eventually(
        "the proxy recovers once the JWKS server is back",
        async || status_for(&proxy, &token).await == 200,
    )
    .await;
    proxy.wait_ready().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_started_while_the_jwks_server_is_down_becomes_ready_when_it_comes_back() {
    let jwks = start_jwks(&[key_a()]).await;
    jwks.go_down().await;
    let upstream = start_upstream().await;
    let proxy = spawn_proxy(settings(&jwks, &upstream).with("JWKS_CACHE_TTL", "1")).await;

    let readyz = proxy.readyz().await;
    assert_eq!(readyz.status, 503);
    assert!(
        readyz.text().contains("keys not loaded"),
        "{}",
        readyz.text()
    );
    let reply = send(proxy.get("/api/uploads").bearer_auth(valid_token(key_a()))).await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.error(), "keys_unavailable");
    assert!(reply.header("retry-after").is_some());

    jwks.come_back().await;
    proxy.wait_ready().await;
    assert_eq!(status_for(&proxy, &valid_token(key_a())).await, 200);
}

/// Starts with key A served, switches the server to `mode` (which, where it
/// carries a key set, carries only key B), waits for two refreshes, and
/// checks that key A still works and key B does not.
async fn a_bad_response_keeps_the_good_keys(mode: JwksMode, extra: &[(&str, &str)]) {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let mut settings = settings(&jwks, &upstream).with("JWKS_CACHE_TTL", "1");
    for (name, value) in extra {
        settings = settings.with(name, *value);
    }
    let proxy = start_proxy(settings).await;
    let fetches = jwks.fetches();

    jwks.set_mode(mode);
    eventually("two refreshes hit the bad response", async || {
        jwks.fetches() >= fetches + 2
    })
    .await;

    assert_eq!(
        status_for(&proxy, &valid_token(key_a())).await,
        200,
        "key A still works"
    );
    assert_eq!(
        status_for(&proxy, &valid_token(key_b())).await,
        401,
        "key B was not taken"
    );
    let metrics = proxy.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("retainwise_proxy_jwks_fetches_total{")
                && l.contains(r#"result="error""#)
                && !l.ends_with(" 0")),
        "failed fetches are counted:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_500_keeps_the_good_keys() {
    a_bad_response_keeps_the_good_keys(JwksMode::Status(500), &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_bytes_keep_the_good_keys() {
    a_bad_response_keeps_the_good_keys(JwksMode::Garbage, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_json_page_keeps_the_good_keys() {
    a_bad_response_keeps_the_good_keys(JwksMode::NotJson, &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_1_mib_keeps_the_good_keys() {
    a_bad_response_keeps_the_good_keys(JwksMode::Huge(jwks_of(&[key_b()])), &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chunked_body_over_1_mib_keeps_the_good_keys() {
    a_bad_response_keeps_the_good_keys(JwksMode::HugeChunked(jwks_of(&[key_b()])), &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_slower_than_the_fetch_timeout_keeps_the_good_keys() {
    let slow = JwksMode::Slow(Duration::from_secs(3), jwks_of(&[key_b()]));
    a_bad_response_keeps_the_good_keys(slow, &[("PROXY_JWKS_FETCH_TIMEOUT", "1")]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_plain_http_is_refused() {
    let plain = start_plain_jwks(&[key_b()]).await;
    a_bad_response_keeps_the_good_keys(JwksMode::Redirect(plain.url()), &[]).await;
    assert_eq!(
        plain.fetches(),
        0,
        "the proxy followed a redirect to http://"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_of_other_types_and_uses_are_skipped_and_rsa_signing_keys_kept() {
    let ec = rcgen::KeyPair::generate().expect("P-256 key");
    let point = ec.public_key_raw();
    let b64 = |bytes: &[u8]| {
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
    };
    let mut encryption_key = key_b().jwk();
    encryption_key["use"] = json!("enc");
    let mut no_modulus = key_c().jwk();
    no_modulus.as_object_mut().expect("object").remove("n");
    let mixed = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "ins_ec",
         "x": b64(&point[1..33]), "y": b64(&point[33..65])},
        {"kty": "oct", "kid": "ins_oct", "k": b64(b"a shared secret")},
        encryption_key,
        no_modulus,
        key_a().jwk(),
    ]});
    let jwks = start_jwks(&[]).await;
    jwks.set_mode(JwksMode::Keys(mixed));
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;

    assert_eq!(
        status_for(&proxy, &valid_token(key_a())).await,
        200,
        "the RSA key works"
    );
    assert_eq!(
        status_for(&proxy, &valid_token(key_b())).await,
        401,
        "use=enc is not for signatures"
    );
    assert_eq!(status_for(&proxy, &valid_token(key_c())).await, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_key_stops_working_after_the_next_refresh() {
    let jwks = start_jwks(&[key_a(), key_b()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream).with("JWKS_CACHE_TTL", "1")).await;
    let token_b = valid_token(key_b());
    assert_eq!(status_for(&proxy, &token_b).await, 200);

    jwks.serve(&[key_a()]);
    let fetches = jwks.fetches();
    eventually("the same token B is refused", async || {
        status_for(&proxy, &token_b).await == 401
    })
    .await;

    // Refused because a scheduled refresh fetched the new set.
    assert!(jwks.fetches() > fetches);
    assert_eq!(status_for(&proxy, &valid_token(key_a())).await, 200);
}
