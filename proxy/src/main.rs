//! `retainwise-proxy`: parse arguments, load settings, run.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use retainwise_proxy::runtime::Sizing;
use retainwise_proxy::settings::Settings;
use retainwise_proxy::{healthcheck, server, telemetry};

/// jemalloc rather than glibc's malloc: with 10,000 idle keep-alive
/// connections that had each served a request, the proxy held 110 MiB
/// against glibc's 134 MiB, and once they closed it gave all but 11 MiB back
/// to the system, where glibc kept every byte (`scripts/bench-proxy.sh`,
/// README "Benchmarks").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The default settings file, read when present and `--config` is not given.
const DEFAULT_CONFIG: &str = "config/default.toml";

/// Authentication sidecar: verifies RS256 session tokens against a JWKS
/// and forwards requests to the app with X-User-Id.
///
/// Settings come from built-in defaults, then the config file, then the
/// environment (PROXY_<KEY>, CLERK_ISSUER_URL, CLERK_JWKS_URL, ...); see
/// config/default.toml for every key.
#[derive(Debug, Parser)]
#[command(name = "retainwise-proxy", version)]
struct Cli {
    /// Settings file (TOML). Without it, config/default.toml is read if present.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,

    /// Check the settings, print any problems, and exit without serving.
    #[arg(long)]
    check_config: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Exit 0 when the running proxy answers 200 (for container health
    /// checks in images without curl).
    Healthcheck {
        /// What to ask; the admin listener's liveness endpoint by default.
        #[arg(long, default_value = healthcheck::DEFAULT_URL)]
        url: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck { url }) = &cli.command {
        return match healthcheck::check(url) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("retainwise-proxy: unhealthy: {err}");
                ExitCode::FAILURE
            }
        };
    }
    let env: HashMap<String, String> = std::env::vars().collect();
    let (file, required) = match &cli.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    let (settings, warnings) = match Settings::load(Some(&file), required, &env) {
        Ok(loaded) => loaded,
        Err(errors) => {
            for line in &errors.0 {
                eprintln!("retainwise-proxy: {line}");
            }
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        for warning in &warnings.0 {
            eprintln!("retainwise-proxy: warning: {warning}");
        }
        println!("settings are valid");
        return ExitCode::SUCCESS;
    }
    if let Err(err) = telemetry::init(&settings.log) {
        eprintln!("retainwise-proxy: {err}");
        return ExitCode::from(2);
    }
    for warning in &warnings.0 {
        tracing::warn!("{warning}");
    }
    let sizing = Sizing::detect();
    tracing::info!(
        message = "runtime",
        cpu_quota_cores = sizing.quota,
        cores_available = sizing.available,
        workers = sizing.workers,
        flavor = if sizing.current_thread() {
            "current_thread"
        } else {
            "multi_thread"
        },
    );
    // Without its background thread jemalloc purges freed pages only while
    // allocating, so memory freed when connections close would stay
    // resident until the next load; with it, within its decay time (10 s).
    if let Err(err) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(error = %err, "the allocator's background thread did not start; freed memory returns to the system only under load");
    }
    let runtime = match sizing.build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("retainwise-proxy: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "startup failed");
            eprintln!("retainwise-proxy: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
