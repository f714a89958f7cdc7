//! Reading customer CSVs: headers, bad values and the edge cases real
//! uploads have. Every fixture is built here, in code.

use retainwise_churn::features::GROUP_TOTAL;
use retainwise_churn::model::ModelFile;
use retainwise_churn::schema::CustomerRow;
use retainwise_churn::schema::{CONTRACT, SchemaError, read_customers};
use retainwise_churn::score::{Factor, Score, Scorer, score_csv};
use retainwise_testkit::telco::{COLUMNS, csv_text, customer, with, without};

fn parse(text: &str) -> Result<retainwise_churn::schema::Customers, SchemaError> {
    read_customers(text.as_bytes())
}

fn scorer() -> Scorer {
    Scorer::new(&ModelFile::shipped().expect("shipped model loads")).expect("scorer")
}

#[test]
fn headers_match_whatever_their_case_and_separators() {
    let mut header: Vec<String> = COLUMNS.iter().map(|h| (*h).to_owned()).collect();
    header[0] = "Customer Id".into();
    header[5] = "TENURE".into();
    header[15] = "contract".into();
    header[18] = "monthly_charges".into();
    header[19] = "Total-Charges".into();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let parsed = parse(&csv_text(&header, &[customer("0001-A")], "\n")).expect("parses");
    let row = &parsed.rows[0];
    assert_eq!(row.customer_id, "0001-A");
    assert_eq!(row.tenure, 2.0);
    assert_eq!(row.categories[CONTRACT], Some(0));
    assert_eq!(row.monthly_charges, 70.70);
    assert_eq!(row.total_charges, Some(151.65));
    assert!(parsed.absent_columns.is_empty());
}

#[test]
fn customer_id_spellings_are_all_accepted() {
    for spelling in ["customerID", "customer_id", "Customer Id"] {
        let mut header = COLUMNS.to_vec();
        header[0] = spelling;
        let parsed = parse(&csv_text(&header, &[customer("X")], "\n"))
            .unwrap_or_else(|e| panic!("{spelling}: {e}"));
        assert_eq!(parsed.rows[0].customer_id, "X");
    }
}

#[test]
fn a_missing_required_column_is_named() {
    let (header, rows) = without("tenure", &[customer("1")]);
    let err = parse(&csv_text(&header, &rows, "\n")).expect_err("tenure is required");
    assert!(matches!(err, SchemaError::MissingColumns(ref c) if c == &["tenure"]));
    assert_eq!(err.to_string(), "missing required column(s): tenure");
}

#[test]
fn all_missing_required_columns_are_named_at_once() {
    let err = parse("id,Contract\n1,One year\n").expect_err("most columns are missing");
    assert_eq!(
        err.to_string(),
        "missing required column(s): customerID, tenure, MonthlyCharges"
    );
}

#[test]
fn an_unparsable_number_names_the_row_and_column() {
    let rows = [customer("1"), with(customer("2"), "MonthlyCharges", "lots")];
    let err = parse(&csv_text(&COLUMNS, &rows, "\n")).expect_err("bad number");
    let message = err.to_string();
    assert!(
        matches!(
            err,
            SchemaError::BadValue {
                row: 2,
                line: 3,
                column: "MonthlyCharges",
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains("row 2 (line 3), column MonthlyCharges"),
        "{message}"
    );
    assert!(message.contains("\"lots\" is not a number"), "{message}");
}

#[test]
fn negative_numbers_and_unknown_categories_are_errors() {
    let err = parse(&csv_text(
        &COLUMNS,
        &[with(customer("1"), "tenure", "-3")],
        "\n",
    ))
    .expect_err("negative tenure");
    assert!(
        err.to_string()
            .contains("column tenure: \"-3\" must be a number ≥ 0"),
        "{err}"
    );

    let err = parse(&csv_text(
        &COLUMNS,
        &[with(customer("1"), "Contract", "Weekly")],
        "\n",
    ))
    .expect_err("unknown contract");
    assert!(
        err.to_string().contains(
            "column Contract: unknown value \"Weekly\"; expected one of: Month-to-month, One year, Two year"
        ),
        "{err}"
    );
}

#[test]
fn a_blank_required_value_is_an_error() {
    let err = parse(&csv_text(
        &COLUMNS,
        &[with(customer("1"), "Contract", " ")],
        "\n",
    ))
    .expect_err("blank contract");
    assert!(
        err.to_string()
            .contains("row 1 (line 2), column Contract: is blank"),
        "{err}"
    );
}

#[test]
fn category_values_match_case_insensitively() {
    let row = with(customer("1"), "Contract", "two YEAR");
    let parsed = parse(&csv_text(&COLUMNS, &[row], "\n")).expect("parses");
    assert_eq!(parsed.rows[0].categories[CONTRACT], Some(2));
}

/// Parses one row of `header` and `row` and scores it.
fn score_one(scorer: &Scorer, header: &[&str], row: Vec<String>) -> (CustomerRow, Score) {
    let rows = parse(&csv_text(header, &[row], "\n")).expect("parses").rows;
    let score = scorer.score(&rows[0]);
    (rows[0].clone(), score)
}

/// The `TotalCharges` factor as a person reads it.
fn total_charges_factor(scorer: &Scorer, row: &CustomerRow, score: &Score) -> String {
    let factor = Factor {
        group: GROUP_TOTAL,
        contribution: score.contributions[GROUP_TOTAL],
    };
    let mut text = String::new();
    scorer.describe(row, factor, &mut text);
    text
}

#[test]
fn blank_total_charges_is_imputed_as_tenure_times_monthly_charges() {
    let scorer = scorer();
    // (tenure, MonthlyCharges, their product as a file would write it). A
    // brand-new customer (tenure 0) is the Telco file's own case, where
    // imputing 0 would also pass; the others tell the two apart. Charges
    // are exact in binary so the product prints as written.
    for (tenure, monthly, product) in [
        ("0", "20.25", "0"),
        ("12", "70.75", "849"),
        ("72", "118.75", "8550"),
    ] {
        let base = with(
            with(customer("c"), "tenure", tenure),
            "MonthlyCharges",
            monthly,
        );
        let (blank_row, blank) =
            score_one(&scorer, &COLUMNS, with(base.clone(), "TotalCharges", " "));
        assert_eq!(blank_row.total_charges, None, "tenure {tenure}");
        let (_, given) = score_one(
            &scorer,
            &COLUMNS,
            with(base.clone(), "TotalCharges", product),
        );
        assert!(
            (blank.probability - given.probability).abs() < 1e-12,
            "tenure {tenure}: blank scores {} but TotalCharges={product} scores {}",
            blank.probability,
            given.probability
        );
        assert_eq!(
            total_charges_factor(&scorer, &blank_row, &blank),
            format!(
                "TotalCharges={product} [imputed] ({:+.2})",
                blank.contributions[GROUP_TOTAL]
            ),
            "tenure {tenure}"
        );
        if tenure != "0" {
            let (_, zero) = score_one(&scorer, &COLUMNS, with(base, "TotalCharges", "0"));
            assert_ne!(
                blank.probability, zero.probability,
                "tenure {tenure}: a blank TotalCharges is not imputed as 0"
            );
        }
    }
}

#[test]
fn an_absent_total_charges_column_is_imputed_as_tenure_times_monthly_charges() {
    let scorer = scorer();
    let row = with(
        with(customer("c"), "tenure", "30"),
        "MonthlyCharges",
        "55.25",
    );
    let (header, rows) = without("TotalCharges", std::slice::from_ref(&row));
    let (absent_row, absent) = score_one(&scorer, &header, rows[0].clone());
    assert_eq!(absent_row.total_charges, None);
    let (_, given) = score_one(&scorer, &COLUMNS, with(row, "TotalCharges", "1657.5"));
    assert!(
        (absent.probability - given.probability).abs() < 1e-12,
        "absent scores {} but TotalCharges=1657.5 scores {}",
        absent.probability,
        given.probability
    );
    assert!(
        total_charges_factor(&scorer, &absent_row, &absent)
            .starts_with("TotalCharges=1657.5 [imputed] ("),
        "{}",
        total_charges_factor(&scorer, &absent_row, &absent)
    );
}

#[test]
fn an_empty_file_is_an_error_and_a_header_alone_is_no_rows() {
    assert!(matches!(parse(""), Err(SchemaError::Empty)));
    assert!(matches!(parse("\n"), Err(SchemaError::Empty)));
    let parsed = parse(&csv_text(&COLUMNS, &[], "\n")).expect("header only parses");
    assert!(parsed.rows.is_empty());

    let mut out = Vec::new();
    let (summary, _) =
        score_csv(&scorer(), COLUMNS.join(",").as_bytes(), &mut out).expect("scores");
    assert_eq!(summary.rows, 0);
    assert_eq!(
        String::from_utf8(out).expect("utf-8"),
        "customer_id,churn_probability,risk_level,factor_1,factor_2,factor_3\n"
    );
}

#[test]
fn a_byte_order_mark_and_crlf_line_ends_are_handled() {
    let text = format!(
        "\u{feff}{}",
        csv_text(&COLUMNS, &[customer("1"), customer("2")], "\r\n")
    );
    let parsed = parse(&text).expect("parses");
    assert_eq!(parsed.rows.len(), 2);
    assert_eq!(parsed.rows[0].customer_id, "1");
    // The last field must not keep the carriage return.
    assert_eq!(parsed.rows[1].churn, Some(true));
    assert!(
        parsed.ignored_columns.is_empty(),
        "{:?}",
        parsed.ignored_columns
    );
}

#[test]
fn quoted_fields_with_commas_and_quotes_are_read_whole() {
    let row = with(
        customer("\"Smith, John \"\"JJ\"\"\""),
        "PaymentMethod",
        "\"Mailed check\"",
    );
    let parsed = parse(&csv_text(&COLUMNS, &[row], "\n")).expect("parses");
    assert_eq!(parsed.rows[0].customer_id, "Smith, John \"JJ\"");
    assert_eq!(parsed.rows[0].categories[15], Some(1));

    // ... and written back quoted.
    let row = with(customer("\"Smith, John\""), "Churn", "No");
    let mut out = Vec::new();
    score_csv(
        &scorer(),
        csv_text(&COLUMNS, &[row], "\n").as_bytes(),
        &mut out,
    )
    .expect("scores");
    let out = String::from_utf8(out).expect("utf-8");
    assert!(
        out.lines()
            .nth(1)
            .expect("a row")
            .starts_with("\"Smith, John\","),
        "{out}"
    );
}

#[test]
fn unknown_extra_columns_are_ignored() {
    let mut header = COLUMNS.to_vec();
    header.push("Notes");
    let mut row = customer("1");
    row.push("\"likes the product, mostly\"".into());
    let parsed = parse(&csv_text(&header, &[row], "\n")).expect("parses");
    assert_eq!(parsed.ignored_columns, vec!["Notes".to_owned()]);
}

#[test]
fn two_headers_for_one_column_are_an_error() {
    let mut header = COLUMNS.to_vec();
    header.push("customer_id");
    let mut row = customer("1");
    row.push("2".into());
    let err = parse(&csv_text(&header, &[row], "\n")).expect_err("ambiguous");
    assert!(
        matches!(
            err,
            SchemaError::DuplicateColumn {
                column: "customerID",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_short_row_is_read_with_blank_trailing_cells_and_judged_as_usual() {
    let text = format!("{}\n1,Female\n", COLUMNS.join(","));
    let err = parse(&text).expect_err("short row without a tenure");
    assert_eq!(
        err.to_string(),
        "row 1 (line 2), column tenure: is blank; a value is required"
    );
}

#[test]
fn missing_optional_columns_are_imputed_as_training_did() {
    let model = ModelFile::shipped().expect("shipped model loads");
    let scorer = Scorer::new(&model).expect("scorer");
    // Drop OnlineSecurity: the row must score as if it had the training mode.
    let mode = &model.preprocessing.category_fill[7];
    let full = with(customer("1"), "OnlineSecurity", mode);
    let (header, rows) = without("OnlineSecurity", std::slice::from_ref(&full));
    let missing = parse(&csv_text(&header, &rows, "\n")).expect("parses");
    assert_eq!(missing.absent_columns, vec!["OnlineSecurity"]);
    assert_eq!(missing.rows[0].categories[7], None);
    let given = parse(&csv_text(&COLUMNS, &[full], "\n")).expect("parses");
    assert_eq!(
        scorer.score(&missing.rows[0]).probability,
        scorer.score(&given.rows[0]).probability
    );
    // Optional columns only: a file without Churn or gender still scores.
    let (header, rows) = without("Churn", &[customer("1")]);
    assert!(parse(&csv_text(&header, &rows, "\n")).is_ok());
}

#[test]
fn the_output_names_the_factors_a_person_can_read() {
    let mut out = Vec::new();
    let (summary, _) = score_csv(
        &scorer(),
        csv_text(&COLUMNS, &[customer("7590-VHVEG")], "\n").as_bytes(),
        &mut out,
    )
    .expect("scores");
    assert_eq!(summary.rows, 1);
    let out = String::from_utf8(out).expect("utf-8");
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("customer_id,churn_probability,risk_level,factor_1,factor_2,factor_3")
    );
    let fields: Vec<&str> = lines.next().expect("a row").split(',').collect();
    assert_eq!(fields[0], "7590-VHVEG");
    let p: f64 = fields[1].parse().expect("a probability");
    assert!(
        (0.0..=1.0).contains(&p) && fields[1].len() == 6,
        "{}",
        fields[1]
    );
    assert!(["low", "medium", "high"].contains(&fields[2]));
    // A new month-to-month fiber customer: these are the reasons.
    let factors = &fields[3..];
    assert!(
        factors
            .iter()
            .any(|f| f.starts_with("Contract=Month-to-month (+")),
        "{factors:?}"
    );
    assert!(
        factors.iter().any(|f| f.starts_with("tenure=2 (+")),
        "{factors:?}"
    );
}

#[test]
fn invalid_utf8_names_its_line() {
    let mut bytes = format!("{}\n", COLUMNS.join(",")).into_bytes();
    bytes.extend_from_slice(&[0xff, b'x']);
    bytes.extend_from_slice(customer("").join(",").as_bytes());
    bytes.push(b'\n');
    let err = read_customers(bytes.as_slice()).expect_err("invalid UTF-8");
    assert_eq!(err.to_string(), "row 1 (line 2): is not valid UTF-8");
}
