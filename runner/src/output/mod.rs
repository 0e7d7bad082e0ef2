//! What the runner writes besides its state: dead letters and the change feed,
//! as JSON lines. Both are append-only files (or nothing, for `-`); dead
//! letters of a Kafka source can go to a topic instead.

mod change_feed;
mod dead_letter;
mod dead_letter_topic;

pub use change_feed::ChangeFeed;
pub use dead_letter::DeadLetters;
pub use dead_letter_topic::{DeadLetterTopic, DeadLetterTopicError, Origin};

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot open output {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write output {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// An append-only JSON-lines file, or a sink that discards.
pub struct JsonLines {
    path: String,
    out: Option<BufWriter<File>>,
}

impl JsonLines {
    /// Opens `path` for appending; `-` discards.
    pub fn open(path: &Path) -> Result<Self, OutputError> {
        let shown = path.display().to_string();
        if shown == "-" {
            return Ok(JsonLines {
                path: shown,
                out: None,
            });
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| OutputError::Open {
                path: shown.clone(),
                source,
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| OutputError::Open {
                path: shown.clone(),
                source,
            })?;
        Ok(JsonLines {
            path: shown,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    pub fn enabled(&self) -> bool {
        self.out.is_some()
    }

    pub fn write(&mut self, value: &impl serde::Serialize) -> Result<(), OutputError> {
        if let Some(out) = &mut self.out {
            serde_json::to_writer(&mut *out, value).map_err(|e| OutputError::Write {
                path: self.path.clone(),
                source: e.into(),
            })?;
            out.write_all(b"\n").map_err(|source| OutputError::Write {
                path: self.path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Writes one line already encoded as JSON (without its newline).
    pub fn write_line(&mut self, line: &[u8]) -> Result<(), OutputError> {
        if let Some(out) = &mut self.out {
            out.write_all(line)
                .and_then(|_| out.write_all(b"\n"))
                .map_err(|source| OutputError::Write {
                    path: self.path.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), OutputError> {
        if let Some(out) = &mut self.out {
            out.flush().map_err(|source| OutputError::Write {
                path: self.path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}
