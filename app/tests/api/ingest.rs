//! Files as people export them, through the upload API: every fixture of
//! the model's table (`app/churn/tests/data/cases.json`) is accepted and
//! scored with its ingest report, or refused with its exact error and
//! nothing stored; the content types browsers send; hostile shapes.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, customers_csv, spawn_app};

both_backends!(the_ingest_report_is_returned_stored_and_shown);

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("churn/tests/data")
}

fn fixture(file: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(file)).expect("fixture")
}

async fn send(
    app: &crate::helpers::TestApp,
    content_type: &str,
    file: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/uploads?filename={file}")))
        .header("x-user-id", "user_a")
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request sent")
}

async fn the_ingest_report_is_returned_stored_and_shown(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = send(
        &app,
        "text/csv",
        "usd.csv",
        fixture("total-charges-usd.csv"),
    )
    .await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    let report = &body["ingest_report"];
    assert_eq!(
        report["likely_mistakes"],
        serde_json::json!([{"header": "Total Charges (USD)", "looks_like": "TotalCharges"}])
    );
    assert_eq!(report["columns_imputed"]["TotalCharges"], 3);
    let id = body["prediction_id"].as_str().expect("id");
    let done = app.wait_for("user_a", id, "completed").await;
    assert_eq!(
        &done["ingest_report"], report,
        "stored and shown as returned"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_is_scored_or_refused_as_its_case_says() {
    let text = std::fs::read_to_string(data_dir().join("cases.json")).expect("cases.json");
    let cases: Vec<Value> = serde_json::from_str(&text).expect("JSON");
    let app = spawn_app(Backend::Embedded).await;
    let mut failures = Vec::new();
    for case in &cases {
        let file = case["file"].as_str().expect("file");
        let before = app.objects().await.len();
        let response = send(&app, "application/octet-stream", file, fixture(file)).await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        if let Some(want) = case.get("error") {
            if status != 400 || body["message"] != *want {
                failures.push(format!("{file}: {status} {body}, expected 400 {want}"));
            }
            if app.objects().await.len() != before {
                failures.push(format!("{file}: a refused upload was stored"));
            }
            continue;
        }
        if status != 202 {
            failures.push(format!("{file}: {status} {body}"));
            continue;
        }
        let rows = case["rows"].as_u64().expect("rows");
        if body["rows"] != rows {
            failures.push(format!("{file}: {body}"));
        }
        if let Some(Value::Object(want)) = case.get("report") {
            for (key, value) in want {
                if &body["ingest_report"][key] != value {
                    failures.push(format!("{file}: {key} in {body}"));
                }
            }
        }
        let id = body["prediction_id"].as_str().expect("id");
        let done = app.wait_for("user_a", id, "completed").await;
        if done["rows"] != rows {
            failures.push(format!("{file}: the worker scored {done}"));
        }
        if let Some(ids) = case.get("ids") {
            let scored = app
                .get(Some("user_a"), &format!("/api/predictions/{id}/download"))
                .await
                .text()
                .await
                .expect("body");
            let got: Vec<Value> = scored
                .lines()
                .skip(1)
                .map(|l| Value::from(l.split(',').next().expect("id")))
                .collect();
            if &Value::from(got.clone()) != ids {
                failures.push(format!("{file}: ids {got:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_types_browsers_send_for_a_csv_are_judged_by_content() {
    let app = spawn_app(Backend::Embedded).await;
    for content_type in [
        "application/vnd.ms-excel",
        "text/plain; charset=utf-8",
        "application/octet-stream",
        "text/x-csv",
    ] {
        let response = send(&app, content_type, "q3.csv", customers_csv(3).into_bytes()).await;
        assert_eq!(response.status(), 202, "{content_type}");
        let response = send(&app, content_type, "q3.csv", fixture("report.pdf")).await;
        assert_eq!(response.status(), 400, "{content_type}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(
            body["message"],
            "the file appears to be a PDF document, not a CSV; save it as CSV (UTF-8) or .xlsx"
        );
    }
    let response = send(&app, "image/png", "q3.csv", customers_csv(3).into_bytes()).await;
    assert_eq!(response.status(), 415);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_over_one_mib_is_400_naming_its_row() {
    let app = spawn_app(Backend::Embedded).await;
    let mut body = customers_csv(2);
    // Three MiB on one line, no delimiter: refused when the first MiB is read.
    body.push_str(&"x".repeat(3 * 1024 * 1024));
    body.push('\n');
    let response = send(&app, "text/csv", "big.csv", body.into_bytes()).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["message"],
        "row 3 (line 4): the record is longer than 1 MiB; is this a customer file?"
    );
    assert!(app.objects().await.is_empty(), "nothing stored");
    app.stop().await;
}
