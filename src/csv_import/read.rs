//! Reads a CSV export record by record: strips a UTF-8 byte-order mark,
//! detects `,` or `;` from the first line, keeps each record's line for
//! messages, and collects problems and notes with their place.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Read};
use std::path::Path;

use csv::ByteRecord;

use super::progress::Progress;
use super::{CsvError, Level, Note, Place, Problem};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Records read between two progress updates.
const PROGRESS_EVERY: u64 = 4096;

/// How much of the file the delimiter is guessed from: the first line, or
/// this many bytes of it when it is longer.
const PEEK: usize = 64 * 1024;

fn read_error(file: &str, e: &std::io::Error) -> CsvError {
    CsvError::Read {
        file: file.to_owned(),
        message: e.to_string().to_lowercase(),
    }
}

/// Picks `;` when the first line holds more unquoted semicolons than
/// unquoted commas (as spreadsheet programs write CSV in locales whose
/// decimal mark is a comma), `,` otherwise.
pub(crate) fn detect_delimiter(head: &[u8]) -> u8 {
    let (mut commas, mut semicolons, mut quoted) = (0usize, 0usize, false);
    for &byte in head {
        match byte {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semicolons += 1,
            _ => {}
        }
    }
    if semicolons > commas { b';' } else { b',' }
}

/// `0/1`, `true/false` or `yes/no`, in any case.
pub(crate) fn boolean(text: &str) -> Option<bool> {
    const TRUE: [&str; 3] = ["1", "true", "yes"];
    const FALSE: [&str; 3] = ["0", "false", "no"];
    if TRUE.iter().any(|t| t.eq_ignore_ascii_case(text)) {
        Some(true)
    } else if FALSE.iter().any(|f| f.eq_ignore_ascii_case(text)) {
        Some(false)
    } else {
        None
    }
}

/// Turns CRLF line ends into LF before the CSV parser sees them. The
/// parser ends a record at the `\r` and counts the line at the `\n`, so
/// with CRLF every record after the first would be reported one line too
/// early; a `\r` elsewhere is kept.
struct UnixLineEnds<R> {
    inner: R,
    /// A `\r` ended the last read: whether it is dropped depends on the
    /// next byte.
    held_cr: bool,
}

impl<R: Read> Read for UnixLineEnds<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let start = usize::from(self.held_cr);
            match out.get_mut(..start) {
                Some([first]) => *first = b'\r',
                Some(_) => {}
                None => return Ok(0),
            }
            if start == out.len() {
                // No room to look further: hand the `\r` over as it is.
                self.held_cr = false;
                return Ok(start);
            }
            let read = self.inner.read(out.get_mut(start..).unwrap_or_default())?;
            let total = start + read;
            if read == 0 {
                self.held_cr = false;
                return Ok(total);
            }
            let mut kept = 0;
            for i in 0..total {
                let byte = out.get(i).copied().unwrap_or_default();
                let next = if i + 1 < total {
                    out.get(i + 1).copied()
                } else {
                    None
                };
                if byte == b'\r' && next == Some(b'\n') {
                    continue;
                }
                if let Some(slot) = out.get_mut(kept) {
                    *slot = byte;
                }
                kept += 1;
            }
            self.held_cr = kept > 0 && out.get(kept - 1) == Some(&b'\r');
            if self.held_cr {
                kept -= 1;
            }
            if kept > 0 {
                return Ok(kept);
            }
        }
    }
}

/// The bytes of an export: a file, or any reader (the fuzz targets read
/// from memory).
type Input = Box<dyn Read + Send>;

/// An open export, read one record at a time into one reused buffer (so a
/// field such as a password lives only until the next record is read).
pub(crate) struct Source {
    reader: csv::Reader<UnixLineEnds<BufReader<Input>>>,
    record: ByteRecord,
    file: String,
    progress: Progress,
    records: u64,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("file", &self.file).finish()
    }
}

impl Source {
    /// Opens `path` (named `file` in messages) and starts `progress` on
    /// its size.
    pub(crate) fn open(path: &Path, file: &str, progress: Progress) -> Result<Source, CsvError> {
        let handle = File::open(path).map_err(|e| read_error(file, &e))?;
        let total = handle.metadata().map_err(|e| read_error(file, &e))?.len();
        Source::from_reader(Box::new(handle), total, file, progress)
    }

    /// Reads `input` (`total` bytes long, for progress) as the export
    /// `file`.
    pub(crate) fn from_reader(
        input: Input,
        total: u64,
        file: &str,
        progress: Progress,
    ) -> Result<Source, CsvError> {
        let mut buffered = BufReader::with_capacity(PEEK, input);
        if buffered
            .fill_buf()
            .map_err(|e| read_error(file, &e))?
            .starts_with(BOM)
        {
            buffered.consume(BOM.len());
        }
        let delimiter = detect_delimiter(buffered.fill_buf().map_err(|e| read_error(file, &e))?);
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            // Field counts are checked per format, with a message that says
            // what was expected.
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(UnixLineEnds {
                inner: buffered,
                held_cr: false,
            });
        progress.start_reading(total);
        Ok(Source {
            reader,
            record: ByteRecord::new(),
            file: file.to_owned(),
            progress,
            records: 0,
        })
    }

    /// The next record, or `None` at the end. Blank lines are skipped.
    pub(crate) fn next_record(&mut self) -> Result<Option<Record<'_>>, CsvError> {
        self.records += 1;
        if self.records.is_multiple_of(PROGRESS_EVERY) {
            self.progress.read(self.reader.position().byte());
        }
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => Ok(Some(Record {
                line: self.record.position().map_or(0, |p| p.line()),
                fields: &self.record,
            })),
            Ok(false) => {
                self.progress.finish_reading();
                Ok(None)
            }
            Err(e) => Err(CsvError::Read {
                file: self.file.clone(),
                message: e.to_string().to_lowercase(),
            }),
        }
    }

    pub(crate) fn file(&self) -> &str {
        &self.file
    }
}

/// One record and the line it starts on.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    pub line: u64,
    fields: &'a ByteRecord,
}

impl Record<'_> {
    pub(crate) fn len(&self) -> usize {
        self.fields.len()
    }

    /// Header names: trimmed, lower case (ASCII), undecodable bytes replaced.
    pub(crate) fn names(&self) -> Vec<String> {
        self.fields
            .iter()
            .map(|f| String::from_utf8_lossy(f).trim().to_ascii_lowercase())
            .collect()
    }
}

/// Column names for messages: the header's, or a format's fixed ones.
#[derive(Debug, Clone)]
pub(crate) struct Columns(pub Vec<String>);

impl Columns {
    pub(crate) fn place(&self, line: u64, index: usize) -> Place {
        let name = self
            .0
            .get(index)
            .cloned()
            .unwrap_or_else(|| format!("column {}", index + 1));
        Place {
            line,
            column: Some((index + 1, name)),
        }
    }
}

/// Problems and notes of one file, and the ids seen so far (an id twice
/// in one file is a problem: which row should win is not clear).
#[derive(Debug, Default)]
pub(crate) struct Log {
    problems: Vec<Problem>,
    notes: Vec<Note>,
    seen: HashMap<String, u64>,
}

impl Log {
    pub(crate) fn problem(&mut self, place: Place, message: impl Into<String>) {
        self.problems.push(Problem {
            place,
            message: message.into(),
        });
    }

    pub(crate) fn note(&mut self, level: Level, place: Place, message: impl Into<String>) {
        self.notes.push(Note {
            level,
            place,
            message: message.into(),
        });
    }

    /// The trimmed text of field `index` ("" when the record is shorter);
    /// bytes that are not UTF-8 are a problem and read as "".
    pub(crate) fn text<'r>(
        &mut self,
        record: &Record<'r>,
        columns: &Columns,
        index: usize,
    ) -> &'r str {
        let Some(raw) = record.fields.get(index) else {
            return "";
        };
        match std::str::from_utf8(raw) {
            Ok(text) => text.trim(),
            Err(e) => {
                self.problem(
                    columns.place(record.line, index),
                    format!("not UTF-8 (byte {} of the field)", e.valid_up_to() + 1),
                );
                ""
            }
        }
    }

    /// Field `index` as a boolean (see [`boolean`]); `None` when empty, or
    /// when it is no boolean, which is a problem.
    pub(crate) fn boolean(
        &mut self,
        record: &Record<'_>,
        columns: &Columns,
        index: usize,
    ) -> Option<bool> {
        let text = self.text(record, columns, index);
        if text.is_empty() {
            return None;
        }
        let value = boolean(text);
        if value.is_none() {
            self.problem(
                columns.place(record.line, index),
                format!("`{text}` is not a boolean (0/1, true/false or yes/no)"),
            );
        }
        value
    }

    /// Checks an id's shape and that no earlier row had it; `false` when
    /// the row cannot be used.
    pub(crate) fn id(&mut self, id: &str, place: Place) -> bool {
        if let Some(problem) = crate::dataset::id_problem(id, false) {
            self.problem(place, problem);
            return false;
        }
        match self.seen.get(id) {
            Some(first) => {
                let message = format!("id `{id}` is also on line {first}");
                self.problem(place, message);
                false
            }
            None => {
                self.seen.insert(id.to_owned(), place.line);
                true
            }
        }
    }

    /// The rows and notes, or every problem.
    pub(crate) fn finish<T>(self, file: &str, rows: T) -> Result<(T, Vec<Note>), CsvError> {
        if self.problems.is_empty() {
            Ok((rows, self.notes))
        } else {
            Err(CsvError::Invalid {
                file: file.to_owned(),
                problems: self.problems,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_delimiter_is_the_more_frequent_one_outside_quotes() {
        assert_eq!(detect_delimiter(b"name,email,role\nx;y;z;w"), b',');
        assert_eq!(detect_delimiter(b"name;email;role\n"), b';');
        assert_eq!(detect_delimiter(b"\"a,b,c\";d;e\n"), b';');
        assert_eq!(detect_delimiter(b"id_user"), b',');
        assert_eq!(detect_delimiter(b""), b',');
    }

    #[test]
    fn crlf_becomes_lf_even_across_reads() {
        let input: &[u8] = b"a,b\r\nc,\"x\ry\"\r\n\r";
        for size in [1, 2, 3, 64] {
            let mut reader = UnixLineEnds {
                inner: std::io::BufReader::with_capacity(size, input),
                held_cr: false,
            };
            let mut out = Vec::new();
            let mut chunk = vec![0; size.max(2)];
            loop {
                let n = reader.read(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..n]);
            }
            assert_eq!(out, b"a,b\nc,\"x\ry\"\n\r", "read size {size}");
        }
    }

    #[test]
    fn booleans_in_three_spellings() {
        for t in ["1", "true", "TRUE", "Yes"] {
            assert_eq!(boolean(t), Some(true), "{t}");
        }
        for f in ["0", "false", "No", "NO"] {
            assert_eq!(boolean(f), Some(false), "{f}");
        }
        for bad in ["", "2", "y", "on"] {
            assert_eq!(boolean(bad), None, "{bad}");
        }
    }
}
