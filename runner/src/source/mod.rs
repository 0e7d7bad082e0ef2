//! Sources of input: files and standard input (the embedded default) as
//! numbered lines, and Kafka topics as messages with positions.

pub mod kafka;
mod line_chunks;
mod lines;
mod positions;

pub use line_chunks::{read_in_chunks, LineChunk};
pub use lines::{Line, LineReader};
pub use positions::Positions;
