//! Claim rules on correctly signed tokens: `exp` required and honoured with
//! a 5 s leeway (not jsonwebtoken's 60 s), `nbf` and `iat` honoured, `iss`
//! exact, `sub` required and at most 256 visible ASCII characters, `aud` and
//! `azp` checked only when configured.

mod support;

use serde_json::{Value, json};
use support::*;

async fn stack_with(extra: &[(&str, &str)]) -> (JwksServer, Upstream, Proxy) {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let mut settings = settings(&jwks, &upstream);
    for (name, value) in extra {
        settings = settings.with(name, *value);
    }
    let proxy = start_proxy(settings).await;
    (jwks, upstream, proxy)
}

/// Sends a token signed by key A with `claims` changed; returns the reply
/// and the reason logged for it.
async fn try_claims(proxy: &Proxy, change: impl FnOnce(&mut Value)) -> (Reply, String) {
    let mut claims = clerk_claims("user_2def");
    change(&mut claims);
    let token = mint_token(key_a(), claims);
    let id = request_id();
    let reply = send(
        proxy
            .get("/api/uploads")
            .bearer_auth(&token)
            .header("x-request-id", &id),
    )
    .await;
    let reason = proxy.request_log(&id).await["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    proxy.assert_logs_never_contain(&token);
    (reply, reason)
}

async fn assert_claims_rejected(proxy: &Proxy, reasons: &[&str], change: impl FnOnce(&mut Value)) {
    let (reply, reason) = try_claims(proxy, change).await;
    assert_invalid_token(&reply);
    assert!(
        reasons.contains(&reason.as_str()),
        "rejected for {reason:?}, expected one of {reasons:?}"
    );
}

async fn assert_claims_accepted(proxy: &Proxy, change: impl FnOnce(&mut Value)) {
    let (reply, _) = try_claims(proxy, change).await;
    assert_eq!(reply.status, 200, "accepted: {}", reply.text());
}

fn remove(claims: &mut Value, name: &str) {
    claims.as_object_mut().expect("object").remove(name);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_rejected_even_within_jsonwebtokens_default_leeway() {
    let (_jwks, upstream, proxy) = stack_with(&[]).await;
    assert_claims_rejected(&proxy, &["expired"], |c| c["exp"] = json!(now() - 30)).await;
    assert_claims_rejected(&proxy, &["expired"], |c| c["exp"] = json!(now() - 3600)).await;
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_expired_within_the_5_second_leeway_is_accepted() {
    let (_jwks, _upstream, proxy) = stack_with(&[]).await;
    assert_claims_accepted(&proxy, |c| c["exp"] = json!(now() - 2)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_not_yet_valid_is_rejected() {
    let (_jwks, upstream, proxy) = stack_with(&[]).await;
    assert_claims_rejected(&proxy, &["not_yet_valid"], |c| {
        c["nbf"] = json!(now() + 60);
        c["exp"] = json!(now() + 120);
    })
    .await;
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_issued_in_the_future_is_rejected() {
    let (_jwks, upstream, proxy) = stack_with(&[]).await;
    assert_claims_rejected(&proxy, &["issued_in_future"], |c| {
        c["iat"] = json!(now() + 60);
        c["exp"] = json!(now() + 120);
    })
    .await;
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_without_exp_is_rejected() {
    let (_jwks, upstream, proxy) = stack_with(&[]).await;
    assert_claims_rejected(&proxy, &["missing_exp"], |c| remove(c, "exp")).await;
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_or_non_string_issuer_is_rejected() {
    let (_jwks, upstream, proxy) = stack_with(&[]).await;
    for iss in [
        json!("https://clerk.evil.example"),
        json!(format!("{ISSUER}/")),
        json!(ISSUER.to_uppercase()),
        json!(""),
    ] {
        assert_claims_rejected(&proxy, &["bad_issuer"], |c| c["iss"] = iss).await;
    }
    for iss in [
        json!(42),
        json!([ISSUER]),
        json!({"url": ISSUER}),
        Value::Null,
    ] {
        assert_claims_rejected(&proxy, &["bad_issuer", "malformed"], |c| c["iss"] = iss).await;
    }
    assert_claims_rejected(&proxy, &["bad_issuer", "malformed"], |c| remove(c, "iss")).await;
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_empty_overlong_or_unprintable_subject_is_rejected() {
    let (_jwks, upstream, proxy) = stack_with(&[]).await;
    assert_claims_rejected(&proxy, &["bad_subject", "malformed"], |c| remove(c, "sub")).await;
    for sub in [
        json!(""),
        json!("u".repeat(257)),
        json!("user_1\r\nX-User-Id: admin"),
        json!("user 1"),
        json!("user_\u{e9}"),
        json!("user_\u{0}"),
    ] {
        assert_claims_rejected(&proxy, &["bad_subject"], |c| c["sub"] = sub).await;
    }
    for sub in [json!(42), json!(["user_1"]), Value::Null] {
        assert_claims_rejected(&proxy, &["bad_subject", "malformed"], |c| c["sub"] = sub).await;
    }
    assert_eq!(upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_256_character_subject_is_accepted() {
    let (_jwks, upstream, proxy) = stack_with(&[]).await;
    let sub = "u".repeat(256);
    assert_claims_accepted(&proxy, |c| c["sub"] = json!(sub)).await;
    assert_eq!(upstream.last().header("x-user-id"), Some(sub.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn aud_is_not_checked_when_no_audience_is_configured() {
    let (_jwks, _upstream, proxy) = stack_with(&[]).await;
    assert_claims_accepted(&proxy, |c| c["aud"] = json!("anything")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn aud_must_match_a_configured_audience() {
    let (_jwks, upstream, proxy) = stack_with(&[("CLERK_AUDIENCE", "api-a,api-b")]).await;
    assert_claims_accepted(&proxy, |c| c["aud"] = json!("api-b")).await;
    assert_claims_accepted(&proxy, |c| c["aud"] = json!(["other", "api-a"])).await;
    let accepted = upstream.count();
    assert_claims_rejected(&proxy, &["bad_audience"], |c| c["aud"] = json!("api-c")).await;
    assert_claims_rejected(&proxy, &["bad_audience"], |c| c["aud"] = json!(["x", "y"])).await;
    assert_claims_rejected(&proxy, &["bad_audience"], |c| {
        c["aud"] = json!("api-a,api-b")
    })
    .await;
    assert_claims_rejected(&proxy, &["bad_audience"], |c| remove(c, "aud")).await;
    assert_eq!(upstream.count(), accepted);
}

#[tokio::test(flavor = "multi_thread")]
async fn azp_must_match_a_configured_authorized_party() {
    let parties = format!("{AZP},https://admin.retainwise.test");
    let (_jwks, upstream, proxy) = stack_with(&[("CLERK_AUTHORIZED_PARTIES", &parties)]).await;
    assert_claims_accepted(&proxy, |_| {}).await;
    assert_claims_accepted(&proxy, |c| {
        c["azp"] = json!("https://admin.retainwise.test")
    })
    .await;
    let accepted = upstream.count();
    assert_claims_rejected(&proxy, &["bad_azp"], |c| {
        c["azp"] = json!("https://evil.example")
    })
    .await;
    assert_claims_rejected(&proxy, &["bad_azp"], |c| {
        c["azp"] = json!(format!("{AZP}.evil.example"))
    })
    .await;
    assert_eq!(upstream.count(), accepted);
}

#[tokio::test(flavor = "multi_thread")]
async fn azp_is_not_checked_when_unset_but_a_startup_warning_says_so() {
    let (_jwks, _upstream, proxy) = stack_with(&[]).await;
    assert_claims_accepted(&proxy, |c| c["azp"] = json!("https://anything.example")).await;
    let warned = proxy
        .stdout
        .all()
        .iter()
        .chain(proxy.stderr.all().iter())
        .any(|line| {
            line.contains("CLERK_AUTHORIZED_PARTIES") && line.to_lowercase().contains("warn")
        });
    assert!(warned, "a startup warning names CLERK_AUTHORIZED_PARTIES");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_clock_leeway_is_configurable() {
    let (_jwks, _upstream, strict) = stack_with(&[("PROXY_CLOCK_LEEWAY", "0")]).await;
    assert_claims_rejected(&strict, &["expired"], |c| c["exp"] = json!(now() - 2)).await;

    let (_jwks, _upstream, lenient) = stack_with(&[("PROXY_CLOCK_LEEWAY", "60")]).await;
    assert_claims_accepted(&lenient, |c| c["exp"] = json!(now() - 30)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cached_token_stops_working_when_it_expires() {
    let (_jwks, upstream, proxy) = stack_with(&[("PROXY_CLOCK_LEEWAY", "0")]).await;
    let mut claims = clerk_claims("user_brief");
    // Far enough ahead that a loaded machine still sends both requests
    // below in time; the event asserted is the expiry, not a duration.
    claims["exp"] = json!(now() + 8);
    let token = mint_token(key_a(), claims);
    let status = async || {
        send(proxy.get("/api/uploads").bearer_auth(&token))
            .await
            .status
    };
    assert_eq!(status().await, 200);
    assert_eq!(status().await, 200, "and again, from the token cache");
    assert_eq!(
        proxy
            .metric("retainwise_proxy_token_cache_hits_total")
            .await,
        1.0
    );

    eventually_within(
        std::time::Duration::from_secs(30),
        "the token is refused once expired",
        async || status().await == 401,
    )
    .await;
    let forwarded = upstream.count();
    assert_eq!(status().await, 401);
    assert_eq!(upstream.count(), forwarded);
}
