//! `GET /api/predictions/{id}/summary`: the worker's summary, served from
//! the database without touching the result object; computed once from the
//! result for a prediction completed before summaries existed; 409 until
//! completed, 404 for another user's. And the uploads list's `high_risk`.

use retainwise_app::domain::PredictionId;
use retainwise_app::storage::result_key;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, Options, TestApp, customers_csv, spawn_app, spawn_app_with};

both_backends!(
    the_summary_is_served_without_the_result_object,
    a_summary_from_before_summaries_is_computed_once_from_the_result,
    the_summary_is_409_until_completed_and_404_for_anyone_else,
);

const CUSTOMERS: usize = 400;

async fn summary(app: &TestApp, user: &str, id: &str) -> reqwest::Response {
    app.get(Some(user), &format!("/api/predictions/{id}/summary"))
        .await
}

/// A 200 summary, with the headers the route promises.
async fn summary_ok(app: &TestApp, id: &str) -> Value {
    let response = summary(app, "user_a", id).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.expect("json")
}

/// The scored CSV's rows, split (customer_id, probability, level, factors).
async fn download(app: &TestApp, id: &str) -> Vec<Vec<String>> {
    let response = app
        .get(Some("user_a"), &format!("/api/predictions/{id}/download"))
        .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    text.lines()
        .skip(1)
        .map(|line| line.split(',').map(str::to_owned).collect())
        .collect()
}

/// Checks a summary against the scored CSV it summarises.
fn assert_summarises(summary: &Value, rows: &[Vec<String>], high_risk: &Value) {
    assert_eq!(summary["customers"], rows.len());
    assert_eq!(&summary["levels"]["high"], high_risk);
    let level = |name: &str| rows.iter().filter(|r| r[2] == name).count();
    for name in ["high", "medium", "low"] {
        assert_eq!(summary["levels"][name], level(name), "{name}");
    }
    let counts = summary["histogram"]["counts"].as_array().expect("counts");
    assert_eq!(counts.len(), 20);
    assert_eq!(
        counts
            .iter()
            .map(|c| c.as_u64().expect("count"))
            .sum::<u64>(),
        rows.len() as u64
    );
    let probability = |r: &Vec<String>| r[1].parse::<f64>().expect("probability");
    let best = rows.iter().map(probability).fold(f64::MIN, f64::max);
    let first = rows
        .iter()
        .position(|r| probability(r) == best)
        .expect("a best row");
    let top = &summary["top_customers"];
    assert_eq!(top.as_array().expect("list").len(), 200);
    assert_eq!(summary["top_customers_limit"], 200);
    assert_eq!(top[0]["churn_probability"], best);
    assert_eq!(top[0]["customer_id"], rows[first][0].as_str());
    assert_eq!(top[0]["row"], first + 1);
    assert_eq!(top[0]["factors"][0], rows[first][3].as_str());
    let thresholds = &summary["thresholds"];
    assert!(thresholds["medium"].as_f64() < thresholds["high"].as_f64());
}

async fn the_summary_is_served_without_the_result_object(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.upload_ok("user_a", customers_csv(CUSTOMERS)).await;
    let done = app.wait_for("user_a", &id, "completed").await;
    let rows = download(&app, &id).await;
    let before = summary_ok(&app, &id).await;
    assert_summarises(&before, &rows, &done["high_risk"]);

    // The result object is gone: the download fails, the summary does not.
    let key = result_key(PredictionId::parse(&id).expect("id"));
    app.services.storage.delete(&key).await.expect("deleted");
    assert!(!app.objects().await.contains(&key));
    let download = app
        .get(Some("user_a"), &format!("/api/predictions/{id}/download"))
        .await;
    assert_ne!(download.status(), 200);
    assert_eq!(summary_ok(&app, &id).await, before);
    app.stop().await;
}

async fn a_summary_from_before_summaries_is_computed_once_from_the_result(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.upload_ok("user_a", customers_csv(CUSTOMERS)).await;
    let done = app.wait_for("user_a", &id, "completed").await;
    let from_worker = summary_ok(&app, &id).await;

    // As if completed before summaries existed.
    let prediction = PredictionId::parse(&id).expect("id");
    app.services
        .db
        .clear_summary(prediction)
        .await
        .expect("cleared");
    assert_eq!(app.services.db.summary(prediction).await.expect("db"), None);
    let computed = summary_ok(&app, &id).await;
    assert_eq!(computed, from_worker, "the same summary as the worker's");
    assert_summarises(&computed, &download(&app, &id).await, &done["high_risk"]);
    let stored = app
        .services
        .db
        .summary(prediction)
        .await
        .expect("db")
        .expect("stored on first request");
    assert_eq!(
        serde_json::from_str::<Value>(&stored).expect("json"),
        from_worker
    );

    // Computed once: without the result object, the stored one is served.
    app.services
        .storage
        .delete(&result_key(prediction))
        .await
        .expect("deleted");
    assert_eq!(summary_ok(&app, &id).await, from_worker);
    app.stop().await;
}

async fn the_summary_is_409_until_completed_and_404_for_anyone_else(backend: Backend) {
    let options = Options {
        with_worker: false,
        ..Options::default()
    };
    let app = spawn_app_with(backend, options).await;
    let id = app.upload_ok("user_a", customers_csv(20)).await;

    let queued = summary(&app, "user_a", &id).await;
    assert_eq!(queued.status(), 409);
    let body: Value = queued.json().await.expect("json");
    assert_eq!(body["error"], "not_ready");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("queued"),
        "{body}"
    );
    let listed: Value = app
        .get(Some("user_a"), "/api/uploads")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed[0]["status"], "queued");
    assert!(listed[0]["high_risk"].is_null(), "{listed}");

    for (user, path) in [
        ("user_b", format!("/api/predictions/{id}/summary")),
        (
            "user_a",
            format!("/api/predictions/{}/summary", PredictionId::new()),
        ),
        ("user_a", "/api/predictions/not-a-uuid/summary".to_owned()),
    ] {
        let response = app.get(Some(user), &path).await;
        assert_eq!(response.status(), 404, "{user} {path}");
        assert_eq!(
            response.json::<Value>().await.expect("json")["error"],
            "not_found"
        );
    }
    assert_eq!(
        app.get(None, &format!("/api/predictions/{id}/summary"))
            .await
            .status(),
        401
    );

    app.start_worker(std::sync::Arc::new(
        retainwise_app::scoring::churn::Churn::shipped().expect("model"),
    ));
    let done = app.wait_for("user_a", &id, "completed").await;
    assert_eq!(summary(&app, "user_b", &id).await.status(), 404);
    let mine = summary_ok(&app, &id).await;
    assert_eq!(mine["customers"], 20);
    let listed: Value = app
        .get(Some("user_a"), "/api/uploads")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed[0]["high_risk"], done["high_risk"]);
    assert_eq!(listed[0]["high_risk"], mine["levels"]["high"]);
    app.stop().await;
}
