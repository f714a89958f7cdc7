//! One reader for every path (the `score` command, the upload check, the
//! worker): decodes the file ([`crate::decode`]), reads its records
//! ([`crate::records`]), matches the header and parses each row
//! ([`crate::schema`]), and keeps the [`IngestReport`].
//!
//! Spreadsheet leftovers are read as meant: a row of nothing but
//! delimiters and whitespace is skipped and counted; a short row has blank
//! trailing cells (then judged as usual); one extra empty trailing field is
//! ignored, and so is a trailing delimiter on the header. Row `N` is the
//! `N`-th record after the header, blank ones included, so it is the
//! spreadsheet's row `N + 1`; lines are as a text editor shows them.
//!
//! When scoring, a customer id may appear once. Every id is kept once,
//! with its row and line, in one byte arena, with its 64-bit hash; once
//! the file is read the hashes are sorted and equal ones compared by the
//! ids themselves, so a hash collision is never reported as a duplicate
//! ([`SeenIds`]). It costs about the id's length plus 26 bytes a row
//! (about 34 MiB for 1,000,000 rows of 8-character ids), inside the
//! upload's memory budget. Keeping the ids (rather than re-reading the
//! file to confirm a hit) is what lets the upload check, which sees the
//! bytes once as they stream, name both rows.

use std::hash::BuildHasher;
use std::io::Read;

use hashbrown::DefaultHashBuilder;

use crate::decode::{self, Container, DecodeError, WorkbookSpool};
use crate::records::{Record, RecordError, RecordReader};
use crate::report::{IngestReport, LikelyMistake, looks_like};
use crate::schema::{CustomerRow, Field, HeaderMap, N_CATEGORIES, Purpose, SchemaError};

/// Streams [`CustomerRow`]s out of a customer file, one record at a time.
///
/// The header is read by the constructor; an empty input is
/// [`SchemaError::Empty`], a header without rows yields no rows. After the
/// last row, [`CustomerReader::report`] says what was made of the file.
pub struct CustomerReader<'a> {
    records: RecordReader<Box<dyn Read + 'a>>,
    header: HeaderMap,
    purpose: Purpose,
    container: Container,
    /// Fields in the header (a trailing blank one not counted).
    width: usize,
    decimal_comma: bool,
    record: Record,
    /// Records read after the header, blank ones included.
    row: u64,
    /// Customer rows parsed.
    customers: u64,
    blank_rows: u64,
    /// Blank values per category, then `TotalCharges`.
    blanks: [u64; N_CATEGORIES + 1],
    seen: SeenIds,
    check_ids: bool,
}

impl std::fmt::Debug for CustomerReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerReader")
            .field("container", &self.container)
            .field("row", &self.row)
            .finish_non_exhaustive()
    }
}

fn record_error(error: RecordError) -> SchemaError {
    match error {
        RecordError::Shape {
            record: 0,
            line,
            message,
        } => SchemaError::BadRecord {
            row: 0,
            line,
            message: format!("(the header) {message}"),
        },
        RecordError::Shape {
            record,
            line,
            message,
        } => SchemaError::BadRecord {
            row: record,
            line,
            message,
        },
        RecordError::Io(e) => match decode::classify(e) {
            Ok(message) => SchemaError::Unsupported(message),
            Err(e) => SchemaError::Io(e),
        },
    }
}

impl<'a> CustomerReader<'a> {
    /// A reader for training: `Churn` is read.
    pub fn new(input: impl Read + 'a) -> Result<Self, SchemaError> {
        Self::with(input, Purpose::Train, decode::MAX_DECODED_BYTES)
    }

    /// A reader for scoring: `Churn` is ignored.
    pub fn for_scoring(input: impl Read + 'a) -> Result<Self, SchemaError> {
        Self::with(input, Purpose::Score, decode::MAX_DECODED_BYTES)
    }

    /// A reader with the decoded text bounded by `max_decoded` bytes.
    pub fn with(
        input: impl Read + 'a,
        purpose: Purpose,
        max_decoded: u64,
    ) -> Result<Self, SchemaError> {
        Self::with_spool(input, purpose, max_decoded, WorkbookSpool::Memory)
    }

    /// [`CustomerReader::with`], holding an `.xlsx` workbook where `spool`
    /// says while its first sheet is read.
    pub fn with_spool(
        input: impl Read + 'a,
        purpose: Purpose,
        max_decoded: u64,
        spool: WorkbookSpool<'_>,
    ) -> Result<Self, SchemaError> {
        let decoded = decode::open_with(input, max_decoded, spool).map_err(|e| match e {
            DecodeError::Unsupported(message) => SchemaError::Unsupported(message),
            DecodeError::Io(e) => SchemaError::Io(e),
        })?;
        let mut records = RecordReader::new(decoded.text).map_err(|e| record_error(e.into()))?;
        let mut header = Record::default();
        if !records.read(&mut header).map_err(record_error)? || header.is_blank() {
            return Err(SchemaError::Empty);
        }
        let mut width = header.len();
        if width > 1 && header.get(width - 1).is_some_and(|h| h.trim().is_empty()) {
            width -= 1;
        }
        let decimal_comma = records.delimiter() == b';';
        let header_map = HeaderMap::new(header.iter().take(width), purpose)?;
        Ok(CustomerReader {
            records,
            header: header_map,
            purpose,
            container: decoded.container,
            width,
            decimal_comma,
            record: Record::default(),
            row: 0,
            customers: 0,
            blank_rows: 0,
            blanks: [0; N_CATEGORIES + 1],
            seen: SeenIds::default(),
            check_ids: true,
        })
    }

    /// Skips the repeated-id check, for a file that already passed it
    /// (the worker scoring an upload the upload check read whole).
    pub fn without_id_check(mut self) -> Self {
        self.check_ids = false;
        self
    }

    /// The matched header.
    pub fn header(&self) -> &HeaderMap {
        &self.header
    }

    /// What the file came in (text, UTF-16, gzip, xlsx).
    pub fn container(&self) -> Container {
        self.container
    }

    /// What was made of the file so far (all of it, after the last row).
    pub fn report(&self) -> IngestReport {
        let mut imputed = std::collections::BTreeMap::new();
        let inputs = (0..N_CATEGORIES)
            .map(Field::Category)
            .chain([Field::TotalCharges]);
        for (k, field) in inputs.enumerate() {
            let rows = if self.header.position(field).is_none() {
                self.customers
            } else {
                self.blanks[k]
            };
            if rows > 0 {
                imputed.insert(field.name().to_owned(), rows);
            }
        }
        let absent: Vec<&'static str> = self
            .header
            .absent()
            .into_iter()
            .filter(|name| self.purpose == Purpose::Train || *name != Field::Churn.name())
            .collect();
        let likely_mistakes = self
            .header
            .ignored
            .iter()
            .filter_map(|h| {
                looks_like(h, &absent).map(|known| LikelyMistake {
                    header: h.clone(),
                    looks_like: known.to_owned(),
                })
            })
            .collect();
        IngestReport {
            columns_used: self.header.used().into_iter().map(str::to_owned).collect(),
            columns_ignored: self.header.ignored.clone(),
            columns_imputed: imputed,
            blank_rows_skipped: self.blank_rows,
            likely_mistakes,
        }
    }

    fn next_row(&mut self) -> Result<Option<CustomerRow>, SchemaError> {
        match self.next_unchecked() {
            // The file is read: any repeated id is reported now, before
            // its end is. So is one among the rows before a bad row, which
            // a reader stopping at the first problem would have met first.
            Ok(None) => self.repeated_id().map_or(Ok(None), Err),
            // A failing read is not the file's fault: it is reported as is.
            Err(e @ SchemaError::Io(_)) => Err(e),
            Err(e) => Err(self.repeated_id().unwrap_or(e)),
            row => row,
        }
    }

    /// The first repeated id among the rows read (by the row of its
    /// second appearance), once; `None` after that or without the check.
    fn repeated_id(&mut self) -> Option<SchemaError> {
        if self.purpose != Purpose::Score || !self.check_ids {
            return None;
        }
        self.check_ids = false;
        self.seen
            .first_repeat()
            .map(|repeat| SchemaError::DuplicateId {
                id: repeat.id,
                first_row: repeat.first.0,
                first_line: repeat.first.1,
                row: repeat.again.0,
                line: repeat.again.1,
            })
    }

    fn next_unchecked(&mut self) -> Result<Option<CustomerRow>, SchemaError> {
        loop {
            if !self.records.read(&mut self.record).map_err(record_error)? {
                return Ok(None);
            }
            self.row += 1;
            let line = self.record.line;
            if self.record.is_blank() {
                self.blank_rows += 1;
                continue;
            }
            let len = self.record.len();
            let trailing_empty = len == self.width + 1
                && self
                    .record
                    .get(self.width)
                    .is_some_and(|f| f.trim().is_empty());
            if len > self.width && !trailing_empty {
                return Err(SchemaError::BadRecord {
                    row: self.row,
                    line,
                    message: format!("has {len} fields but the header has {}", self.width),
                });
            }
            let row = self
                .header
                .parse_row(&self.record, self.row, line, self.decimal_comma)?;
            // Training drops repeated customers itself (see `train`); a file
            // to score must name each customer once (checked at the end).
            if self.purpose == Purpose::Score && self.check_ids {
                self.seen.push(&row.customer_id, self.row, line);
            }
            for (k, level) in row.categories.iter().enumerate() {
                self.blanks[k] += u64::from(level.is_none());
            }
            self.blanks[N_CATEGORIES] += u64::from(row.total_charges.is_none());
            self.customers += 1;
            return Ok(Some(row));
        }
    }
}

impl Iterator for CustomerReader<'_> {
    type Item = Result<CustomerRow, SchemaError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_row().transpose()
    }
}

/// Every customer id read, to find a repeated one once the file is read.
///
/// Ids are appended to an arena in file order (`[row: u32][line: u32]
/// [len: u16][id bytes]`, about 10 bytes a row plus the id) with one
/// 16-byte entry each: the id's 64-bit hash and its offset. At the end the
/// entries are sorted by hash, so equal ids are neighbours, and ids with
/// equal hashes are compared. This replaced a hash table probed on every
/// row: at 1,000,000 rows its random accesses (cache misses on every row,
/// and rehashing every id as it grew) halved the upload check's throughput
/// (96.7 MiB/s with it against 186.5 MiB/s without the check, in one run of
/// `scripts/bench-app.sh`). Rows and lines past `u32::MAX` are shown as that.
#[derive(Default)]
struct SeenIds {
    hasher: DefaultHashBuilder,
    /// (hash, offset in `arena`), in file order until sorted.
    entries: Vec<(u64, u32)>,
    arena: Vec<u8>,
}

/// An id met twice: where first, and where again (row, line).
#[derive(Debug, PartialEq, Eq)]
struct Repeat {
    id: String,
    first: (u64, u64),
    again: (u64, u64),
}

impl SeenIds {
    /// Records `id`, read at `row` and `line`.
    fn push(&mut self, id: &str, row: u64, line: u64) {
        // An id over 64 KiB is kept cut: it can only fail to match, and the
        // record limit makes it rare enough not to matter for memory.
        let bytes = &id.as_bytes()[..id.len().min(usize::from(u16::MAX))];
        let offset = u32::try_from(self.arena.len()).expect("ids fit in 4 GiB (the decoded limit)");
        let narrow = |v: u64| u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes();
        self.arena.extend_from_slice(&narrow(row));
        self.arena.extend_from_slice(&narrow(line));
        self.arena
            .extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        self.arena.extend_from_slice(bytes);
        self.entries
            .push((self.hasher.hash_one(id.as_bytes()), offset));
    }

    /// The (row, line) and id stored at `offset`.
    fn at(&self, offset: u32) -> ((u64, u64), &[u8]) {
        let at = offset as usize;
        let word = |i: usize| {
            u64::from(u32::from_le_bytes(
                self.arena[i..i + 4].try_into().expect("4 bytes"),
            ))
        };
        let len = usize::from(u16::from_le_bytes([self.arena[at + 8], self.arena[at + 9]]));
        (
            (word(at), word(at + 4)),
            &self.arena[at + 10..at + 10 + len],
        )
    }

    /// The repeated id whose second appearance comes first in the file:
    /// the one a row-by-row check would have met first.
    fn first_repeat(&mut self) -> Option<Repeat> {
        // Offsets grow with the row, so within one hash they sort in file
        // order.
        self.entries.sort_unstable();
        let mut best: Option<Repeat> = None;
        for group in self.entries.chunk_by(|a, b| a.0 == b.0) {
            if group.len() < 2 {
                continue;
            }
            // Usually one id; a hash collision puts two in one group.
            for (i, &(_, later)) in group.iter().enumerate().skip(1) {
                let (again, id) = self.at(later);
                let Some(first) = group[..i]
                    .iter()
                    .map(|&(_, earlier)| self.at(earlier))
                    .find(|(_, earlier_id)| *earlier_id == id)
                    .map(|(first, _)| first)
                else {
                    continue;
                };
                if best.as_ref().is_none_or(|b| again.0 < b.again.0) {
                    best = Some(Repeat {
                        id: String::from_utf8_lossy(id).into_owned(),
                        first,
                        again,
                    });
                }
                break;
            }
        }
        best
    }
}

impl std::fmt::Debug for SeenIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeenIds")
            .field("ids", &self.entries.len())
            .finish()
    }
}

/// A whole customer file, parsed.
#[derive(Debug, Clone)]
pub struct Customers {
    pub rows: Vec<CustomerRow>,
    /// Headers that matched no known column.
    pub ignored_columns: Vec<String>,
    /// Known columns the file lacks (imputed).
    pub absent_columns: Vec<&'static str>,
    /// What was made of the file.
    pub report: IngestReport,
}

/// Reads every row of a customer file for training; the first bad row
/// stops the read.
pub fn read_customers<R: Read>(input: R) -> Result<Customers, SchemaError> {
    read_customers_for(input, Purpose::Train)
}

/// Reads every row of a customer file for `purpose`.
pub fn read_customers_for<R: Read>(input: R, purpose: Purpose) -> Result<Customers, SchemaError> {
    let mut reader = CustomerReader::with(input, purpose, decode::MAX_DECODED_BYTES)?;
    let ignored_columns = reader.header().ignored.clone();
    let absent_columns = reader.header().absent();
    let rows = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
    Ok(Customers {
        rows,
        ignored_columns,
        absent_columns,
        report: reader.report(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_confirmed_not_just_hashed() {
        let mut seen = SeenIds::default();
        seen.push("A", 1, 2);
        seen.push("B", 2, 3);
        seen.push("AB", 3, 4);
        for i in 0..10_000u32 {
            seen.push(&format!("id{i}"), u64::from(i) + 10, 0);
        }
        assert_eq!(seen.first_repeat(), None);
        seen.push("id77", 20_000, 9);
        seen.push("A", 20_001, 10);
        assert_eq!(
            seen.first_repeat(),
            Some(Repeat {
                id: "id77".into(),
                first: (87, 0),
                again: (20_000, 9)
            })
        );
    }

    #[test]
    fn the_repeat_met_first_in_the_file_is_the_one_named() {
        // "late" repeats first (row 5) although "early" was seen first.
        let mut seen = SeenIds::default();
        for (id, row) in [
            ("early", 1),
            ("late", 2),
            ("x", 3),
            ("late", 5),
            ("early", 7),
        ] {
            seen.push(id, row, row + 1);
        }
        let repeat = seen.first_repeat().expect("a repeat");
        assert_eq!(
            (repeat.id.as_str(), repeat.first, repeat.again),
            ("late", (2, 3), (5, 6))
        );
    }

    #[test]
    fn a_hash_collision_is_not_a_repeat() {
        let mut seen = SeenIds::default();
        seen.push("A", 1, 2);
        seen.push("B", 2, 3);
        // Force both ids into one hash group, as a collision would.
        for entry in &mut seen.entries {
            entry.0 = 42;
        }
        assert_eq!(seen.first_repeat(), None);
        seen.push("A", 3, 4);
        seen.entries[2].0 = 42;
        assert_eq!(seen.first_repeat().map(|r| r.again), Some((3, 4)));
    }

    #[test]
    fn a_compression_bomb_is_refused_by_its_decoded_size() {
        let mut text = b"customerID,tenure,Contract,MonthlyCharges\n".to_vec();
        text.extend(std::iter::repeat_n(b',', 400_000));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &text).expect("compressed");
        let gz = gz.finish().expect("compressed");
        assert!(gz.len() < 2_000, "{} bytes compressed", gz.len());
        let mut reader =
            CustomerReader::with(gz.as_slice(), Purpose::Score, 100_000).expect("header read");
        let err = reader
            .find_map(Result::err)
            .expect("refused past the limit");
        assert_eq!(
            err.to_string(),
            "the file's content is larger than 100000 bytes once decompressed"
        );
    }
}
