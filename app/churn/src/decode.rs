//! What a customer file is, from its first bytes, and its text as UTF-8.
//!
//! | first bytes | read as |
//! |---|---|
//! | `EF BB BF` | UTF-8, the byte order mark dropped |
//! | `FF FE` / `FE FF` | UTF-16 LE / BE, transcoded to UTF-8 as it streams |
//! | `1F 8B` | gzip, decompressed as it streams, then judged again (text only) |
//! | `PK 03 04` | an `.xlsx` workbook: its first sheet (the whole workbook is held first, in memory or in a file the caller hands over: [`WorkbookSpool`]; at most [`MAX_WORKBOOK_BYTES`]) |
//! | anything else without NUL bytes | UTF-8 text |
//!
//! Anything else that is not text (PDF, images, `.xls`, other archives) is
//! refused in one line that says what the file appears to be. The decoded
//! text is counted: past the limit handed to [`open`] it is refused, so a
//! small compressed file cannot expand without end.

use std::fmt::Write as _;
use std::io::{self, Read};

/// Largest `.xlsx` workbook read, in bytes (the zip format keeps its
/// directory at the end, so the whole workbook is held before it is read).
pub const MAX_WORKBOOK_BYTES: u64 = 128 * 1024 * 1024;

/// Where an `.xlsx` workbook is held while its first sheet is read: the zip
/// format keeps its directory at the end, so the workbook must be whole
/// and seekable before a cell can be read.
#[derive(Clone, Copy)]
pub enum WorkbookSpool<'s> {
    /// In memory: up to [`MAX_WORKBOOK_BYTES`] of RAM for the file's life.
    Memory,
    /// In a file that this opens (read, write, seek; an unlinked temporary
    /// file, say), called only when the input is a workbook. The service
    /// uses this so that a 77 MiB workbook does not sit in its memory.
    File(&'s (dyn Fn() -> io::Result<std::fs::File> + Sync)),
}

impl std::fmt::Debug for WorkbookSpool<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WorkbookSpool::Memory => "Memory",
            WorkbookSpool::File(_) => "File",
        })
    }
}
/// Default bound on the decoded text, in bytes.
pub const MAX_DECODED_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// How many bytes are looked at to judge the file.
const SNIFF: usize = 512;

/// Why a file could not be turned into text.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file is not something we read; says what it appears to be.
    #[error("{0}")]
    Unsupported(String),
    /// Reading the input failed (the upload stream, the disk).
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The kind of container the text came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Text,
    Utf16,
    Gzip,
    Xlsx,
}

/// An error raised inside a decoding reader: the data, not the transport,
/// is wrong. [`classify`] tells the two apart.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadData(pub String);

/// An error from the underlying input, passed through the decoders.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Transport(io::Error);

/// Splits an `io::Error` from a reader returned by [`open`]: `Ok(message)`
/// when the file's content is at fault (corrupt gzip, over the decoded
/// limit), `Err(error)` when reading the input failed.
pub fn classify(error: io::Error) -> Result<String, io::Error> {
    if error.get_ref().is_some_and(|e| e.is::<Transport>()) {
        let inner = error.into_inner().expect("checked above");
        let transport = inner.downcast::<Transport>().expect("checked above");
        return Err(transport.0);
    }
    if let Some(bad) = error.get_ref().and_then(|e| e.downcast_ref::<BadData>()) {
        return Ok(bad.0.clone());
    }
    Ok(format!("the file could not be decoded: {error}"))
}

/// Tags the input's own errors, so that they stay transient.
struct Tagged<R>(R);

impl<R: Read> Read for Tagged<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), Transport(e)))
    }
}

/// Refuses to read past `limit` bytes.
struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                BadData(format!(
                    "the file's content is larger than {} once decompressed",
                    size(self.limit)
                )),
            )
        })?;
        Ok(n)
    }
}

/// A customer file's text, as UTF-8, and what it came in.
pub struct Decoded<'a> {
    pub text: Box<dyn Read + 'a>,
    pub container: Container,
}

impl std::fmt::Debug for Decoded<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoded")
            .field("container", &self.container)
            .finish_non_exhaustive()
    }
}

/// Reads up to [`SNIFF`] bytes, fewer only at the end of input.
fn sniff(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(SNIFF);
    input.by_ref().take(SNIFF as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Judges `input` by its first bytes and returns its text as UTF-8.
/// `max_decoded` bounds the text after decompression or transcoding. A
/// workbook is held in memory; see [`open_with`].
pub fn open<'a>(input: impl Read + 'a, max_decoded: u64) -> Result<Decoded<'a>, DecodeError> {
    open_with(input, max_decoded, WorkbookSpool::Memory)
}

/// [`open`], holding a workbook where `spool` says.
pub fn open_with<'a>(
    input: impl Read + 'a,
    max_decoded: u64,
    spool: WorkbookSpool<'_>,
) -> Result<Decoded<'a>, DecodeError> {
    let mut input = Tagged(input);
    let head = sniff(&mut input).map_err(untag)?;
    let whole = io::Cursor::new(head.clone()).chain(input);
    let limited = |r: Box<dyn Read + 'a>| -> Box<dyn Read + 'a> {
        Box::new(Limited {
            inner: r,
            left: max_decoded,
            limit: max_decoded,
        })
    };
    if head.starts_with(&[0x1f, 0x8b]) {
        let mut inflated = flate2::read::MultiGzDecoder::new(whole);
        let inner = sniff(&mut inflated).map_err(|e| match classify(e) {
            Ok(message) => DecodeError::Unsupported(message),
            Err(e) => DecodeError::Io(e),
        })?;
        if let Some(what) = not_text(&inner) {
            return Err(DecodeError::Unsupported(format!(
                "the file is gzip-compressed {what}; only a compressed CSV is read"
            )));
        }
        let text = io::Cursor::new(inner).chain(inflated);
        return Ok(Decoded {
            text: limited(Box::new(text)),
            container: Container::Gzip,
        });
    }
    if head.starts_with(b"PK\x03\x04") {
        return crate::xlsx::first_sheet(whole, max_decoded, spool)
            .map(|text| Decoded {
                text: limited(Box::new(text)),
                container: Container::Xlsx,
            })
            .map_err(|e| match e {
                DecodeError::Io(e) => match classify(e) {
                    Ok(message) => DecodeError::Unsupported(message),
                    Err(e) => DecodeError::Io(e),
                },
                other => other,
            });
    }
    if head.starts_with(&[0xff, 0xfe]) || head.starts_with(&[0xfe, 0xff]) {
        let text = encoding_rs_io::DecodeReaderBytesBuilder::new()
            .bom_sniffing(true)
            .build(whole);
        return Ok(Decoded {
            text: limited(Box::new(text)),
            container: Container::Utf16,
        });
    }
    if let Some(what) = not_text(&head) {
        return Err(DecodeError::Unsupported(format!(
            "the file appears to be {what}, not a CSV; save it as CSV (UTF-8) or .xlsx"
        )));
    }
    let text: Box<dyn Read + 'a> = if head.starts_with(b"\xef\xbb\xbf") {
        let mut rest = whole;
        let mut bom = [0; 3];
        rest.read_exact(&mut bom).map_err(untag)?;
        Box::new(rest)
    } else {
        Box::new(whole)
    };
    Ok(Decoded {
        text: limited(text),
        container: Container::Text,
    })
}

/// `n` bytes as a person reads it: whole MiB when it is some, else bytes.
fn size(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else {
        format!("{n} bytes")
    }
}

fn untag(e: io::Error) -> DecodeError {
    match classify(e) {
        Ok(message) => DecodeError::Unsupported(message),
        Err(e) => DecodeError::Io(e),
    }
}

/// What the bytes appear to be, when they are not text.
pub fn not_text(head: &[u8]) -> Option<String> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"%PDF", "a PDF document"),
        (b"\x89PNG", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            "an old-format Excel workbook (.xls) or other Office 97-2003 file",
        ),
        (b"PK\x03\x04", "a zip archive"),
        (b"PK\x05\x06", "an empty zip archive"),
        (b"\x1f\x8b", "a gzip file"),
        (b"BZh", "a bzip2 file"),
        (b"\xfd7zXZ\x00", "an xz file"),
        (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
        (b"Rar!", "a RAR archive"),
        (b"{\\rtf", "an RTF document"),
        (b"SQLite format 3\x00", "an SQLite database"),
    ];
    if let Some((_, what)) = MAGIC.iter().find(|(m, _)| head.starts_with(m)) {
        return Some((*what).to_owned());
    }
    if head.contains(&0) {
        let mut what = String::from("binary data");
        if head.len() >= 2 && head[1] == 0 && head[0] != 0 {
            let _ = write!(what, " (perhaps UTF-16 text without a byte order mark)");
        }
        return Some(what);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8], limit: u64) -> Result<String, String> {
        let mut decoded = open(bytes, limit).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        decoded
            .text
            .read_to_end(&mut out)
            .map_err(|e| classify(e).expect("a data error"))?;
        String::from_utf8(out).map_err(|e| e.to_string())
    }

    #[test]
    fn utf8_with_and_without_bom_and_utf16_read_the_same() {
        let plain = "customerID,tenure\nA-1,2\n";
        let mut bom = b"\xef\xbb\xbf".to_vec();
        bom.extend_from_slice(plain.as_bytes());
        let mut le = vec![0xff, 0xfe];
        let mut be = vec![0xfe, 0xff];
        for unit in plain.encode_utf16() {
            le.extend_from_slice(&unit.to_le_bytes());
            be.extend_from_slice(&unit.to_be_bytes());
        }
        for bytes in [plain.as_bytes(), &bom, &le, &be] {
            assert_eq!(text(bytes, MAX_DECODED_BYTES).as_deref(), Ok(plain));
        }
    }

    #[test]
    fn gzip_is_inflated_and_bounded() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &vec![b'a'; 100_000]).expect("compressed");
        let gz = gz.finish().expect("compressed");
        assert_eq!(text(&gz, 1 << 20).map(|t| t.len()), Ok(100_000));
        let err = text(&gz, 50_000).expect_err("over the limit");
        assert!(err.contains("larger than"), "{err}");
    }

    #[test]
    fn other_files_are_named() {
        for (bytes, what) in [
            (&b"%PDF-1.7\n..."[..], "a PDF document"),
            (b"\x89PNG\r\n\x1a\n\0\0", "a PNG image"),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\0\0", ".xls"),
            (b"c\0u\0s\0t\0", "UTF-16 text without a byte order mark"),
        ] {
            let err = text(bytes, MAX_DECODED_BYTES).expect_err("refused");
            assert!(err.contains(what), "{err}");
        }
    }
}
