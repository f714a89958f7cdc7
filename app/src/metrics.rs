//! Prometheus metrics, served on their own listener (`APP_METRICS_LISTEN`).
//! Every name starts with `retainwise_app_`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `retainwise_app_http_requests_total` | counter | `status` class (2xx…) |
//! | `retainwise_app_http_request_duration_seconds` | histogram | |
//! | `retainwise_app_uploads_total` | counter | `outcome` (accepted, rejected, too_large, error) |
//! | `retainwise_app_upload_bytes_total` | counter | |
//! | `retainwise_app_jobs_total` | counter | `outcome` (completed, failed, retried, dead_lettered) |
//! | `retainwise_app_job_duration_seconds` | histogram | `outcome` |
//! | `retainwise_app_queue_lag_seconds` | histogram: enqueue to dequeue | |
//! | `retainwise_app_queue_depth` | gauge: jobs waiting for a worker (sampled by the worker) | |
//! | `retainwise_app_queue_oldest_job_age_seconds` | gauge: age of the oldest waiting job, 0 when none (table queue only) | |
//! | `retainwise_app_queue_dead_jobs` | gauge: jobs that used every attempt (table queue only) | |

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often histogram samples are folded into their buckets when nobody
/// scrapes: the exporter's own default (`PrometheusBuilder::upkeep_timeout`).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The recorder's configuration: bucket bounds for every `_seconds`
/// histogram.
pub fn builder() -> PrometheusBuilder {
    let seconds = &[
        0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    ];
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), seconds)
        .expect("buckets are non-empty")
}

/// Folds the histograms' samples into their buckets every `every`, for as
/// long as the runtime runs. The exporter keeps each sample (8 bytes) until
/// then, and without this task only a scrape did it, so an app nobody
/// scraped grew with every request (`metrics-exporter-prometheus`, "Upkeep
/// and maintenance": `build_recorder` leaves this to the caller).
pub fn spawn_upkeep(handle: PrometheusHandle, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            handle.run_upkeep();
        }
    })
}

/// Installs the process-wide recorder once (tests start many apps in one
/// process) and returns the handle that renders it.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = builder().build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder is installed (a host test binary).
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Serves `GET /metrics` on `addr` until the process ends, and keeps the
/// histograms drained between scrapes.
pub async fn serve(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let handle = handle();
    spawn_upkeep(handle.clone(), UPKEEP_INTERVAL);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new().route("/metrics", get(move || async move { handle.render() }));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener failed");
        }
    });
    Ok(bound)
}

pub fn http_request(status: u16, elapsed: Duration) {
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::counter!("retainwise_app_http_requests_total", "status" => class).increment(1);
    metrics::histogram!("retainwise_app_http_request_duration_seconds")
        .record(elapsed.as_secs_f64());
}

pub fn upload(outcome: &'static str, bytes: u64) {
    metrics::counter!("retainwise_app_uploads_total", "outcome" => outcome).increment(1);
    metrics::counter!("retainwise_app_upload_bytes_total").increment(bytes);
}

pub fn job_finished(outcome: &'static str, elapsed: Duration) {
    metrics::counter!("retainwise_app_jobs_total", "outcome" => outcome).increment(1);
    metrics::histogram!("retainwise_app_job_duration_seconds", "outcome" => outcome)
        .record(elapsed.as_secs_f64());
}

pub fn queue_lag(lag: Duration) {
    metrics::histogram!("retainwise_app_queue_lag_seconds").record(lag.as_secs_f64());
}

/// Sets the queue gauges from one sample; a figure the queue cannot give
/// (`None`) leaves its gauge unset rather than reporting a false zero.
pub fn queue_backlog(backlog: &crate::queue::Backlog) {
    if let Some(waiting) = backlog.waiting {
        metrics::gauge!("retainwise_app_queue_depth").set(waiting as f64);
    }
    if let Some(age) = backlog.oldest_age {
        metrics::gauge!("retainwise_app_queue_oldest_job_age_seconds").set(age.as_secs_f64());
    }
    if let Some(dead) = backlog.dead {
        metrics::gauge!("retainwise_app_queue_dead_jobs").set(dead as f64);
    }
}
