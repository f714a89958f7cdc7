//! The customer CSV schema: which columns exist, which are required, how
//! headers are matched, and how one CSV record becomes a [`CustomerRow`].
//!
//! Parsing is strict where a silent guess would corrupt a score and lenient
//! where the intent is clear:
//!
//! - Headers match case- and separator-insensitively: `customerID`,
//!   `customer_id` and `Customer Id` are the same column. Columns we do not
//!   know are ignored; two headers naming the same column are an error.
//! - The columns in [`REQUIRED`] must be present and non-blank in every row.
//!   Any other known column may be missing (from the header, or blank in a
//!   row): it is left as `None` here and imputed later by
//!   [`crate::features`], exactly as training did.
//! - Category values match case-insensitively (`month-to-month`); a yes/no
//!   column (and `SeniorCitizen`) also takes `Y/N`, `True/False`, `1/0`
//!   ([`yes_no`]). An unknown value, a negative or non-numeric number is an
//!   error naming the row, the line and the column (and, for yes/no, the
//!   accepted spellings).
//! - `Churn` is read for training and ignored, never checked, for scoring
//!   ([`Purpose`]).
//! - `TotalCharges` is blank for brand-new customers in the source data; a
//!   blank is kept as `None` (imputed as `tenure × MonthlyCharges`, which is
//!   0 for a customer with tenure 0).

use std::io;

use crate::records::Record;

/// A categorical column: its canonical name and its levels, in the spelling
/// of the source data set (the spelling used in explanations).
#[derive(Debug, Clone, Copy)]
pub struct Category {
    pub name: &'static str,
    pub levels: &'static [&'static str],
}

const YES_NO: &[&str] = &["No", "Yes"];
const INTERNET_ADDON: &[&str] = &["No", "Yes", "No internet service"];

/// Every categorical column, in feature order.
pub const CATEGORIES: [Category; 16] = [
    Category {
        name: "gender",
        levels: &["Female", "Male"],
    },
    Category {
        name: "SeniorCitizen",
        levels: &["0", "1"],
    },
    Category {
        name: "Partner",
        levels: YES_NO,
    },
    Category {
        name: "Dependents",
        levels: YES_NO,
    },
    Category {
        name: "PhoneService",
        levels: YES_NO,
    },
    Category {
        name: "MultipleLines",
        levels: &["No", "Yes", "No phone service"],
    },
    Category {
        name: "InternetService",
        levels: &["DSL", "Fiber optic", "No"],
    },
    Category {
        name: "OnlineSecurity",
        levels: INTERNET_ADDON,
    },
    Category {
        name: "OnlineBackup",
        levels: INTERNET_ADDON,
    },
    Category {
        name: "DeviceProtection",
        levels: INTERNET_ADDON,
    },
    Category {
        name: "TechSupport",
        levels: INTERNET_ADDON,
    },
    Category {
        name: "StreamingTV",
        levels: INTERNET_ADDON,
    },
    Category {
        name: "StreamingMovies",
        levels: INTERNET_ADDON,
    },
    Category {
        name: "Contract",
        levels: &["Month-to-month", "One year", "Two year"],
    },
    Category {
        name: "PaperlessBilling",
        levels: YES_NO,
    },
    Category {
        name: "PaymentMethod",
        levels: &[
            "Electronic check",
            "Mailed check",
            "Bank transfer (automatic)",
            "Credit card (automatic)",
        ],
    },
];

/// Number of categorical columns.
pub const N_CATEGORIES: usize = CATEGORIES.len();

/// Index of `Contract` in [`CATEGORIES`].
pub const CONTRACT: usize = 13;

/// A column of the customer CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    CustomerId,
    /// Index into [`CATEGORIES`].
    Category(usize),
    Tenure,
    MonthlyCharges,
    TotalCharges,
    /// The training label; ignored when scoring.
    Churn,
}

impl Field {
    /// The column's name as the source data set spells it.
    pub fn name(self) -> &'static str {
        match self {
            Field::CustomerId => "customerID",
            Field::Category(i) => CATEGORIES[i].name,
            Field::Tenure => "tenure",
            Field::MonthlyCharges => "MonthlyCharges",
            Field::TotalCharges => "TotalCharges",
            Field::Churn => "Churn",
        }
    }
}

/// Every known column, in the source data set's order.
pub const FIELDS: [Field; 21] = [
    Field::CustomerId,
    Field::Category(0),
    Field::Category(1),
    Field::Category(2),
    Field::Category(3),
    Field::Tenure,
    Field::Category(4),
    Field::Category(5),
    Field::Category(6),
    Field::Category(7),
    Field::Category(8),
    Field::Category(9),
    Field::Category(10),
    Field::Category(11),
    Field::Category(12),
    Field::Category(13),
    Field::Category(14),
    Field::Category(15),
    Field::MonthlyCharges,
    Field::TotalCharges,
    Field::Churn,
];

/// The columns every customer file must have, with a value in every row.
///
/// The id names the output row; tenure, contract and monthly charges carry
/// most of the signal, so a file without them cannot be scored honestly.
/// Everything else is imputed when absent.
pub const REQUIRED: [Field; 4] = [
    Field::CustomerId,
    Field::Tenure,
    Field::Category(CONTRACT),
    Field::MonthlyCharges,
];

/// One customer, parsed. `None` means "absent or blank": imputed later.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRow {
    pub customer_id: String,
    /// Level index into `CATEGORIES[i].levels`.
    pub categories: [Option<u8>; N_CATEGORIES],
    /// Months with the company.
    pub tenure: f64,
    pub monthly_charges: f64,
    pub total_charges: Option<f64>,
    /// `Some(true)` for `Churn=Yes`; `None` when the column is absent or blank.
    pub churn: Option<bool>,
}

/// Why a customer file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("the file is empty: expected a header row naming the columns")]
    Empty,
    #[error("missing required column(s): {}", .0.join(", "))]
    MissingColumns(Vec<&'static str>),
    #[error("columns {first:?} and {second:?} both name the column {column}")]
    DuplicateColumn {
        column: &'static str,
        first: String,
        second: String,
    },
    #[error("row {row} (line {line}), column {column}: {problem}")]
    BadValue {
        /// 1-based data row, the header not counted.
        row: u64,
        /// 1-based line in the file.
        line: u64,
        column: &'static str,
        problem: String,
    },
    #[error("row {row} (line {line}): {message}")]
    BadRecord {
        row: u64,
        line: u64,
        message: String,
    },
    #[error(
        "rows {first_row} (line {first_line}) and {row} (line {line}) have the same customerID {id:?}; each customer must appear once"
    )]
    DuplicateId {
        id: String,
        first_row: u64,
        first_line: u64,
        row: u64,
        line: u64,
    },
    /// Not a file we read (PDF, image, `.xls`, ...), or one that cannot be
    /// decoded: says what it appears to be.
    #[error("{0}")]
    Unsupported(String),
    #[error("reading the CSV: {0}")]
    Io(#[from] io::Error),
}

/// Lower-cases and drops everything but letters and digits, so that
/// `Customer Id`, `customer_id` and `customerID` compare equal. A UTF-8 byte
/// order mark, if any reached us, is dropped with the other non-alphanumerics.
pub fn normalize_header(header: &str) -> String {
    header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Which CSV column (if any) holds each known field.
#[derive(Debug, Clone)]
pub struct HeaderMap {
    /// `positions[k]` is the CSV index of `FIELDS[k]`.
    positions: [Option<usize>; FIELDS.len()],
    /// Headers that matched no known column, in file order.
    pub ignored: Vec<String>,
}

impl HeaderMap {
    /// Matches a header row against [`FIELDS`]. When scoring, `Churn` is
    /// not read (it is listed as ignored and never validated).
    pub fn new<'a>(
        headers: impl IntoIterator<Item = &'a str>,
        purpose: Purpose,
    ) -> Result<Self, SchemaError> {
        let wanted: Vec<String> = FIELDS.iter().map(|f| normalize_header(f.name())).collect();
        let mut positions = [None; FIELDS.len()];
        let mut originals: [Option<String>; FIELDS.len()] = Default::default();
        let mut ignored = Vec::new();
        for (index, header) in headers.into_iter().enumerate() {
            let key = normalize_header(header);
            if header.trim().is_empty() {
                ignored.push(format!("(column {})", index + 1));
                continue;
            }
            let known = wanted.iter().position(|w| *w == key);
            let known =
                known.filter(|k| !(purpose == Purpose::Score && FIELDS[*k] == Field::Churn));
            match known {
                Some(k) => {
                    if let Some(first) = &originals[k] {
                        return Err(SchemaError::DuplicateColumn {
                            column: FIELDS[k].name(),
                            first: first.clone(),
                            second: header.to_owned(),
                        });
                    }
                    positions[k] = Some(index);
                    originals[k] = Some(header.to_owned());
                }
                None => ignored.push(header.to_owned()),
            }
        }
        let missing: Vec<&'static str> = REQUIRED
            .iter()
            .filter(|f| positions[field_slot(**f)].is_none())
            .map(|f| f.name())
            .collect();
        if !missing.is_empty() {
            return Err(SchemaError::MissingColumns(missing));
        }
        Ok(HeaderMap { positions, ignored })
    }

    /// Known optional columns that the file lacks (they will be imputed).
    pub fn absent(&self) -> Vec<&'static str> {
        FIELDS
            .iter()
            .zip(&self.positions)
            .filter(|(_, p)| p.is_none())
            .map(|(f, _)| f.name())
            .collect()
    }

    /// The CSV index of `field`, if the file has it.
    pub fn position(&self, field: Field) -> Option<usize> {
        self.positions[field_slot(field)]
    }

    /// Known columns the file has, by canonical name, in [`FIELDS`] order.
    pub fn used(&self) -> Vec<&'static str> {
        FIELDS
            .iter()
            .zip(&self.positions)
            .filter(|(_, p)| p.is_some())
            .map(|(f, _)| f.name())
            .collect()
    }

    /// Parses one record. `row` and `line` are used in error messages only.
    ///
    /// With `decimal_comma` (a `;`-separated file), `70,35` reads as 70.35.
    pub fn parse_row(
        &self,
        record: &Record,
        row: u64,
        line: u64,
        decimal_comma: bool,
    ) -> Result<CustomerRow, SchemaError> {
        let bad = |field: Field, problem: String| SchemaError::BadValue {
            row,
            line,
            column: field.name(),
            problem,
        };
        // The trimmed text of a field; `None` when absent or blank.
        let cell = |field: Field| -> Result<Option<&str>, SchemaError> {
            let text = self.positions[field_slot(field)]
                .and_then(|i| record.get(i))
                .map(trim);
            Ok(text.filter(|t| !t.is_empty()))
        };
        let required = |field: Field| {
            cell(field)?.ok_or_else(|| bad(field, "is blank; a value is required".into()))
        };
        let number = |field: Field, text: &str| -> Result<f64, SchemaError> {
            let parsed = if decimal_comma && text.contains(',') && !text.contains('.') {
                text.replacen(',', ".", 1).parse::<f64>()
            } else {
                text.parse::<f64>()
            };
            match parsed {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
                Ok(_) => Err(bad(field, format!("{text:?} must be a number ≥ 0"))),
                Err(_) => Err(bad(field, format!("{text:?} is not a number"))),
            }
        };

        let customer_id = required(Field::CustomerId)?.to_owned();
        let tenure = number(Field::Tenure, required(Field::Tenure)?)?;
        let monthly_charges = number(Field::MonthlyCharges, required(Field::MonthlyCharges)?)?;
        let total_charges = match cell(Field::TotalCharges)? {
            Some(text) => Some(number(Field::TotalCharges, text)?),
            None => None,
        };
        let mut categories = [None; N_CATEGORIES];
        for (i, slot) in categories.iter_mut().enumerate() {
            let field = Field::Category(i);
            let Some(text) = cell(field)? else {
                if REQUIRED.contains(&field) {
                    return Err(bad(field, "is blank; a value is required".into()));
                }
                continue;
            };
            let levels = CATEGORIES[i].levels;
            let level = level_of(levels, text).ok_or_else(|| {
                let spellings = if levels.contains(&"Yes") || levels == ["0", "1"] {
                    YES_NO_SPELLINGS
                } else {
                    ""
                };
                bad(
                    field,
                    format!(
                        "unknown value {text:?}; expected one of: {}{spellings}",
                        levels.join(", ")
                    ),
                )
            })?;
            *slot = Some(level as u8);
        }
        let churn = match cell(Field::Churn)? {
            None => None,
            Some(t) => Some(yes_no(t).ok_or_else(|| {
                bad(
                    Field::Churn,
                    format!("unknown value {t:?}; expected one of: No, Yes{YES_NO_SPELLINGS}"),
                )
            })?),
        };
        Ok(CustomerRow {
            customer_id,
            categories,
            tenure,
            monthly_charges,
            total_charges,
            churn,
        })
    }
}

/// `text` without the whitespace at either end, as [`str::trim`] takes it
/// off. A field with a visible ASCII character at both ends, which is
/// nearly every field, is returned as it is after two byte tests, where
/// `str::trim` decodes a character at each end and asks Unicode: the
/// upload check's CPU time on 100,000 rows went from 132.6 to 123.5 ms
/// (`cargo bench -p retainwise-churn --bench score -- "cpu/score_csv/check
/// only"`, one after the other).
fn trim(text: &str) -> &str {
    match text.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        [only] if only.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// How the accepted yes/no spellings are described in errors.
const YES_NO_SPELLINGS: &str = " (or Y/N, True/False, 1/0, in any case)";

/// The usual spellings of yes and no: `Yes/No`, `Y/N`, `True/False`,
/// `1/0`, in any case.
pub fn yes_no(text: &str) -> Option<bool> {
    const YES: [&str; 4] = ["yes", "y", "true", "1"];
    const NO: [&str; 4] = ["no", "n", "false", "0"];
    if YES.iter().any(|y| y.eq_ignore_ascii_case(text)) {
        Some(true)
    } else if NO.iter().any(|n| n.eq_ignore_ascii_case(text)) {
        Some(false)
    } else {
        None
    }
}

/// The level `text` names: exact up to case, or, for a column whose levels
/// are yes/no (`Yes`/`No`, or `SeniorCitizen`'s `1`/`0`), any spelling
/// [`yes_no`] accepts.
fn level_of(levels: &[&str], text: &str) -> Option<usize> {
    // Exact first: what nearly every file holds, and a plain comparison is
    // cheaper than a case-folding one, which was about a sixth of the row
    // parsing's samples in `perf`.
    if let Some(level) = levels.iter().position(|l| *l == text) {
        return Some(level);
    }
    if let Some(level) = levels.iter().position(|l| l.eq_ignore_ascii_case(text)) {
        return Some(level);
    }
    let (yes, no) = if levels == ["0", "1"] {
        ("1", "0")
    } else if levels.contains(&"Yes") {
        ("Yes", "No")
    } else {
        return None;
    };
    let wanted = if yes_no(text)? { yes } else { no };
    levels.iter().position(|l| *l == wanted)
}

/// Whether a file is read to train (the `Churn` label is read) or to score
/// (`Churn` is ignored, never validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Train,
    Score,
}

/// The position of `field` in [`FIELDS`] (checked by a test).
const fn field_slot(field: Field) -> usize {
    match field {
        Field::CustomerId => 0,
        Field::Category(i) if i < 4 => i + 1,
        Field::Tenure => 5,
        Field::Category(i) => i + 2,
        Field::MonthlyCharges => 18,
        Field::TotalCharges => 19,
        Field::Churn => 20,
    }
}

pub use crate::reader::{CustomerReader, Customers, read_customers, read_customers_for};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_trim_takes_off_what_str_trim_does() {
        for text in [
            "",
            " ",
            "\t",
            "a",
            "Yes",
            " Yes",
            "Yes ",
            "\u{a0}Yes",
            "Yes\u{3000}",
            "\u{2003}",
            "é",
            "éa ",
            "\r\nNo\r\n",
            "x y",
            "\u{feff}Yes",
        ] {
            assert_eq!(trim(text), text.trim(), "{text:?}");
        }
    }

    #[test]
    fn field_slots_match_the_field_list() {
        for (k, field) in FIELDS.iter().enumerate() {
            assert_eq!(field_slot(*field), k, "{field:?}");
        }
    }

    #[test]
    fn headers_normalise_across_spellings() {
        for h in [
            "customerID",
            "customer_id",
            "Customer Id",
            "CUSTOMER-ID",
            "\u{feff}customerID",
        ] {
            assert_eq!(normalize_header(h), "customerid", "{h}");
        }
    }
}
