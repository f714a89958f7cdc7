//! PostgreSQL restarts while the app is idle: health reports it, and the
//! app recovers by itself once the database is back. Runs its own cluster
//! (the shared one must not go down under other tests).

use std::path::{Path, PathBuf};
use std::process::Command;

use retainwise_testkit::{TempDir, free_port};

use crate::helpers::{Backend, Options, customers_csv, eventually, required_env, spawn_app_with};

struct Cluster {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
}

impl Cluster {
    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        run_as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                &["-D", path(&data), "-l", path(&log), "-o", &options, "-w"][..],
                args,
            ]
            .concat(),
        );
    }

    fn start() -> Cluster {
        let bin = PathBuf::from(required_env("RETAINWISE_TEST_PG_BIN"));
        let dir = TempDir::new();
        let status = Command::new("chown")
            .arg("postgres:")
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(status.success(), "chown the cluster dir to postgres");
        let port = free_port().port();
        let data = dir.path().join("data");
        run_as_postgres(
            &bin.join("initdb"),
            &["-D", path(&data), "-A", "trust", "-U", "postgres"],
        );
        let cluster = Cluster { bin, dir, port };
        cluster.pg_ctl(&["start"]);
        cluster
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.pg_ctl(&["-m", "immediate", "stop"]);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn run_as_postgres(program: &Path, args: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .expect("runuser runs");
    assert!(
        out.status.success() || args.contains(&"stop"),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_recovers_after_a_database_restart_while_idle() {
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await
        .expect("cluster");
    let options = Options {
        database_url: Some(cluster.url()),
        ..Options::default()
    };
    // Embedded storage and queue-in-the-database: the restart hits both.
    let app = spawn_app_with(Backend::Embedded, options).await;
    let first = app.upload_ok("user_a", customers_csv(5)).await;
    app.wait_for("user_a", &first, "completed").await;

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.pg_ctl(&["-m", "fast", "stop"]);
        cluster
    })
    .await
    .expect("stopped");
    let health = app.get(None, "/api/health").await;
    assert_eq!(health.status(), 503, "health reports the database down");

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.pg_ctl(&["start"]);
        cluster
    })
    .await
    .expect("started");
    eventually("health is 200 again", || async {
        app.get(None, "/api/health").await.status() == 200
    })
    .await;
    let second = app.upload_ok("user_a", customers_csv(5)).await;
    assert_eq!(
        app.wait_for("user_a", &second, "completed").await["rows"],
        5
    );
    app.stop().await;
    drop(cluster);
}
