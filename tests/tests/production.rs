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
    assert_eq!(download.status, 200, "{}", download.body);
    assert_scored(&download.body, &csv);

    let health = stack.get(None, "/api/health").await;
    assert_eq!(health.status, 200, "{}", health.body);
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
        let reply = support::stack::send(
            stack
                .client
                .get(stack.url(&path))
                .bearer_auth(&alice)
                .header("X-User-Id", "user_bob"),
        )
        .await;
        assert_eq!(reply.status, 404, "alice gets {path}: {}", reply.body);
    }
    let list = support::stack::send(
        stack
            .client
            .get(stack.url("/api/uploads"))
            .bearer_auth(&alice)
            .header("X-User-Id", "user_bob"),
    )
    .await;
    assert_eq!(list.json(), serde_json::json!([]));

    let expired = support::expired_token(support::key_a(), "user_bob");
    let forged = support::forged_token(support::key_a(), support::foreign_key(), "user_bob");
    for token in [None, Some(expired.as_str()), Some(forged.as_str())] {
        let path = format!("/api/predictions/{prediction}/download");
        assert_eq!(stack.get(token, &path).await.status, 401);
    }
}
