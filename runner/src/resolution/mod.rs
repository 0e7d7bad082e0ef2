//! Entity resolution: records that share no identifier are linked when their
//! attributes say they are the same entity with high probability
//! (Fellegi-Sunter), in streaming, with the guarantees of stitching: the
//! links depend only on the set of records (see `index`), they are evidence
//! kept for `explain` (see `score`), and they go through the same
//! over-merge protection as identifiers (the engine's clustering).
//!
//! - `compare`: cleaning, string/date/number similarities, comparators, blocking keys
//! - `config`: the `resolution` section validated, and weights from a model
//! - `features`: what is read from one record, once
//! - `score`: a pair's weight of evidence, and its explanation
//! - `index`: blocks, links and possible matches, maintained as records change
//! - `model`, `train`: the model file and its estimation by EM

pub mod compare;
pub mod config;
pub mod features;
pub mod index;
pub mod model;
pub mod score;
pub mod train;

pub use config::{ResolutionConfig, Weights};
pub use features::{Features, ValueCounters};
pub use index::{Changes, Link, Resolver};
pub use model::Model;

/// A validated resolution section with the weights it scores with.
pub struct Resolution {
    pub config: ResolutionConfig,
    /// None until a model (or explicit probabilities) is given: `train` needs
    /// only the config, `run` needs both.
    pub weights: Option<Weights>,
}

impl std::fmt::Debug for Resolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolution")
            .field("kind", &self.config.kind)
            .field(
                "comparisons",
                &self
                    .config
                    .comparisons
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("trained", &self.weights.is_some())
            .finish()
    }
}
