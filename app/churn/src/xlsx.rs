//! The first sheet of an `.xlsx` workbook as CSV text, cells written as a
//! spreadsheet shows them: whole numbers without `.0` (so a long numeric id
//! is written in full, not as `1.23457E+11`), other numbers to Excel's 15
//! significant digits, booleans as `TRUE`/`FALSE`, error cells as their
//! code (`#N/A`). Empty sheet rows between rows become empty lines, so a
//! line number is the sheet's row number (unless a cell above holds a line
//! break).
//!
//! The zip format keeps its directory at the end, so the workbook is read
//! whole before a cell can be: into memory or into a file the caller
//! hands over ([`WorkbookSpool`]), at most
//! [`crate::decode::MAX_WORKBOOK_BYTES`]. calamine keeps the shared strings
//! in memory. The text is made by a
//! thread that owns the workbook and streams it a few 64 KiB chunks ahead
//! of the reader, so it is never held whole.

use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom, Write};
use std::sync::mpsc::{Receiver, sync_channel};

use calamine::{DataRef, Reader, Xlsx};

use crate::decode::{BadData, DecodeError, MAX_WORKBOOK_BYTES, WorkbookSpool};

/// Size of the pieces of text handed from the converting thread.
const CHUNK: usize = 64 * 1024;

/// The first sheet's CSV text, produced by a thread that owns the
/// workbook (the cell reader borrows it), a few chunks ahead of the reader.
#[derive(Debug)]
pub struct SheetText {
    rx: Receiver<Result<Vec<u8>, String>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for SheetText {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Err(message)) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, BadData(message)));
                }
                // The thread is done and has sent everything.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// How many of the workbook's first bytes are searched for the
/// OpenDocument media type, to name an `.ods` file.
const HEAD: u64 = 128;

/// Reads the workbook into `spool` and returns its first sheet as CSV text.
pub fn first_sheet(
    mut input: impl Read,
    max_text: u64,
    spool: WorkbookSpool<'_>,
) -> Result<SheetText, DecodeError> {
    let mut head = Vec::new();
    input.by_ref().take(HEAD).read_to_end(&mut head)?;
    let rest = input.take(MAX_WORKBOOK_BYTES + 1 - head.len() as u64);
    let what = if head.windows(24).any(|w| w == b"opendocument.spreadsheet") {
        "an OpenDocument spreadsheet (.ods)"
    } else {
        "a zip archive that is not an .xlsx workbook"
    };
    let too_large = || {
        DecodeError::Unsupported(format!(
            "the workbook is larger than {} MiB; save its first sheet as CSV",
            MAX_WORKBOOK_BYTES / (1024 * 1024)
        ))
    };
    match spool {
        WorkbookSpool::Memory => {
            let mut bytes = head;
            { rest }.read_to_end(&mut bytes)?;
            if bytes.len() as u64 > MAX_WORKBOOK_BYTES {
                return Err(too_large());
            }
            convert(Cursor::new(bytes), what, max_text)
        }
        WorkbookSpool::File(open) => {
            let mut file = open()?;
            file.write_all(&head)?;
            let copied = head.len() as u64 + io::copy(&mut { rest }, &mut file)?;
            if copied > MAX_WORKBOOK_BYTES {
                return Err(too_large());
            }
            file.seek(SeekFrom::Start(0))?;
            convert(BufReader::new(file), what, max_text)
        }
    }
}

/// Opens the workbook in `reader` and starts the thread that writes its
/// first sheet as text.
fn convert<RS: Read + Seek + Send + 'static>(
    reader: RS,
    what: &str,
    max_text: u64,
) -> Result<SheetText, DecodeError> {
    let mut workbook = Xlsx::new(reader).map_err(|_| {
        DecodeError::Unsupported(format!(
            "the file appears to be {what}; save it as CSV (UTF-8) or .xlsx"
        ))
    })?;
    let Some(name) = workbook.sheet_names().first().cloned() else {
        return Err(DecodeError::Unsupported(
            "the workbook has no sheets".into(),
        ));
    };
    let (tx, rx) = sync_channel(4);
    std::thread::spawn(move || {
        let sent = write_sheet(&mut workbook, &name, max_text, &mut |chunk| {
            tx.send(Ok(chunk)).is_ok()
        });
        if let Err(message) = sent {
            let _ = tx.send(Err(message));
        }
    });
    Ok(SheetText {
        rx,
        current: Vec::new(),
        pos: 0,
    })
}

/// Writes the sheet as CSV text in chunks to `send`, which says `false`
/// when the reader has gone (then the work stops).
fn write_sheet<RS: Read + Seek>(
    workbook: &mut Xlsx<RS>,
    name: &str,
    max_text: u64,
    send: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<(), String> {
    let bad = |e: calamine::XlsxError| format!("the workbook's first sheet could not be read: {e}");
    let mut cells = workbook.worksheet_cells_reader(name).map_err(bad)?;
    let mut out = Vec::with_capacity(CHUNK);
    let mut total = 0u64;
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
        if out.len() >= CHUNK {
            total += out.len() as u64;
            if total > max_text {
                return Err(format!(
                    "the workbook's first sheet is larger than {} MiB as text",
                    max_text / (1024 * 1024)
                ));
            }
            if !send(std::mem::replace(&mut out, Vec::with_capacity(CHUNK))) {
                return Ok(());
            }
        }
    }
    if at.is_some() {
        out.push(b'\n');
    }
    send(out);
    Ok(())
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
        let err = first_sheet(
            &b"PK\x03\x04 not really a zip"[..],
            1 << 20,
            WorkbookSpool::Memory,
        )
        .expect_err("refused");
        assert!(
            err.to_string().contains("zip archive that is not an .xlsx"),
            "{err}"
        );
    }

    fn sheet_text(spool: WorkbookSpool<'_>) -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/workbook.xlsx");
        let file = std::fs::File::open(path).expect("the workbook fixture");
        let mut text = String::new();
        first_sheet(file, 1 << 30, spool)
            .expect("a workbook")
            .read_to_string(&mut text)
            .expect("its text");
        text
    }

    #[test]
    fn a_workbook_spooled_to_a_file_reads_as_one_held_in_memory() {
        let opened = std::sync::atomic::AtomicUsize::new(0);
        let open = || {
            opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tempfile::tempfile()
        };
        let from_file = sheet_text(WorkbookSpool::File(&open));
        assert_eq!(opened.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(from_file.starts_with("customerID,"), "{from_file}");
        assert_eq!(from_file, sheet_text(WorkbookSpool::Memory));
    }

    #[test]
    fn a_spool_that_cannot_be_opened_is_an_io_error() {
        let open = || Err(io::Error::other("no space left"));
        let err = first_sheet(
            &b"PK\x03\x04 not really a zip"[..],
            1,
            WorkbookSpool::File(&open),
        )
        .expect_err("refused");
        assert!(matches!(err, DecodeError::Io(_)), "{err}");
    }

    #[test]
    fn a_zip_that_is_not_a_workbook_is_named_from_a_file_spool_too() {
        let open = || tempfile::tempfile();
        let err = first_sheet(
            &b"PK\x03\x04 not really a zip"[..],
            1 << 20,
            WorkbookSpool::File(&open),
        )
        .expect_err("refused");
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
        assert!(matches!(
            first_sheet(Failing, 1, WorkbookSpool::Memory),
            Err(DecodeError::Io(_))
        ));
    }
}
