//! The header of a log segment (format 3): 8 magic bytes, then one frame
//! naming the state and the segment number. A segment the manifest does not
//! list yet (sealed, or open when the runner stopped) is adopted on open only
//! if its header names this state and its own number, so a file copied in
//! from another state, renamed, or left by another tool is refused, not
//! replayed.
//!
//! Format 2 segments have no header. They cannot be mistaken for one: their
//! first 4 bytes are a frame length, and `KITH` read as one is over the
//! 64 MiB frame limit.

use super::frame::FrameReader;
use serde::{Deserialize, Serialize};
use std::io::{self, Read};

pub const MAGIC: [u8; 8] = *b"KITHWAL3";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentHeader {
    pub state_id: String,
    pub seq: u64,
}

/// What the start of a segment file holds.
pub enum Start {
    /// A format 3 header, and its size in bytes.
    Header(SegmentHeader, u64),
    /// No header: a format 2 segment; these bytes were its start.
    Legacy(Vec<u8>),
    /// The magic bytes, then no readable header.
    Damaged,
}

/// Reads the magic and header from the start of `r`.
pub fn read_start<R: Read>(r: &mut R) -> io::Result<Start> {
    let mut magic = [0u8; 8];
    let n = super::frame::read_full(r, &mut magic)?;
    if n < magic.len() || magic != MAGIC {
        return Ok(Start::Legacy(magic[..n].to_vec()));
    }
    let mut frames = FrameReader::new(r);
    match frames.next::<SegmentHeader>()? {
        Some(h) => Ok(Start::Header(h, MAGIC.len() as u64 + frames.valid_bytes())),
        None => Ok(Start::Damaged),
    }
}
