//! Lines of a file or standard input read on a thread of their own and
//! handed over in chunks.
//!
//! Two things follow from reading apart from decoding. A chunk ends where
//! the input pauses (the reader's buffer is used up, so the next read may
//! wait for the writer), so a line that arrives alone is decoded and
//! applied at once instead of waiting for a batch to fill. And the thread
//! that decodes never blocks in a read: it can stop on SIGTERM while the
//! writer of a pipe keeps it open and silent. The reading thread is left
//! waiting in its read then; it ends with the process.

use super::{Line, LineReader};
use std::io::{self, BufRead};
use std::sync::mpsc::{sync_channel, Receiver};

/// Lines per chunk at most: a chunk becomes one batch for the engine.
pub const CHUNK_LINES: usize = 64;
/// Bytes per chunk at most (lines of up to the line limit each).
const CHUNK_BYTES: usize = 1 << 20;
/// Chunks read ahead of the decoder.
const CHUNKS_AHEAD: usize = 4;

/// Consecutive lines, their bytes in one buffer.
#[derive(Default)]
pub struct LineChunk {
    data: Vec<u8>,
    lines: Vec<ChunkLine>,
}

struct ChunkLine {
    number: u64,
    end: usize,
    too_long: bool,
}

impl LineChunk {
    pub fn lines(&self) -> impl Iterator<Item = Line<'_>> {
        let mut start = 0;
        self.lines.iter().map(move |l| {
            let bytes = &self.data[start..l.end];
            start = l.end;
            Line {
                number: l.number,
                bytes,
                too_long: l.too_long,
            }
        })
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn push(&mut self, line: &Line<'_>) {
        self.data.extend_from_slice(line.bytes);
        self.lines.push(ChunkLine {
            number: line.number,
            end: self.data.len(),
            too_long: line.too_long,
        });
    }

    fn full(&self) -> bool {
        self.lines.len() >= CHUNK_LINES || self.data.len() >= CHUNK_BYTES
    }
}

/// Starts the reading thread. The receiver yields chunks in input order, a
/// read error as the last item, and disconnects at the end of the input.
/// Dropping it ends the thread at its next chunk.
pub fn read_in_chunks(
    reader: Box<dyn BufRead + Send>,
    line_limit: usize,
) -> io::Result<Receiver<io::Result<LineChunk>>> {
    let (chunks, receiver) = sync_channel(CHUNKS_AHEAD);
    std::thread::Builder::new()
        .name("kith-read".into())
        .spawn(move || {
            let mut lines = LineReader::new(reader, line_limit);
            let mut chunk = LineChunk::default();
            loop {
                match lines.next_line() {
                    Ok(Some(line)) => chunk.push(&line),
                    Ok(None) => break,
                    Err(e) => {
                        let _ = chunks.send(Err(e));
                        return;
                    }
                }
                if (chunk.full() || lines.drained())
                    && chunks.send(Ok(std::mem::take(&mut chunk))).is_err()
                {
                    return; // the decoder stopped
                }
            }
            if !chunk.is_empty() {
                let _ = chunks.send(Ok(chunk));
            }
        })?;
    Ok(receiver)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Read, Write};
    use std::time::Duration;

    fn collect(receiver: Receiver<io::Result<LineChunk>>) -> Vec<Vec<(u64, String, bool)>> {
        receiver
            .iter()
            .map(|chunk| {
                chunk
                    .unwrap()
                    .lines()
                    .map(|l| {
                        (
                            l.number,
                            String::from_utf8_lossy(l.bytes).into_owned(),
                            l.too_long,
                        )
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_line_arrives_once_in_order_in_bounded_chunks() {
        let text: String = (1..=200).map(|i| format!("line {i}\n")).collect();
        let chunks =
            collect(read_in_chunks(Box::new(BufReader::new(io::Cursor::new(text))), 100).unwrap());
        let all: Vec<_> = chunks.iter().flatten().cloned().collect();
        assert_eq!(all.len(), 200);
        for (i, (number, bytes, too_long)) in all.iter().enumerate() {
            assert_eq!(
                (*number, bytes.as_str(), *too_long),
                (i as u64 + 1, format!("line {}", i + 1).as_str(), false)
            );
        }
        assert!(chunks
            .iter()
            .all(|c| !c.is_empty() && c.len() <= CHUNK_LINES));
        // One buffer holds the whole input: chunks are full but the last.
        assert_eq!(chunks.len(), 4);
    }

    #[test]
    fn a_long_line_keeps_its_flag_and_only_its_start() {
        let text = format!("a\n{}\nb\n", "x".repeat(50));
        let chunks = collect(read_in_chunks(Box::new(io::Cursor::new(text)), 10).unwrap());
        let all: Vec<_> = chunks.into_iter().flatten().collect();
        assert_eq!(
            all,
            vec![
                (1, "a".into(), false),
                (2, "x".repeat(10), true),
                (3, "b".into(), false)
            ]
        );
    }

    /// A pipe whose writer sends one line and then stays silent.
    struct Trickle {
        lines: std::sync::mpsc::Receiver<Vec<u8>>,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.lines.recv() {
                Ok(line) => {
                    let n = line.len().min(buf.len());
                    buf[..n].copy_from_slice(&line[..n]);
                    Ok(n)
                }
                Err(_) => Ok(0),
            }
        }
    }

    #[test]
    fn a_line_that_arrives_alone_is_handed_over_before_the_next_read() {
        let (writer, lines) = std::sync::mpsc::channel();
        let receiver = read_in_chunks(Box::new(BufReader::new(Trickle { lines })), 100).unwrap();
        let mut sent = Vec::new();
        sent.write_all(b"first\n").unwrap();
        writer.send(sent).unwrap();
        // The writer keeps the pipe open: the line must come anyway.
        let chunk = receiver
            .recv_timeout(Duration::from_secs(10))
            .expect("the line is handed over while the writer is silent")
            .unwrap();
        let got: Vec<_> = chunk.lines().map(|l| l.bytes.to_vec()).collect();
        assert_eq!(got, vec![b"first".to_vec()]);
        drop(writer);
        assert!(receiver.recv_timeout(Duration::from_secs(10)).is_err());
    }

    #[test]
    fn a_read_error_comes_last() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk gone"))
            }
        }
        let receiver = read_in_chunks(Box::new(BufReader::new(Broken)), 10).unwrap();
        let first = receiver.recv().unwrap();
        assert_eq!(
            first.err().map(|e| e.to_string()),
            Some("disk gone".to_string())
        );
        assert!(receiver.recv().is_err());
    }
}
