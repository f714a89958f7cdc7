//! The worker's promises: a killed job comes back and completes once, a job
//! failing every attempt ends failed (and in the dead-letter queue on SQS),
//! a panic fails only its job, bad data fails without retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use retainwise_app::domain::PredictionId;
use retainwise_app::queue::db::DbQueue;
use retainwise_app::scoring::churn::Churn;
use retainwise_app::storage::upload_key;

use crate::both_backends;
use crate::helpers::{
    Backend, Hanging, Options, PanicsOnMarker, RejectsData, TestApp, customers_csv, eventually,
    spawn_app_with,
};

both_backends!(
    a_job_whose_worker_is_killed_comes_back_and_completes_once,
    a_job_failing_every_attempt_ends_failed_and_dead_lettered,
    a_panicking_job_is_failed_and_the_worker_goes_on,
    bad_data_fails_the_prediction_without_retry,
    a_stopping_worker_releases_its_unfinished_job,
);

fn churn() -> Churn {
    Churn::shipped().expect("model")
}

fn no_worker() -> Options {
    Options {
        with_worker: false,
        ..Options::default()
    }
}

async fn a_job_whose_worker_is_killed_comes_back_and_completes_once(backend: Backend) {
    let options = Options {
        lease_secs: 2,
        ..no_worker()
    };
    let app = spawn_app_with(backend, options).await;
    let id = app.upload_ok("user_a", customers_csv(50)).await;

    let release = Arc::new(AtomicBool::new(false));
    let doomed = app.start_worker(Arc::new(Hanging {
        inner: churn(),
        release: release.clone(),
    }));
    app.wait_for("user_a", &id, "running").await;
    doomed.abort(); // the worker dies mid-job: no ack, no more lease renewals

    let healthy = app.start_worker(Arc::new(churn()));
    let done = app.wait_for("user_a", &id, "completed").await;
    release.store(true, Ordering::SeqCst);
    assert_eq!(done["rows"], 50, "counted once");
    let text = app
        .get(Some("user_a"), &format!("/api/predictions/{id}/download"))
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(
        text.lines().count(),
        51,
        "one header and each customer once"
    );
    let record = app
        .services
        .db
        .prediction(PredictionId::parse(&id).expect("id"))
        .await
        .expect("db")
        .expect("exists");
    assert_eq!(record.attempts, 2, "the second delivery completed it");
    assert_queue_drained(&app).await;
    healthy.abort();
}

async fn a_job_failing_every_attempt_ends_failed_and_dead_lettered(backend: Backend) {
    let options = Options {
        max_attempts: 2,
        ..no_worker()
    };
    let app = spawn_app_with(backend, options).await;
    let id = app.upload_ok("user_a", customers_csv(5)).await;
    // The upload vanishes from storage: every attempt fails to read it.
    let list: serde_json::Value = app
        .get(Some("user_a"), "/api/uploads")
        .await
        .json()
        .await
        .expect("json");
    let upload_id =
        retainwise_app::domain::UploadId::parse(list[0]["id"].as_str().expect("id")).expect("uuid");
    app.services
        .storage
        .delete(&upload_key(upload_id))
        .await
        .expect("delete");
    app.start_worker(Arc::new(churn()));

    let failed = app.wait_for("user_a", &id, "failed").await;
    let error = failed["error"].as_str().expect("error");
    assert!(error.contains("after 2 attempts"), "{error}");
    match backend {
        Backend::Embedded => {
            let queue = DbQueue::new(app.services.db.clone(), std::time::Duration::from_secs(30));
            let dead = queue.dead_jobs().await.expect("dead jobs");
            assert_eq!(dead, vec![PredictionId::parse(&id).expect("id")]);
        }
        Backend::Production => {
            let sqs = app.sqs.clone().expect("sqs");
            let dlq = app.dead_letter_url.clone().expect("dlq");
            let found = Arc::new(std::sync::Mutex::new(None));
            eventually("the message reaches the dead-letter queue", || {
                let (sqs, dlq, found) = (sqs.clone(), dlq.clone(), found.clone());
                async move {
                    let out = sqs
                        .receive_message()
                        .queue_url(&dlq)
                        .wait_time_seconds(1)
                        .send()
                        .await
                        .expect("receive");
                    if let Some(m) = out.messages().first() {
                        *found.lock().expect("lock") = m.body().map(str::to_owned);
                        true
                    } else {
                        false
                    }
                }
            })
            .await;
            assert_eq!(found.lock().expect("lock").as_deref(), Some(id.as_str()));
        }
    }
}

async fn a_panicking_job_is_failed_and_the_worker_goes_on(backend: Backend) {
    let app = spawn_app_with(backend, no_worker()).await;
    let poisoned = app
        .upload_ok("user_a", customers_csv(3).replace("C0000001", "PANIC01"))
        .await;
    let fine = app.upload_ok("user_a", customers_csv(3)).await;
    app.start_worker(Arc::new(PanicsOnMarker(churn())));
    let failed = app.wait_for("user_a", &poisoned, "failed").await;
    assert!(
        failed["error"]
            .as_str()
            .expect("error")
            .contains("panicked"),
        "{failed}"
    );
    app.wait_for("user_a", &fine, "completed").await;
    assert_queue_drained(&app).await;
}

async fn bad_data_fails_the_prediction_without_retry(backend: Backend) {
    let app = spawn_app_with(backend, no_worker()).await;
    let id = app.upload_ok("user_a", customers_csv(3)).await;
    app.start_worker(Arc::new(RejectsData(churn())));
    let failed = app.wait_for("user_a", &id, "failed").await;
    let error = failed["error"].as_str().expect("error");
    assert!(
        error.contains("row 2") && error.contains("column tenure"),
        "{error}"
    );
    let record = app
        .services
        .db
        .prediction(PredictionId::parse(&id).expect("id"))
        .await
        .expect("db")
        .expect("exists");
    assert_eq!(record.attempts, 1, "not retried");
    assert_queue_drained(&app).await;
}

/// No job is left waiting (table queue) or visible/in flight (SQS).
async fn assert_queue_drained(app: &TestApp) {
    match app.backend {
        Backend::Embedded => {
            let queue = DbQueue::new(app.services.db.clone(), std::time::Duration::from_secs(30));
            eventually("the job is acknowledged", || {
                let queue = queue.clone();
                async move { queue.pending().await.expect("pending") == 0 }
            })
            .await;
        }
        Backend::Production => {
            use aws_sdk_sqs::types::QueueAttributeName::{
                ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible,
            };
            let sqs = app.sqs.clone().expect("sqs");
            let url = match &app.settings.queue {
                retainwise_app::settings::QueueSetting::Sqs(url) => url.clone(),
                other => panic!("production tests use SQS, not {other:?}"),
            };
            eventually("the message is deleted", || {
                let (sqs, url) = (sqs.clone(), url.clone());
                async move {
                    let out = sqs
                        .get_queue_attributes()
                        .queue_url(&url)
                        .attribute_names(ApproximateNumberOfMessages)
                        .attribute_names(ApproximateNumberOfMessagesNotVisible)
                        .send()
                        .await
                        .expect("attributes");
                    let attrs = out.attributes().expect("attributes");
                    attrs.get(&ApproximateNumberOfMessages).map(String::as_str) == Some("0")
                        && attrs
                            .get(&ApproximateNumberOfMessagesNotVisible)
                            .map(String::as_str)
                            == Some("0")
                }
            })
            .await;
        }
    }
}

async fn a_stopping_worker_releases_its_unfinished_job(backend: Backend) {
    // A long lease: the job can only come back this fast if it is released.
    let options = Options {
        lease_secs: 600,
        ..no_worker()
    };
    let app = spawn_app_with(backend, options).await;
    let id = app.upload_ok("user_a", customers_csv(10)).await;
    let release = Arc::new(AtomicBool::new(false));
    let (stop, stopping) = app.start_stoppable_worker(Arc::new(Hanging {
        inner: churn(),
        release: release.clone(),
    }));
    app.wait_for("user_a", &id, "running").await;
    stop.send(true).expect("worker listening");
    stopping
        .await
        .expect("the worker exits after its grace period");

    app.start_worker(Arc::new(churn()));
    let done = app.wait_for("user_a", &id, "completed").await;
    release.store(true, Ordering::SeqCst);
    assert_eq!(done["rows"], 10);
    assert_queue_drained(&app).await;
}
