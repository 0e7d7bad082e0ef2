//! Length-prefixed, checksummed frames of postcard-encoded values: the unit of
//! snapshots and of the write-ahead log. A frame is `[len u32][crc32 u32][bytes]`,
//! little-endian; a short or mismatching frame ends the readable prefix.

use serde::{de::DeserializeOwned, Serialize};
use std::io::{self, Read, Write};

/// Encodes one whole frame into `out` (which is cleared first).
pub fn encode_frame<T: Serialize>(value: &T, out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    out.extend_from_slice(&[0; 8]);
    let encoded = postcard::to_extend(value, std::mem::take(out))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    *out = encoded;
    let len = (out.len() - 8) as u32;
    let crc = crc32fast::hash(&out[8..]);
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

pub struct FrameWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> FrameWriter<W> {
    pub fn new(inner: W) -> Self {
        FrameWriter {
            inner,
            buf: Vec::with_capacity(512),
        }
    }

    /// Writes one frame; returns its size in bytes.
    pub fn write<T: Serialize>(&mut self, value: &T) -> io::Result<usize> {
        encode_frame(value, &mut self.buf)?;
        self.inner.write_all(&self.buf)?;
        Ok(self.buf.len())
    }

    pub fn inner_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

pub struct FrameReader<R: Read> {
    inner: R,
    buf: Vec<u8>,
    valid: u64,
    torn: bool,
}

impl<R: Read> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner,
            buf: Vec::new(),
            valid: 0,
            torn: false,
        }
    }

    /// The next value; `None` at the end or at the first damaged frame.
    pub fn next<T: DeserializeOwned>(&mut self) -> io::Result<Option<T>> {
        if self.torn {
            return Ok(None);
        }
        let mut header = [0u8; 8];
        match read_full(&mut self.inner, &mut header)? {
            0 => return Ok(None),
            8 => {}
            _ => {
                self.torn = true;
                return Ok(None);
            }
        }
        let len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(header[4..8].try_into().unwrap());
        if len > 64 << 20 {
            self.torn = true;
            return Ok(None);
        }
        self.buf.resize(len, 0);
        if read_full(&mut self.inner, &mut self.buf)? != len || crc32fast::hash(&self.buf) != crc {
            self.torn = true;
            return Ok(None);
        }
        match postcard::from_bytes(&self.buf) {
            Ok(v) => {
                self.valid += 8 + len as u64;
                Ok(Some(v))
            }
            Err(_) => {
                self.torn = true;
                Ok(None)
            }
        }
    }

    /// Bytes of the intact prefix read so far.
    pub fn valid_bytes(&self) -> u64 {
        self.valid
    }

    /// Whether reading stopped at a damaged frame rather than at the end.
    pub fn torn(&self) -> bool {
        self.torn
    }
}

/// Reads until `buf` is full or the input ends; the number of bytes read.
pub(super) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
