//! Forged and malformed tokens: each is a 401 with error="invalid_token",
//! by header and by cookie, the upstream never sees the request, the
//! request's log line names the rejection reason, and no log line holds
//! the token.

mod support;

use serde_json::json;
use support::*;

/// A JWKS server publishing key A, an upstream, and a ready proxy.
async fn stack() -> (JwksServer, Upstream, Proxy) {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    (jwks, upstream, proxy)
}

/// Sends `token` as a Bearer header and as a `__session` cookie; both must be
/// rejected as invalid with one of `reasons`, and never forwarded.
async fn assert_rejected(proxy: &Proxy, upstream: &Upstream, token: &str, reasons: &[&str]) {
    let before = upstream.count();
    for as_cookie in [false, true] {
        let id = request_id();
        let request = proxy.get("/api/uploads").header("x-request-id", &id);
        let request = if as_cookie {
            request.header("cookie", format!("__session={token}"))
        } else {
            request.header("authorization", format!("Bearer {token}"))
        };
        let reply = send(request).await;
        assert_invalid_token(&reply);
        assert_not_echoed(&reply, token);
        let log = proxy.request_log(&id).await;
        let reason = log["reason"].as_str().unwrap_or_default();
        assert!(
            reasons.contains(&reason),
            "rejected for {reason:?}, expected one of {reasons:?} (log: {log})"
        );
    }
    assert_eq!(upstream.count(), before, "a rejected token was forwarded");
    proxy.assert_logs_never_contain(token);
}

#[tokio::test(flavor = "multi_thread")]
async fn alg_none_in_any_case_is_rejected() {
    let (_jwks, upstream, proxy) = stack().await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        // Unsigned, as an `alg: none` token is: both reasons are true, and
        // the spec does not say which check comes first.
        let unsigned = TokenBuilder::new(key_a())
            .header("alg", json!(alg))
            .signature_bytes(b"")
            .build();
        assert_rejected(&proxy, &upstream, &unsigned, &["bad_alg", "bad_signature"]).await;
        let signed_anyway = TokenBuilder::new(key_a()).header("alg", json!(alg)).build();
        assert_rejected(&proxy, &upstream, &signed_anyway, &["bad_alg"]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let (_jwks, upstream, proxy) = stack().await;
    let pem = key_a().public_pem();
    for secret in [pem.as_bytes(), pem.trim_end().as_bytes()] {
        let token = TokenBuilder::new(key_a()).hs256(secret).build();
        assert_rejected(&proxy, &upstream, &token, &["bad_alg"]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_key_under_a_known_kid_is_rejected() {
    let (_jwks, upstream, proxy) = stack().await;
    let token = TokenBuilder::new(key_a()).signed_by(foreign_key()).build();
    assert_rejected(&proxy, &upstream, &token, &["bad_signature"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_payload_is_rejected() {
    let (_jwks, upstream, proxy) = stack().await;
    let genuine = token(key_a(), "user_victim");
    let [header, _, signature] = support::tokens::segments(&genuine);
    let attacker = token(key_a(), "user_attacker");
    let [_, payload, _] = support::tokens::segments(&attacker);
    let tampered = format!("{header}.{payload}.{signature}");
    assert_rejected(&proxy, &upstream, &tampered, &["bad_signature"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stripped_signature_is_rejected() {
    let (_jwks, upstream, proxy) = stack().await;
    let genuine = valid_token(key_a());
    let (signing_input, _) = genuine.rsplit_once('.').expect("three segments");
    for stripped in [format!("{signing_input}."), signing_input.to_owned()] {
        assert_rejected(
            &proxy,
            &upstream,
            &stripped,
            &["malformed", "bad_signature"],
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_is_rejected_as_malformed() {
    let (_jwks, upstream, proxy) = stack().await;
    for garbage in ["not-a-jwt", "a.b.c", "....", "e30.e30.e30.e30"] {
        assert_rejected(&proxy, &upstream, garbage, &["malformed"]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_without_kid_is_rejected() {
    let (_jwks, upstream, proxy) = stack().await;
    let token = TokenBuilder::new(key_a()).without_header("kid").build();
    assert_rejected(&proxy, &upstream, &token, &["missing_kid"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_with_an_unknown_kid_is_rejected() {
    let (_jwks, upstream, proxy) = stack().await;
    let token = TokenBuilder::new(foreign_key()).build();
    assert_rejected(&proxy, &upstream, &token, &["unknown_kid"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn key_bearing_and_crit_headers_are_rejected_even_when_correctly_signed() {
    let (_jwks, upstream, proxy) = stack().await;
    let headers = [
        ("jwk", foreign_key().jwk()),
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        ("x5c", json!(["MIIBszCCAVmgAwIBAgIUQ"])),
        ("crit", json!(["exp"])),
    ];
    for (name, value) in headers {
        let token = TokenBuilder::new(key_a()).header(name, value).build();
        assert_rejected(&proxy, &upstream, &token, &["forbidden_header"]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rs384_and_ps256_from_the_right_key_are_rejected() {
    let (_jwks, upstream, proxy) = stack().await;
    let rs384 = TokenBuilder::new(key_a()).rs384(key_a()).build();
    assert_rejected(&proxy, &upstream, &rs384, &["bad_alg"]).await;
    let ps256 = TokenBuilder::new(key_a()).ps256(key_a()).build();
    assert_rejected(&proxy, &upstream, &ps256, &["bad_alg"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_1024_bit_key_in_the_jwks_is_ignored_and_the_others_still_work() {
    let jwks = start_jwks(&[weak_key(), key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;

    let weak = valid_token(weak_key());
    assert_rejected(&proxy, &upstream, &weak, &["unknown_kid", "bad_signature"]).await;

    let reply = send(proxy.get("/api/uploads").bearer_auth(valid_token(key_a()))).await;
    assert_eq!(reply.status, 200, "key A still works: {}", reply.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_over_16_kib_is_rejected_as_too_large() {
    let (_jwks, upstream, proxy) = stack().await;
    let big = TokenBuilder::new(key_a())
        .claim("padding", json!("p".repeat(17 * 1024)))
        .build();
    assert!(big.len() > 16 * 1024 && big.len() < 32 * 1024);
    assert_rejected(&proxy, &upstream, &big, &["too_large"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_64_kib_token_is_refused_and_the_proxy_still_answers() {
    let (_jwks, upstream, proxy) = stack().await;
    let huge = TokenBuilder::new(key_a())
        .claim("padding", json!("p".repeat(48 * 1024)))
        .build();
    assert!(huge.len() >= 64 * 1024);

    let reply = proxy
        .raw(RawRequest::get("/api/uploads").bearer(&huge))
        .await;
    assert!(
        (400..500).contains(&reply.status),
        "a 64 KiB token is a 4xx, got {}",
        reply.status
    );
    let reply = proxy
        .raw(RawRequest::get("/api/uploads").header("Cookie", &format!("__session={huge}")))
        .await;
    assert!((400..500).contains(&reply.status), "got {}", reply.status);
    assert_eq!(upstream.count(), 0);
    proxy.assert_logs_never_contain(&huge);

    let reply = send(proxy.get("/api/uploads").bearer_auth(valid_token(key_a()))).await;
    assert_eq!(
        reply.status,
        200,
        "the proxy still answers: {}",
        reply.text()
    );
}

/// The token cache is keyed by the whole token: a forgery built from a
/// token that is in the cache is checked from scratch, never served as a hit.
#[tokio::test(flavor = "multi_thread")]
async fn forgeries_of_a_cached_token_are_not_cache_hits() {
    let (_jwks, upstream, proxy) = stack().await;
    let genuine = token(key_a(), "user_victim");
    let hits = async || {
        proxy
            .metric("retainwise_proxy_token_cache_hits_total")
            .await
    };
    for expected_hits in [0.0, 1.0] {
        let reply = send(proxy.get("/api/uploads").bearer_auth(&genuine)).await;
        assert_eq!(reply.status, 200);
        assert_eq!(hits().await, expected_hits);
    }
    let [header, _, signature] = support::tokens::segments(&genuine);
    let attacker = token(key_a(), "user_attacker");
    let [_, payload, _] = support::tokens::segments(&attacker);
    let last = genuine.chars().last().expect("a signature");
    let flipped = if last == 'A' { 'Q' } else { 'A' };
    let forgeries = [
        format!("{header}.{payload}.{signature}"),
        format!("{}{flipped}", &genuine[..genuine.len() - 1]),
        format!("{genuine}A"),
        format!("{genuine}."),
        genuine[..genuine.len() - 1].to_owned(),
    ];
    for forged in &forgeries {
        assert_rejected(&proxy, &upstream, forged, &["bad_signature", "malformed"]).await;
    }
    assert_eq!(hits().await, 1.0, "a forgery was served from the cache");
    let reply = send(proxy.get("/api/uploads").bearer_auth(&genuine)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(hits().await, 2.0);
}
