//! The open log segment, written so that a failed write loses nothing.
//!
//! Frames are gathered in memory and handed to the file with positional
//! writes at the offset after the last complete write. A write that fails
//! part way (the disk is full) leaves the gathered frames where they were;
//! the next attempt writes them again at the same offset, over whatever part
//! landed. So the file only ever holds whole frames followed, at worst, by a
//! torn tail that a crash would leave anyway and opening cuts off.

use super::frame::encode_frame;
use super::segment::{self, SegmentHeader};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Frames gathered before they are handed to the operating system.
pub const GATHER_BYTES: usize = 1 << 20;

pub struct SegmentWriter {
    file: File,
    path: PathBuf,
    pending: Vec<u8>,
    /// Bytes of the file known to be complete: the header, whole frames.
    written: u64,
    /// A write failed part way: bytes past `written` may be left over, and
    /// are cut once the frames are written again.
    torn: bool,
    frame: Vec<u8>,
}

impl SegmentWriter {
    /// Creates segment `seq` of state `state_id` with its header written.
    pub fn create(path: &Path, header: &SegmentHeader) -> io::Result<SegmentWriter> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        let mut start = segment::MAGIC.to_vec();
        let mut frame = Vec::new();
        encode_frame(header, &mut frame)?;
        start.extend_from_slice(&frame);
        file.write_all_at(&start, 0)?;
        Ok(SegmentWriter {
            file,
            path: path.to_path_buf(),
            pending: Vec::with_capacity(GATHER_BYTES),
            written: start.len() as u64,
            torn: false,
            frame,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gathers one value as a frame; returns its size.
    pub fn append<T: Serialize>(&mut self, value: &T) -> io::Result<usize> {
        encode_frame(value, &mut self.frame)?;
        self.pending.extend_from_slice(&self.frame);
        Ok(self.frame.len())
    }

    /// Gathers a frame made by `encode_frame`.
    pub fn append_encoded(&mut self, frame: &[u8]) -> usize {
        self.pending.extend_from_slice(frame);
        frame.len()
    }

    /// Bytes gathered and not yet handed to the operating system.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Hands the gathered frames to the operating system. On an error they
    /// stay gathered, to be written again at the same offset.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all_at(&self.pending, self.written) {
            self.torn = true;
            return Err(e);
        }
        self.written += self.pending.len() as u64;
        self.pending.clear();
        if self.torn {
            self.file.set_len(self.written)?;
            self.torn = false;
        }
        Ok(())
    }

    /// [`SegmentWriter::flush`], then to the disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        self.file.sync_data()
    }
}

/// Whether an error means the file system has no room (or quota) left: a
/// condition that passes when space is freed, not damage.
pub fn is_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_gathered_after_a_failed_write_are_written_whole_at_the_same_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal-0000000001.bin");
        let header = SegmentHeader {
            state_id: "s".into(),
            seq: 1,
        };
        let mut w = SegmentWriter::create(&path, &header).unwrap();
        let start = w.written;
        w.append(&"first").unwrap();
        // A failed write that left part of the frames behind it.
        let partial = w.pending[..3].to_vec();
        w.file.write_all_at(&partial, start).unwrap();
        w.file.write_all_at(&[0xAB; 100], start + 3).unwrap();
        w.torn = true;
        w.append(&"second").unwrap();
        w.flush().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let mut r = &bytes[..];
        let Ok(segment::Start::Header(h, size)) = segment::read_start(&mut r) else {
            panic!("the header reads back");
        };
        assert_eq!(h, header);
        assert_eq!(size, start);
        let mut frames = super::super::frame::FrameReader::new(r);
        assert_eq!(frames.next::<String>().unwrap().as_deref(), Some("first"));
        assert_eq!(frames.next::<String>().unwrap().as_deref(), Some("second"));
        assert_eq!(frames.next::<String>().unwrap(), None);
        assert!(
            !frames.torn(),
            "what a failed write left past the frames is cut"
        );
    }
}
