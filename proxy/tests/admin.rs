//! The admin listener: `/healthz`, `/readyz`, `/metrics` (with the
//! contract's metric names, checked by `promtool`), kept apart from the
//! data listener.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_503_until_keys_are_loaded_while_healthz_is_200() {
    let jwks = start_jwks(&[key_a()]).await;
    jwks.go_down().await;
    let upstream = start_upstream().await;
    let proxy = spawn_proxy(settings(&jwks, &upstream).with("JWKS_CACHE_TTL", "1")).await;

    let healthz = proxy.admin("/healthz").await;
    assert_eq!(healthz.status, 200);
    let readyz = proxy.readyz().await;
    assert_eq!(readyz.status, 503);
    assert!(
        readyz.text().contains("keys not loaded"),
        "{}",
        readyz.text()
    );

    jwks.come_back().await;
    proxy.wait_ready().await;
    let readyz = proxy.readyz().await;
    assert!(readyz.text().contains("ready"), "{}", readyz.text());
    assert_eq!(proxy.admin("/healthz").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_503_when_the_upstream_is_unreachable() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;

    upstream.stop().await;

    eventually("/readyz says the upstream is unreachable", async || {
        let readyz = proxy.readyz().await;
        readyz.status == 503 && readyz.text().contains("upstream unreachable")
    })
    .await;
    assert_eq!(proxy.admin("/healthz").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_data_listener_serves_only_proxied_traffic() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;

    for path in ["/metrics", "/healthz", "/readyz"] {
        let reply = send(proxy.get(path)).await;
        assert_missing_token(&reply);
        let reply = send(proxy.get(path).bearer_auth(valid_token(key_a()))).await;
        assert_eq!(
            reply.text(),
            support::upstream::UPSTREAM_BODY,
            "{path} is proxied"
        );
        assert_eq!(upstream.last().target, path);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_listener_does_not_proxy() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;

    let reply = send(
        proxy
            .client
            .get(format!("http://{}/api/health", proxy.admin))
            .bearer_auth(valid_token(key_a())),
    )
    .await;

    assert_eq!(reply.status, 404);
    assert_eq!(upstream.count(), 0);
}

/// Contract metric names (proxy-spec.md, "Admin listener").
const METRIC_NAMES: &[&str] = &[
    "retainwise_proxy_requests_total",
    "retainwise_proxy_request_duration_seconds",
    "retainwise_proxy_auth_decisions_total",
    "retainwise_proxy_verify_duration_seconds",
    "retainwise_proxy_jwks_fetches_total",
    "retainwise_proxy_jwks_keys",
    "retainwise_proxy_jwks_last_success_age_seconds",
    "retainwise_proxy_jwks_stale",
    "retainwise_proxy_token_cache_hits_total",
    "retainwise_proxy_token_cache_misses_total",
    "retainwise_proxy_upstream_errors_total",
];

fn has_sample(metrics: &str, name: &str, labels: &[&str]) -> bool {
    metrics.lines().any(|line| {
        let Some(rest) = line.strip_prefix(name) else {
            return false;
        };
        let rest = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| rest.strip_prefix(suffix))
            .unwrap_or(rest);
        (rest.starts_with('{') || rest.starts_with(' '))
            && labels.iter().all(|label| rest.contains(label))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_cover_the_contract_and_pass_promtool() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    let token = valid_token(key_a());

    assert_eq!(send(proxy.get("/api/health")).await.status, 200);
    assert_eq!(
        send(proxy.get("/api/uploads").bearer_auth(&token))
            .await
            .status,
        200
    );
    assert_eq!(
        send(proxy.get("/api/uploads").bearer_auth(&token))
            .await
            .status,
        200
    );
    assert_eq!(send(proxy.get("/api/uploads")).await.status, 401);
    upstream.stop().await;
    assert_eq!(
        send(proxy.get("/api/uploads").bearer_auth(&token))
            .await
            .status,
        502
    );

    let metrics = proxy.metrics().await;
    for name in METRIC_NAMES {
        assert!(
            has_sample(&metrics, name, &[]),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
    let expected_samples: &[(&str, &[&str])] = &[
        (
            "retainwise_proxy_requests_total",
            &[r#"status_class="2xx""#],
        ),
        (
            "retainwise_proxy_requests_total",
            &[r#"status_class="4xx""#],
        ),
        (
            "retainwise_proxy_requests_total",
            &[r#"status_class="5xx""#],
        ),
        (
            "retainwise_proxy_auth_decisions_total",
            &[r#"result="allowed""#],
        ),
        (
            "retainwise_proxy_auth_decisions_total",
            &[r#"result="public""#],
        ),
        (
            "retainwise_proxy_auth_decisions_total",
            &[r#"result="rejected""#, r#"reason="missing_token""#],
        ),
        (
            "retainwise_proxy_jwks_fetches_total",
            &[r#"result="success""#],
        ),
        (
            "retainwise_proxy_upstream_errors_total",
            &[r#"kind="connect""#],
        ),
        ("retainwise_proxy_request_duration_seconds_bucket", &["le="]),
    ];
    for (name, labels) in expected_samples {
        assert!(
            has_sample(&metrics, name, labels),
            "no {name} sample with {labels:?}:\n{metrics}"
        );
    }
    assert!(
        metrics.lines().any(|l| l == "retainwise_proxy_jwks_keys 1"),
        "one key loaded:\n{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l.starts_with("retainwise_proxy_token_cache_hits_total") && !l.ends_with(" 0")),
        "the second use of a token is a cache hit:\n{metrics}"
    );
    for line in metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(
            line.starts_with("retainwise_proxy_"),
            "metric outside the prefix: {line}"
        );
    }
    proxy.assert_logs_never_contain(&token);
    assert!(!metrics.contains(&token));

    promtool_check(&metrics);
}

/// Runs `promtool check metrics` on the text; a missing promtool fails the
/// test (it is never skipped).
fn promtool_check(metrics: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool is needed for this test ({e}): apt-get install prometheus")
        });
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(metrics.as_bytes())
        .expect("promtool reads the metrics");
    let output = child.wait_with_output().expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool check metrics failed ({}):\n{}{}\nmetrics:\n{metrics}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_healthcheck_subcommand_succeeds_only_against_a_live_admin_listener() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    let healthcheck = |url: String| {
        Command::new(env!("CARGO_BIN_EXE_retainwise-proxy"))
            .args(["healthcheck", "--url", &url])
            .stderr(Stdio::piped())
            .output()
            .expect("run healthcheck")
    };

    let live = healthcheck(format!("http://{}/healthz", proxy.admin));
    assert!(
        live.status.success(),
        "{}",
        String::from_utf8_lossy(&live.stderr)
    );

    let missing = healthcheck(format!("http://{}/nope", proxy.admin));
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_addr = closed.local_addr().expect("addr");
    drop(closed);
    let refused = healthcheck(format!("http://{closed_addr}/healthz"));
    assert!(!refused.status.success());
}
