//! The change feed: one JSON line per profile change, with old and new ids
//! (docs/design.md §3.6), in the order the changes were applied:
//!
//! ```json
//! {"event":"merged","kind":"person","profile_id":"person-…","previous_ids":["person-…","person-…"],"record":{"source":"crm","id":"c-17"}}
//! {"event":"split","kind":"person","profile_id":"person-…","new_ids":["person-…","person-…"],"record":{"source":"import","id":"b-3"}}
//! ```
//!
//! `previous_ids` is on `merged` (the profiles that became this one) and on
//! `updated` when the id changed; `new_ids` is on `split`; `possible_match`
//! (entity resolution found a pair between its two thresholds: reported, not
//! linked) has `matched_ids` and `probability`; `record` is the
//! record whose new version caused the change. There is one line per change
//! at full ingest rate, so lines are written by hand into a reused buffer.

use super::{JsonLines, OutputError};
use crate::engine::{ChangeEvent, ChangeKind, Engine, ProfileId};
use std::io::Write;
use std::path::Path;

pub struct ChangeFeed {
    out: JsonLines,
    line: Vec<u8>,
}

impl ChangeFeed {
    pub fn open(path: &Path) -> Result<Self, OutputError> {
        Ok(ChangeFeed {
            out: JsonLines::open(path)?,
            line: Vec::with_capacity(256),
        })
    }

    pub fn enabled(&self) -> bool {
        self.out.enabled()
    }

    pub fn write(&mut self, engine: &Engine, event: &ChangeEvent) -> Result<(), OutputError> {
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"event\":\"");
        line.extend_from_slice(event.kind.as_str().as_bytes());
        line.extend_from_slice(b"\",\"kind\":\"");
        line.extend_from_slice(event.profile_id.kind.as_str().as_bytes());
        line.extend_from_slice(b"\",\"profile_id\":");
        write_id(line, event.profile_id);
        if !event.related.is_empty() {
            line.extend_from_slice(match event.kind {
                ChangeKind::Split => b",\"new_ids\":[",
                ChangeKind::PossibleMatch => b",\"matched_ids\":[",
                _ => b",\"previous_ids\":[",
            });
            for (i, id) in event.related.iter().enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                write_id(line, *id);
            }
            line.push(b']');
        }
        if let Some(p) = event.probability {
            let _ = write!(line, ",\"probability\":{p:.6}");
        }
        let (source, id) = engine.cause_key(event);
        line.extend_from_slice(b",\"record\":{\"source\":");
        crate::json::write_string(line, source);
        line.extend_from_slice(b",\"id\":");
        crate::json::write_string(line, id);
        line.extend_from_slice(b"}}");
        self.out.write_line(&self.line)
    }

    pub fn flush(&mut self) -> Result<(), OutputError> {
        self.out.flush()
    }
}

fn write_id(line: &mut Vec<u8>, id: ProfileId) {
    let _ = write!(line, "\"{id}\"");
}
