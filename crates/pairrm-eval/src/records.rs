//! Streaming records of a dataset file: JSON lines, or the elements of one top-level JSON array
//! (AlpacaEval's output files, MT-bench's judgement dumps). Each record comes with where it
//! starts (for error reports) and its byte range (to read it again later without keeping it).
//!
//! The layout is sniffed from the first byte that is not whitespace (a UTF-8 byte-order mark is
//! skipped): `[` means a JSON array, anything else JSON lines. Blank lines of a JSON-lines file are
//! not records. The elements of an array are split by bracket depth (strings and escapes
//! respected) and each is parsed on its own, so one malformed element is one bad record; only
//! the element being read is held in memory.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

use pairrm::{Error, Result};

/// Where a record starts in its file (1-based numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Position {
    /// A line of a JSON-lines file.
    Line {
        /// The line number.
        line: u64,
    },
    /// An element of a top-level JSON array.
    Item {
        /// The element's number in the array.
        item: u64,
        /// The line it starts on.
        line: u64,
    },
    /// An example of a BIG-bench `task.json` (`examples[example - 1]`).
    Example {
        /// The example's number.
        example: u64,
    },
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line { line } => write!(f, "line {line}"),
            Position::Item { item, line } => write!(f, "item {item} (line {line})"),
            Position::Example { example } => write!(f, "example {example}"),
        }
    }
}

/// One record: its position, its bytes (without the line end) and where they are in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where it starts.
    pub position: Position,
    /// Byte offset of its first byte in the file.
    pub offset: u64,
    /// Its bytes (one JSON value, unless the file is malformed there).
    pub bytes: Vec<u8>,
}

/// A part of the file that could not be cut into a record (a truncated array, trailing text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// Where the problem is.
    pub position: Position,
    /// What is wrong.
    pub message: String,
}

/// How a file holds its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One JSON value per line.
    Lines,
    /// One top-level JSON array.
    Array,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArrayState {
    Open,
    Closed,
    Done,
}

/// Reads records one at a time from a buffered reader.
pub struct RecordReader<R> {
    reader: R,
    layout: Layout,
    /// The line the next byte is on.
    line: u64,
    /// The offset of the next byte.
    offset: u64,
    /// Array elements read so far.
    items: u64,
    state: ArrayState,
}

impl RecordReader<BufReader<File>> {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        RecordReader::new(BufReader::with_capacity(1 << 16, file)).map_err(|e| Error::io(path, e))
    }
}

impl<R: BufRead> RecordReader<R> {
    /// Sniffs the layout (consuming a byte-order mark and leading whitespace).
    pub fn new(mut reader: R) -> std::io::Result<Self> {
        let mut offset = 0u64;
        let mut line = 1u64;
        let mut layout = Layout::Lines;
        let buf = reader.fill_buf()?;
        if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
            reader.consume(3);
            offset = 3;
        }
        loop {
            let buf = reader.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(i) => {
                    line += count_newlines(&buf[..i]);
                    offset += i as u64;
                    let is_array = buf[i] == b'[';
                    reader.consume(i);
                    if is_array {
                        reader.consume(1);
                        offset += 1;
                        layout = Layout::Array;
                    }
                    break;
                }
                None => {
                    let n = buf.len();
                    line += count_newlines(buf);
                    offset += n as u64;
                    reader.consume(n);
                }
            }
        }
        Ok(RecordReader { reader, layout, line, offset, items: 0, state: ArrayState::Open })
    }

    /// The layout sniffed.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The next record, a bad part of the file, or `None` at the end.
    pub fn next_record(&mut self) -> std::io::Result<Option<std::result::Result<Record, BadRecord>>> {
        match self.layout {
            Layout::Lines => self.next_line(),
            Layout::Array => self.next_element(),
        }
    }

    fn next_line(&mut self) -> std::io::Result<Option<std::result::Result<Record, BadRecord>>> {
        loop {
            let mut bytes = vec![];
            let n = self.reader.read_until(b'\n', &mut bytes)?;
            if n == 0 {
                return Ok(None);
            }
            let (line, offset) = (self.line, self.offset);
            self.line += 1;
            self.offset += n as u64;
            while bytes.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                bytes.pop();
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(Ok(Record { position: Position::Line { line }, offset, bytes })));
        }
    }

    /// Skips whitespace and commas; returns the next significant byte without consuming it.
    fn skip_separators(&mut self) -> std::io::Result<Option<u8>> {
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            match buf.iter().position(|&b| !(b.is_ascii_whitespace() || b == b',')) {
                Some(i) => {
                    let next = buf[i];
                    self.line += count_newlines(&buf[..i]);
                    self.offset += i as u64;
                    self.reader.consume(i);
                    return Ok(Some(next));
                }
                None => {
                    let n = buf.len();
                    self.line += count_newlines(buf);
                    self.offset += n as u64;
                    self.reader.consume(n);
                }
            }
        }
    }

    fn next_element(&mut self) -> std::io::Result<Option<std::result::Result<Record, BadRecord>>> {
        match self.state {
            ArrayState::Done => return Ok(None),
            ArrayState::Closed => {
                self.state = ArrayState::Done;
                let (line, offset) = (self.line, self.offset);
                return Ok(match self.skip_whitespace()? {
                    None => None,
                    Some(_) => Some(Err(BadRecord {
                        position: Position::Line { line: self.line },
                        message: format!(
                            "unexpected text after the JSON array (which ends on line {line}, byte {offset})"
                        ),
                    })),
                });
            }
            ArrayState::Open => {}
        }
        let Some(first) = self.skip_separators()? else {
            self.state = ArrayState::Done;
            return Ok(Some(Err(BadRecord {
                position: Position::Line { line: self.line },
                message: "the JSON array is not closed (truncated file?)".into(),
            })));
        };
        if first == b']' {
            self.reader.consume(1);
            self.offset += 1;
            self.state = ArrayState::Closed;
            return self.next_element();
        }
        self.items += 1;
        let position = Position::Item { item: self.items, line: self.line };
        let offset = self.offset;
        let mut bytes = vec![];
        let mut scan = ElementScan::new(first);
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                self.state = ArrayState::Done;
                return Ok(Some(Err(BadRecord {
                    position,
                    message: "the file ends inside this element (truncated file?)".into(),
                })));
            }
            let (used, done) = scan.feed(buf);
            bytes.extend_from_slice(&buf[..used]);
            self.line += count_newlines(&buf[..used]);
            self.offset += used as u64;
            self.reader.consume(used);
            if done {
                return Ok(Some(Ok(Record { position, offset, bytes })));
            }
        }
    }

    /// Skips whitespace; returns the next byte without consuming it.
    fn skip_whitespace(&mut self) -> std::io::Result<Option<u8>> {
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            match buf.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(i) => {
                    let next = buf[i];
                    self.line += count_newlines(&buf[..i]);
                    self.reader.consume(i);
                    return Ok(Some(next));
                }
                None => {
                    let n = buf.len();
                    self.line += count_newlines(buf);
                    self.reader.consume(n);
                }
            }
        }
    }
}

/// Finds where one array element ends: a container when its brackets balance, a string at its
/// closing quote, any other scalar before the next `,`, `]` or whitespace.
struct ElementScan {
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// The element is a scalar other than a string.
    bare: bool,
    started: bool,
}

impl ElementScan {
    fn new(first: u8) -> Self {
        ElementScan {
            depth: 0,
            in_string: false,
            escaped: false,
            bare: !matches!(first, b'{' | b'[' | b'"'),
            started: false,
        }
    }

    /// Scans `buf`; returns the bytes that belong to the element and whether it ended.
    fn feed(&mut self, buf: &[u8]) -> (usize, bool) {
        for (i, &b) in buf.iter().enumerate() {
            if self.bare {
                if self.started && (b == b',' || b == b']' || b.is_ascii_whitespace()) {
                    return (i, true);
                }
                self.started = true;
                continue;
            }
            self.started = true;
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                    if self.depth == 0 {
                        return (i + 1, true);
                    }
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return (i + 1, true);
                    }
                }
                _ => {}
            }
        }
        (buf.len(), false)
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Reads `len` bytes at `offset` of `file` (a record found earlier).
pub fn read_at(file: &mut File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = vec![0; len];
    file.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Counts the records of a file (bad parts not included), for progress reports.
pub fn count_records(path: &Path) -> Result<u64> {
    let mut reader = RecordReader::open(path)?;
    let mut n = 0;
    while let Some(r) = reader.next_record().map_err(|e| Error::io(path, e))? {
        n += u64::from(r.is_ok());
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &[u8]) -> (Layout, Vec<std::result::Result<Record, BadRecord>>) {
        // A tiny buffer so that elements and separators straddle refills.
        let mut reader = RecordReader::new(BufReader::with_capacity(3, text)).unwrap();
        let mut out = vec![];
        while let Some(r) = reader.next_record().unwrap() {
            out.push(r);
        }
        (reader.layout(), out)
    }

    fn texts(records: &[std::result::Result<Record, BadRecord>]) -> Vec<String> {
        records
            .iter()
            .map(|r| match r {
                Ok(r) => String::from_utf8(r.bytes.clone()).unwrap(),
                Err(b) => format!("BAD {}: {}", b.position, b.message),
            })
            .collect()
    }

    #[test]
    fn json_lines_skip_blank_lines_and_strip_line_ends() {
        let text = b"\xEF\xBB\xBF\n  \n{\"a\": 1}\r\n\n{\"b\": 2}\nnot json\n   \n{\"c\": 3}";
        let (layout, records) = read_all(text);
        assert_eq!(layout, Layout::Lines);
        assert_eq!(texts(&records), ["{\"a\": 1}", "{\"b\": 2}", "not json", "{\"c\": 3}"]);
        let lines: Vec<Position> = records.iter().map(|r| r.as_ref().unwrap().position).collect();
        assert_eq!(
            lines,
            [
                Position::Line { line: 3 },
                Position::Line { line: 5 },
                Position::Line { line: 6 },
                Position::Line { line: 8 }
            ]
        );
        for r in records.iter().map(|r| r.as_ref().unwrap()) {
            let at = &text[r.offset as usize..r.offset as usize + r.bytes.len()];
            assert_eq!(at, &r.bytes[..]);
        }
    }

    #[test]
    fn array_elements_respect_strings_escapes_and_nesting() {
        let text = br#" [
  {"a": "x]}\"[{", "n": [1, {"m": 2}]},
  {"b": "\\"}, 3 ,"s",
  [true]
]
"#;
        let (layout, records) = read_all(text);
        assert_eq!(layout, Layout::Array);
        assert_eq!(
            texts(&records),
            [r#"{"a": "x]}\"[{", "n": [1, {"m": 2}]}"#, r#"{"b": "\\"}"#, "3", r#""s""#, "[true]"]
        );
        let positions: Vec<Position> = records.iter().map(|r| r.as_ref().unwrap().position).collect();
        assert_eq!(
            positions,
            [
                Position::Item { item: 1, line: 2 },
                Position::Item { item: 2, line: 3 },
                Position::Item { item: 3, line: 3 },
                Position::Item { item: 4, line: 3 },
                Position::Item { item: 5, line: 4 },
            ]
        );
        for r in records.iter().map(|r| r.as_ref().unwrap()) {
            assert_eq!(&text[r.offset as usize..r.offset as usize + r.bytes.len()], &r.bytes[..]);
        }
    }

    #[test]
    fn truncated_arrays_and_trailing_text_are_bad_records() {
        let (_, records) = read_all(b"[{\"a\": 1}, {\"b\": ");
        assert_eq!(
            texts(&records),
            ["{\"a\": 1}", "BAD item 2 (line 1): the file ends inside this element (truncated file?)"]
        );
        let (_, records) = read_all(b"[{\"a\": 1},\n");
        assert_eq!(texts(&records), ["{\"a\": 1}", "BAD line 2: the JSON array is not closed (truncated file?)"]);
        let (_, records) = read_all(b"[{\"a\": 1}]\n\nextra");
        assert_eq!(texts(&records)[0], "{\"a\": 1}");
        assert!(texts(&records)[1].starts_with("BAD line 3: unexpected text after the JSON array"), "{records:?}");
        let (layout, records) = read_all(b"  []  ");
        assert_eq!((layout, records.len()), (Layout::Array, 0));
        let (layout, records) = read_all(b"");
        assert_eq!((layout, records.len()), (Layout::Lines, 0));
    }

    #[test]
    fn records_can_be_read_again_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        std::fs::write(&path, b"[{\"x\": 1},\n {\"y\": [2]}]").unwrap();
        let mut reader = RecordReader::open(&path).unwrap();
        let mut records = vec![];
        while let Some(r) = reader.next_record().unwrap() {
            records.push(r.unwrap());
        }
        let mut file = File::open(&path).unwrap();
        for r in &records {
            assert_eq!(read_at(&mut file, r.offset, r.bytes.len()).unwrap(), r.bytes);
        }
        assert_eq!(count_records(&path).unwrap(), 2);
        assert!(matches!(count_records(&dir.path().join("missing")), Err(Error::Io { .. })));
    }
}
