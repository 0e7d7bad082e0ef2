//! Sources of input: files and standard input (the embedded default) as
//! numbered lines, and Kafka topics as messages with positions.

pub mod kafka;
mod lines;
mod positions;

pub use lines::{Line, LineReader};
pub use positions::Positions;
