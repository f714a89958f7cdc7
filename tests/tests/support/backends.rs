//! Where the app keeps its data in a test.
//!
//! - `Embedded`: SQLite file, local files, the table queue, in a temp dir:
//!   the one-machine defaults.
//! - `Production`: a new PostgreSQL database, S3 bucket and SQS queue (with
//!   a dead-letter queue) on the services `scripts/services.sh` starts.
//!   Without their variables these tests fail, naming `scripts/test.sh`:
//!   they are never skipped.

use sqlx::Connection;

use super::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Production,
}

/// A variable `scripts/services.sh` exports; the test fails without it.
pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the production-backend end-to-end tests need PostgreSQL and moto; \
             run them with scripts/test.sh (it starts both via scripts/services.sh), or \
             `scripts/services.sh start && source .dev/services/env` first"
        )
    })
}

/// The app's environment for `backend`, with fresh resources. `dir` holds
/// the embedded files.
pub async fn app_env(backend: Backend, dir: &TempDir) -> Vec<(String, String)> {
    let mut env = Vec::new();
    let mut set = |k: &str, v: String| env.push((k.to_owned(), v));
    match backend {
        Backend::Embedded => {
            set(
                "DATABASE_URL",
                format!("sqlite://{}/app.db", dir.path().display()),
            );
            set(
                "STORAGE_URL",
                format!("file://{}/objects", dir.path().display()),
            );
            set("QUEUE_URL", "db".into());
        }
        Backend::Production => {
            let admin = required_env("RETAINWISE_TEST_DATABASE_URL");
            let endpoint = required_env("RETAINWISE_TEST_AWS_ENDPOINT");
            let name = format!("e2e{}", uuid::Uuid::new_v4().simple());
            set("DATABASE_URL", create_database(&admin, &name).await);
            create_bucket(&endpoint, &name).await;
            set("STORAGE_URL", format!("s3://{name}/app"));
            set("QUEUE_URL", create_queue(&endpoint, &name).await);
            set("AWS_ENDPOINT_URL", endpoint);
            for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
                set(var, required_env(var));
            }
        }
    }
    env
}

async fn create_database(admin: &str, name: &str) -> String {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(admin)
        .await
        .expect("connect to the test PostgreSQL");
    let sql = format!("CREATE DATABASE \"{name}\"");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .expect("create database");
    let (base, _) = admin.rsplit_once('/').expect("admin URL ends in /DBNAME");
    format!("{base}/{name}")
}

async fn create_bucket(endpoint: &str, name: &str) {
    let status = reqwest::Client::new()
        .put(format!("{endpoint}/{name}"))
        .send()
        .await
        .expect("moto answers")
        .status();
    assert!(status.is_success(), "creating bucket {name}: {status}");
}

/// A queue with a dead-letter queue after 3 receives (the app's default
/// `APP_JOB_MAX_ATTEMPTS`), as the Terraform creates them.
async fn create_queue(endpoint: &str, name: &str) -> String {
    use aws_sdk_sqs::types::QueueAttributeName;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .load()
        .await;
    let client = aws_sdk_sqs::Client::new(&config);
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
    let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": "3"});
    client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .expect("url")
        .to_owned()
}
