//! The runtime is sized from the CPU the process may use, and says so in
//! its startup log.

mod support;

use retainwise_proxy::runtime::Sizing;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn the_startup_log_names_the_runtime_chosen_from_the_cpu_quota() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    // The child inherits this process's cgroup and CPU affinity.
    let expected = Sizing::detect();
    let line = proxy
        .stdout
        .json()
        .into_iter()
        .find(|l| l["message"] == "runtime")
        .expect("a \"runtime\" line before \"listening\"");
    assert_eq!(line["workers"], expected.workers, "{line}");
    assert_eq!(line["cores_available"], expected.available, "{line}");
    let flavor = if expected.workers <= 1 {
        "current_thread"
    } else {
        "multi_thread"
    };
    assert_eq!(line["flavor"], flavor, "{line}");
    let reply = send(proxy.get("/api/uploads").bearer_auth(valid_token(key_a()))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}
