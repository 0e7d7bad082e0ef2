//! Sources of input lines: files and standard input (the embedded default).
//! Kafka arrives in a later module with the same contract: numbered lines.

mod lines;

pub use lines::{Line, LineReader};
