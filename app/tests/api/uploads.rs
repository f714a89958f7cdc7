//! Upload → worker → completed → download, and the uploads that are refused.

use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, Options, customers_csv, spawn_app, spawn_app_with};

both_backends!(
    an_upload_is_scored_and_downloadable,
    a_multipart_upload_is_accepted,
    a_csv_missing_columns_is_400_and_nothing_is_stored,
    a_bad_number_is_400_naming_row_and_column,
    an_oversize_upload_is_413_and_nothing_is_stored,
    download_is_409_until_completed,
    health_answers_without_a_user,
);

async fn an_upload_is_scored_and_downloadable(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.upload("user_a", customers_csv(500)).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "queued");
    let id = body["prediction_id"].as_str().expect("id").to_owned();

    let done = app.wait_for("user_a", &id, "completed").await;
    assert_eq!(done["rows"], 500);
    assert_eq!(done["upload_id"], body["upload_id"]);
    assert!(done["error"].is_null());
    assert!(done["completed_at"].is_string());
    let high = done["high_risk"].as_i64().expect("high_risk");
    assert!(high > 0 && high < 500, "high_risk = {high}");

    let download = app
        .get(Some("user_a"), &format!("/api/predictions/{id}/download"))
        .await;
    assert_eq!(download.status(), 200);
    let disposition = download.headers()["content-disposition"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let text = download.text().await.expect("body");
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    assert!(
        header.starts_with("customer_id,churn_probability,risk_level"),
        "{header}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 500);
    assert!(rows[0].starts_with("C0000000,"));
    let highs = rows
        .iter()
        .filter(|r| r.split(',').nth(2) == Some("high"))
        .count();
    assert_eq!(highs as i64, high, "high_risk matches the file");

    let list: Value = app
        .get(Some("user_a"), "/api/uploads")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list[0]["id"], body["upload_id"]);
    assert_eq!(list[0]["filename"], "customers.csv");
    assert_eq!(list[0]["status"], "completed");
    app.stop().await;
}

async fn a_multipart_upload_is_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let part = reqwest::multipart::Part::text(customers_csv(20)).file_name("q3.csv");
    let form = reqwest::multipart::Form::new()
        .text("note", "ignored")
        .part("file", part);
    let response = app
        .client
        .post(app.url("/api/uploads"))
        .header("x-user-id", "user_a")
        .multipart(form)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    let id = body["prediction_id"].as_str().expect("id");
    assert_eq!(app.wait_for("user_a", id, "completed").await["rows"], 20);
    let list: Value = app
        .get(Some("user_a"), "/api/uploads")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list[0]["filename"], "q3.csv");
    app.stop().await;
}

async fn a_csv_missing_columns_is_400_and_nothing_is_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.upload("user_a", "customerID,gender\nC1,Male\n").await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "bad_csv");
    let message = body["message"].as_str().expect("message");
    for column in ["tenure", "Contract", "MonthlyCharges"] {
        assert!(message.contains(column), "{message}");
    }
    let empty = app.upload("user_a", "").await;
    assert_eq!(empty.status(), 400);
    assert_eq!(app.services.db.count_uploads().await.expect("count"), 0);
    assert_eq!(app.objects().await, Vec::<String>::new());
    app.stop().await;
}

async fn a_bad_number_is_400_naming_row_and_column(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut csv = customers_csv(5);
    csv = csv.replacen(",Electronic check,20.00,", ",Electronic check,lots,", 1);
    let response = app.upload("user_a", csv).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains("row 1") && message.contains("MonthlyCharges"),
        "{message}"
    );
    assert_eq!(app.services.db.count_uploads().await.expect("count"), 0);
    assert_eq!(app.objects().await, Vec::<String>::new());
    app.stop().await;
}

async fn an_oversize_upload_is_413_and_nothing_is_stored(backend: Backend) {
    let options = Options {
        max_upload_bytes: 20_000,
        ..Options::default()
    };
    let app = spawn_app_with(backend, options).await;
    let csv = customers_csv(1000);
    assert!(csv.len() > 20_000);
    let response = app.upload("user_a", csv.clone()).await;
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.json::<Value>().await.expect("json")["error"],
        "too_large"
    );
    // Without Content-Length the limit is enforced while streaming.
    let chunks: Vec<Result<String, std::io::Error>> = csv
        .as_bytes()
        .chunks(4096)
        .map(|c| Ok(String::from_utf8_lossy(c).into_owned()))
        .collect();
    let streamed = app
        .client
        .post(app.url("/api/uploads"))
        .header("x-user-id", "user_a")
        .header("content-type", "text/csv")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("sent");
    assert_eq!(streamed.status(), 413);
    assert_eq!(app.services.db.count_uploads().await.expect("count"), 0);
    assert_eq!(app.objects().await, Vec::<String>::new());
    // A file under the limit still goes through.
    app.upload_ok("user_a", customers_csv(10)).await;
    app.stop().await;
}

async fn download_is_409_until_completed(backend: Backend) {
    let options = Options {
        with_worker: false,
        ..Options::default()
    };
    let app = spawn_app_with(backend, options).await;
    let id = app.upload_ok("user_a", customers_csv(10)).await;
    assert_eq!(app.prediction("user_a", &id).await["status"], "queued");
    let response = app
        .get(Some("user_a"), &format!("/api/predictions/{id}/download"))
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(
        response.json::<Value>().await.expect("json")["error"],
        "not_ready"
    );
    app.stop().await;
}

async fn health_answers_without_a_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get(None, "/api/health").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    let status = retainwise_app::healthcheck::check(&app.url("/api/health"))
        .await
        .expect("healthy");
    assert!(status.contains("200"), "{status}");
    app.stop().await;
}
