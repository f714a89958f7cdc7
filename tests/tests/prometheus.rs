//! A real Prometheus scrape: Debian's `prometheus` server scrapes the
//! proxy's admin listener and the app's metrics listener, and the test
//! asserts through Prometheus's HTTP API that both targets are up and that
//! the request counters moved with the traffic sent through the proxy.

mod support;

use std::path::Path;

use retainwise_testkit::free_port;
use retainwise_testkit::process::Process;
use serde_json::Value;
use support::{Backend, Stack, TempDir, eventually};

/// Debian's package installs it here; `scripts/test.sh` installs the
/// package (for promtool) when it is missing.
const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A running Prometheus server, killed on drop.
struct Prometheus {
    _process: Process,
    url: String,
    client: reqwest::Client,
    _dir: TempDir,
}

async fn start_prometheus(stack: &Stack) -> Prometheus {
    assert!(
        Path::new(PROMETHEUS).is_file(),
        "{PROMETHEUS} is missing: install Debian's prometheus package \
         (scripts/test.sh does it when run as root)"
    );
    let dir = TempDir::new();
    let config = dir.write(
        "prometheus.yml",
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n\
             \x20 - job_name: proxy\n    static_configs:\n      - targets: ['{}']\n\
             \x20 - job_name: app\n    static_configs:\n      - targets: ['{}']\n",
            stack.admin, stack.app_metrics
        ),
    );
    let addr = free_port();
    let args = [
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", dir.path().join("data").display()),
        format!("--web.listen-address={addr}"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Its log lines are shown by the test runner only if the test fails.
    let process = Process::spawn_path("prometheus", Path::new(PROMETHEUS), &args, &[], dir.path());
    let prometheus = Prometheus {
        _process: process,
        url: format!("http://{addr}"),
        client: reqwest::Client::new(),
        _dir: dir,
    };
    eventually("Prometheus is ready", async || {
        prometheus
            .client
            .get(format!("{}/-/ready", prometheus.url))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    prometheus
}

/// `application/x-www-form-urlencoded` query text.
fn encode(pairs: &[(&str, &str)]) -> String {
    let escape = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Prometheus {
    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let response = self
            .client
            .get(format!("{}{path}?{}", self.url, encode(query)))
            .send()
            .await
            .expect("Prometheus answers");
        let body: Value = response.json().await.expect("Prometheus answers JSON");
        assert_eq!(body["status"], "success", "{path}: {body}");
        body["data"].clone()
    }

    /// The health of each scrape target, by job.
    async fn target_health(&self) -> Vec<(String, String)> {
        let data = self.api("/api/v1/targets", &[]).await;
        data["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                (
                    t["labels"]["job"].as_str().unwrap_or_default().to_owned(),
                    t["health"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The value of a scalar-valued instant query (a `sum(...)`), or 0
    /// when it has no series yet.
    async fn value(&self, query: &str) -> f64 {
        let data = self.api("/api/v1/query", &[("query", query)]).await;
        data["result"][0]["value"][1]
            .as_str()
            .map(|v| v.parse().expect("a number"))
            .unwrap_or(0.0)
    }
}

#[tokio::test]
async fn prometheus_scrapes_the_proxy_and_the_app_and_sees_requests_counted() {
    let stack = Stack::start(Backend::Embedded).await;
    let prometheus = start_prometheus(&stack).await;

    eventually("both scrape targets are up", async || {
        let health = prometheus.target_health().await;
        health.len() == 2 && health.iter().all(|(_, h)| h == "up")
    })
    .await;
    let mut jobs: Vec<String> = prometheus
        .target_health()
        .await
        .into_iter()
        .map(|(job, _)| job)
        .collect();
    jobs.sort();
    assert_eq!(jobs, ["app", "proxy"]);

    const PROXY: &str = "sum(retainwise_proxy_requests_total)";
    const APP: &str = "sum(retainwise_app_http_requests_total)";
    let proxy_before = prometheus.value(PROXY).await;
    let app_before = prometheus.value(APP).await;

    let token = stack.token("user_metrics");
    for _ in 0..5 {
        assert_eq!(stack.get(Some(&token), "/api/uploads").await.status, 200);
    }
    assert_eq!(stack.get(None, "/api/uploads").await.status, 401);

    eventually(
        "Prometheus sees the proxy's request counter move",
        async || prometheus.value(PROXY).await >= proxy_before + 6.0,
    )
    .await;
    eventually(
        "Prometheus sees the app's request counter move",
        async || prometheus.value(APP).await >= app_before + 5.0,
    )
    .await;
}
