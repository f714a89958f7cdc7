//! The CSV record reader under [`crate::schema`]: RFC 4180 fields, with
//! the delimiter detected from the header line and every record tagged with
//! the line a text editor shows for its start.
//!
//! Our own reader rather than the `csv` crate's because its positions are
//! wrong for CR-only and CRLF files and after blank lines (rust-csv issue
//! 395), and because a quote that is never closed must be caught where it
//! opened, not after it has swallowed the rest of the file into one field.
//!
//! Lines end at LF, CRLF or a lone CR, each counted once, as editors do.
//! A quoted field may span lines, within [`MAX_QUOTED_FIELD_BYTES`] and
//! [`MAX_QUOTED_FIELD_LINES`]; a record is at most [`MAX_RECORD_BYTES`], so
//! memory stays flat whatever the file holds. A quote inside an unquoted
//! field, or after a closing quote, is kept as text.

use std::io;

/// Longest quoted field, in bytes: a longer one is almost always a quote
/// that was never closed.
pub const MAX_QUOTED_FIELD_BYTES: usize = 64 * 1024;
/// Most lines a quoted field may span, for the same reason.
pub const MAX_QUOTED_FIELD_LINES: u64 = 100;
/// Longest record (one customer row), in bytes.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// The delimiters we detect, in order of preference on a tie.
pub const DELIMITERS: [u8; 3] = [b',', b';', b'\t'];

/// Why records could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file's shape is wrong at `line` (1-based, as an editor counts).
    #[error("line {line}: {message}")]
    Shape {
        /// 0 for the header, otherwise the 1-based data record.
        record: u64,
        line: u64,
        message: String,
    },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One record: its fields and where it starts.
#[derive(Debug, Default, Clone)]
pub struct Record {
    /// The fields, unquoted, each followed by one separator byte (the
    /// delimiter) but the last: a line without quotes is then its own
    /// text, copied whole.
    text: String,
    /// Where each field ends in `text`; the next starts one byte later.
    ends: Vec<usize>,
    /// The line its first byte is on (1-based).
    pub line: u64,
}

impl Record {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no fields (never true for a record that was read).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`-th field, unquoted; `None` past the last one.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] + 1 };
        Some(&self.text[start..end])
    }

    /// Every field in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Nothing but delimiters and whitespace: a spreadsheet's empty row.
    pub fn is_blank(&self) -> bool {
        self.iter().all(|field| field.trim().is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    Start,
    Unquoted,
    Quoted,
    /// Saw a `"` inside a quoted field: a closing quote or the first of `""`.
    QuoteInQuoted,
    /// After the closing quote.
    AfterQuoted,
}

/// Size of the read buffer.
const BUFFER: usize = 64 * 1024;

/// Reads records from UTF-8 text, with its own buffer (the header line is
/// looked at before it is parsed, to choose the delimiter).
#[derive(Debug)]
pub struct RecordReader<R> {
    input: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    delimiter: u8,
    /// The line the next byte is on.
    line: u64,
    /// The last byte consumed was a CR: an LF right after it ends the same line.
    prev_cr: bool,
    /// Records returned so far, the header included.
    records: u64,
}

impl<R: io::Read> RecordReader<R> {
    /// Looks at the header line and detects the delimiter from it (the one
    /// of `,`, `;` and tab that occurs most often outside quotes; `,` when
    /// none does).
    pub fn new(input: R) -> io::Result<Self> {
        let mut reader = RecordReader {
            input,
            buf: vec![0; BUFFER],
            pos: 0,
            len: 0,
            delimiter: b',',
            line: 1,
            prev_cr: false,
            records: 0,
        };
        let end = reader.buffer_first_line()?;
        reader.delimiter = detect_delimiter(&reader.buf[..end]);
        Ok(reader)
    }

    /// The detected delimiter.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Buffers input until it holds the whole first line (quotes honoured),
    /// the end of input, or [`MAX_RECORD_BYTES`]; returns the line's length.
    fn buffer_first_line(&mut self) -> io::Result<usize> {
        let mut quoted = false;
        let mut scanned = 0;
        loop {
            for (i, &b) in self.buf[scanned..self.len].iter().enumerate() {
                match b {
                    b'"' => quoted = !quoted,
                    b'\r' | b'\n' if !quoted => return Ok(scanned + i),
                    _ => {}
                }
            }
            scanned = self.len;
            if self.len == self.buf.len() {
                if self.len >= MAX_RECORD_BYTES {
                    return Ok(self.len);
                }
                self.buf.resize(self.len * 2, 0);
            }
            let n = read_retrying(&mut self.input, &mut self.buf[self.len..])?;
            if n == 0 {
                return Ok(self.len);
            }
            self.len += n;
        }
    }

    #[inline]
    fn next_byte(&mut self) -> io::Result<Option<u8>> {
        if self.pos == self.len {
            self.pos = 0;
            self.len = read_retrying(&mut self.input, &mut self.buf)?;
            if self.len == 0 {
                return Ok(None);
            }
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(Some(b))
    }

    /// Reads the next record into `record`; `false` at the end of input.
    pub fn read(&mut self, record: &mut Record) -> Result<bool, RecordError> {
        let mut bytes = std::mem::take(&mut record.text).into_bytes();
        bytes.clear();
        record.ends.clear();
        if self.read_plain_line(&mut bytes, record) {
            self.records += 1;
            return self.finish(bytes, record);
        }
        let number = self.records;
        let shape = |line: u64, message: String| RecordError::Shape {
            record: number,
            line,
            message,
        };
        let mut state = State::Start;
        let mut started = false;
        let mut quote_line = 0;
        let mut quote_start = 0;
        loop {
            let Some(b) = self.next_byte()? else {
                if !started {
                    return Ok(false);
                }
                if state == State::Quoted {
                    return Err(shape(
                        quote_line,
                        "a quoted field opens here and is never closed".into(),
                    ));
                }
                record.ends.push(bytes.len());
                break;
            };
            let prev_cr = std::mem::replace(&mut self.prev_cr, b == b'\r');
            if !started {
                if b == b'\n' && prev_cr {
                    // The LF of a CRLF whose CR ended the previous record.
                    continue;
                }
                started = true;
                record.line = self.line;
            }
            if state == State::QuoteInQuoted {
                if b == b'"' {
                    bytes.push(b);
                    state = State::Quoted;
                    continue;
                }
                state = State::AfterQuoted;
            }
            if state == State::Quoted {
                match b {
                    b'"' => {
                        state = State::QuoteInQuoted;
                        continue;
                    }
                    b'\r' => self.line += 1,
                    b'\n' if !prev_cr => self.line += 1,
                    _ => {}
                }
                bytes.push(b);
                if bytes.len() - quote_start > MAX_QUOTED_FIELD_BYTES
                    || bytes.len() > MAX_RECORD_BYTES
                {
                    return Err(shape(
                        quote_line,
                        format!(
                            "a quoted field opens here and is longer than {} KiB; is its closing quote missing?",
                            MAX_QUOTED_FIELD_BYTES / 1024
                        ),
                    ));
                }
                if self.line - quote_line >= MAX_QUOTED_FIELD_LINES {
                    return Err(shape(
                        quote_line,
                        format!(
                            "a quoted field opens here and spans more than {MAX_QUOTED_FIELD_LINES} lines; is its closing quote missing?"
                        ),
                    ));
                }
                continue;
            }
            if b == self.delimiter {
                record.ends.push(bytes.len());
                bytes.push(b);
                state = State::Start;
                continue;
            }
            if b == b'\n' || b == b'\r' {
                self.line += 1;
                record.ends.push(bytes.len());
                break;
            }
            if b == b'"' && state == State::Start {
                state = State::Quoted;
                quote_line = self.line;
                quote_start = bytes.len();
                continue;
            }
            if state == State::Start {
                state = State::Unquoted;
            }
            bytes.push(b);
            // The rest of a plain field, in one copy: the common case.
            let delimiter = self.delimiter;
            let rest = &self.buf[self.pos..self.len];
            let run = rest
                .iter()
                .position(|&c| c == delimiter || c == b'\n' || c == b'\r')
                .unwrap_or(rest.len());
            bytes.extend_from_slice(&rest[..run]);
            self.pos += run;
            if bytes.len() > MAX_RECORD_BYTES {
                return Err(shape(
                    record.line,
                    format!(
                        "the record is longer than {} MiB; is this a customer file?",
                        MAX_RECORD_BYTES / (1024 * 1024)
                    ),
                ));
            }
        }
        self.records += 1;
        self.finish(bytes, record)
    }

    /// The common case, without the byte-by-byte state machine: a record
    /// that is one whole line already in the buffer, with no quote in it.
    /// Its end and its fields are found with `memchr`'s vectorised
    /// searches: the upload check's CPU time on 100,000 rows went from
    /// 190.7 ms to 154.2 ms (`cargo bench -p retainwise-churn --bench score
    /// -- "cpu/score_csv/check only"`, same machine, one after the other),
    /// the byte loop having been a third of it in `perf`; copying the line
    /// whole, delimiters and all, instead of field by field took it from
    /// 161.9 to 132.6 ms. Returns `false`, having consumed nothing (but the
    /// LF of a CRLF), when the record is not such a line; the state
    /// machine then reads it.
    fn read_plain_line(&mut self, bytes: &mut Vec<u8>, record: &mut Record) -> bool {
        if self.prev_cr && self.pos < self.len && self.buf[self.pos] == b'\n' {
            // The LF of a CRLF whose CR ended the previous record.
            self.pos += 1;
            self.prev_cr = false;
        }
        let rest = &self.buf[self.pos..self.len];
        let Some(end) = memchr::memchr3(b'\n', b'\r', b'"', rest) else {
            return false;
        };
        if rest[end] == b'"' {
            return false;
        }
        let line = &rest[..end];
        // One copy of the whole line; the delimiters stay as separators.
        bytes.extend_from_slice(line);
        record
            .ends
            .extend(memchr::memchr_iter(self.delimiter, line).chain([end]));
        record.line = self.line;
        self.prev_cr = rest[end] == b'\r';
        self.line += 1;
        self.pos += end + 1;
        true
    }

    /// Hands the record's bytes over as its text, once they are known to
    /// be UTF-8.
    fn finish(&self, bytes: Vec<u8>, record: &mut Record) -> Result<bool, RecordError> {
        match String::from_utf8(bytes) {
            Ok(text) => {
                record.text = text;
                Ok(true)
            }
            Err(_) => Err(RecordError::Shape {
                record: self.records - 1,
                line: record.line,
                message: "is not valid UTF-8".into(),
            }),
        }
    }
}

fn read_retrying(input: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match input.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// The delimiter that occurs most often outside quotes in `line`.
pub fn detect_delimiter(line: &[u8]) -> u8 {
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for &b in line {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(k) = DELIMITERS.iter().position(|d| *d == b) {
            counts[k] += 1;
        }
    }
    let mut best = 0;
    for k in 1..DELIMITERS.len() {
        if counts[k] > counts[best] {
            best = k;
        }
    }
    DELIMITERS[best]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(line, fields)` of every record.
    fn records(text: &str) -> Vec<(u64, Vec<String>)> {
        let mut reader = RecordReader::new(text.as_bytes()).expect("reads");
        let mut record = Record::default();
        let mut out = Vec::new();
        while reader.read(&mut record).expect("parses") {
            out.push((record.line, record.iter().map(str::to_owned).collect()));
        }
        out
    }

    fn lines(text: &str) -> Vec<u64> {
        records(text).into_iter().map(|(l, _)| l).collect()
    }

    #[test]
    fn lines_are_counted_as_an_editor_shows_them() {
        assert_eq!(lines("a,b\n1,2\n\n3,4\n"), [1, 2, 3, 4]);
        assert_eq!(lines("a,b\r\n1,2\r\n\r\n3,4\r\n"), [1, 2, 3, 4]);
        assert_eq!(lines("a,b\r1,2\r\r3,4\r"), [1, 2, 3, 4]);
        assert_eq!(lines("a,b\n\"x\r\ny\",2\n3,4"), [1, 2, 4]);
        assert_eq!(lines("a,b\r\"x\ry\rz\",2\r3,4"), [1, 2, 5]);
    }

    #[test]
    fn quotes_are_unescaped_and_kept_inside_unquoted_fields() {
        let r = records("a,b\n\"say \"\"hi\"\"\",x\"y\n");
        assert_eq!(r[1].1, ["say \"hi\"", "x\"y"]);
    }

    #[test]
    fn the_delimiter_comes_from_the_header_line() {
        for (text, d) in [
            ("a;b;c\n", b';'),
            ("a\tb\n", b'\t'),
            ("a,b;c,d\n", b','),
            ("a\n", b','),
        ] {
            assert_eq!(
                RecordReader::new(text.as_bytes())
                    .expect("reads")
                    .delimiter(),
                d,
                "{text:?}"
            );
        }
        // A delimiter inside a quoted header cell does not count.
        let reader = RecordReader::new("\"a;b;c\",d,e\n".as_bytes()).expect("reads");
        assert_eq!(reader.delimiter(), b',');
    }

    fn error(text: &str) -> (u64, u64, String) {
        let mut reader = RecordReader::new(text.as_bytes()).expect("reads");
        let mut record = Record::default();
        loop {
            match reader.read(&mut record) {
                Ok(true) => {}
                Ok(false) => panic!("no error in {text:?}"),
                Err(RecordError::Shape {
                    record,
                    line,
                    message,
                }) => return (record, line, message),
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn an_unclosed_quote_is_named_where_it_opens() {
        let (record, line, message) = error("a,b\r\n1,2\r\n3,\"open\r\n4,5\r\n");
        assert_eq!((record, line), (2, 3));
        assert!(message.contains("never closed"), "{message}");
    }

    #[test]
    fn a_quoted_field_over_its_limits_is_named_where_it_opens() {
        let many_lines = format!("a,b\n1,\"{}\"\n", "x\n".repeat(150));
        let (record, line, message) = error(&many_lines);
        assert_eq!((record, line), (1, 2));
        assert!(message.contains("100 lines"), "{message}");
        let long = format!("a,b\n1,2\n3,\"{}\"\n", "x".repeat(70_000));
        let (record, line, message) = error(&long);
        assert_eq!((record, line), (2, 3));
        assert!(message.contains("64 KiB"), "{message}");
    }

    /// Hands out its bytes `step` at a time, so that records straddle
    /// every refill of the reader's buffer.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn records_from(input: impl io::Read) -> Vec<(u64, Vec<String>)> {
        let mut reader = RecordReader::new(input).expect("reads");
        let mut record = Record::default();
        let mut out = Vec::new();
        while reader.read(&mut record).expect("parses") {
            out.push((record.line, record.iter().map(str::to_owned).collect()));
        }
        out
    }

    #[test]
    fn plain_lines_and_the_state_machine_read_alike() {
        // Plain lines (read by `read_plain_line`) mixed with quoted ones,
        // blank ones and every line end, over several buffer refills.
        let ends = ["\n", "\r\n", "\r"];
        let mut text = String::from("id,name,n\n");
        for i in 0..12_000 {
            let end = ends[i % 3];
            match i % 7 {
                0 => text += &format!("{i},\"two{end}lines\",{i}{end}"),
                1 => text += &format!(",,{end}"),
                2 => text += end,
                3 => text += &format!("{i},x\"y,{i}{end}"),
                _ => text += &format!("{i},plain {i},{}{end}", i * 3),
            }
        }
        assert!(text.len() > 2 * BUFFER, "{} bytes", text.len());
        let whole = records_from(text.as_bytes());
        // A CR-ended line followed by a blank LF one is one CRLF, as an
        // editor reads it, so a few blank rows merge away.
        assert!((11_000..=12_001).contains(&whole.len()), "{}", whole.len());
        for step in [1, 2, 3, 7, 4096, BUFFER - 1] {
            let trickled = records_from(Trickle {
                bytes: text.as_bytes(),
                step,
            });
            assert_eq!(trickled, whole, "read {step} bytes at a time");
        }
        // Spot checks against what an editor shows.
        let at = |i: usize| &whole[i + 1];
        assert_eq!(at(4).1, ["4", "plain 4", "12"]);
        assert_eq!(at(7).1, ["7", "two\r\nlines", "7"]);
        assert_eq!(at(8).1, ["", "", ""]);
        assert_eq!(at(3).1, ["3", "x\"y", "3"]);
        // Line of record i: 1 (header) + i + the extra line of each
        // quoted record before it.
        assert_eq!(at(8).0, 1 + 8 + 2 + 1);
    }

    #[test]
    fn a_huge_record_is_refused_without_holding_it() {
        let text = format!("a,b\n1,2\n{}\n", "x".repeat(3 * MAX_RECORD_BYTES));
        let (record, line, message) = error(&text);
        assert_eq!((record, line), (2, 3));
        assert!(message.contains("1 MiB"), "{message}");
    }
}
