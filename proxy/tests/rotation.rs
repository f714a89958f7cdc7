//! A rotated key is accepted as soon as a fetch may find it: a kid first
//! seen inside the minimum refresh interval is not remembered as unknown
//! (the field report: accepted only 31 s after it was published). The
//! interval here is 8 s: long enough that the first request surely falls
//! inside it on a loaded machine, short enough to keep the test quick.

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_key_published_just_after_start_is_accepted_after_one_interval() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy =
        start_proxy(settings(&jwks, &upstream).with("PROXY_JWKS_MIN_REFRESH_INTERVAL", "8")).await;
    let fetches = jwks.fetches();
    jwks.serve(&[key_a(), key_b()]);
    let rotated = valid_token(key_b());

    // Inside the interval after the start-up fetch: refused at once, and a
    // fetch is scheduled for when the interval allows.
    let reply = send(proxy.get("/api/uploads").bearer_auth(&rotated)).await;
    assert_invalid_token(&reply);
    eventually("the deferred fetch runs", async || jwks.fetches() > fetches).await;
    // The next request is accepted: the old code kept refusing for 30 s.
    let reply = send(proxy.get("/api/uploads").bearer_auth(&rotated)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(jwks.fetches(), fetches + 1);
}

/// The same kind, another order: the kid is asked for repeatedly inside
/// the interval (a browser retrying). One deferred fetch serves them all,
/// and no request waits for it.
#[tokio::test(flavor = "multi_thread")]
async fn repeated_requests_inside_the_interval_cause_one_fetch() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy =
        start_proxy(settings(&jwks, &upstream).with("PROXY_JWKS_MIN_REFRESH_INTERVAL", "8")).await;
    let fetches = jwks.fetches();
    jwks.serve(&[key_a(), key_c()]);
    for _ in 0..20 {
        let token = valid_token(key_c());
        let reply = send(proxy.get("/api/uploads").bearer_auth(&token)).await;
        if reply.status == 200 {
            break;
        }
        assert_invalid_token(&reply);
    }
    eventually("the deferred fetch runs", async || jwks.fetches() > fetches).await;
    let reply = send(proxy.get("/api/uploads").bearer_auth(valid_token(key_c()))).await;
    assert_eq!(reply.status, 200);
    assert_eq!(jwks.fetches(), fetches + 1);
}
