//! The command line: argument types (clap derive) and one function per
//! subcommand. Files are read and written here and nowhere else in the
//! model code; everything below works on bytes, rows and structs.
//!
//! The next subcommands (`serve`, `worker`, `migrate`) join [`Command`] as
//! new variants with their own argument structs.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use retainwise_churn::evaluate::{self, Evaluation};
use retainwise_churn::model::ModelFile;
use retainwise_churn::score::{self, Scorer};
use retainwise_churn::train::{self, Dataset, Family, TrainConfig};

/// RetainWise churn model: train, evaluate and score customer CSVs.
#[derive(Debug, Parser)]
#[command(name = "retainwise-app", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a churn model on a labelled customer CSV and write the model file.
    Train(TrainArgs),
    /// Measure a model on a labelled customer CSV (or its held-out part).
    Evaluate(EvaluateArgs),
    /// Score a customer CSV offline: the same output the worker writes.
    Score(ScoreArgs),
    /// Compare model families by cross-validation on the training part.
    Compare(CompareArgs),
    /// Serve the HTTP API on APP_LISTEN (loopback by default).
    Serve(crate::commands::ServeArgs),
    /// Run the worker: take prediction jobs from the queue and score them.
    Worker,
    /// Apply the database migrations and exit.
    Migrate,
    /// GET the health URL; exit 0 when it answers 200 (images have no curl).
    Healthcheck(crate::commands::HealthcheckArgs),
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Labelled customer CSV (Telco churn columns, `Churn` required).
    #[arg(long)]
    pub data: PathBuf,
    /// Where to write the model file (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the train/test split.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    pub seed: u64,
    /// Share of customers held out for testing.
    #[arg(long, default_value_t = TrainConfig::default().test_fraction)]
    pub test_fraction: f64,
    /// Model family; the shipped model's (blend) when omitted.
    #[arg(long, value_enum)]
    pub family: Option<FamilyArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FamilyArg {
    Logistic,
    Boosted,
    Blend,
}

/// Which rows of the data file to evaluate on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    /// Every row (leaks if the file is the training data).
    All,
    /// The training part of the model's own split.
    Train,
    /// The held-out part of the model's own split (same seed and fraction).
    Test,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Model file; the shipped model when omitted.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Labelled customer CSV.
    #[arg(long)]
    pub data: PathBuf,
    /// Rows to evaluate on.
    #[arg(long, value_enum, default_value_t = SplitArg::All)]
    pub split: SplitArg,
    /// Where to write the metrics as JSON.
    #[arg(long, default_value = "evaluation.json")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Model file; the shipped model when omitted.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Customer CSV to score.
    #[arg(long)]
    pub data: PathBuf,
    /// Where to write the scored CSV.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the ingest report (columns used, ignored, imputed; blank
    /// rows; likely mistakes) as JSON to this file. It is always printed to
    /// stderr.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Labelled customer CSV.
    #[arg(long)]
    pub data: PathBuf,
    /// Cross-validation folds on the training part.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Also write the results as JSON.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

type CliResult = Result<(), Box<dyn Error>>;

/// Runs one parsed command line.
pub fn run(cli: Cli) -> CliResult {
    match cli.command {
        Command::Train(args) => train_cmd(args),
        Command::Evaluate(args) => evaluate_cmd(args),
        Command::Score(args) => score_cmd(args),
        Command::Compare(args) => compare_cmd(args),
        Command::Serve(args) => crate::commands::serve(args),
        Command::Worker => crate::commands::worker(),
        Command::Migrate => crate::commands::migrate(),
        Command::Healthcheck(args) => crate::commands::healthcheck(args),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Box<dyn Error>> {
    fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()).into())
}

/// Writes through a temporary file and a rename, so a failed run never
/// leaves a half-written output behind.
fn write_atomically(path: &Path, bytes: &[u8]) -> CliResult {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, bytes).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(())
}

fn load_model(path: Option<&Path>) -> Result<ModelFile, Box<dyn Error>> {
    Ok(match path {
        Some(p) => {
            let file = fs::File::open(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
            ModelFile::from_reader(std::io::BufReader::new(file))
                .map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => ModelFile::shipped()?,
    })
}

fn train_cmd(args: TrainArgs) -> CliResult {
    let data = Dataset::from_csv(&read(&args.data)?)?;
    let defaults = TrainConfig::default();
    let config = TrainConfig {
        seed: args.seed,
        test_fraction: args.test_fraction,
        family: match args.family {
            None => defaults.family,
            Some(FamilyArg::Logistic) => Family::Logistic,
            Some(FamilyArg::Boosted) => Family::Boosted,
            Some(FamilyArg::Blend) => Family::Blend,
        },
        ..defaults
    };
    if !(0.0 < config.test_fraction && config.test_fraction < 1.0) {
        return Err("--test-fraction must be between 0 and 1".into());
    }
    let model = train::train(&data, &config)?;
    write_atomically(&args.out, model.to_json().as_bytes())?;
    let t = &model.training;
    println!(
        "trained {} on {} customers ({} held out; {} duplicate ids dropped)",
        model.estimator.family(),
        t.train_rows,
        t.test_rows,
        t.duplicate_ids_dropped
    );
    println!(
        "\nheld-out test part:\n{}",
        evaluate::render(&model.metrics.test)
    );
    println!("wrote {}", args.out.display());
    Ok(())
}

fn evaluate_cmd(args: EvaluateArgs) -> CliResult {
    let model = load_model(args.model.as_deref())?;
    let data = Dataset::from_csv(&read(&args.data)?)?;
    let same_data = data.sha256 == model.training.data_sha256;
    let indices: Vec<usize> = match args.split {
        SplitArg::All => {
            if same_data {
                eprintln!(
                    "warning: this is the model's training data; `--split all` includes rows \
                     the model was fitted on. Use `--split test` for honest figures."
                );
            }
            (0..data.rows.len()).collect()
        }
        SplitArg::Train | SplitArg::Test => {
            if !same_data {
                eprintln!(
                    "warning: this file is not the model's training data (SHA-256 differs); \
                     the split is recomputed on it with the model's seed"
                );
            }
            let config = &model.training.config;
            let split = data.split(config.seed, config.test_fraction);
            if args.split == SplitArg::Test {
                split.test
            } else {
                split.train
            }
        }
    };
    if indices.is_empty() {
        return Err("no rows to evaluate".into());
    }
    let scorer = Scorer::new(&model)?;
    let rows: Vec<_> = indices.iter().map(|&i| &data.rows[i]).collect();
    let labels: Vec<bool> = indices.iter().map(|&i| data.labels[i]).collect();
    let evaluation: Evaluation = evaluate::evaluate(
        &train::predict(&scorer, &rows),
        &labels,
        model.risk_thresholds,
    );
    let part = match args.split {
        SplitArg::All => "all of",
        SplitArg::Train => "the training part of",
        SplitArg::Test => "the held-out test part of",
    };
    println!(
        "{} on {part} {}",
        model.estimator.family(),
        args.data.display()
    );
    println!("{}", evaluate::render(&evaluation));
    let mut json = serde_json::to_string_pretty(&evaluation)?;
    json.push('\n');
    write_atomically(&args.out, json.as_bytes())?;
    println!("wrote {}", args.out.display());
    Ok(())
}

fn score_cmd(args: ScoreArgs) -> CliResult {
    let model = load_model(args.model.as_deref())?;
    let scorer = Scorer::new(&model)?;
    let input = read(&args.data)?;
    let mut output = Vec::with_capacity(input.len());
    let (summary, report) = score::score_csv(&scorer, input.as_slice(), &mut output)?;
    for line in report.lines() {
        eprintln!("ingest: {line}");
    }
    if let Some(path) = &args.report {
        let mut json = serde_json::to_string_pretty(&report)?;
        json.push('\n');
        write_atomically(path, json.as_bytes())?;
    }
    write_atomically(&args.out, &output)?;
    println!(
        "scored {} customers: {} high, {} medium, {} low risk; wrote {}",
        summary.rows,
        summary.high_risk,
        summary.medium_risk,
        summary.low_risk,
        args.out.display()
    );
    Ok(())
}

fn compare_cmd(args: CompareArgs) -> CliResult {
    if args.folds < 2 {
        return Err("--folds must be at least 2".into());
    }
    let data = Dataset::from_csv(&read(&args.data)?)?;
    let candidates = train::candidates(&TrainConfig::default());
    println!(
        "{}-fold cross-validation on the training part; held-out figures are reported, not used to choose\n",
        args.folds
    );
    println!(
        "{:<62} {:>14} {:>8} | {:>8} {:>8} {:>8} {:>8}",
        "candidate", "CV ROC AUC", "CV loss", "test AUC", "PR AUC", "log loss", "Brier"
    );
    let results = train::compare(&data, &candidates, args.folds, |r| {
        println!(
            "{:<62} {:>7.4}±{:.4} {:>8.4} | {:>8.4} {:>8.4} {:>8.4} {:>8.4}",
            r.name,
            r.cv_roc_auc,
            r.cv_roc_auc_std,
            r.cv_log_loss,
            r.test.roc_auc,
            r.test.pr_auc,
            r.test.log_loss,
            r.test.brier
        );
    });
    if let Some(best) = train::choose(&results) {
        println!(
            "\nchosen (best CV ROC AUC to 4 decimals, ties broken by CV log loss): {}",
            best.name
        );
        if best.config == TrainConfig::default() {
            println!("this is the default configuration, the shipped model's");
        } else {
            println!("note: this differs from the default configuration (the shipped model's)");
        }
    }
    if let Some(out) = args.out {
        let mut json = serde_json::to_string_pretty(&results)?;
        json.push('\n');
        write_atomically(&out, json.as_bytes())?;
    }
    Ok(())
}
