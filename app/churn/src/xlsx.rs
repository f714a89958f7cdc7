//! The first sheet of an `.xlsx` workbook as CSV text, cells written as a
//! spreadsheet shows them: whole numbers without `.0` (so a long numeric id
//! is written in full, not as `1.23457E+11`), other numbers to Excel's 15
//! significant digits, booleans as `TRUE`/`FALSE`, error cells as their
//! code (`#N/A`). Empty sheet rows between rows become empty lines, so a
//! line number is the sheet's row number (unless a cell above holds a line
//! break).
//!
//! The zip format keeps its directory at the end, so the workbook is read
//! whole into memory, at most [`crate::decode::MAX_WORKBOOK_BYTES`]; the
//! text is built whole too, at most the decoded limit.

use std::io::{Cursor, Read};

use calamine::{DataRef, Reader, Xlsx};

use crate::decode::{DecodeError, MAX_WORKBOOK_BYTES};

/// Reads the workbook and returns its first sheet as CSV text.
pub fn first_sheet(input: impl Read, max_text: u64) -> Result<Cursor<Vec<u8>>, DecodeError> {
    let mut bytes = Vec::new();
    input.take(MAX_WORKBOOK_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_WORKBOOK_BYTES {
        return Err(DecodeError::Unsupported(format!(
            "the workbook is larger than {} MiB; save its first sheet as CSV",
            MAX_WORKBOOK_BYTES / (1024 * 1024)
        )));
    }
    let not_xlsx = || {
        let what = if bytes
            .windows(24)
            .take(100)
            .any(|w| w == b"opendocument.spreadsheet")
        {
            "an OpenDocument spreadsheet (.ods)"
        } else {
            "a zip archive that is not an .xlsx workbook"
        };
        DecodeError::Unsupported(format!(
            "the file appears to be {what}; save it as CSV (UTF-8) or .xlsx"
        ))
    };
    let mut workbook = Xlsx::new(Cursor::new(bytes.as_slice())).map_err(|_| not_xlsx())?;
    let Some(name) = workbook.sheet_names().first().cloned() else {
        return Err(DecodeError::Unsupported(
            "the workbook has no sheets".into(),
        ));
    };
    let bad = |e: calamine::XlsxError| {
        DecodeError::Unsupported(format!("the workbook's first sheet could not be read: {e}"))
    };
    let mut cells = workbook.worksheet_cells_reader(&name).map_err(bad)?;
    let mut out = Vec::new();
    let mut cell_text = String::new();
    // (row, column) of the next cell to write.
    let mut at: Option<(u32, u32)> = None;
    while let Some(cell) = cells.next_cell().map_err(bad)? {
        let (row, col) = cell.get_position();
        let (cur_row, mut written) = at.unwrap_or((row, 0));
        if row > cur_row {
            out.resize(out.len() + (row - cur_row) as usize, b'\n');
            written = 0;
        }
        let commas = col.saturating_sub(written) + u32::from(written > 0);
        out.resize(out.len() + commas as usize, b',');
        cell_text.clear();
        show(cell.get_value(), &mut cell_text);
        push_field(&mut out, &cell_text);
        at = Some((row, col + 1));
        if out.len() as u64 > max_text {
            return Err(DecodeError::Unsupported(format!(
                "the workbook's first sheet is larger than {} MiB as text",
                max_text / (1024 * 1024)
            )));
        }
    }
    if at.is_some() {
        out.push(b'\n');
    }
    Ok(Cursor::new(out))
}

/// A cell as a spreadsheet shows it.
fn show(value: &DataRef<'_>, out: &mut String) {
    use std::fmt::Write as _;
    match value {
        DataRef::Int(i) => {
            let _ = write!(out, "{i}");
        }
        DataRef::Float(f) => push_number(out, *f),
        DataRef::DateTime(d) => push_number(out, d.as_f64()),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => out.push_str(s),
        DataRef::SharedString(s) => out.push_str(s),
        DataRef::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
        DataRef::Error(e) => {
            let _ = write!(out, "{e}");
        }
        DataRef::Empty => {}
    }
}

/// Whole numbers in full; others to 15 significant digits, as Excel shows
/// them (`0.1 + 0.2` is `0.3`, not `0.30000000000000004`).
fn push_number(out: &mut String, v: f64) {
    use std::fmt::Write as _;
    if v.fract() == 0.0 && v.abs() < 1e17 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let shown: f64 = format!("{v:.14e}").parse().unwrap_or(v);
        let _ = write!(out, "{shown}");
    }
}

/// Appends one CSV field, quoted when it must be.
fn push_field(out: &mut Vec<u8>, text: &str) {
    if text.contains([',', '"', '\r', '\n']) {
        out.push(b'"');
        for b in text.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn numbers_read_as_a_spreadsheet_shows_them() {
        let shown = |v: f64| {
            let mut s = String::new();
            push_number(&mut s, v);
            s
        };
        assert_eq!(shown(123_456_789_012.0), "123456789012");
        assert_eq!(shown(2.0), "2");
        assert_eq!(shown(0.1 + 0.2), "0.3");
        assert_eq!(shown(70.35), "70.35");
    }

    #[test]
    fn fields_are_quoted_when_they_must_be() {
        let mut out = Vec::new();
        push_field(&mut out, "a \"b\", c");
        assert_eq!(out, b"\"a \"\"b\"\", c\"");
    }

    #[test]
    fn a_zip_that_is_not_a_workbook_is_named() {
        let err = first_sheet(&b"PK\x03\x04 not really a zip"[..], 1 << 20).expect_err("refused");
        assert!(
            err.to_string().contains("zip archive that is not an .xlsx"),
            "{err}"
        );
    }

    #[test]
    fn io_errors_pass_through() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("gone"))
            }
        }
        assert!(matches!(first_sheet(Failing, 1), Err(DecodeError::Io(_))));
    }
}
