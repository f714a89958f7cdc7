//! The app's HTTP API and worker against real backends. Every test in
//! `both_backends!` runs twice: `embedded::` (SQLite, local files, table
//! queue) and `production::` (PostgreSQL, S3 and SQS on moto).

mod backlog;
mod helpers;
mod ingest;
mod isolation;
mod postgres_restart;
mod summary;
mod uploads;
mod worker;

/// Declares `embedded::NAME` and `production::NAME` for each async
/// `fn NAME(backend: Backend)` in the calling module.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Embedded).await
                }
            )*
        }
        mod production {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Production).await
                }
            )*
        }
    };
}
