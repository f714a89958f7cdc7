//! Helpers shared by the integration tests: the real data set's location
//! and small CSV fixtures built in code.
#![allow(dead_code)]

use std::path::PathBuf;

/// Environment variable naming the Telco CSV.
pub const DATA_ENV: &str = "RETAINWISE_TELCO_CSV";

/// Where the Telco CSV is: `$RETAINWISE_TELCO_CSV`, or
/// `data/telco/Customer_Churn.csv` under the workspace root.
pub fn telco_csv_path() -> PathBuf {
    match std::env::var_os(DATA_ENV) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join("data/telco/Customer_Churn.csv"),
    }
}

/// The Telco CSV's bytes. A missing file fails the test, never skips it.
pub fn telco_csv() -> Vec<u8> {
    let path = telco_csv_path();
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "the Telco churn data is needed at {} ({e}); run scripts/fetch-telco-data.sh \
             first, or point {DATA_ENV} at the CSV",
            path.display()
        )
    })
}

/// The data set's 21 columns, in its order and spelling.
pub const HEADER: [&str; 21] = [
    "customerID",
    "gender",
    "SeniorCitizen",
    "Partner",
    "Dependents",
    "tenure",
    "PhoneService",
    "MultipleLines",
    "InternetService",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
    "MonthlyCharges",
    "TotalCharges",
    "Churn",
];

/// A plausible customer, in [`HEADER`] order.
pub fn customer(id: &str) -> Vec<String> {
    [
        id,
        "Female",
        "0",
        "Yes",
        "No",
        "2",
        "Yes",
        "No",
        "Fiber optic",
        "No",
        "No",
        "No",
        "No",
        "No",
        "No",
        "Month-to-month",
        "Yes",
        "Electronic check",
        "70.70",
        "151.65",
        "Yes",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Joins a header and rows into CSV text (values are written as given:
/// quote them yourself), lines ending in `eol`.
pub fn csv_text(header: &[&str], rows: &[Vec<String>], eol: &str) -> String {
    let mut out = header.join(",");
    out.push_str(eol);
    for row in rows {
        out.push_str(&row.join(","));
        out.push_str(eol);
    }
    out
}

/// Sets the value of `column` in a row built by [`customer`].
pub fn with(mut row: Vec<String>, column: &str, value: &str) -> Vec<String> {
    let i = HEADER
        .iter()
        .position(|h| *h == column)
        .unwrap_or_else(|| panic!("no column {column}"));
    row[i] = value.to_owned();
    row
}

/// Drops `column` from a header and rows built from [`HEADER`].
pub fn without(column: &str, rows: &[Vec<String>]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let i = HEADER
        .iter()
        .position(|h| *h == column)
        .unwrap_or_else(|| panic!("no column {column}"));
    let mut header = HEADER.to_vec();
    header.remove(i);
    let rows = rows
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.remove(i);
            r
        })
        .collect();
    (header, rows)
}
