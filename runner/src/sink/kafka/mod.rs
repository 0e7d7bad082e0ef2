//! The Kafka sink: the change feed as a topic, written in Kafka
//! transactions so that `read_committed` consumers see each committed batch
//! of changes exactly once.
//!
//! - `config`: the pipeline's settings, validated (kith-pipeline).
//! - `service`: the transactional producer, the progress topic, retries.
//!
//! The events are those of [`crate::sink::events`].

pub use kith_pipeline::sinks::kafka as config;
pub mod service;
