//! What operations rely on, run against the real binaries: the deploy
//! pipeline's smoke test (`scripts/smoke-test.sh`) against the local
//! stack, and every metric the Grafana dashboard and the alert rules name
//! present in a scrape of the running proxy and app.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use retainwise_e2e::workspace_root;
use support::{Backend, Stack, TempDir, customers_csv, eventually};

/// Runs `scripts/smoke-test.sh` with `args`, one attempt per check, with
/// `path_prefix` (a folder) ahead of `PATH` when given.
fn smoke_test(args: &[&str], path_prefix: Option<&Path>) -> Output {
    let mut command = Command::new("bash");
    command
        .arg(workspace_root().join("scripts/smoke-test.sh"))
        .args(args)
        .env("SMOKE_ATTEMPTS", "1")
        .env("SMOKE_DELAY", "0");
    if let Some(dir) = path_prefix {
        let path = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{}:{path}", dir.display()));
    }
    command.output().expect("bash runs the smoke test")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn smoke_test_passes_through_the_proxy_and_fails_where_the_stack_is_wrong() {
    let stack = Stack::start(Backend::Embedded).await;
    let front = format!("http://{}", stack.data);

    let ok = smoke_test(&[&front], None);
    let out = text(&ok.stdout);
    assert!(ok.status.success(), "{out}{}", text(&ok.stderr));
    assert!(out.contains("/api/health: 200"), "{out}");
    assert!(out.contains("without a token: 401 Bearer"), "{out}");
    assert!(out.contains("smoke test passed"), "{out}");
    // A trailing slash on the base URL is the same front door.
    assert!(smoke_test(&[&format!("{front}/")], None).status.success());

    // The admin listener is no front door: /api/health is not there.
    let admin = smoke_test(&[&format!("http://{}", stack.admin)], None);
    let err = text(&admin.stderr);
    assert_eq!(admin.status.code(), Some(1), "{err}");
    assert!(err.contains("answered 404, expected 200"), "{err}");

    // Nothing listening at all.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let nothing = smoke_test(&[&format!("http://{closed}")], None);
    assert_eq!(nothing.status.code(), Some(1));
    assert!(text(&nothing.stderr).contains("answered nothing, expected 200"));
}

/// A stand-in for the AWS CLI (AWS is out of reach here) that answers
/// `elbv2 describe-target-health` with these target states, the way
/// `--query 'TargetHealthDescriptions[].TargetHealth.State' --output text`
/// prints them, and records the arguments it got.
fn aws_answering(dir: &TempDir, states: &str) {
    let script = dir.write(
        "aws",
        format!(
            "#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/calls\"\nprintf '%s\\n' '{states}'\n"
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[tokio::test]
async fn smoke_test_requires_every_target_of_the_group_to_be_healthy() {
    let stack = Stack::start(Backend::Embedded).await;
    let front = format!("http://{}", stack.data);
    let arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/retainwise-prod-proxy/0123456789abcdef";

    let healthy = TempDir::new();
    aws_answering(&healthy, "healthy\thealthy");
    let ok = smoke_test(&[&front, arn], Some(healthy.path()));
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("all 2 targets healthy"));
    let calls = std::fs::read_to_string(healthy.path().join("calls")).expect("aws was called");
    assert!(
        calls.contains(&format!(
            "elbv2 describe-target-health --target-group-arn {arn}"
        )),
        "{calls}"
    );

    for (states, why) in [
        ("healthy\tunhealthy", "one target unhealthy"),
        ("healthy\tdraining", "one target draining"),
        ("", "no target registered"),
    ] {
        let dir = TempDir::new();
        aws_answering(&dir, states);
        let failed = smoke_test(&[&front, arn], Some(dir.path()));
        let err = text(&failed.stderr);
        assert_eq!(failed.status.code(), Some(1), "{why}: {err}");
        assert!(
            err.contains("every one must be healthy") || err.contains("no target is registered"),
            "{why}: {err}"
        );
    }
}

/// Every `retainwise_…` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("retainwise_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The sample names of a Prometheus text exposition.
fn exposed(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

async fn scrape(stack: &Stack, address: std::net::SocketAddr) -> String {
    stack
        .client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .expect("the metrics listener answers")
        .text()
        .await
        .expect("a text body")
}

#[tokio::test]
async fn every_metric_the_dashboard_and_the_alerts_use_is_in_a_scrape_of_the_binaries() {
    let root = workspace_root();
    let dashboard =
        std::fs::read_to_string(root.join("config/grafana/retainwise.json")).expect("dashboard");
    let alerts =
        std::fs::read_to_string(root.join("config/prometheus/alerts.yml")).expect("alert rules");
    let wanted: BTreeSet<String> = metric_names(&dashboard)
        .into_iter()
        .chain(metric_names(&alerts))
        .collect();
    assert!(wanted.len() > 15, "read too few names: {wanted:?}");

    // Traffic that moves every counter: allowed, cached and rejected
    // requests, an upload scored by the worker.
    let stack = Stack::start(Backend::Embedded).await;
    let token = stack.token("user_dashboard");
    for _ in 0..3 {
        assert_eq!(stack.get(Some(&token), "/api/uploads").await.status, 200);
    }
    assert_eq!(stack.get(None, "/api/uploads").await.status, 401);
    let prediction = stack.upload_ok(&token, &customers_csv(5)).await;
    stack.wait_completed(&token, &prediction).await;

    let mut seen = BTreeSet::new();
    eventually("the worker's queue gauges are exposed", async || {
        exposed(&scrape(&stack, stack.app_metrics).await).contains("retainwise_app_queue_depth")
    })
    .await;
    seen.extend(exposed(&scrape(&stack, stack.app_metrics).await));

    // An upstream error: the app goes away, the proxy answers 502.
    let front = format!("http://{}", stack.data);
    let admin = stack.admin;
    let client = stack.client.clone();
    drop(stack.app);
    eventually("the proxy answers 502 without the app", async || {
        client
            .get(format!("{front}/api/uploads"))
            .bearer_auth(&token)
            .send()
            .await
            .is_ok_and(|r| r.status() == 502)
    })
    .await;
    let proxy = client
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .expect("the admin listener answers")
        .text()
        .await
        .expect("a text body");
    seen.extend(exposed(&proxy));

    let missing: Vec<&String> = wanted.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "named by config/grafana/retainwise.json or config/prometheus/alerts.yml but not exposed: {missing:?}"
    );
}
