//! The database: one pool over SQLite (embedded default) or PostgreSQL
//! (production), through sqlx's `Any` driver so every query is written once
//! with `$N` placeholders and tested on both engines. Where the engines
//! differ (row locking) the repository picks the statement by [`Engine`].
//!
//! Migrations live in `app/migrations/{sqlite,postgres}/` and are compiled
//! into the binary; `retainwise-app migrate` and every start apply them.

pub mod predictions;
pub mod uploads;

use std::borrow::Cow;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, ConnectOptions, Executor, SqlSafeStr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub engine: Engine,
}

/// Connections per process: two workers, the HTTP handlers, the lease renewer.
const MAX_CONNECTIONS: u32 = 8;
/// A request waits this long for a connection before answering 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "ingest report",
        include_str!("../../migrations/sqlite/0002_ingest_report.sql"),
    ),
    (
        3,
        "summary",
        include_str!("../../migrations/sqlite/0003_summary.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "ingest report",
        include_str!("../../migrations/postgres/0002_ingest_report.sql"),
    ),
    (
        3,
        "summary",
        include_str!("../../migrations/postgres/0003_summary.sql"),
    ),
];

impl Db {
    /// Connects lazily: the pool opens connections on first use and replaces
    /// broken ones (a restarted database), so a start never races the
    /// database and the app recovers by itself.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let (engine, url) = if url.starts_with("sqlite:") {
            (Engine::Sqlite, sqlite_url(url)?)
        } else {
            (Engine::Postgres, url.to_owned())
        };
        let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(if engine == Engine::Sqlite {
                4
            } else {
                MAX_CONNECTIONS
            })
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(true)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        // WAL lets readers run while the worker writes; the
                        // busy timeout waits out the single writer lock.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy_with(options);
        Ok(Db { pool, engine })
    }

    /// Applies the migrations for this engine.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        let list = match self.engine {
            Engine::Sqlite => SQLITE_MIGRATIONS,
            Engine::Postgres => POSTGRES_MIGRATIONS,
        };
        let migrations = list
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations).run(&self.pool).await
    }

    /// `SELECT 1`: the health check.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

/// A `sqlite:` URL that creates the file (and its folder) when missing.
fn sqlite_url(url: &str) -> Result<String, sqlx::Error> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = rest.split('?').next().unwrap_or_default();
    if !path.is_empty()
        && path != ":memory:"
        && let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| sqlx::Error::Configuration(e.into()))?;
    }
    Ok(if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}

/// Milliseconds since the Unix epoch: how every time is stored.
pub fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

pub fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// RFC 3339 in UTC, for JSON.
pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_missing_files() {
        let dir = retainwise_testkit::TempDir::new();
        let url = format!("sqlite://{}/sub/x.db", dir.path().display());
        let out = sqlite_url(&url).expect("ok");
        assert!(out.ends_with("?mode=rwc"), "{out}");
        assert!(dir.path().join("sub").is_dir());
        assert_eq!(
            sqlite_url("sqlite::memory:?mode=ro").expect("ok"),
            "sqlite::memory:?mode=ro"
        );
    }

    #[test]
    fn times_render_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    }
}
