//! `spawn_app()`: the app on port 0 with fresh backends per test.
//!
//! - `Backend::Embedded`: SQLite file + local files + table queue, in a temp dir.
//! - `Backend::Production`: a new PostgreSQL database, S3 bucket and SQS
//!   queue (with a dead-letter queue) on the services `scripts/services.sh`
//!   starts. Without them these tests fail, naming `scripts/test.sh`.
//!
//! The backends, waiting and sample CSVs are `retainwise_testkit`'s; this
//! file adds what only the app's in-process tests need.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use retainwise_app::scoring::churn::Churn;
use retainwise_app::scoring::{FileScorer, ScoringError, Summary};
use retainwise_app::settings::Settings;
use retainwise_app::startup::{Server, Services};
use retainwise_testkit::TempDir;
use retainwise_testkit::backends::{Production, embedded_env};
use retainwise_testkit::wait::{SLOW, wait_for};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use retainwise_testkit::backends::{Backend, required_env};
pub use retainwise_testkit::eventually;
pub use retainwise_testkit::telco::customers_csv;

#[derive(Debug, Clone)]
pub struct Options {
    pub with_worker: bool,
    pub max_upload_bytes: u64,
    pub max_attempts: u32,
    pub lease_secs: u64,
    pub retry_base_secs: u64,
    /// Overrides `DATABASE_URL` (the restart test's own cluster).
    pub database_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            with_worker: true,
            max_upload_bytes: 10 * 1024 * 1024,
            max_attempts: 3,
            lease_secs: 30,
            retry_base_secs: 0,
            database_url: None,
        }
    }
}

#[derive(Debug)]
pub struct TestApp {
    pub backend: Backend,
    pub base: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    pub services: Services,
    pub dead_letter_url: Option<String>,
    pub sqs: Option<aws_sdk_sqs::Client>,
    shutdown: watch::Sender<bool>,
    worker: Option<JoinHandle<()>>,
    _dir: TempDir,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Options::default()).await
}

pub async fn spawn_app_with(backend: Backend, options: Options) -> TestApp {
    let dir = TempDir::new();
    let mut env: HashMap<String, String> = [
        ("APP_LISTEN", "127.0.0.1:0".to_owned()),
        ("APP_METRICS_LISTEN", "off".to_owned()),
        ("APP_MAX_UPLOAD_BYTES", options.max_upload_bytes.to_string()),
        ("APP_JOB_MAX_ATTEMPTS", options.max_attempts.to_string()),
        ("APP_JOB_LEASE_SECS", options.lease_secs.to_string()),
        (
            "APP_JOB_RETRY_BASE_SECS",
            options.retry_base_secs.to_string(),
        ),
        ("APP_QUEUE_POLL_MS", "100".to_owned()),
        ("APP_SQS_WAIT_SECS", "1".to_owned()),
        ("APP_SHUTDOWN_GRACE_SECS", "1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut dead_letter_url = None;
    let mut sqs = None;
    match backend {
        Backend::Embedded => env.extend(embedded_env(dir.path())),
        Backend::Production => {
            let production = Production::create(options.max_attempts).await;
            env.extend(production.env());
            dead_letter_url = Some(production.dead_letter_url);
            sqs = Some(production.sqs);
        }
    }
    if let Some(url) = &options.database_url {
        env.insert("DATABASE_URL".to_owned(), url.clone());
    }
    let settings = Settings::from_lookup(|k| env.get(k).cloned()).expect("test settings are valid");
    let services = Services::connect(&settings)
        .await
        .expect("backing services connect");
    let scorer: Arc<dyn FileScorer> = Arc::new(Churn::shipped().expect("shipped model loads"));
    let server = Server::bind(&settings, &services, scorer.clone())
        .await
        .expect("bind");
    let base = format!("http://{}", server.local_addr());
    let (shutdown, rx) = watch::channel(false);
    tokio::spawn(server.run(rx));
    let mut app = TestApp {
        backend,
        base,
        client: reqwest::Client::new(),
        settings,
        services,
        dead_letter_url,
        sqs,
        shutdown,
        worker: None,
        _dir: dir,
    };
    if options.with_worker {
        app.worker = Some(app.start_worker(scorer));
    }
    app
}

impl TestApp {
    pub fn start_worker(&self, scorer: Arc<dyn FileScorer>) -> JoinHandle<()> {
        let worker = self.services.worker(&self.settings, scorer);
        tokio::spawn(worker.run(self.shutdown.subscribe()))
    }

    /// A worker with its own stop signal (the app keeps serving).
    pub fn start_stoppable_worker(
        &self,
        scorer: Arc<dyn FileScorer>,
    ) -> (watch::Sender<bool>, JoinHandle<()>) {
        let (stop, rx) = watch::channel(false);
        let worker = self.services.worker(&self.settings, scorer);
        (stop, tokio::spawn(worker.run(rx)))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn upload(&self, user: &str, csv: impl Into<String>) -> reqwest::Response {
        self.client
            .post(self.url("/api/uploads?filename=customers.csv"))
            .header("x-user-id", user)
            .header("content-type", "text/csv")
            .body(csv.into())
            .send()
            .await
            .expect("request sent")
    }

    /// Uploads and returns the prediction id, asserting 202.
    pub async fn upload_ok(&self, user: &str, csv: impl Into<String>) -> String {
        let response = self.upload(user, csv).await;
        assert_eq!(response.status(), 202, "{:?}", response.text().await);
        let body: Value = response.json().await.expect("json");
        body["prediction_id"]
            .as_str()
            .expect("prediction_id")
            .to_owned()
    }

    pub async fn get(&self, user: Option<&str>, path: &str) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(user) = user {
            request = request.header("x-user-id", user);
        }
        request.send().await.expect("request sent")
    }

    pub async fn prediction(&self, user: &str, id: &str) -> Value {
        let response = self
            .get(Some(user), &format!("/api/predictions/{id}"))
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("json")
    }

    /// Polls until the prediction reaches `status` (a bound, not a timing
    /// assertion: the test fails only if it never gets there).
    pub async fn wait_for(&self, user: &str, id: &str, status: &str) -> Value {
        let what = format!("prediction {id} is {status}");
        wait_for(SLOW, &what, async || {
            let seen = self.prediction(user, id).await;
            if seen["status"] == status {
                Ok(seen)
            } else {
                Err(seen.to_string())
            }
        })
        .await
    }

    /// Every object key in storage.
    pub async fn objects(&self) -> Vec<String> {
        self.services.storage.list("").await.expect("list storage")
    }

    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(worker) = self.worker.take() {
            worker.await.expect("worker ends cleanly");
        }
    }
}

/// The churn model, but the first `score` hangs until released: a worker
/// that is "killed" mid-job. Released at the end so the runtime can stop.
#[derive(Debug)]
pub struct Hanging {
    pub inner: Churn,
    pub release: Arc<AtomicBool>,
}

impl FileScorer for Hanging {
    fn validate(&self, input: &mut dyn Read) -> Result<u64, ScoringError> {
        self.inner.validate(input)
    }
    fn score(&self, _: &mut dyn Read, _: &mut dyn Write) -> Result<Summary, ScoringError> {
        while !self.release.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(ScoringError::Io(std::io::Error::other("killed")))
    }
}

/// Panics on files that contain `PANIC`, scores the rest.
#[derive(Debug)]
pub struct PanicsOnMarker(pub Churn);

impl FileScorer for PanicsOnMarker {
    fn validate(&self, input: &mut dyn Read) -> Result<u64, ScoringError> {
        self.0.validate(input)
    }
    fn score(&self, input: &mut dyn Read, output: &mut dyn Write) -> Result<Summary, ScoringError> {
        let mut text = String::new();
        input.read_to_string(&mut text)?;
        assert!(!text.contains("PANIC"), "scorer hit the PANIC marker");
        self.0.score(&mut text.as_bytes(), output)
    }
}

/// Validates like the model, then rejects the data when scoring (a file
/// stored before a stricter model shipped).
#[derive(Debug)]
pub struct RejectsData(pub Churn);

impl FileScorer for RejectsData {
    fn validate(&self, input: &mut dyn Read) -> Result<u64, ScoringError> {
        self.0.validate(input)
    }
    fn score(&self, _: &mut dyn Read, _: &mut dyn Write) -> Result<Summary, ScoringError> {
        Err(ScoringError::Data(
            "row 2 (line 3), column tenure: \"x\" is not a number".into(),
        ))
    }
}
