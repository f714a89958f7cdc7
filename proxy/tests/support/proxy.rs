//! `start_proxy()`: the real `retainwise-proxy` binary, spawned with a
//! cleared environment plus the settings a test gives, `--config` pointing
//! at an empty file (so the repository's `config/default.toml` is not read),
//! and both listeners on `127.0.0.1:0`. Its JSON log lines are collected;
//! the ports are learned from the two `"listening"` lines. Dropping the
//! handle kills the process.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::jwks::JwksServer;
use super::raw::RawRequest;
use super::tokens::ISSUER;
use super::upstream::Upstream;
use super::{Reply, TempDir, eventually, send};

/// Environment settings for one proxy process.
#[derive(Debug, Clone)]
pub struct Settings {
    vars: Vec<(String, String)>,
    /// Started under `taskset -c` on this one CPU.
    cpu: Option<u32>,
}

impl Settings {
    /// Only what every test needs: listeners on port 0 and info logs.
    pub fn bare() -> Self {
        Self {
            vars: Vec::new(),
            cpu: None,
        }
        .with("PROXY_LISTEN", "127.0.0.1:0")
        .with("PROXY_ADMIN_LISTEN", "127.0.0.1:0")
        .with("PROXY_LOG", "info")
    }

    /// Sets (or replaces) an environment variable.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.retain(|(n, _)| n != name);
        self.vars.push((name.to_owned(), value.into()));
        self
    }

    /// Runs the proxy on the first CPU this process may use, so that it
    /// sizes itself the current-thread runtime as on a sidecar's quota.
    pub fn on_one_core(mut self) -> Self {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .expect("Cpus_allowed_list");
        let first = list.trim().split([',', '-']).next().expect("a CPU");
        self.cpu = Some(first.parse().expect("a CPU number"));
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.vars.retain(|(n, _)| n != name);
        self
    }
}

/// Settings for a proxy in front of `upstream`, trusting `jwks`, expecting
/// tokens from [`ISSUER`].
pub fn settings(jwks: &JwksServer, upstream: &Upstream) -> Settings {
    Settings::bare()
        .with("CLERK_JWKS_URL", jwks.url())
        .with("PROXY_JWKS_CA_FILE", jwks.ca_file())
        .with("CLERK_ISSUER_URL", ISSUER)
        .with("PROXY_UPSTREAM", upstream.url())
}

/// Lines a child process wrote, collected by a background thread.
#[derive(Debug, Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn drain(&self, stream: impl Read + Send + 'static, label: &'static str) {
        let lines = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                // Shown by the test runner only when the test fails.
                eprintln!("[proxy {label}] {line}");
                lines.0.lock().expect("lines lock").push(line);
            }
        });
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().expect("lines lock").clone()
    }

    /// The lines that are JSON objects.
    pub fn json(&self) -> Vec<Value> {
        self.all()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(Value::is_object)
            .collect()
    }
}

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    child: Mutex<Child>,
    pid: u32,
    pub data: SocketAddr,
    pub admin: SocketAddr,
    pub stdout: Lines,
    pub stderr: Lines,
    pub client: reqwest::Client,
    _dir: TempDir,
}

/// How a proxy run ended.
#[derive(Debug)]
pub struct Exit {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

fn spawn(settings: &Settings, dir: &TempDir) -> Child {
    let config = dir.write("proxy.toml", "");
    let binary = env!("CARGO_BIN_EXE_retainwise-proxy");
    // taskset execs the proxy: the child's pid is the proxy's.
    let mut command = match settings.cpu {
        Some(cpu) => {
            let mut taskset = Command::new("taskset");
            taskset.arg("-c").arg(cpu.to_string()).arg(binary);
            taskset
        }
        None => Command::new(binary),
    };
    command
        .arg("--config")
        .arg(&config)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(settings.vars.iter().map(|(n, v)| (n, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the proxy binary starts")
}

/// Starts the proxy and waits until `/readyz` says it is ready.
pub async fn start_proxy(settings: Settings) -> Proxy {
    let proxy = spawn_proxy(settings).await;
    proxy.wait_ready().await;
    proxy
}

/// Starts the proxy and waits only for both listeners.
pub async fn spawn_proxy(settings: Settings) -> Proxy {
    let dir = TempDir::new();
    let mut child = spawn(&settings, &dir);
    let stdout = Lines::default();
    let stderr = Lines::default();
    stdout.drain(child.stdout.take().expect("stdout piped"), "stdout");
    stderr.drain(child.stderr.take().expect("stderr piped"), "stderr");
    let pid = child.id();

    let deadline = Instant::now() + Duration::from_secs(20);
    let (data, admin) = loop {
        let listening = |which: &str| {
            stdout.json().iter().find_map(|line| {
                (line["message"] == "listening" && line["listener"] == which)
                    .then(|| line["addr"].as_str()?.parse::<SocketAddr>().ok())
                    .flatten()
            })
        };
        if let (Some(data), Some(admin)) = (listening("data"), listening("admin")) {
            break (data, admin);
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            tokio::time::sleep(Duration::from_millis(100)).await;
            panic!(
                "the proxy exited ({status}) before listening; stderr:\n{}\nstdout:\n{}",
                stderr.all().join("\n"),
                stdout.all().join("\n")
            );
        }
        assert!(
            Instant::now() < deadline,
            "no \"listening\" lines for both listeners within 20 s; stdout:\n{}",
            stdout.all().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client builds");
    Proxy {
        child: Mutex::new(child),
        pid,
        data,
        admin,
        stdout,
        stderr,
        client,
        _dir: dir,
    }
}

/// Runs the proxy expecting it to exit by itself within 10 s (bad settings).
pub async fn run_until_exit(settings: Settings) -> Exit {
    let dir = TempDir::new();
    let mut child = spawn(&settings, &dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "the proxy kept running instead of exiting; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let output = child.wait_with_output().expect("output");
    Exit {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

impl Proxy {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A URL on the data listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.data)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }

    /// Sends a raw HTTP/1.1 request to the data listener.
    pub async fn raw(&self, request: RawRequest) -> Reply {
        request.send(self.data).await
    }

    /// GET on the admin listener.
    pub async fn admin(&self, path: &str) -> Reply {
        send(self.client.get(format!("http://{}{path}", self.admin))).await
    }

    pub async fn readyz(&self) -> Reply {
        self.admin("/readyz").await
    }

    pub async fn metrics(&self) -> String {
        let reply = self.admin("/metrics").await;
        assert_eq!(reply.status, 200, "/metrics answers 200");
        reply.text()
    }

    /// The value of one sample on `/metrics`, named with its labels as
    /// the exposition writes them (`name{kind="idle"}`); 0 when absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        self.metrics()
            .await
            .lines()
            .find_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                (name == sample).then(|| value.parse().unwrap_or(f64::NAN))
            })
            .unwrap_or(0.0)
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        eventually("the proxy is ready (/readyz 200)", async || {
            self.readyz().await.status == 200
        })
        .await;
    }

    /// The `"message":"request"` log lines.
    pub fn request_logs(&self) -> Vec<Value> {
        self.stdout
            .json()
            .into_iter()
            .filter(|l| l["message"] == "request")
            .collect()
    }

    /// The request log line for this request id (waits for it).
    pub async fn request_log(&self, request_id: &str) -> Value {
        eventually(
            &format!("a request log line for {request_id}"),
            async || {
                self.request_logs()
                    .iter()
                    .any(|l| l["request_id"] == request_id)
            },
        )
        .await;
        self.request_logs()
            .into_iter()
            .find(|l| l["request_id"] == request_id)
            .expect("log line present")
    }

    /// Fails the test if any stdout or stderr line contains `secret`.
    pub fn assert_logs_never_contain(&self, secret: &str) {
        for line in self.stdout.all().iter().chain(self.stderr.all().iter()) {
            assert!(
                !line.contains(secret),
                "a log line contains a secret: {line}"
            );
        }
    }

    /// Sends SIGTERM (through `kill`, as the crate forbids unsafe code).
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {} failed", self.pid);
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self
                .child
                .lock()
                .expect("child lock")
                .try_wait()
                .expect("try_wait")
            {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the proxy did not exit within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let mut child = self.child.lock().expect("child lock");
        let _ = child.kill();
        let _ = child.wait();
    }
}
