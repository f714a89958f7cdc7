//! `retainwise-app score` over every fixture of the model's file table
//! (`app/churn/tests/data/cases.json`): the rows scored and the ingest
//! report written by `--report` (and printed to stderr), or the exact error.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("churn/tests/data")
}

#[test]
fn score_gives_every_fixture_its_expected_outcome() {
    let text = std::fs::read_to_string(data_dir().join("cases.json")).expect("cases.json");
    let cases: Vec<Value> = serde_json::from_str(&text).expect("JSON");
    let dir = retainwise_testkit::TempDir::new();
    let mut failures = Vec::new();
    for case in &cases {
        let file = case["file"].as_str().expect("file");
        let out = dir.path().join(format!("{file}.scored.csv"));
        let report = dir.path().join(format!("{file}.report.json"));
        let run = Command::new(env!("CARGO_BIN_EXE_retainwise-app"))
            .args(["score", "--data"])
            .arg(data_dir().join(file))
            .arg("--out")
            .arg(&out)
            .arg("--report")
            .arg(&report)
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&run.stderr);
        if let Some(want) = case.get("error") {
            let want = want.as_str().expect("text");
            if run.status.success() || !stderr.contains(want) {
                failures.push(format!("{file}: expected {want:?}, got {stderr}"));
            }
            if out.exists() || report.exists() {
                failures.push(format!("{file}: output written for a refused file"));
            }
            continue;
        }
        if !run.status.success() {
            failures.push(format!("{file}: {stderr}"));
            continue;
        }
        let scored = std::fs::read_to_string(&out).expect("scored CSV");
        let rows = case["rows"].as_u64().expect("rows");
        if scored.lines().count() as u64 != rows + 1 {
            failures.push(format!("{file}: {scored}"));
        }
        if !stderr.contains("ingest: columns used: customerID") {
            failures.push(format!("{file}: no report on stderr: {stderr}"));
        }
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("JSON");
        if let Some(Value::Object(want)) = case.get("report") {
            for (key, value) in want {
                if &written[key] != value {
                    failures.push(format!("{file}: {key} is {} in {written}", written[key]));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_likely_mistake_is_printed_where_a_person_reads_it() {
    let dir = retainwise_testkit::TempDir::new();
    let run = Command::new(env!("CARGO_BIN_EXE_retainwise-app"))
        .args(["score", "--data"])
        .arg(data_dir().join("total-charges-usd.csv"))
        .arg("--out")
        .arg(dir.path().join("out.csv"))
        .output()
        .expect("the binary runs");
    assert!(run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains(
            "ingest: likely mistake: column \"Total Charges (USD)\" was ignored; did you mean TotalCharges?"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("ingest: TotalCharges imputed in 3 row(s)"),
        "{stderr}"
    );
}
