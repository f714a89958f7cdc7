//! The ingest report: what was made of a customer file's columns and rows,
//! so that nothing is dropped or imputed without the user being told.
//!
//! ```json
//! {"columns_used": ["customerID", "tenure", ...],
//!  "columns_ignored": ["Notes", "Total Charges (USD)"],
//!  "columns_imputed": {"TotalCharges": 11},
//!  "blank_rows_skipped": 2,
//!  "likely_mistakes": [{"header": "Total Charges (USD)", "looks_like": "TotalCharges"}]}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::schema::normalize_header;

/// What reading a customer file made of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Known columns that were read, by their canonical names, in the
    /// source data set's order.
    pub columns_used: Vec<String>,
    /// Columns that were not read, by their headers as written (a column
    /// with a blank header is `(column N)`, 1-based).
    pub columns_ignored: Vec<String>,
    /// Model inputs that were imputed, with how many rows (every row when
    /// the column is absent, the blank ones otherwise).
    pub columns_imputed: BTreeMap<String, u64>,
    /// Rows holding nothing but delimiters and whitespace.
    pub blank_rows_skipped: u64,
    /// Ignored headers that look like a known column that the file lacks.
    pub likely_mistakes: Vec<LikelyMistake>,
}

/// An ignored header that looks like a known column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LikelyMistake {
    /// The header as written.
    pub header: String,
    /// The known column it looks like.
    pub looks_like: String,
}

impl IngestReport {
    /// One line per finding, for a terminal.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("columns used: {}", self.columns_used.join(", "))];
        if !self.columns_ignored.is_empty() {
            out.push(format!(
                "columns ignored: {}",
                self.columns_ignored.join(", ")
            ));
        }
        for (column, rows) in &self.columns_imputed {
            out.push(format!("{column} imputed in {rows} row(s)"));
        }
        if self.blank_rows_skipped > 0 {
            out.push(format!("{} blank row(s) skipped", self.blank_rows_skipped));
        }
        for m in &self.likely_mistakes {
            out.push(format!(
                "likely mistake: column {:?} was ignored; did you mean {}?",
                m.header, m.looks_like
            ));
        }
        out
    }
}

/// The known column (among `absent`) that `header` most likely meant: the
/// same name once units in brackets are dropped, a name inside it or it
/// inside a name (at least 5 letters), or a name at most two edits away.
pub fn looks_like(header: &str, absent: &[&'static str]) -> Option<&'static str> {
    let key = normalize_header(header);
    let unbracketed = normalize_header(&strip_brackets(header));
    if key.len() < 3 {
        return None;
    }
    let candidates = || absent.iter().map(|name| (*name, normalize_header(name)));
    candidates()
        .find(|(_, n)| *n == unbracketed)
        .or_else(|| candidates().find(|(_, n)| key.contains(n.as_str())))
        .or_else(|| candidates().find(|(_, n)| key.len() >= 5 && n.contains(key.as_str())))
        .or_else(|| candidates().find(|(_, n)| edit_distance(&key, n) <= 2))
        .map(|(name, _)| name)
}

/// `header` without anything in `(...)` or `[...]`.
fn strip_brackets(header: &str) -> String {
    let mut depth = 0u32;
    header
        .chars()
        .filter(|c| match c {
            '(' | '[' => {
                depth += 1;
                false
            }
            ')' | ']' => {
                depth = depth.saturating_sub(1);
                false
            }
            _ => depth == 0,
        })
        .collect()
}

/// Levenshtein distance over bytes (headers are compared normalised).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &x) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &y) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(x != y))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_that_look_like_known_columns_are_caught() {
        let absent = ["TotalCharges", "tenure", "PaymentMethod"];
        for (header, expected) in [
            ("Total Charges (USD)", Some("TotalCharges")),
            ("Customer tenure in months", Some("tenure")),
            ("Tenur", Some("tenure")),
            ("Payment", Some("PaymentMethod")),
            ("Notes", None),
            ("id", None),
        ] {
            assert_eq!(looks_like(header, &absent), expected, "{header}");
        }
    }
}
