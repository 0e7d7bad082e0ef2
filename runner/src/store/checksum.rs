//! Lengths and CRC-32s of state files: what the manifest records for every
//! file it commits, and what opening a state checks them against. Frame
//! checksums find a damaged frame; only a whole-file record finds a file cut
//! at a frame boundary, emptied, or swapped for another state's.

use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use std::path::Path;

/// The recorded length and checksum of one committed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSum {
    /// Path inside the state directory (`snapshot-3/kg-7.bin`, `wal-0000000012.bin`).
    pub name: String,
    pub bytes: u64,
    pub crc32: u32,
}

/// A writer that sums what passes through it.
pub struct Summing<W> {
    inner: W,
    hasher: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> Summing<W> {
    pub fn new(inner: W) -> Self {
        Summing {
            inner,
            hasher: crc32fast::Hasher::new(),
            bytes: 0,
        }
    }

    /// Bytes written so far and their CRC-32.
    pub fn sum(&self) -> (u64, u32) {
        (self.bytes, self.hasher.clone().finalize())
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: Write> Write for Summing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that sums what it reads, for checking a file as it is decoded.
pub struct SummingReader<R> {
    inner: R,
    hasher: crc32fast::Hasher,
    bytes: u64,
}

impl<R: Read> SummingReader<R> {
    pub fn new(inner: R) -> Self {
        SummingReader {
            inner,
            hasher: crc32fast::Hasher::new(),
            bytes: 0,
        }
    }

    /// Reads (and sums) whatever is left, then returns the whole sum.
    pub fn finish(&mut self) -> io::Result<(u64, u32)> {
        let mut rest = [0u8; 64 << 10];
        while self.read(&mut rest)? > 0 {}
        Ok((self.bytes, self.hasher.clone().finalize()))
    }
}

impl<R: Read> Read for SummingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Length and CRC-32 of a file, read in 1 MiB blocks.
pub fn file_crc32(path: &Path) -> io::Result<(u64, u32)> {
    let mut reader = SummingReader::new(std::fs::File::open(path)?);
    let mut buf = vec![0u8; 1 << 20];
    while reader.read(&mut buf)? > 0 {}
    reader.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_sums_agree_with_a_plain_crc() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = Summing::new(Vec::new());
        w.write_all(&data[..10]).unwrap();
        w.write_all(&data[10..]).unwrap();
        assert_eq!(w.sum(), (data.len() as u64, crc32fast::hash(&data)));
        let mut r = SummingReader::new(&data[..]);
        let mut head = [0u8; 100];
        r.read_exact(&mut head).unwrap();
        assert_eq!(r.finish().unwrap(), w.sum(), "finish reads the rest");
    }
}
