//! Where the app keeps its data in a test.
//!
//! - [`Backend::Embedded`]: a SQLite file, local files and the table queue
//!   in a scratch directory: the one-machine defaults ([`embedded_env`]).
//! - [`Backend::Production`]: a new PostgreSQL database, S3 bucket and SQS
//!   queue with a dead-letter queue, per test, on the services
//!   `scripts/services.sh` starts (`Production`, features `postgres` and
//!   `aws`). Without their variables the test fails, naming the script: it
//!   is never skipped.
//!
//! The variables set are the app's settings (DESIGN.md §3: `DATABASE_URL`,
//! `STORAGE_URL`, `QUEUE_URL`, `AWS_ENDPOINT_URL`).

use std::path::Path;

/// Which backends a test's app uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Production,
}

/// A variable `scripts/services.sh` exports; the test fails without it.
pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the production-backend tests need PostgreSQL and moto; run \
             them with scripts/test.sh (it starts both via scripts/services.sh), or \
             `scripts/services.sh start && source .dev/services/env` first"
        )
    })
}

/// The app's settings for the embedded backends, all inside `dir`.
pub fn embedded_env(dir: &Path) -> Vec<(String, String)> {
    vec![
        (
            "DATABASE_URL".to_owned(),
            format!("sqlite://{}/app.db", dir.display()),
        ),
        (
            "STORAGE_URL".to_owned(),
            format!("file://{}/objects", dir.display()),
        ),
        ("QUEUE_URL".to_owned(), "db".to_owned()),
    ]
}

/// A fresh name for one test's database, bucket and queue: `t` and 32 hex
/// digits (valid for all three).
pub fn fresh_name() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

/// Creates database `name` through the admin URL (`postgres://…/postgres`)
/// and returns its URL.
#[cfg(feature = "postgres")]
pub async fn create_database(admin_url: &str, name: &str) -> String {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(admin_url)
        .await
        .expect("connect to the test PostgreSQL");
    let sql = format!("CREATE DATABASE \"{name}\"");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .expect("create database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("admin URL ends in /DBNAME");
    format!("{base}/{name}")
}

/// An SQS client for `endpoint` (moto), credentials from the environment,
/// region `us-east-1` unless one is set.
#[cfg(feature = "aws")]
pub async fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(endpoint);
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        loader = loader.region(aws_config::Region::new("us-east-1"));
    }
    aws_sdk_sqs::Client::new(&loader.load().await)
}

/// Creates S3 bucket `name` on moto (a plain `PUT /name`: moto needs no
/// signature).
#[cfg(feature = "aws")]
pub async fn create_bucket(endpoint: &str, name: &str) {
    let status = reqwest::Client::new()
        .put(format!("{endpoint}/{name}"))
        .send()
        .await
        .expect("moto answers")
        .status();
    assert!(status.is_success(), "creating bucket {name}: {status}");
}

/// Creates queue `name` with a dead-letter queue `name-dlq` after
/// `max_receives` receives, as the Terraform does; returns both URLs.
#[cfg(feature = "aws")]
pub async fn create_queues(
    client: &aws_sdk_sqs::Client,
    name: &str,
    max_receives: u32,
) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let dlq = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .expect("create DLQ")
        .queue_url()
        .expect("url")
        .to_owned();
    let arn = client
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("DLQ attributes")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("DLQ ARN");
    let policy = serde_json::json!({
        "deadLetterTargetArn": arn,
        "maxReceiveCount": max_receives.to_string(),
    });
    let queue = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .expect("url")
        .to_owned();
    (queue, dlq)
}

/// One test's production backends: its own database, bucket and queues.
#[cfg(all(feature = "postgres", feature = "aws"))]
#[derive(Debug)]
pub struct Production {
    pub database_url: String,
    /// `s3://NAME/app`.
    pub storage_url: String,
    pub queue_url: String,
    pub dead_letter_url: String,
    /// The moto endpoint (`AWS_ENDPOINT_URL`).
    pub endpoint: String,
    pub sqs: aws_sdk_sqs::Client,
}

#[cfg(all(feature = "postgres", feature = "aws"))]
impl Production {
    /// Creates them on the services named by `RETAINWISE_TEST_DATABASE_URL`
    /// and `RETAINWISE_TEST_AWS_ENDPOINT`; messages go to the dead-letter
    /// queue after `max_receives` receives.
    pub async fn create(max_receives: u32) -> Self {
        let admin = required_env("RETAINWISE_TEST_DATABASE_URL");
        let endpoint = required_env("RETAINWISE_TEST_AWS_ENDPOINT");
        let name = fresh_name();
        let database_url = create_database(&admin, &name).await;
        create_bucket(&endpoint, &name).await;
        let sqs = sqs_client(&endpoint).await;
        let (queue_url, dead_letter_url) = create_queues(&sqs, &name, max_receives).await;
        Self {
            database_url,
            storage_url: format!("s3://{name}/app"),
            queue_url,
            dead_letter_url,
            endpoint,
            sqs,
        }
    }

    /// The app's settings for these backends, with the AWS credentials and
    /// region from this process's environment (for a child process whose
    /// environment is cleared).
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("DATABASE_URL".to_owned(), self.database_url.clone()),
            ("STORAGE_URL".to_owned(), self.storage_url.clone()),
            ("QUEUE_URL".to_owned(), self.queue_url.clone()),
            ("AWS_ENDPOINT_URL".to_owned(), self.endpoint.clone()),
        ];
        for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
            env.push((var.to_owned(), required_env(var)));
        }
        env
    }
}
