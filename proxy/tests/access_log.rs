//! `PROXY_ACCESS_LOG`: the per-request line can be turned off alone, as
//! nginx's `access_log off`; metrics and every other line stay.

mod support;

use std::time::Duration;

use support::*;

/// An allowed, a refused and a public request, each with its own id.
async fn three_requests(proxy: &Proxy) -> [String; 3] {
    let ids = [request_id(), request_id(), request_id()];
    let allowed = send(
        proxy
            .get("/api/uploads")
            .bearer_auth(valid_token(key_a()))
            .header("x-request-id", &ids[0]),
    )
    .await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    let refused = send(proxy.get("/api/uploads").header("x-request-id", &ids[1])).await;
    assert_eq!(refused.status, 401);
    let public = send(proxy.get("/api/health").header("x-request-id", &ids[2])).await;
    assert_eq!(public.status, 200);
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn access_log_off_drops_only_the_request_lines() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream).with("PROXY_ACCESS_LOG", "false")).await;
    three_requests(&proxy).await;
    assert_eq!(
        proxy
            .metric(r#"retainwise_proxy_requests_total{status_class="2xx"}"#)
            .await,
        2.0,
        "the requests are still counted"
    );
    assert_eq!(
        proxy
            .metric(r#"retainwise_proxy_requests_total{status_class="4xx"}"#)
            .await,
        1.0
    );

    // Every line written before "stopped" has been read once it is seen.
    proxy.sigterm();
    proxy.wait_exit(Duration::from_secs(10)).await;
    eventually("the \"stopped\" line", async || {
        proxy
            .stdout
            .json()
            .iter()
            .any(|l| l["message"] == "stopped")
    })
    .await;
    assert_eq!(proxy.request_logs(), Vec::<serde_json::Value>::new());
    assert!(
        proxy
            .stdout
            .json()
            .iter()
            .any(|l| l["message"] == "listening"),
        "other info lines stay"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn access_log_on_writes_one_line_per_request() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream).with("PROXY_ACCESS_LOG", "true")).await;
    let ids = three_requests(&proxy).await;
    for (id, status) in ids.iter().zip([200, 401, 200]) {
        assert_eq!(proxy.request_log(id).await["status"], status);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_access_log_switch_is_refused() {
    for value in ["off", "1", "yes"] {
        let exit = run_until_exit(
            Settings::bare()
                .with("CLERK_ISSUER_URL", "https://clerk.example")
                .with("CLERK_JWT_KEY", key_a().public_pem())
                .with("PROXY_ACCESS_LOG", value),
        )
        .await;
        assert_eq!(exit.code, Some(2), "{value:?}: stderr:\n{}", exit.stderr);
        assert!(
            exit.stderr.contains("PROXY_ACCESS_LOG") || exit.stderr.contains("access_log"),
            "{value:?}: stderr names the setting:\n{}",
            exit.stderr
        );
    }
}
