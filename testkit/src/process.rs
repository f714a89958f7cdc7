//! The workspace's binaries, spawned as black boxes with their log lines
//! kept.
//!
//! `env!("CARGO_BIN_EXE_…")` only names a package's own binaries, so other
//! packages' binaries are found next to the running test executable
//! (`target/<profile>/deps/test-… → target/<profile>/`). Before the first
//! lookup, a test binary runs `cargo build --workspace --tests` once into
//! the same target directory: under `cargo test --workspace` it finds
//! everything fresh at once; under `cargo test -p SOME-SUITE` it builds the
//! binaries (the same feature set, so nothing is rebuilt twice).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use crate::wait::{SLOW, wait_for};

/// `target/<profile>/`, the folder holding this test executable's `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test executable sits in target/<profile>/deps/")
        .to_path_buf()
}

/// The workspace root (this crate sits in `testkit/` under it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ sits in the workspace")
        .to_path_buf()
}

/// The path of a workspace binary, built (once per test binary) if needed.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(build_workspace);
    let path = profile_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing after cargo build",
        path.display()
    );
    path
}

fn build_workspace() {
    let profile = profile_dir();
    let target = profile.parent().expect("target/ holds the profile dir");
    let mut command = Command::new(env!("CARGO"));
    command
        .args([
            "build",
            "--workspace",
            "--tests",
            "--quiet",
            "--manifest-path",
        ])
        .arg(workspace_root().join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target)
        .stdin(Stdio::null());
    if profile.file_name().is_some_and(|p| p == "release") {
        command.arg("--release");
    }
    let status = command.status().expect("cargo runs");
    assert!(status.success(), "cargo build of the workspace failed");
}

/// Lines a child process wrote, collected by a background thread.
#[derive(Debug, Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    /// Collects `stream`'s lines on a thread; each is also written to the
    /// test's stderr with `label`, which the runner shows when the test
    /// fails.
    pub fn drain(&self, stream: impl Read + Send + 'static, label: String) {
        let lines = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                eprintln!("[{label}] {line}");
                lines.0.lock().expect("lines lock").push(line);
            }
        });
    }

    /// Every line so far.
    pub fn all(&self) -> Vec<String> {
        self.0.lock().expect("lines lock").clone()
    }

    /// Whether any line so far contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.0
            .lock()
            .expect("lines lock")
            .iter()
            .any(|l| l.contains(needle))
    }

    /// The `addr` of the first JSON line whose message is `message` (at the
    /// top level, as the proxy writes it, or under `fields`, as the app's
    /// tracing JSON writes it) and whose other fields match `with`.
    pub fn address(&self, message: &str, with: &[(&str, &str)]) -> Option<SocketAddr> {
        self.all().iter().find_map(|line| {
            let json: Value = serde_json::from_str(line).ok()?;
            let fields = if json.get("fields").is_some() {
                &json["fields"]
            } else {
                &json
            };
            let matches =
                fields["message"] == message && with.iter().all(|(k, v)| fields[*k] == *v);
            matches
                .then(|| fields["addr"].as_str()?.parse().ok())
                .flatten()
        })
    }
}

/// A running child process; killed when dropped.
#[derive(Debug)]
pub struct Process {
    pub name: String,
    child: Child,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Process {
    /// Spawns the workspace binary `name` (see [`binary`]) with `args`, a
    /// cleared environment plus `PATH` and `vars`, in `cwd`.
    pub fn spawn(name: &str, args: &[&str], vars: &[(String, String)], cwd: &Path) -> Self {
        Self::spawn_path(name, &binary(name), args, vars, cwd)
    }

    /// [`Process::spawn`] for an executable given by path (a package's own
    /// `env!("CARGO_BIN_EXE_…")`), labelled `name` in the logs.
    pub fn spawn_path(
        name: &str,
        path: &Path,
        args: &[&str],
        vars: &[(String, String)],
        cwd: &Path,
    ) -> Self {
        let mut child = Command::new(path)
            .args(args)
            .current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        let stdout = Lines::default();
        let stderr = Lines::default();
        stdout.drain(child.stdout.take().expect("piped"), format!("{name} out"));
        stderr.drain(child.stderr.take().expect("piped"), format!("{name} err"));
        Self {
            name: name.to_owned(),
            child,
            stdout,
            stderr,
        }
    }

    /// Waits for the `message` line naming an address on stdout; fails the
    /// test if the process exits first or nothing comes within
    /// [`SLOW`].
    pub async fn wait_for_address(&mut self, message: &str, with: &[(&str, &str)]) -> SocketAddr {
        let what = format!("{} logs {message:?} {with:?}", self.name);
        wait_for(SLOW, &what, async || {
            if let Some(addr) = self.stdout.address(message, with) {
                return Ok(addr);
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "{} exited ({status}) before logging {message:?}:\n{}\n{}",
                    self.name,
                    self.stdout.all().join("\n"),
                    self.stderr.all().join("\n")
                );
            }
            Err(String::new())
        })
        .await
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventually;

    #[tokio::test]
    async fn addresses_are_read_from_the_proxys_and_the_apps_log_shapes() {
        let log = concat!(
            "not json\n",
            r#"{"message":"listening","listener":"admin","addr":"127.0.0.1:9"}"#,
            "\n",
            r#"{"fields":{"message":"listening","addr":"127.0.0.1:8"}}"#,
            "\n",
            r#"{"message":"listening","listener":"data","addr":"127.0.0.1:7"}"#,
            "\n",
        );
        let lines = Lines::default();
        lines.drain(std::io::Cursor::new(log), "test".into());
        eventually("all four lines are read", async || lines.all().len() == 4).await;
        let addr = |with: &[(&str, &str)]| lines.address("listening", with);
        assert_eq!(
            addr(&[("listener", "data")]),
            Some("127.0.0.1:7".parse().expect("addr"))
        );
        assert_eq!(
            addr(&[("listener", "admin")]),
            Some("127.0.0.1:9".parse().expect("addr"))
        );
        assert_eq!(addr(&[]), Some("127.0.0.1:9".parse().expect("addr")));
        assert_eq!(lines.address("metrics listening", &[]), None);
        assert!(lines.contains("not json"));
    }
}
