//! The change feed: one JSON line per profile change, with old and new ids
//! (DESIGN §3.6), in the order the changes were applied.

use super::{JsonLines, OutputError};
use crate::engine::{ChangeEvent, ChangeKind, Engine};
use serde::Serialize;
use std::path::Path;

#[derive(Serialize)]
struct FeedLine {
    event: &'static str,
    kind: &'static str,
    profile_id: String,
    /// `merged`: the profiles that became this one; `updated`: the id it had.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    previous_ids: Vec<String>,
    /// `split`: the profiles this one became.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    new_ids: Vec<String>,
    record: crate::engine::RecordRef,

}

pub struct ChangeFeed {
    out: JsonLines,
    written: u64,
}

impl ChangeFeed {
    pub fn open(path: &Path) -> Result<Self, OutputError> {
        Ok(ChangeFeed { out: JsonLines::open(path)?, written: 0 })
    }

    pub fn enabled(&self) -> bool {
        self.out.enabled()
    }

    pub fn write(&mut self, engine: &Engine, event: &ChangeEvent) -> Result<(), OutputError> {
        let related: Vec<String> = event.related.iter().map(ToString::to_string).collect();
        let (previous_ids, new_ids) = match event.kind {
            ChangeKind::Split => (Vec::new(), related),
            _ => (related, Vec::new()),
        };
        self.written += 1;
        self.out.write(&FeedLine {
            event: event.kind.as_str(),
            kind: event.profile_id.kind.as_str(),
            profile_id: event.profile_id.to_string(),
            previous_ids,
            new_ids,
            record: engine.cause_ref(event),

        })
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn flush(&mut self) -> Result<(), OutputError> {
        self.out.flush()
    }
}
