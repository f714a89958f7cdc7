//! `Stack::start()`: the whole chain on ports from `127.0.0.1:0`:
//!
//! ```text
//! test ──HTTP──▶ retainwise-proxy ──HTTP──▶ retainwise-app serve --with-worker
//!                  │  ▲ JWKS over HTTPS        │ └─ worker
//!                  │  └── start_jwks()         └─▶ SQLite+files+table queue, or PostgreSQL+S3+SQS
//!                  admin: /readyz, /metrics    app metrics: /metrics
//! ```
//!
//! The proxy verifies tokens against the JWKS server exactly as in
//! production (no other key source). Tests talk to the app only through
//! the proxy; the app's own listener is used only to read its logs.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use retainwise_testkit::backends::{Backend, Production, embedded_env};
use retainwise_testkit::process::Process;
use retainwise_testkit::wait::{SLOW, wait_for};
use retainwise_testkit::{Reply, TempDir, eventually, send};
use serde_json::Value;

use super::jwks::{JwksServer, start_jwks};
use super::keys::{TestKey, key_a};
use super::tokens::{AZP, ISSUER, token};

/// Messages go to the dead-letter queue after this many receives: the
/// app's default `APP_JOB_MAX_ATTEMPTS`, as the Terraform sets it.
const MAX_RECEIVES: u32 = 3;

/// The running stack. Dropping it kills the processes and removes its files.
#[derive(Debug)]
pub struct Stack {
    pub jwks: JwksServer,
    pub app: Process,
    pub proxy: Process,
    /// The proxy's data listener: the only way the tests reach the app.
    pub data: SocketAddr,
    /// The proxy's admin listener (`/readyz`, `/metrics`).
    pub admin: SocketAddr,
    /// The app's metrics listener.
    pub app_metrics: SocketAddr,
    pub client: reqwest::Client,
    /// When the proxy became ready (its first JWKS fetch is done).
    pub ready_at: Instant,
    _dir: TempDir,
}

/// A JWKS refetch for an unknown `kid` is allowed once a second (10 s by
/// default), so a rotation test need not wait long.
pub const MIN_REFRESH_SECS: u64 = 1;

impl Stack {
    /// The stack with `backend`, its proxy trusting [`key_a`].
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    /// [`Stack::start`] with extra app settings (`APP_MAX_UPLOAD_BYTES`, ...).
    pub async fn start_with(backend: Backend, app_settings: &[(&str, &str)]) -> Self {
        Self::start_full(backend, app_settings, &[]).await
    }

    /// [`Stack::start_with`] with extra proxy settings, which override the
    /// defaults above (`PROXY_LISTEN`, `PROXY_PUBLIC_PATHS`, ...).
    pub async fn start_full(
        backend: Backend,
        app_settings: &[(&str, &str)],
        proxy_settings: &[(&str, String)],
    ) -> Self {
        let jwks = start_jwks(&[key_a()]).await;
        let dir = TempDir::new();

        let mut app_vars = vec![
            ("APP_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("APP_METRICS_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("APP_QUEUE_POLL_MS".to_owned(), "100".to_owned()),
            ("APP_SQS_WAIT_SECS".to_owned(), "1".to_owned()),
            ("APP_SHUTDOWN_GRACE_SECS".to_owned(), "1".to_owned()),
            ("RUST_LOG".to_owned(), "info".to_owned()),
        ];
        app_vars.extend(match backend {
            Backend::Embedded => embedded_env(dir.path()),
            Backend::Production => Production::create(MAX_RECEIVES).await.env(),
        });
        app_vars.extend(
            app_settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let mut app = Process::spawn(
            "retainwise-app",
            &["serve", "--with-worker"],
            &app_vars,
            dir.path(),
        );
        let app_addr = app.wait_for_address("listening", &[]).await;
        let app_metrics = app.wait_for_address("metrics listening", &[]).await;

        let config = dir.write("proxy.toml", "");
        let proxy_vars: Vec<(String, String)> = [
            ("PROXY_LISTEN", "127.0.0.1:0".to_owned()),
            ("PROXY_ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
            ("PROXY_UPSTREAM", format!("http://{app_addr}")),
            ("CLERK_JWKS_URL", jwks.url()),
            ("PROXY_JWKS_CA_FILE", jwks.ca_file()),
            ("CLERK_ISSUER_URL", ISSUER.to_owned()),
            ("CLERK_AUTHORIZED_PARTIES", AZP.to_owned()),
            (
                "PROXY_JWKS_MIN_REFRESH_INTERVAL",
                MIN_REFRESH_SECS.to_string(),
            ),
            ("PROXY_LOG", "info".to_owned()),
        ]
        .into_iter()
        .chain(proxy_settings.iter().cloned())
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let config = config.to_str().expect("utf-8 path").to_owned();
        let mut proxy = Process::spawn(
            "retainwise-proxy",
            &["--config", &config],
            &proxy_vars,
            dir.path(),
        );
        let data = proxy
            .wait_for_address("listening", &[("listener", "data")])
            .await;
        let admin = proxy
            .wait_for_address("listening", &[("listener", "admin")])
            .await;

        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        let stack = Self {
            jwks,
            app,
            proxy,
            data,
            admin,
            app_metrics,
            client,
            ready_at: Instant::now(),
            _dir: dir,
        };
        // Ready: keys loaded and the app answering (the proxy's /readyz).
        eventually("the proxy is ready (keys loaded, app up)", async || {
            stack
                .client
                .get(format!("http://{}/readyz", stack.admin))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        Self {
            ready_at: Instant::now(),
            ..stack
        }
    }

    /// A URL on the proxy's data listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.data)
    }

    /// A valid five-minute token for `sub`, signed by the published key.
    pub fn token(&self, sub: &str) -> String {
        token(key_a(), sub)
    }

    /// `GET path` through the proxy, with `token` as a bearer when given.
    pub async fn get(&self, token: Option<&str>, path: &str) -> Reply {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        send(request).await
    }

    /// `POST /api/uploads` through the proxy with `csv` as the body.
    pub async fn upload(&self, token: &str, csv: &str) -> Reply {
        send(
            self.client
                .post(self.url("/api/uploads?filename=customers.csv"))
                .bearer_auth(token)
                .header("content-type", "text/csv")
                .body(csv.to_owned()),
        )
        .await
    }

    /// Uploads `csv`, asserting 202, and returns the prediction id.
    pub async fn upload_ok(&self, token: &str, csv: &str) -> String {
        let reply = self.upload(token, csv).await;
        assert_eq!(reply.status, 202, "upload: {}", reply.text());
        reply.json()["prediction_id"]
            .as_str()
            .expect("a prediction_id")
            .to_owned()
    }

    /// Polls the prediction through the proxy until it is `completed`
    /// (failing the test if it fails or never gets there).
    pub async fn wait_completed(&self, token: &str, prediction: &str) -> Value {
        let path = format!("/api/predictions/{prediction}");
        let what = format!("prediction {prediction} is completed");
        wait_for(SLOW, &what, async || {
            let reply = self.get(Some(token), &path).await;
            assert_eq!(reply.status, 200, "prediction status: {}", reply.text());
            let body = reply.json();
            match body["status"].as_str() {
                Some("completed") => Ok(body),
                Some("failed") => panic!("prediction {prediction} failed: {body}"),
                _ => Err(body.to_string()),
            }
        })
        .await
    }

    /// Whether the app logged a line carrying `request_id` (every request
    /// it receives is logged with the proxy's `X-Request-Id`). Only a
    /// "yes" is final: a line may still be on its way; see
    /// [`Stack::assert_app_never_saw`].
    pub fn app_saw(&self, request_id: &str) -> bool {
        self.app.stdout.contains(request_id)
    }

    /// Waits until the proxy has logged its line for `request_id` (it logs
    /// every request it answers, with the reason for a rejection). Checks
    /// of the logs wait for this first: a line written after the reply
    /// arrives may still be in the pipe.
    pub async fn proxy_logged(&self, request_id: &str) {
        eventually(
            &format!("the proxy logs request {request_id}"),
            async || self.proxy.stdout.contains(request_id),
        )
        .await;
    }

    /// Fails the test if the app received any of `request_ids`. The app
    /// logs requests in the order it answers them, so a valid request sent
    /// afterwards is awaited first: once its line is there, a line for any
    /// earlier request would be too.
    pub async fn assert_app_never_saw(&self, request_ids: &[String]) {
        let control = format!("e2e-control-{}", uuid::Uuid::new_v4().simple());
        let reply = send(
            self.client
                .get(self.url("/api/uploads"))
                .bearer_auth(self.token("user_control"))
                .header("x-request-id", &control),
        )
        .await;
        assert_eq!(reply.status, 200, "control request: {}", reply.text());
        eventually("the app logs the control request", async || {
            self.app_saw(&control)
        })
        .await;
        for id in request_ids {
            assert!(!self.app_saw(id), "the app saw request {id}");
        }
    }

    /// Fails the test if any line the proxy or the app wrote so far holds
    /// `secret` or one of its dot-separated segments. Call it after
    /// [`Stack::proxy_logged`] and [`Stack::assert_app_never_saw`] for the
    /// requests that carried it.
    pub fn assert_logs_never_contain(&self, secret: &str) {
        let parts: Vec<&str> = std::iter::once(secret)
            .chain(secret.split('.').filter(|s| s.len() > 8))
            .collect();
        for process in [&self.proxy, &self.app] {
            for line in process.stdout.all().iter().chain(&process.stderr.all()) {
                for part in &parts {
                    assert!(
                        !line.contains(part),
                        "a {} log line holds (part of) a secret: {line}",
                        process.name
                    );
                }
            }
        }
    }
}
