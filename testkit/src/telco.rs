//! Customer CSVs in the IBM Telco churn layout: the sample header, rows
//! built in code, the real data set's location, and a check of a scored
//! CSV (DESIGN.md: `customer_id,churn_probability,risk_level,...`).

use std::path::PathBuf;

/// Environment variable naming the Telco CSV.
pub const DATA_ENV: &str = "RETAINWISE_TELCO_CSV";

/// Where the Telco CSV is: `$RETAINWISE_TELCO_CSV`, or
/// `data/telco/Customer_Churn.csv` under the workspace root.
pub fn telco_csv_path() -> PathBuf {
    match std::env::var_os(DATA_ENV) {
        Some(p) => PathBuf::from(p),
        None => crate::process::workspace_root().join("data/telco/Customer_Churn.csv"),
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
pub const COLUMNS: [&str; 21] = [
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

/// [`COLUMNS`] as a header line (no line end).
pub const HEADER: &str = "customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,\
MultipleLines,InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,\
StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges,Churn";

/// A plausible customer, in [`COLUMNS`] order.
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
    let i = COLUMNS
        .iter()
        .position(|h| *h == column)
        .unwrap_or_else(|| panic!("no column {column}"));
    row[i] = value.to_owned();
    row
}

/// Drops `column` from a header and rows built from [`COLUMNS`].
pub fn without(column: &str, rows: &[Vec<String>]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let i = COLUMNS
        .iter()
        .position(|h| *h == column)
        .unwrap_or_else(|| panic!("no column {column}"));
    let mut header = COLUMNS.to_vec();
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

/// `n` plausible customers with ids `C0000000`.., varied enough to land in
/// every risk band.
pub fn customers_csv(n: usize) -> String {
    let contracts = ["Month-to-month", "One year", "Two year"];
    let internet = ["Fiber optic", "DSL", "No"];
    let mut out = String::from(HEADER);
    out.push('\n');
    for i in 0..n {
        let tenure = (i * 7) % 72;
        let monthly = 20.0 + ((i * 13) % 100) as f64;
        let net = internet[i % 3];
        let addon = if net == "No" {
            "No internet service"
        } else if i % 2 == 0 {
            "Yes"
        } else {
            "No"
        };
        out.push_str(&format!(
            "C{i:07},{},{},{},No,{tenure},Yes,No,{net},{addon},{addon},{addon},{addon},{addon},{addon},{},Yes,Electronic check,{monthly:.2},{:.2},No\n",
            if i % 2 == 0 { "Female" } else { "Male" },
            i % 2,
            if i % 3 == 0 { "Yes" } else { "No" },
            contracts[i % 3],
            monthly * tenure as f64,
        ));
    }
    out
}

/// Checks a scored CSV against the customer ids that went in: one row per
/// input customer, in any order, each probability in [0, 1], each risk
/// level `low`, `medium` or `high`.
pub fn assert_scored(scored: &str, input: &str) {
    let mut lines = scored.lines();
    let header = lines.next().expect("the scored CSV has a header");
    let columns: Vec<&str> = header.split(',').collect();
    assert_eq!(
        &columns[..3],
        ["customer_id", "churn_probability", "risk_level"],
        "scored CSV header: {header}"
    );
    let mut scored_ids: Vec<String> = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let probability: f64 = fields[1]
            .parse()
            .unwrap_or_else(|e| panic!("probability {:?} ({e}) in {line}", fields[1]));
        assert!(
            (0.0..=1.0).contains(&probability),
            "probability out of [0, 1] in {line}"
        );
        assert!(
            ["low", "medium", "high"].contains(&fields[2]),
            "risk level in {line}"
        );
        scored_ids.push(fields[0].to_owned());
    }
    let mut input_ids: Vec<String> = input
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').next().expect("a customer id").to_owned())
        .collect();
    scored_ids.sort();
    input_ids.sort();
    assert_eq!(
        scored_ids.len(),
        input_ids.len(),
        "one scored row per input customer"
    );
    assert_eq!(
        scored_ids, input_ids,
        "the scored rows are the input customers"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_line_is_the_columns() {
        assert_eq!(COLUMNS.join(","), HEADER);
    }

    #[test]
    fn generated_customers_are_scored_rows_of_the_header() {
        let csv = customers_csv(4);
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some(HEADER));
        assert!(lines.all(|l| l.split(',').count() == COLUMNS.len()));
        let row = with(customer("X-1"), "tenure", "7");
        assert_eq!(row[5], "7");
        let (header, rows) = without("Churn", &[row]);
        assert_eq!(header.len(), 20);
        assert_eq!(rows[0].len(), 20);
    }

    #[test]
    #[should_panic(expected = "one scored row per input customer")]
    fn a_scored_file_missing_a_customer_fails_the_check() {
        let input = customers_csv(2);
        let scored = "customer_id,churn_probability,risk_level\nC0000000,0.5,medium\n";
        assert_scored(scored, &input);
    }
}
