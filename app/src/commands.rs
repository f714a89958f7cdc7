//! The service subcommands: `serve [--with-worker]`, `worker`, `migrate`,
//! `healthcheck [--url URL]`. Each builds its runtime here, so the model
//! subcommands stay synchronous.

use std::error::Error;
use std::sync::Arc;

use clap::Args;

use crate::scoring::FileScorer;
use crate::scoring::churn::Churn;
use crate::settings::Settings;
use crate::startup::{Server, Services, shutdown_signal};
use crate::{db, healthcheck, metrics, telemetry};

type CmdResult = Result<(), Box<dyn Error>>;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Also run the worker in this process (one-process local use).
    #[arg(long)]
    pub with_worker: bool,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Health URL to GET; exit 0 when it answers 200.
    #[arg(long, default_value = healthcheck::DEFAULT_URL)]
    pub url: String,
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn scorer() -> Result<Arc<dyn FileScorer>, Box<dyn Error>> {
    Ok(Arc::new(Churn::shipped()?))
}

pub fn serve(args: ServeArgs) -> CmdResult {
    let settings = Settings::from_env()?;
    telemetry::init();
    runtime()?.block_on(async move {
        let services = Services::connect(&settings).await?;
        let scorer = scorer()?;
        if let Some(addr) = settings.metrics_listen {
            let bound = metrics::serve(addr).await?;
            tracing::info!(addr = %bound, "metrics listening");
        }
        let shutdown = shutdown_signal();
        let server = Server::bind(&settings, &services, scorer.clone()).await?;
        let worker = args
            .with_worker
            .then(|| tokio::spawn(services.worker(&settings, scorer).run(shutdown.clone())));
        server.run(shutdown).await?;
        if let Some(worker) = worker {
            worker.await?;
        }
        Ok(())
    })
}

pub fn worker() -> CmdResult {
    let settings = Settings::from_env()?;
    telemetry::init();
    runtime()?.block_on(async move {
        let services = Services::connect(&settings).await?;
        if let Some(addr) = settings.metrics_listen {
            let bound = metrics::serve(addr).await?;
            tracing::info!(addr = %bound, "metrics listening");
        }
        services
            .worker(&settings, scorer()?)
            .run(shutdown_signal())
            .await;
        Ok(())
    })
}

pub fn migrate() -> CmdResult {
    let settings = Settings::from_env()?;
    telemetry::init();
    runtime()?.block_on(async move {
        let db = db::Db::connect(&settings.database_url).await?;
        db.migrate().await?;
        tracing::info!("migrations applied");
        Ok(())
    })
}

pub fn healthcheck(args: HealthcheckArgs) -> CmdResult {
    let status = runtime()?.block_on(healthcheck::check(&args.url))?;
    println!("{status}");
    Ok(())
}
