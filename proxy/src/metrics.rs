//! Metric names, descriptions and the Prometheus recorder.
//!
//! Every name starts with `retainwise_proxy_` and follows Prometheus naming
//! (`_total` for counters, base units in the name) so `promtool check
//! metrics` is clean. Labels are few and bounded: status class, not status;
//! reason from a fixed list, never anything the client chose.

use metrics::{
    Counter, Gauge, Histogram, Unit, describe_counter, describe_gauge, describe_histogram,
};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const REQUESTS: &str = "retainwise_proxy_requests_total";
pub const REQUEST_DURATION: &str = "retainwise_proxy_request_duration_seconds";
pub const AUTH_DECISIONS: &str = "retainwise_proxy_auth_decisions_total";
pub const VERIFY_DURATION: &str = "retainwise_proxy_verify_duration_seconds";
pub const JWKS_FETCHES: &str = "retainwise_proxy_jwks_fetches_total";
pub const JWKS_KEYS: &str = "retainwise_proxy_jwks_keys";
pub const JWKS_LAST_SUCCESS_AGE: &str = "retainwise_proxy_jwks_last_success_age_seconds";
pub const JWKS_STALE: &str = "retainwise_proxy_jwks_stale";
pub const JWKS_SKIPPED_KEYS: &str = "retainwise_proxy_jwks_skipped_keys_total";
pub const TOKEN_CACHE_HITS: &str = "retainwise_proxy_token_cache_hits_total";
pub const TOKEN_CACHE_MISSES: &str = "retainwise_proxy_token_cache_misses_total";
pub const UPSTREAM_ERRORS: &str = "retainwise_proxy_upstream_errors_total";
pub const CLIENT_TIMEOUTS: &str = "retainwise_proxy_client_timeouts_total";
pub const CORS_PREFLIGHTS: &str = "retainwise_proxy_cors_preflights_total";
pub const IN_FLIGHT: &str = "retainwise_proxy_in_flight_requests";
pub const PARKED_CONNECTIONS: &str = "retainwise_proxy_parked_connections";
pub const BUILD_INFO: &str = "retainwise_proxy_build_info";

/// Request latencies span sub-millisecond cache hits to minute-long uploads.
const REQUEST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];
/// An RS256 check takes tens of microseconds; a cache hit a few.
const VERIFY_BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.01,
];

/// How often histogram samples are folded into their buckets when nobody
/// scrapes: the exporter's own default (`PrometheusBuilder::upkeep_timeout`).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The recorder's configuration: the histograms' bucket bounds.
///
/// # Errors
/// A bucket list is empty (a programming error), as text.
pub fn builder() -> Result<PrometheusBuilder, String> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_owned()), REQUEST_BUCKETS)
        .and_then(|builder| {
            builder
                .set_buckets_for_metric(Matcher::Full(VERIFY_DURATION.to_owned()), VERIFY_BUCKETS)
        })
        .map_err(|err| err.to_string())
}

/// Folds the histograms' samples into their buckets every `every`, for as
/// long as the runtime runs. The exporter keeps each sample (8 bytes) until
/// then; without this task that happened only on a scrape, so a proxy that
/// nobody scraped (Prometheus down, no admin listener) grew by about 1 MiB
/// a second at 24,000 req/s and kept it (`metrics-exporter-prometheus`,
/// "Upkeep and maintenance": `install_recorder` leaves this to the caller).
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

/// Installs the process-wide recorder and describes every metric. The
/// caller runs [`spawn_upkeep`] on the returned handle.
pub fn install() -> Result<PrometheusHandle, String> {
    let handle = builder()?
        .install_recorder()
        .map_err(|err| err.to_string())?;
    describe();
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    metrics::gauge!(PARKED_CONNECTIONS).set(0.0);
    // Series the alert rules watch exist from the start at 0: Prometheus's
    // increase() cannot see the first event of a series that appears with
    // it, so the first 503s of a fresh proxy would escape the alert.
    metrics::counter!(AUTH_DECISIONS, "result" => "unavailable", "reason" => "keys_unavailable")
        .increment(0);
    for kind in ["connect", "timeout", "other"] {
        metrics::counter!(UPSTREAM_ERRORS, "kind" => kind).increment(0);
    }
    for kind in ["header_read", "idle", "body_idle", "response_write"] {
        metrics::counter!(CLIENT_TIMEOUTS, "kind" => kind).increment(0);
    }
    Ok(handle)
}

fn describe() {
    describe_counter!(
        REQUESTS,
        "Requests answered on the data listener, by status class."
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time from request head to response head on the data listener."
    );
    describe_counter!(
        AUTH_DECISIONS,
        "Authentication decisions by result (allowed, rejected, public, unavailable) and reason."
    );
    describe_histogram!(
        VERIFY_DURATION,
        Unit::Seconds,
        "Time to verify one token, cache hits included."
    );
    describe_counter!(JWKS_FETCHES, "JWKS fetches by result and reason.");
    describe_gauge!(JWKS_KEYS, "Usable keys in the current key set.");
    describe_gauge!(
        JWKS_LAST_SUCCESS_AGE,
        Unit::Seconds,
        "Seconds since the key set was last fetched successfully."
    );
    describe_gauge!(
        JWKS_STALE,
        "1 while the last fetch failed and older keys are still being served."
    );
    describe_counter!(JWKS_SKIPPED_KEYS, "JWKS entries skipped as unusable.");
    describe_counter!(
        TOKEN_CACHE_HITS,
        "Tokens found in the verified-token cache."
    );
    describe_counter!(
        TOKEN_CACHE_MISSES,
        "Tokens verified with RSA because they were not cached."
    );
    describe_counter!(
        UPSTREAM_ERRORS,
        "Failed upstream exchanges by kind (connect, timeout, other)."
    );
    describe_counter!(
        CLIENT_TIMEOUTS,
        "Client connections and requests cut by a time limit, by kind (header_read, idle, body_idle, response_write)."
    );
    describe_counter!(
        CORS_PREFLIGHTS,
        "CORS preflight requests answered by the proxy, by result (allowed, refused)."
    );
    describe_gauge!(IN_FLIGHT, "Requests being handled on the data listener.");
    describe_gauge!(
        PARKED_CONNECTIONS,
        "Idle HTTP/1.1 client connections parked without their buffers."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the version label says which build runs."
    );
}

/// The status class label: bounded, unlike the status itself.
pub fn status_class(status: http::StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Handles for the metrics every request touches, registered once: the
/// macros look the key up in the registry (and allocate its labels) on
/// every call, which shows up in profiles at tens of thousands of requests
/// per second.
#[derive(Debug)]
pub struct HotMetrics {
    pub in_flight: Gauge,
    pub request_duration: Histogram,
    requests_by_class: [Counter; 5],
    pub allowed: Counter,
    pub public: Counter,
    pub verify_duration: Histogram,
    pub token_cache_hits: Counter,
    pub token_cache_misses: Counter,
}

impl HotMetrics {
    /// Registers with the installed recorder (a no-op one before install).
    pub fn register() -> Self {
        let class = |label: &'static str| metrics::counter!(REQUESTS, "status_class" => label);
        HotMetrics {
            in_flight: metrics::gauge!(IN_FLIGHT),
            request_duration: metrics::histogram!(REQUEST_DURATION),
            requests_by_class: [
                class("1xx"),
                class("2xx"),
                class("3xx"),
                class("4xx"),
                class("5xx"),
            ],
            allowed: metrics::counter!(AUTH_DECISIONS, "result" => "allowed", "reason" => "valid_token"),
            public: metrics::counter!(AUTH_DECISIONS, "result" => "public", "reason" => "public_path"),
            verify_duration: metrics::histogram!(VERIFY_DURATION),
            token_cache_hits: metrics::counter!(TOKEN_CACHE_HITS),
            token_cache_misses: metrics::counter!(TOKEN_CACHE_MISSES),
        }
    }

    pub fn requests(&self, status: http::StatusCode) -> &Counter {
        let index = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        &self.requests_by_class[index]
    }
}
