//! The DynamoDB sink: a profiles table keyed by `profile_id` and an
//! identifier index table keyed by `identifier` (`type#value`).
//!
//! - `config`: the pipeline's settings, validated (kith-pipeline).
//! - `encode`: items from operations, within DynamoDB's limits (400 KB per
//!   item, 2048-byte keys, 25 items and 16 MB per batch), pure.
//! - `service`: the client, table checks, and the writes with the error table.

pub use kith_pipeline::sinks::dynamodb as config;
pub mod encode;
pub mod service;

#[cfg(test)]
mod tests;
