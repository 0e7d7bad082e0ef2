//! Dead letters: every input line that could not be applied, with where it came
//! from and why, so that nothing is lost and the run never stops for bad input.

use super::{JsonLines, OutputError};
use crate::observation::Rejection;
use serde::Serialize;
use std::path::Path;

#[derive(Serialize)]
struct DeadLetter<'a> {
    input: &'a str,
    line: u64,
    category: &'static str,
    reason: String,
    /// The line as received when it is UTF-8 ...
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<&'a str>,
    /// ... else its bytes, hex-encoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_hex: Option<String>,
}

pub struct DeadLetters {
    out: JsonLines,
    written: u64,
}

impl DeadLetters {
    pub fn open(path: &Path) -> Result<Self, OutputError> {
        Ok(DeadLetters {
            out: JsonLines::open(path)?,
            written: 0,
        })
    }

    pub fn write(
        &mut self,
        input: &str,
        line: u64,
        raw: &[u8],
        why: &Rejection,
    ) -> Result<(), OutputError> {
        self.written += 1;
        let text = std::str::from_utf8(raw).ok();
        self.out.write(&DeadLetter {
            input,
            line,
            category: why.category(),
            reason: why.to_string(),
            raw: text,
            raw_hex: if text.is_none() {
                Some(raw.iter().map(|b| format!("{b:02x}")).collect())
            } else {
                None
            },
        })
    }

    pub fn total(&self) -> u64 {
        self.written
    }

    pub fn flush(&mut self) -> Result<(), OutputError> {
        self.out.flush()
    }
}
