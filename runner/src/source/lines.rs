//! A line reader that never holds more than the line limit in memory: a
//! 2 GiB line without a newline must become one dead letter, not an OOM.

use std::io::{self, BufRead};

pub struct LineReader<R: BufRead> {
    inner: R,
    limit: usize,
    buf: Vec<u8>,
    number: u64,
    /// The last line used up every byte the reader had buffered: the next
    /// one needs a read, which on a pipe may wait for the writer.
    drained: bool,
}

/// One input line without its line ending.
pub struct Line<'a> {
    /// 1-based line number.
    pub number: u64,
    pub bytes: &'a [u8],
    /// The line was longer than the limit; `bytes` holds only its start.
    pub too_long: bool,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, limit: usize) -> Self {
        LineReader {
            inner,
            limit,
            buf: Vec::with_capacity(4096),
            number: 0,
            drained: true,
        }
    }

    /// Whether the next line needs a read from the underlying input (which
    /// may block): what was read so far should be handed on first.
    pub fn drained(&self) -> bool {
        self.drained
    }

    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let mut too_long = false;
        let mut saw_any = false;
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                self.drained = true;
                break;
            }
            saw_any = true;
            let (take, done) = match memchr(chunk) {
                Some(pos) => (pos, true),
                None => (chunk.len(), false),
            };
            let room = (self.limit + 1).saturating_sub(self.buf.len());
            if take > room {
                too_long = true;
            }
            self.buf.extend_from_slice(&chunk[..take.min(room)]);
            let used = if done { take + 1 } else { take };
            self.drained = used == chunk.len();
            self.inner.consume(used);
            if done {
                break;
            }
        }
        if !saw_any {
            return Ok(None);
        }
        if self.buf.len() > self.limit {
            too_long = true;
            self.buf.truncate(self.limit);
        }
        if !too_long && self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        self.number += 1;
        Ok(Some(Line {
            number: self.number,
            bytes: &self.buf,
            too_long,
        }))
    }
}

fn memchr(haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|b| *b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_flags_long_ones_without_keeping_them() {
        let input = format!("a\r\n{}\nlast", "x".repeat(100));
        let mut r = LineReader::new(io::BufReader::with_capacity(8, input.as_bytes()), 10);
        let l = r.next_line().unwrap().unwrap();
        assert_eq!((l.number, l.bytes, l.too_long), (1, &b"a"[..], false));
        let l = r.next_line().unwrap().unwrap();
        assert_eq!((l.number, l.bytes.len(), l.too_long), (2, 10, true));
        let l = r.next_line().unwrap().unwrap();
        assert_eq!((l.number, l.bytes, l.too_long), (3, &b"last"[..], false));
        assert!(r.next_line().unwrap().is_none());
    }

    #[test]
    fn drained_says_when_the_buffer_is_used_up() {
        let input = "a\nb\nc\n";
        let mut r = LineReader::new(io::BufReader::with_capacity(4, input.as_bytes()), 10);
        r.next_line().unwrap().unwrap(); // "a\nb\n" buffered, "a\n" used
        assert!(!r.drained());
        r.next_line().unwrap().unwrap();
        assert!(r.drained());
        r.next_line().unwrap().unwrap();
        assert!(r.drained());
        assert!(r.next_line().unwrap().is_none());
    }

    #[test]
    fn a_line_exactly_at_the_limit_is_accepted() {
        let input = "0123456789\n";
        let mut r = LineReader::new(input.as_bytes(), 10);
        let l = r.next_line().unwrap().unwrap();
        assert!(!l.too_long);
        assert_eq!(l.bytes.len(), 10);
    }
}
