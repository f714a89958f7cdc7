//! The summary built while scoring equals the one read back from the
//! scored CSV, and agrees with the CSV's own rows: the quickstart's sample
//! file, with some TotalCharges blanked so imputed factors are in it.

use std::path::PathBuf;

use retainwise_churn::model::ModelFile;
use retainwise_churn::schema::{Purpose, read_customers_for};
use retainwise_churn::score::{ScoreWriter, Scorer};
use retainwise_churn::summary::{SummaryBuilder, TOP_CUSTOMERS, summarise_scored_csv};

/// The sample upload, TotalCharges blank in every seventh row.
fn input() -> String {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sample-customers.csv");
    let text = std::fs::read_to_string(path).expect("the sample file (scripts/make-sample-csv.py)");
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let mut fields: Vec<&str> = line.split(',').collect();
            if i > 0 && i % 7 == 0 {
                let total = fields.len() - 2;
                fields[total] = "";
            }
            fields.join(",") + "\n"
        })
        .collect()
}

#[test]
fn the_worker_summary_equals_the_one_read_from_the_csv() {
    let scorer = Scorer::new(&ModelFile::shipped().expect("model")).expect("scorer");
    let customers = read_customers_for(input().as_bytes(), Purpose::Score).expect("parses");
    let mut writer = ScoreWriter::new(Vec::new()).expect("writer");
    let mut builder = SummaryBuilder::new(scorer.thresholds());
    for row in &customers.rows {
        let score = scorer.score(row);
        builder.add_score(&scorer, row, &score);
        writer.write(&scorer, row, &score).expect("written");
    }
    let while_scoring = builder.finish();
    let csv = String::from_utf8(writer.finish().expect("finished")).expect("UTF-8");
    let from_csv = summarise_scored_csv(csv.as_bytes(), scorer.thresholds()).expect("summarised");
    assert_eq!(while_scoring, from_csv);

    let s = while_scoring;
    assert_eq!(s.customers, 300);
    assert_eq!(s.levels.high + s.levels.medium + s.levels.low, 300);
    assert!(s.levels.high > 0 && s.levels.low > 0, "{:?}", s.levels);
    assert_eq!(s.histogram.counts.iter().sum::<u64>(), 300);
    assert_eq!(s.top_customers.len(), TOP_CUSTOMERS);
    assert_eq!(
        s.thresholds,
        ModelFile::shipped().expect("model").risk_thresholds
    );
    assert!(
        s.factors
            .iter()
            .any(|f| f.factor == "tenure" && f.up > 0 && f.down > 0),
        "numbers count by column, both ways: {:?}",
        s.factors
    );
    assert!(
        s.top_customers
            .iter()
            .flat_map(|c| &c.factors)
            .any(|f| f.contains("[imputed]"))
            || s.factors.iter().any(|f| f.factor == "TotalCharges"),
        "imputed rows are in the file"
    );
    let factor_mentions: u64 = s.factors.iter().map(|f| f.up + f.down).sum();
    assert_eq!(factor_mentions, 3 * 300);

    // The top of the list is the file's highest probability, first seen.
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let best = rows
        .iter()
        .map(|r| r[1].parse::<f64>().expect("probability"))
        .fold(f64::MIN, f64::max);
    let first_best = rows
        .iter()
        .position(|r| r[1].parse::<f64>().expect("probability") == best)
        .expect("found");
    assert_eq!(s.top_customers[0].churn_probability, best);
    assert_eq!(s.top_customers[0].row, first_best as u64 + 1);
    assert_eq!(s.top_customers[0].customer_id, rows[first_best][0]);
    let mean = rows
        .iter()
        .map(|r| r[1].parse::<f64>().expect("probability"))
        .sum::<f64>()
        / 300.0;
    assert!(
        (s.mean_probability - mean).abs() < 1e-12,
        "{} vs {mean}",
        s.mean_probability
    );
}
