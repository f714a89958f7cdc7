//! The same chain on the production backends: PostgreSQL, S3 and SQS (moto),
//! started by `scripts/services.sh` (as `scripts/test.sh` does). Without
//! their variables these tests fail, naming `scripts/test.sh`.

mod support;

use support::{Backend, Stack, assert_scored, customers_csv};

#[tokio::test]
async fn postgres_s3_sqs_an_upload_through_the_proxy_is_scored_and_downloaded() {
    let stack = Stack::start(Backend::Production).await;
    let token = stack.token("user_alice");
    let csv = customers_csv(150);

    let prediction = stack.upload_ok(&token, &csv).await;
    let done = stack.wait_completed(&token, &prediction).await;
    assert_eq!(done["rows"], 150, "{done}");
    let download = stack
        .get(
            Some(&token),
            &format!("/api/predictions/{prediction}/download"),
        )
        .await;
    assert_eq!(download.status, 200, "{}", download.text());
    assert_scored(&download.text(), &csv);

    let health = stack.get(None, "/api/health").await;
    assert_eq!(health.status, 200, "{}", health.text());
}

#[tokio::test]
async fn postgres_s3_sqs_users_are_isolated_and_bad_tokens_stop_at_the_proxy() {
    let stack = Stack::start(Backend::Production).await;
    let alice = stack.token("user_alice");
    let bob = stack.token("user_bob");
    let prediction = stack.upload_ok(&bob, &customers_csv(10)).await;
    stack.wait_completed(&bob, &prediction).await;

    for path in [
        format!("/api/predictions/{prediction}"),
        format!("/api/predictions/{prediction}/download"),
    ] {
        let reply = support::send(
            stack
                .client
                .get(stack.url(&path))
                .bearer_auth(&alice)
                .header("X-User-Id", "user_bob"),
        )
        .await;
        assert_eq!(reply.status, 404, "alice gets {path}: {}", reply.text());
    }
    let list = support::send(
        stack
            .client
            .get(stack.url("/api/uploads"))
            .bearer_auth(&alice)
            .header("X-User-Id", "user_bob"),
    )
    .await;
    assert_eq!(list.json(), serde_json::json!([]));

    // Bad tokens naming bob in X-User-Id: had the request reached the app,
    // it would have answered 200 with bob's file. The proof that the proxy
    // stopped it is the proxy's own answer and the app never seeing it.
    let expired = support::expired_token(support::key_a(), "user_bob");
    let forged = support::forged_token(support::key_a(), support::foreign_key(), "user_bob");
    let mut ids = Vec::new();
    for (token, error) in [
        (None, "missing_token"),
        (Some(expired.as_str()), "invalid_token"),
        (Some(forged.as_str()), "invalid_token"),
    ] {
        let request_id = format!("e2e-{}", uuid::Uuid::new_v4().simple());
        let mut request = stack
            .client
            .get(stack.url(&format!("/api/predictions/{prediction}/download")))
            .header("X-User-Id", "user_bob")
            .header("x-request-id", &request_id);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let reply = support::send(request).await;
        assert_eq!(reply.status, 401, "{error}: {}", reply.text());
        assert_eq!(reply.error(), error, "the proxy's error, not the app's");
        assert!(
            reply
                .header("www-authenticate")
                .is_some_and(|c| c.starts_with("Bearer realm=\"retainwise\"")),
            "{error}: the proxy's Bearer challenge"
        );
        stack.proxy_logged(&request_id).await;
        ids.push(request_id);
    }
    stack.assert_app_never_saw(&ids).await;
    stack.assert_logs_never_contain(&expired);
    stack.assert_logs_never_contain(&forged);
}
