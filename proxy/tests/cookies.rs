//! The `Cookie` header is bytes, and browsers send more than one session
//! cookie (Clerk instances sharing a parent domain, stale cookies with
//! another Domain or Path).

mod support;

use http::HeaderValue;
use serde_json::json;
use support::*;

const OTHER_ISSUER: &str = "https://clerk.staging.retainwise.test";

fn cookie(bytes: &[u8]) -> HeaderValue {
    HeaderValue::from_bytes(bytes).expect("obs-text is a valid header value")
}

/// A valid token of another Clerk instance: another issuer, a kid our JWKS
/// does not list.
fn foreign_token(sub: &str) -> String {
    let mut claims = clerk_claims(sub);
    claims["iss"] = json!(OTHER_ISSUER);
    TokenBuilder::new(foreign_key()).claims(claims).build()
}

async fn stack() -> (JwksServer, Upstream, Proxy) {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    (jwks, upstream, proxy)
}

/// The field report: one UTF-8 cookie value hid the session cookie (401
/// missing_token).
#[tokio::test(flavor = "multi_thread")]
async fn a_non_ascii_cookie_does_not_hide_the_session_cookie() {
    let (_jwks, upstream, proxy) = stack().await;
    let token = token(key_a(), "user_munich");
    let header = format!("city=M\u{fc}nchen; __session={token}; csrf=abc");
    let reply = send(
        proxy
            .get("/api/uploads")
            .header("cookie", cookie(header.as_bytes())),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = upstream.last();
    assert_eq!(seen.header("x-user-id"), Some("user_munich"));
    assert_eq!(
        seen.raw("cookie"),
        vec!["city=M\u{fc}nchen; csrf=abc".as_bytes().to_vec()]
    );
}

/// The field report's second half: with a bearer token, the same Cookie
/// line used to reach the app as no Cookie header at all.
#[tokio::test(flavor = "multi_thread")]
async fn other_cookies_reach_the_app_byte_for_byte_beside_a_bearer_token() {
    let (_jwks, upstream, proxy) = stack().await;
    let token = valid_token(key_a());
    let header = format!("city=M\u{fc}nchen; __session={token}; csrf=abc");
    let reply = send(
        proxy
            .get("/api/uploads")
            .bearer_auth(&token)
            .header("cookie", cookie(header.as_bytes())),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        upstream.last().raw("cookie"),
        vec!["city=M\u{fc}nchen; csrf=abc".as_bytes().to_vec()]
    );
}

/// Another input of the same kind: bytes that are not UTF-8 at all (a
/// Latin-1 value), and an untouched header order across two Cookie lines.
#[tokio::test(flavor = "multi_thread")]
async fn latin1_cookie_bytes_pass_through_unchanged() {
    let (_jwks, upstream, proxy) = stack().await;
    let token = valid_token(key_a());
    let mut first = b"name=Jos\xe9; __session=".to_vec();
    first.extend_from_slice(token.as_bytes());
    let reply = send(
        proxy
            .get("/api/uploads")
            .header("cookie", cookie(&first))
            .header("cookie", cookie(b"lang=fr")),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        upstream.last().raw("cookie"),
        vec![b"name=Jos\xe9; lang=fr".to_vec()]
    );
}

/// Clerk with staging and production on one parent domain: a foreign
/// `__session` is passed over without a JWKS fetch, ours in
/// `__session_<suffix>` is used, and both are stripped.
#[tokio::test(flavor = "multi_thread")]
async fn another_instances_session_cookie_is_ignored_without_a_fetch() {
    let (jwks, upstream, proxy) = stack().await;
    let fetches = jwks.fetches();
    let ours = token(key_a(), "user_prod");
    let theirs = foreign_token("user_staging");
    let header = format!("__session={theirs}; __session_Zx9q={ours}; theme=dark");
    let reply = send(proxy.get("/api/uploads").header("cookie", header)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = upstream.last();
    assert_eq!(seen.header("x-user-id"), Some("user_prod"));
    assert_eq!(seen.cookies(), "theme=dark");
    assert_eq!(
        jwks.fetches(),
        fetches,
        "a foreign cookie cost a JWKS fetch"
    );

    // Only a foreign cookie: no credential of ours, still no fetch.
    let reply = send(
        proxy
            .get("/api/uploads")
            .header("cookie", format!("__session={theirs}")),
    )
    .await;
    assert_missing_token(&reply);
    assert_eq!(jwks.fetches(), fetches);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_session_cookie_is_ignored_beside_a_valid_one() {
    let (_jwks, upstream, proxy) = stack().await;
    let mut old = clerk_claims("user_2def");
    old["exp"] = json!(now() - 3600);
    old["iat"] = json!(now() - 3660);
    old["nbf"] = json!(now() - 3670);
    let expired = mint_token(key_a(), old);
    let fresh = token(key_a(), "user_2def");
    for header in [
        format!("__session={expired}; __session={fresh}"),
        format!("__session={fresh}; __session_abc={expired}"),
    ] {
        let reply = send(proxy.get("/api/uploads").header("cookie", header)).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(upstream.last().header("x-user-id"), Some("user_2def"));
    }
    // Alone, the expired one is refused for what it is.
    let reply = send(
        proxy
            .get("/api/uploads")
            .header("cookie", format!("__session={expired}")),
    )
    .await;
    assert_invalid_token(&reply);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_token_under_both_names_is_one_candidate() {
    let (_jwks, upstream, proxy) = stack().await;
    let token = token(key_a(), "user_2def");
    let header = format!("__session={token}; __session_Zx9q={token}");
    let reply = send(proxy.get("/api/uploads").header("cookie", header)).await;
    assert_eq!(reply.status, 200);
    assert!(upstream.last().cookies().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_valid_session_cookies_for_different_users_are_refused() {
    let (_jwks, upstream, proxy) = stack().await;
    let alice = token(key_a(), "user_alice");
    let bob = token(key_a(), "user_bob");
    let reply = send(
        proxy
            .get("/api/uploads")
            .header("cookie", format!("__session={alice}; __session_x={bob}")),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.error(), "invalid_request");
    assert_eq!(upstream.count(), 0);
    // Two valid tokens for the same user (a refreshed one beside the
    // previous one) are fine.
    let again = token(key_a(), "user_alice");
    let reply = send(
        proxy
            .get("/api/uploads")
            .header("cookie", format!("__session={alice}; __session={again}")),
    )
    .await;
    assert_eq!(reply.status, 200);
}

/// A forged cookie of "another instance" cannot get in by naming another
/// issuer: it is passed over, never accepted.
#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_looking_cookie_is_never_accepted() {
    let (_jwks, upstream, proxy) = stack().await;
    let mut claims = clerk_claims("user_admin");
    claims["iss"] = json!(OTHER_ISSUER);
    let signed_by_us_but_foreign = mint_token(key_a(), claims);
    let reply = send(
        proxy
            .get("/api/uploads")
            .header("cookie", format!("__session={signed_by_us_but_foreign}")),
    )
    .await;
    assert_missing_token(&reply);
    assert_eq!(upstream.count(), 0);
}
