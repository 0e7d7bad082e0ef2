//! The two inputs, line by line: what is read of each line, and the line
//! numbers errors name.

use super::{EvaluateError, Input};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::io::BufRead;

/// A profile of the export. Only what scoring needs is read; unknown fields
/// (`profile_id`, `attributes`, `relationships`, extra fields of records) are
/// ignored.
#[derive(Debug, Deserialize)]
pub(super) struct ExportLine {
    pub records: Vec<RecordRef>,
    #[serde(default)]
    pub identifiers: Vec<IdentifierRef>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RecordRef {
    pub source: String,
    pub id: String,
    /// Set on an entity named by a relationship of the record `(source, id)`:
    /// that is not the record itself, so it is not scored.
    #[serde(default)]
    pub relationship: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct IdentifierRef {
    #[serde(rename = "type")]
    pub id_type: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct TruthLine {
    pub source: String,
    pub id: String,
    pub kind: String,
    pub entity: String,
    /// A record that is not live; skipped.
    #[serde(default)]
    pub retracted: bool,
}

pub(super) struct LineReader<'r> {
    reader: &'r mut dyn BufRead,
    input: Input,
    line: u64,
    buf: Vec<u8>,
}

impl<'r> LineReader<'r> {
    pub(super) fn new(reader: &'r mut dyn BufRead, input: Input) -> LineReader<'r> {
        LineReader {
            reader,
            input,
            line: 0,
            buf: Vec::with_capacity(4096),
        }
    }

    /// The number (from 1) of the line last returned.
    pub(super) fn line_number(&self) -> u64 {
        self.line
    }

    /// The next non-blank line, parsed; `None` at the end.
    pub(super) fn next_json<T: DeserializeOwned>(&mut self) -> Result<Option<T>, EvaluateError> {
        loop {
            self.buf.clear();
            self.line += 1;
            let read = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|error| EvaluateError::Io {
                    input: self.input,
                    line: self.line,
                    error,
                })?;
            if read == 0 {
                return Ok(None);
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return serde_json::from_slice(&self.buf).map(Some).map_err(|e| {
                EvaluateError::BadLine {
                    input: self.input,
                    line: self.line,
                    reason: without_position(&e),
                }
            });
        }
    }
}

/// serde_json's message without its "at line 1 column 7": every line is
/// parsed on its own, so that position would always say line 1.
fn without_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.find(" at line ") {
        Some(at) => format!("{} (column {})", &msg[..at], e.column()),
        None => msg,
    }
}
