//! The Kith runner: turns observations about people, organizations and the
//! things they own into unified, connected profiles.
//!
//! Data flows through the modules in this order:
//! `source` lines → `template` (raw events) or `observation` (canonical) →
//! `normalize` (identifiers) → `engine` (stitching, over-merge protection,
//! reconciliation), which asks `resolution` for the links attributes make
//! between records that share no identifier → `store` (durable state) and
//! `output` (change feed, dead letters, exports). `run` drives it all;
//! `config` validates the pipeline once into typed values; `generate` and
//! `evaluate` produce and score synthetic workloads; `json` writes JSON by hand
//! where it is written by the million.

pub mod admin;
pub mod checkpoint;
pub mod engine;
pub mod evaluate;
pub mod failpoint;
pub mod generate;
pub mod json;
pub mod kubernetes;
pub mod output;
pub mod resolution;
pub mod run;
pub mod sink;
pub mod source;
pub mod store;

// The pipeline compiler is shared with the operator (kith-pipeline); its
// modules keep their place in the runner's tree.
pub use kith_pipeline::{config, normalize, observation, template};
