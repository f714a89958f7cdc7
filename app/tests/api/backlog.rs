//! The queue's backlog, which the worker samples into the queue gauges
//! (`retainwise_app_queue_depth`, `…_oldest_job_age_seconds`,
//! `…_dead_jobs`): waiting jobs are counted, running ones are not, and
//! jobs that used every attempt are counted as dead. SQS tells the depth
//! only (its CloudWatch metrics carry the rest).

use std::sync::Arc;
use std::time::Duration;

use retainwise_app::queue::Backlog;
use retainwise_app::scoring::churn::Churn;
use retainwise_app::storage::upload_key;

use crate::both_backends;
use crate::helpers::{Backend, Options, TestApp, customers_csv, eventually, spawn_app_with};

both_backends!(the_backlog_counts_waiting_and_dead_jobs_but_not_finished_ones,);

async fn backlog(app: &TestApp) -> Backlog {
    app.services.queue.backlog().await.expect("backlog")
}

async fn the_backlog_counts_waiting_and_dead_jobs_but_not_finished_ones(backend: Backend) {
    let options = Options {
        with_worker: false,
        max_attempts: 1,
        ..Options::default()
    };
    let app = spawn_app_with(backend, options).await;
    let empty = backlog(&app).await;
    assert_eq!(empty.waiting, Some(0), "{empty:?}");
    match backend {
        Backend::Embedded => {
            assert_eq!(empty.oldest_age, Some(Duration::ZERO));
            assert_eq!(empty.dead, Some(0));
        }
        Backend::Production => {
            assert_eq!(
                (empty.oldest_age, empty.dead),
                (None, None),
                "SQS: depth only"
            );
        }
    }

    // Two uploads wait for a worker; the older one's age grows.
    let good = app.upload_ok("user_a", customers_csv(3)).await;
    app.upload_ok("user_a", customers_csv(3)).await;
    eventually("both jobs are counted as waiting", || {
        let app = &app;
        async move { backlog(app).await.waiting == Some(2) }
    })
    .await;
    if backend == Backend::Embedded {
        eventually("the oldest waiting job ages", || {
            let app = &app;
            async move {
                backlog(app)
                    .await
                    .oldest_age
                    .is_some_and(|a| a > Duration::ZERO)
            }
        })
        .await;
    }

    // One upload vanishes from storage, so its only attempt fails; the
    // other completes. Neither waits any more; the failed one is dead.
    let list: serde_json::Value = app
        .get(Some("user_a"), "/api/uploads")
        .await
        .json()
        .await
        .expect("json");
    let newest =
        retainwise_app::domain::UploadId::parse(list[0]["id"].as_str().expect("id")).expect("uuid");
    app.services
        .storage
        .delete(&upload_key(newest))
        .await
        .expect("delete");
    app.start_worker(Arc::new(Churn::shipped().expect("model")));
    app.wait_for("user_a", &good, "completed").await;
    eventually("nothing waits once the worker took both jobs", || {
        let app = &app;
        async move { backlog(app).await.waiting == Some(0) }
    })
    .await;
    if backend == Backend::Embedded {
        eventually("the failed job is counted as dead", || {
            let app = &app;
            async move {
                let b = backlog(app).await;
                b.dead == Some(1) && b.oldest_age == Some(Duration::ZERO)
            }
        })
        .await;
    }
}
