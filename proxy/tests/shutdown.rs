//! Graceful shutdown on SIGTERM: `/readyz` turns 503 at once, the data
//! listener stops accepting, in-flight requests finish, the process exits 0.

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_in_flight_requests_and_exits_0() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = std::sync::Arc::new(start_proxy(settings(&jwks, &upstream)).await);
    upstream.set_delay(Duration::from_secs(3));

    let mut in_flight = tokio::task::JoinSet::new();
    for n in 0..4 {
        // A client per request: four connections, each with a request in flight.
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let request = client
            .get(proxy.url(&format!("/api/slow/{n}")))
            .bearer_auth(valid_token(key_a()));
        in_flight.spawn(async move { send(request).await });
    }
    eventually("all four requests reached the upstream", async || {
        upstream.arrived() == 4
    })
    .await;

    proxy.sigterm();

    eventually_within(
        Duration::from_secs(1),
        "/readyz says draining",
        async || match send(proxy.client.get(format!("http://{}/readyz", proxy.admin))).await {
            reply if reply.status == 503 => reply.text().contains("draining"),
            _ => false,
        },
    )
    .await;
    eventually_within(
        Duration::from_secs(2),
        "new connections are refused",
        async || tokio::net::TcpStream::connect(proxy.data).await.is_err(),
    )
    .await;
    // The listener closed while all four requests were still in flight.
    assert!(
        in_flight.try_join_next().is_none(),
        "an in-flight request finished before the listener closed"
    );

    while let Some(reply) = in_flight.join_next().await {
        let reply = reply.expect("request task");
        assert_eq!(
            reply.status,
            200,
            "in-flight request completed: {}",
            reply.text()
        );
    }
    let status = proxy.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "exit status {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_nothing_in_flight_exits_0_promptly() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = start_proxy(settings(&jwks, &upstream)).await;
    assert_eq!(send(proxy.get("/api/health")).await.status, 200);

    proxy.sigterm();

    let status = proxy.wait_exit(Duration::from_secs(3)).await;
    assert_eq!(status.code(), Some(0), "exit status {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_drain_timeout_bounds_how_long_shutdown_waits() {
    let jwks = start_jwks(&[key_a()]).await;
    let upstream = start_upstream().await;
    let proxy = std::sync::Arc::new(
        start_proxy(settings(&jwks, &upstream).with("PROXY_DRAIN_TIMEOUT", "1")).await,
    );
    upstream.set_delay(Duration::from_secs(30));
    let stuck = {
        let request = proxy.get("/api/stuck").bearer_auth(valid_token(key_a()));
        tokio::spawn(async move { request.send().await })
    };
    eventually("the request reached the upstream", async || {
        upstream.arrived() == 1
    })
    .await;

    proxy.sigterm();
    let status = proxy.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "exit status {status}");

    // The proxy exited while the upstream was still holding the request
    // (it answers after 30 s): the drain time, not the request, ended it.
    let stuck = stuck.await.expect("request task");
    assert!(
        stuck.is_err(),
        "the stuck request completed: {:?}",
        stuck.map(|r| r.status())
    );
}
