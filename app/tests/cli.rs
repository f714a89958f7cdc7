//! The `retainwise-app` binary, run as a person would. The train and
//! evaluate tests need the Telco data (scripts/fetch-telco-data.sh).

use std::process::{Command, Output};

use retainwise_churn::evaluate::Evaluation;
use retainwise_churn::model::{ModelFile, SHIPPED_JSON};
use retainwise_testkit::telco::{COLUMNS, csv_text, customer, without};
use retainwise_testkit::{TempDir, telco};

fn app(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_retainwise-app"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn telco_path() -> String {
    telco::telco_csv(); // fails with the fetch hint when missing
    telco::telco_csv_path().display().to_string()
}

#[test]
fn train_reproduces_the_shipped_model_bit_for_bit() {
    let dir = TempDir::new();
    let out = dir.path().join("model.json");
    let run = app(&[
        "train",
        "--data",
        &telco_path(),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        text(&run.stdout).contains("ROC AUC"),
        "{}",
        text(&run.stdout)
    );
    let written = std::fs::read_to_string(&out).expect("model written");
    assert!(
        written == SHIPPED_JSON,
        "`retainwise-app train` no longer reproduces app/churn/model/churn-model.json"
    );
}

#[test]
fn evaluate_on_the_test_split_reports_the_held_out_figures() {
    let dir = TempDir::new();
    let out = dir.path().join("eval.json");
    let run = app(&[
        "evaluate",
        "--data",
        &telco_path(),
        "--split",
        "test",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    for metric in [
        "ROC AUC",
        "PR AUC",
        "log loss",
        "Brier",
        "accuracy",
        "calibration",
    ] {
        assert!(stdout.contains(metric), "{metric} missing from:\n{stdout}");
    }
    let evaluation: Evaluation =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("json written"))
            .expect("evaluation json");
    let shipped = ModelFile::shipped().expect("shipped model");
    assert_eq!(evaluation.rows, shipped.training.test_rows);
    assert_eq!(evaluation.roc_auc, shipped.metrics.test.roc_auc);
    assert!(text(&run.stderr).is_empty(), "{}", text(&run.stderr));

    // Evaluating on every row of the training file warns about leakage.
    let run = app(&[
        "evaluate",
        "--data",
        &telco_path(),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(run.status.success());
    assert!(
        text(&run.stderr).contains("--split test"),
        "{}",
        text(&run.stderr)
    );
}

#[test]
fn score_writes_the_worker_csv_with_the_shipped_model() {
    let dir = TempDir::new();
    let input = dir.path().join("in.csv");
    let output = dir.path().join("out.csv");
    let rows = [customer("A-1"), customer("A-2"), customer("A-3")];
    std::fs::write(&input, csv_text(&COLUMNS, &rows, "\r\n")).expect("fixture");
    let run = app(&[
        "score",
        "--data",
        input.to_str().expect("utf-8"),
        "--out",
        output.to_str().expect("utf-8"),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let scored = std::fs::read_to_string(&output).expect("output written");
    let lines: Vec<&str> = scored.lines().collect();
    assert_eq!(
        lines[0],
        "customer_id,churn_probability,risk_level,factor_1,factor_2,factor_3"
    );
    assert_eq!(lines.len(), 4);
    assert!(lines[1].starts_with("A-1,0."), "{}", lines[1]);
}

#[test]
fn a_bad_file_fails_clearly_and_writes_nothing() {
    let dir = TempDir::new();
    let input = dir.path().join("in.csv");
    let output = dir.path().join("out.csv");
    let (header, rows) = without("tenure", &[customer("A-1")]);
    std::fs::write(&input, csv_text(&header, &rows, "\n")).expect("fixture");
    let run = app(&[
        "score",
        "--data",
        input.to_str().expect("utf-8"),
        "--out",
        output.to_str().expect("utf-8"),
    ]);
    assert!(!run.status.success());
    assert_eq!(
        text(&run.stderr).trim(),
        "error: missing required column(s): tenure"
    );
    assert!(!output.exists());
}
