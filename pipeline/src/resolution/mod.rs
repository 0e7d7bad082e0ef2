//! Entity resolution as a pipeline declares it: the `resolution` section
//! validated, the comparators it names, and the model file that gives them
//! weights. The runner's streaming index (blocks, links, scores, training)
//! builds on these.
//!
//! - `compare`: cleaning, string/date/number similarities, comparators, blocking keys
//! - `config`: the `resolution` section validated, and weights from a model
//! - `model`: the model file `kith-runner train` writes

pub mod compare;
pub mod config;
pub mod model;

pub use config::{ResolutionConfig, Weights};
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
