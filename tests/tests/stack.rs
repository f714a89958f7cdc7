//! The one-machine stack end to end: an HTTPS JWKS server, the app with
//! its worker on the embedded backends (SQLite, files, table queue), and the
//! proxy in front, all real binaries. Every request goes through the proxy.

mod support;

use std::time::Duration;

use support::{
    Backend, Stack, assert_scored, customers_csv, expired_token, foreign_key, forged_token, key_a,
    key_b,
};

#[tokio::test]
async fn an_upload_through_the_proxy_is_scored_and_downloaded() {
    let stack = Stack::start(Backend::Embedded).await;
    let token = stack.token("user_alice");
    let csv = customers_csv(120);

    let prediction = stack.upload_ok(&token, &csv).await;
    let done = stack.wait_completed(&token, &prediction).await;
    assert_eq!(done["rows"], 120, "{done}");

    let download = stack
        .get(
            Some(&token),
            &format!("/api/predictions/{prediction}/download"),
        )
        .await;
    assert_eq!(download.status, 200, "{}", download.text());
    assert_scored(&download.text(), &csv);

    let uploads = stack.get(Some(&token), "/api/uploads").await;
    assert_eq!(uploads.status, 200);
    assert_eq!(uploads.json()[0]["prediction_id"], prediction.as_str());
}

#[tokio::test]
async fn a_user_cannot_see_another_users_data_even_naming_them_in_x_user_id() {
    let stack = Stack::start(Backend::Embedded).await;
    let alice = stack.token("user_alice");
    let bob = stack.token("user_bob");
    let prediction = stack.upload_ok(&bob, &customers_csv(10)).await;
    let upload_id = stack.get(Some(&bob), "/api/uploads").await.json()[0]["id"]
        .as_str()
        .expect("an upload id")
        .to_owned();
    stack.wait_completed(&bob, &prediction).await;

    for spoof in [None, Some("user_bob")] {
        for path in [
            format!("/api/predictions/{prediction}"),
            format!("/api/predictions/{prediction}/download"),
        ] {
            let mut request = stack.client.get(stack.url(&path)).bearer_auth(&alice);
            if let Some(spoof) = spoof {
                request = request
                    .header("X-User-Id", spoof)
                    .header("x_user_id", spoof);
            }
            let reply = support::send(request).await;
            assert_eq!(
                reply.status,
                404,
                "alice (X-User-Id: {spoof:?}) gets {path}: {}",
                reply.text()
            );
        }
        let mut request = stack
            .client
            .get(stack.url("/api/uploads"))
            .bearer_auth(&alice);
        if let Some(spoof) = spoof {
            request = request.header("X-User-Id", spoof);
        }
        let list = support::send(request).await;
        assert_eq!(list.status, 200);
        assert_eq!(
            list.json(),
            serde_json::json!([]),
            "alice's upload list (X-User-Id: {spoof:?}) shows none of bob's"
        );
        assert!(!list.text().contains(&upload_id));
    }

    // Bob still sees his own.
    let own = stack
        .get(Some(&bob), &format!("/api/predictions/{prediction}"))
        .await;
    assert_eq!(own.status, 200);
}

#[tokio::test]
async fn missing_expired_and_forged_tokens_are_stopped_at_the_proxy() {
    let stack = Stack::start(Backend::Embedded).await;
    let cases = [
        ("no token", None),
        ("expired", Some(expired_token(key_a(), "user_alice"))),
        (
            "forged",
            Some(forged_token(key_a(), foreign_key(), "user_alice")),
        ),
    ];
    let mut ids = Vec::new();
    for (what, token) in &cases {
        for (method, path) in [
            ("GET", "/api/uploads"),
            ("POST", "/api/uploads"),
            (
                "GET",
                "/api/predictions/00000000-0000-0000-0000-000000000000",
            ),
        ] {
            let request_id = format!("e2e-{}", uuid::Uuid::new_v4().simple());
            let mut request = match method {
                "POST" => stack
                    .client
                    .post(stack.url(path))
                    .header("content-type", "text/csv")
                    .body(customers_csv(3)),
                _ => stack.client.get(stack.url(path)),
            }
            .header("x-request-id", &request_id)
            .header("x-user-id", "user_alice");
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let reply = support::send(request).await;
            assert_eq!(
                reply.status,
                401,
                "{what}: {method} {path}: {}",
                reply.text()
            );
            assert!(
                reply
                    .header("www-authenticate")
                    .is_some_and(|c| c.starts_with("Bearer realm=\"retainwise\"")),
                "{what}: a Bearer challenge"
            );
            let expected = if token.is_some() {
                "invalid_token"
            } else {
                "missing_token"
            };
            assert_eq!(reply.json()["error"], expected, "{what}");
            ids.push(request_id);
        }
    }

    for id in &ids {
        stack.proxy_logged(id).await;
    }
    stack.assert_app_never_saw(&ids).await;
    for (_, token) in &cases {
        if let Some(token) = token {
            stack.assert_logs_never_contain(token);
        }
    }
    let uploads = stack
        .get(Some(&stack.token("user_alice")), "/api/uploads")
        .await;
    assert_eq!(
        uploads.json(),
        serde_json::json!([]),
        "no upload got through"
    );
}

#[tokio::test]
async fn health_is_public_and_everything_else_needs_a_token() {
    let stack = Stack::start(Backend::Embedded).await;
    let health = stack.get(None, "/api/health").await;
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json()["status"], "ok");

    for path in [
        "/api/uploads",
        "/api/predictions/00000000-0000-0000-0000-000000000000",
        "/api/predictions/00000000-0000-0000-0000-000000000000/download",
        "/",
        "/api/healthz",
        "/api/health/extra",
    ] {
        let reply = stack.get(None, path).await;
        assert_eq!(
            reply.status,
            401,
            "{path} without a token: {}",
            reply.text()
        );
    }
    let post = support::send(
        stack
            .client
            .post(stack.url("/api/uploads"))
            .header("content-type", "text/csv")
            .body(customers_csv(2)),
    )
    .await;
    assert_eq!(post.status, 401);

    let token = stack.token("user_alice");
    assert_eq!(stack.get(Some(&token), "/api/uploads").await.status, 200);
    assert_eq!(stack.get(Some(&token), "/api/health").await.status, 200);
}

#[tokio::test]
async fn a_key_added_to_the_jwks_during_traffic_works_and_old_tokens_never_fail() {
    let stack = Stack::start(Backend::Embedded).await;
    let old = stack.token("user_old");

    // Steady traffic with the old key for the whole test.
    let traffic = {
        let client = stack.client.clone();
        let url = stack.url("/api/uploads");
        let old = old.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..200 {
                let status = client
                    .get(&url)
                    .bearer_auth(&old)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                statuses.push(status);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            statuses
        })
    };

    // Rotation: the JWKS now lists both keys; the proxy may refetch for an
    // unknown kid once per PROXY_JWKS_MIN_REFRESH_INTERVAL.
    let fetches = stack.jwks.fetches();
    let since_ready = stack.ready_at.elapsed();
    let min = Duration::from_secs(support::stack::MIN_REFRESH_SECS) + Duration::from_millis(200);
    if since_ready < min {
        tokio::time::sleep(min - since_ready).await;
    }
    stack.jwks.serve(&[key_a(), key_b()]);
    let new = support::token(key_b(), "user_new");
    let first = stack.get(Some(&new), "/api/uploads").await;
    assert_eq!(
        first.status,
        200,
        "the first request with the new key is accepted: {}",
        first.text()
    );
    assert!(
        stack.jwks.fetches() > fetches,
        "the proxy refetched the JWKS"
    );

    // The new key can upload and get a result too.
    let csv = customers_csv(20);
    let prediction = stack.upload_ok(&new, &csv).await;
    stack.wait_completed(&new, &prediction).await;

    let statuses = traffic.await.expect("traffic task");
    let failed: Vec<_> = statuses.iter().filter(|s| **s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} old-key requests failed: {failed:?}",
        failed.len(),
        statuses.len()
    );
    assert_eq!(stack.get(Some(&old), "/api/uploads").await.status, 200);
}
