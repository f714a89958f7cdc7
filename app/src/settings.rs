//! Settings: every one read from the environment, each default a named
//! constant with the reason for it. All problems are collected and reported
//! together, so one failed start shows every mistake.
//!
//! | environment | default |
//! |---|---|
//! | `APP_LISTEN` | `127.0.0.1:3000` |
//! | `APP_ALLOW_NON_LOOPBACK` | `false` |
//! | `APP_METRICS_LISTEN` | `127.0.0.1:9100` (`off` disables) |
//! | `DATABASE_URL` | `sqlite://data/retainwise.db` |
//! | `STORAGE_URL` | `file://data/objects` |
//! | `QUEUE_URL` | `db` |
//! | `AWS_ENDPOINT_URL` | unset |
//! | `APP_MAX_UPLOAD_BYTES` | 536870912 (512 MiB) |
//! | `APP_WORKER_CONCURRENCY` | 2 |
//! | `APP_JOB_MAX_ATTEMPTS` | 3 |
//! | `APP_JOB_LEASE_SECS` | 60 |
//! | `APP_JOB_RETRY_BASE_SECS` | 5 |
//! | `APP_QUEUE_POLL_MS` | 500 |
//! | `APP_SQS_WAIT_SECS` | 20 |
//! | `APP_SHUTDOWN_GRACE_SECS` | 25 |
//! | `APP_CLERK_PUBLISHABLE_KEY` | unset (when set, the pages sign in with ClerkJS) |
//! | `APP_SIGN_IN_URL` | unset (a local sign-in page, such as `retainwise-dev sign-in`) |

use std::net::SocketAddr;
use std::time::Duration;

/// Loopback only: anything that reaches the app can claim to be anyone, so
/// only the proxy beside it (same network namespace) may.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
/// Prometheus scrapes this; loopback by default, production opens it.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9100";
/// One file beside the binary: the whole stack runs on a laptop.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/retainwise.db";
pub const DEFAULT_STORAGE_URL: &str = "file://data/objects";
/// A table in the database: no extra service to run locally.
pub const DEFAULT_QUEUE_URL: &str = "db";
/// 512 MiB: five times the 1,000,000-row benchmark file, far below disk.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 512 * 1024 * 1024;
/// Two jobs at once: scoring is CPU-bound and the task has two cores.
pub const DEFAULT_WORKER_CONCURRENCY: usize = 2;
/// Three tries ride out a restart of the database or a storage hiccup; the
/// SQS redrive policy's `maxReceiveCount` should be the same number.
pub const DEFAULT_JOB_MAX_ATTEMPTS: u32 = 3;
/// A job is handed to another worker this long after its worker stops
/// renewing the lease (renewed every third of it while the job runs).
pub const DEFAULT_JOB_LEASE: Duration = Duration::from_secs(60);
/// First retry delay; doubled each attempt, capped at [`MAX_RETRY_DELAY`].
pub const DEFAULT_JOB_RETRY_BASE: Duration = Duration::from_secs(5);
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);
/// How often the table queue is polled when empty.
pub const DEFAULT_QUEUE_POLL: Duration = Duration::from_millis(500);
/// SQS long polling: the maximum SQS allows, fewest empty receives.
pub const DEFAULT_SQS_WAIT: Duration = Duration::from_secs(20);
/// Below ECS's 30 s stop timeout, so unfinished jobs are released in time.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueSetting {
    /// The `jobs` table in the app's database.
    Db,
    /// An SQS queue URL.
    Sqs(String),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub database_url: String,
    pub storage_url: String,
    pub queue: QueueSetting,
    pub aws_endpoint_url: Option<String>,
    pub max_upload_bytes: u64,
    pub worker: WorkerSettings,
    /// Where the pages send a user without a session.
    pub sign_in: crate::web::SignIn,
}

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub concurrency: usize,
    pub max_attempts: u32,
    pub lease: Duration,
    pub retry_base: Duration,
    pub poll_interval: Duration,
    pub sqs_wait: Duration,
    pub shutdown_grace: Duration,
}

impl WorkerSettings {
    /// Delay before attempt `attempt + 1`: base × 2^(attempt − 1), capped.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.retry_base.saturating_mul(factor).min(MAX_RETRY_DELAY)
    }
}

/// Every problem found in the settings, one line each.
#[derive(Debug, thiserror::Error)]
#[error("invalid settings:\n  {}", .0.join("\n  "))]
pub struct SettingsError(pub Vec<String>);

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `lookup` (tests pass a map, never `set_var`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut errors = Vec::new();
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let listen = parse_or(
            &mut errors,
            "APP_LISTEN",
            get("APP_LISTEN"),
            DEFAULT_LISTEN,
            LOOPBACK,
        );
        let allow_exposed = parse_bool(
            &mut errors,
            "APP_ALLOW_NON_LOOPBACK",
            get("APP_ALLOW_NON_LOOPBACK"),
        );
        if !listen.ip().is_loopback() && !allow_exposed {
            errors.push(format!(
                "APP_LISTEN={listen} is not a loopback address: anything that reaches the app can \
                 claim any X-User-Id; set APP_ALLOW_NON_LOOPBACK=true only if a proxy is the sole way in"
            ));
        }
        let metrics_listen = match get("APP_METRICS_LISTEN").as_deref() {
            Some("off") => None,
            other => Some(parse_or(
                &mut errors,
                "APP_METRICS_LISTEN",
                other.map(str::to_owned),
                DEFAULT_METRICS_LISTEN,
                LOOPBACK,
            )),
        };
        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            errors.push(format!(
                "DATABASE_URL must start with sqlite: or postgres://, got {database_url:?}"
            ));
        }
        let storage_url = get("STORAGE_URL").unwrap_or_else(|| DEFAULT_STORAGE_URL.into());
        if !(storage_url.starts_with("file://") || storage_url.starts_with("s3://")) {
            errors.push(format!(
                "STORAGE_URL must start with file:// or s3://, got {storage_url:?}"
            ));
        }
        let queue = match get("QUEUE_URL").as_deref().unwrap_or(DEFAULT_QUEUE_URL) {
            "db" => QueueSetting::Db,
            url if url.starts_with("https://") || url.starts_with("http://") => {
                QueueSetting::Sqs(url.into())
            }
            other => {
                errors.push(format!(
                    "QUEUE_URL must be `db` or an SQS queue URL, got {other:?}"
                ));
                QueueSetting::Db
            }
        };
        let max_upload_bytes = parse(
            &mut errors,
            "APP_MAX_UPLOAD_BYTES",
            get("APP_MAX_UPLOAD_BYTES"),
            &DEFAULT_MAX_UPLOAD_BYTES.to_string(),
        );
        let concurrency: usize = parse(
            &mut errors,
            "APP_WORKER_CONCURRENCY",
            get("APP_WORKER_CONCURRENCY"),
            &DEFAULT_WORKER_CONCURRENCY.to_string(),
        );
        if concurrency == 0 {
            errors.push("APP_WORKER_CONCURRENCY must be at least 1".into());
        }
        let max_attempts: u32 = parse(
            &mut errors,
            "APP_JOB_MAX_ATTEMPTS",
            get("APP_JOB_MAX_ATTEMPTS"),
            &DEFAULT_JOB_MAX_ATTEMPTS.to_string(),
        );
        if max_attempts == 0 {
            errors.push("APP_JOB_MAX_ATTEMPTS must be at least 1".into());
        }
        let secs = |errors: &mut Vec<String>, key: &str, default: Duration| {
            Duration::from_secs(parse(errors, key, get(key), &default.as_secs().to_string()))
        };
        let lease = secs(&mut errors, "APP_JOB_LEASE_SECS", DEFAULT_JOB_LEASE);
        if lease < Duration::from_secs(1) {
            errors.push("APP_JOB_LEASE_SECS must be at least 1".into());
        }
        let retry_base = secs(
            &mut errors,
            "APP_JOB_RETRY_BASE_SECS",
            DEFAULT_JOB_RETRY_BASE,
        );
        let sqs_wait = secs(&mut errors, "APP_SQS_WAIT_SECS", DEFAULT_SQS_WAIT);
        if sqs_wait > Duration::from_secs(20) {
            errors.push("APP_SQS_WAIT_SECS must be at most 20 (the SQS limit)".into());
        }
        let shutdown_grace = secs(
            &mut errors,
            "APP_SHUTDOWN_GRACE_SECS",
            DEFAULT_SHUTDOWN_GRACE,
        );
        let poll_interval = Duration::from_millis(parse(
            &mut errors,
            "APP_QUEUE_POLL_MS",
            get("APP_QUEUE_POLL_MS"),
            &DEFAULT_QUEUE_POLL.as_millis().to_string(),
        ));
        let sign_in = crate::web::SignIn::from_settings(
            get("APP_CLERK_PUBLISHABLE_KEY").as_deref(),
            get("APP_SIGN_IN_URL").as_deref(),
        )
        .unwrap_or_else(|err| {
            errors.push(err);
            crate::web::SignIn::None
        });
        if !errors.is_empty() {
            return Err(SettingsError(errors));
        }
        Ok(Settings {
            listen,
            metrics_listen,
            database_url,
            storage_url,
            queue,
            aws_endpoint_url: get("AWS_ENDPOINT_URL"),
            max_upload_bytes,
            worker: WorkerSettings {
                concurrency,
                max_attempts,
                lease,
                retry_base,
                poll_interval,
                sqs_wait,
                shutdown_grace,
            },
            sign_in,
        })
    }
}

fn parse<T: std::str::FromStr + Default>(
    errors: &mut Vec<String>,
    key: &str,
    value: Option<String>,
    default: &str,
) -> T
where
    T::Err: std::fmt::Display,
{
    parse_or(errors, key, value, default, T::default())
}

/// Parses `value` (or `default`), recording an error and returning
/// `fallback` when it is malformed.
fn parse_or<T: std::str::FromStr>(
    errors: &mut Vec<String>,
    key: &str,
    value: Option<String>,
    default: &str,
    fallback: T,
) -> T
where
    T::Err: std::fmt::Display,
{
    let raw = value.as_deref().unwrap_or(default).trim().to_owned();
    raw.parse().unwrap_or_else(|e| {
        errors.push(format!("{key}={raw:?}: {e}"));
        fallback
    })
}

const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

fn parse_bool(errors: &mut Vec<String>, key: &str, value: Option<String>) -> bool {
    match value.as_deref().map(str::trim) {
        None => false,
        Some("1" | "true" | "yes") => true,
        Some("0" | "false" | "no") => false,
        Some(other) => {
            errors.push(format!("{key}={other:?}: expected true or false"));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_embedded_stack_on_loopback() {
        let s = settings(&[]).expect("defaults are valid");
        assert_eq!(s.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(s.database_url, "sqlite://data/retainwise.db");
        assert_eq!(s.storage_url, "file://data/objects");
        assert_eq!(s.queue, QueueSetting::Db);
        assert_eq!(s.worker.max_attempts, 3);
    }

    #[test]
    fn a_non_loopback_listener_needs_a_deliberate_setting() {
        let err = settings(&[("APP_LISTEN", "0.0.0.0:3000")]).expect_err("refused");
        assert!(err.to_string().contains("APP_ALLOW_NON_LOOPBACK"), "{err}");
        let s = settings(&[
            ("APP_LISTEN", "0.0.0.0:3000"),
            ("APP_ALLOW_NON_LOOPBACK", "true"),
        ])
        .expect("allowed");
        assert!(!s.listen.ip().is_loopback());
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let err = settings(&[
            ("APP_LISTEN", "nowhere"),
            ("QUEUE_URL", "kafka://x"),
            ("APP_JOB_MAX_ATTEMPTS", "0"),
        ])
        .expect_err("three problems");
        assert_eq!(err.0.len(), 3, "{err}");
    }

    #[test]
    fn sqs_queue_urls_are_recognised() {
        let s =
            settings(&[("QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/1/jobs")]).expect("ok");
        assert!(matches!(s.queue, QueueSetting::Sqs(_)));
    }

    #[test]
    fn retry_delay_doubles_and_caps() {
        let s = settings(&[("APP_JOB_RETRY_BASE_SECS", "2")]).expect("ok");
        assert_eq!(s.worker.retry_delay(1), Duration::from_secs(2));
        assert_eq!(s.worker.retry_delay(3), Duration::from_secs(8));
        assert_eq!(s.worker.retry_delay(30), MAX_RETRY_DELAY);
    }
}
