//! Every fixture in `tests/data/` (files as people export them), scored,
//! with the outcome `tests/data/cases.json` gives it: the rows scored and
//! parts of the ingest report, or the exact error. The same table is run
//! through the `score` command and the upload API by the service's tests.

use std::path::PathBuf;

use retainwise_churn::model::ModelFile;
use retainwise_churn::score::{Scorer, score_csv};
use serde_json::Value;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(data_dir().join("cases.json")).expect("cases.json");
    serde_json::from_str(&text).expect("cases.json is JSON")
}

fn score(file: &str) -> Result<(String, Value), String> {
    let scorer = Scorer::new(&ModelFile::shipped().expect("model")).expect("scorer");
    let bytes = std::fs::read(data_dir().join(file)).expect("fixture");
    let mut out = Vec::new();
    let (_, report) = score_csv(&scorer, bytes.as_slice(), &mut out).map_err(|e| e.to_string())?;
    Ok((
        String::from_utf8(out).expect("UTF-8 output"),
        serde_json::to_value(report).expect("report"),
    ))
}

#[test]
fn every_fixture_has_its_expected_outcome() {
    let cases = cases();
    assert!(cases.len() >= 25, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let file = case["file"].as_str().expect("file");
        let outcome = std::panic::catch_unwind(|| check(&case, file));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(message);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

fn check(case: &Value, file: &str) {
    {
        match (score(file), case.get("error")) {
            (Err(got), Some(want)) => assert_eq!(got, want.as_str().expect("text"), "{file}"),
            (Ok((_, report)), Some(want)) => panic!("{file}: scored ({report}), expected {want}"),
            (Err(got), None) => panic!("{file}: {got}"),
            (Ok((out, report)), None) => {
                let rows = case["rows"].as_u64().expect("rows");
                assert_eq!(out.lines().count() as u64, rows + 1, "{file}: {out}");
                if let Some(Value::Object(want)) = case.get("report") {
                    for (key, value) in want {
                        assert_eq!(&report[key], value, "{file}: {key} in {report}");
                    }
                }
                if let Some(ids) = case.get("ids") {
                    let got: Vec<&str> = out
                        .lines()
                        .skip(1)
                        .map(|l| l.split(',').next().expect("id"))
                        .collect();
                    let want: Vec<&str> = ids
                        .as_array()
                        .expect("ids")
                        .iter()
                        .map(|v| v.as_str().expect("id"))
                        .collect();
                    assert_eq!(got, want, "{file}");
                }
                if let Some(other) = case.get("same_as") {
                    let (expected, _) = score(other.as_str().expect("file")).expect("scores");
                    assert_eq!(out, expected, "{file} scores as {other}");
                }
            }
        }
    }
}
