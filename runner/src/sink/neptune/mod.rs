//! The Neptune sink: the identity graph over Gremlin (Neptune's HTTP
//! endpoint, or any TinkerPop Gremlin Server).
//!
//! - `config`: the pipeline's settings, validated (kith-pipeline).
//! - `literal`: the one function that turns a value into query text.
//! - `encode`: the graph's shape and the requests of a flush, pure.
//! - `service`: the client, the writer fence and the error table.

pub use kith_pipeline::sinks::neptune as config;
pub mod encode;
pub mod literal;
pub mod service;

#[cfg(test)]
mod tests;
