//! Entity resolution: records that share no identifier are linked when their
//! attributes say they are the same entity with high probability
//! (Fellegi-Sunter), in streaming, with the guarantees of stitching: the
//! links depend only on the set of records (see `index`), they are evidence
//! kept for `explain` (see `score`), and they go through the same
//! over-merge protection as identifiers (the engine's clustering).
//!
//! - `compare`, `config`: comparators and the validated section (kith-pipeline)
//! - `features`: what is read from one record, once
//! - `score`: a pair's weight of evidence, and its explanation
//! - `index`: blocks, links and possible matches, maintained as records change
//! - `model`, `train`: the model file (kith-pipeline) and its estimation by EM

pub mod features;
pub mod index;
pub mod score;
pub mod train;

// The section, comparators and model are compiled with the pipeline (the
// operator validates them too); re-exported so the engine finds them here.
pub use features::{Features, ValueCounters};
pub use index::{Changes, Link, Resolver};
pub use kith_pipeline::resolution::{
    compare, config, model, Model, Resolution, ResolutionConfig, Weights,
};
