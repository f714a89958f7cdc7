//! The caller is `X-User-Id`: without it 401; other users' things are 404.

use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, customers_csv, spawn_app};

both_backends!(
    requests_without_a_user_id_are_401,
    another_users_prediction_is_404,
);

async fn requests_without_a_user_id_are_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.upload_ok("user_a", customers_csv(3)).await;
    for path in [
        "/api/uploads".to_owned(),
        format!("/api/predictions/{id}"),
        format!("/api/predictions/{id}/download"),
    ] {
        let response = app.get(None, &path).await;
        assert_eq!(response.status(), 401, "{path}");
        assert_eq!(
            response.json::<Value>().await.expect("json")["error"],
            "unauthenticated"
        );
    }
    let post = app
        .client
        .post(app.url("/api/uploads"))
        .header("content-type", "text/csv")
        .body(customers_csv(3))
        .send()
        .await
        .expect("sent");
    assert_eq!(post.status(), 401);
    let blank = app.get(Some(""), "/api/uploads").await;
    assert_eq!(blank.status(), 401);
    app.stop().await;
}

async fn another_users_prediction_is_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.upload_ok("user_a", customers_csv(3)).await;
    app.wait_for("user_a", &id, "completed").await;
    for path in [
        format!("/api/predictions/{id}"),
        format!("/api/predictions/{id}/download"),
    ] {
        let response = app.get(Some("user_b"), &path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            response.json::<Value>().await.expect("json")["error"],
            "not_found"
        );
    }
    let theirs: Value = app
        .get(Some("user_b"), "/api/uploads")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(theirs, serde_json::json!([]));
    let mine: Value = app
        .get(Some("user_a"), "/api/uploads")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(mine.as_array().expect("array").len(), 1);
    assert_eq!(
        app.get(Some("user_a"), "/api/predictions/not-a-uuid")
            .await
            .status(),
        404
    );
    app.stop().await;
}
