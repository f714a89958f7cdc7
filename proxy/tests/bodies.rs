//! Request bodies: the response timeout starts when the body has been
//! forwarded, and early answers reach the client intact (no reset, no 502).

mod support;

use std::time::Duration;

use bytes::Bytes;
use support::*;

/// `total` bytes of the upstream's pattern, `per_tick` of them every 100 ms.
fn trickle(total: usize, per_tick: usize) -> reqwest::Body {
    let (mut tx, body) = http_body_util::channel::Channel::<Bytes, std::io::Error>::new(4);
    let data = support::upstream::pattern(total);
    tokio::spawn(async move {
        for chunk in data.chunks(per_tick) {
            if tx.send_data(Bytes::copy_from_slice(chunk)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    reqwest::Body::wrap(body)
}

/// The field report: `PROXY_UPSTREAM_TIMEOUT=3`, a 5 MB upload at 1 MB/s
/// got 504 after 3 s while the client was still sending.
#[tokio::test(flavor = "multi_thread")]
async fn an_upload_slower_than_the_response_timeout_completes() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream).with("PROXY_UPSTREAM_TIMEOUT", "3")).await;
    let total = 5_000_000;
    let reply = send(
        proxy
            .post("/api/uploads")
            .bearer_auth(valid_token(key_a()))
            .header("content-length", total.to_string())
            .body(trickle(total, 100_000)),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = upstream.last();
    assert_eq!(seen.body_len, total);
    assert_eq!(
        seen.body_sha256,
        sha256_hex(&support::upstream::pattern(total))
    );
}

/// The same kind without a length: a chunked upload slower than the
/// response timeout, then an app that answers within it.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_chunked_upload_completes_and_the_timeout_counts_from_its_end() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream).with("PROXY_UPSTREAM_TIMEOUT", "2")).await;
    upstream.set_delay(Duration::from_millis(500));
    let reply = send(
        proxy
            .post("/api/uploads")
            .bearer_auth(valid_token(key_a()))
            .body(trickle(600_000, 20_000)),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(upstream.last().body_len, 600_000);
    // And the response timeout still bounds a slow app once the body is in.
    upstream.set_delay(Duration::from_secs(4));
    let reply = send(
        proxy
            .post("/api/uploads")
            .bearer_auth(valid_token(key_a()))
            .body("small"),
    )
    .await;
    assert_eq!(reply.status, 504);
}

/// Early answers from the proxy (401 without a token, 400 for two
/// credentials) to uploads of several MB: every try gets its status; no
/// reset, ever. The proxy reads at most a bounded drain of each body.
#[tokio::test(flavor = "multi_thread")]
async fn early_refusals_of_large_uploads_reach_the_client_intact() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    let body = Bytes::from(vec![b'x'; 4 * 1024 * 1024]);
    let mut failures = Vec::new();
    for attempt in 0..200 {
        let request = if attempt % 2 == 0 {
            proxy.post("/api/uploads")
        } else {
            proxy
                .post("/api/uploads")
                .header("authorization", "Bearer a")
                .header("authorization", "Bearer b")
        };
        // A fresh connection each time: the refusal closes it.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        let request = request.build().expect("request");
        let mut fresh = client.request(request.method().clone(), request.url().clone());
        for (name, value) in request.headers() {
            fresh = fresh.header(name, value);
        }
        match fresh.body(body.clone()).send().await {
            Ok(response) => {
                let expected = if attempt % 2 == 0 { 401 } else { 400 };
                if response.status() != expected {
                    failures.push(format!("try {attempt}: status {}", response.status()));
                }
            }
            Err(err) => failures.push(format!("try {attempt}: {err:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 200 failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(upstream.count(), 0, "a refused upload reached the app");
}
