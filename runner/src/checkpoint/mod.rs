//! Consistent, asynchronous, incremental checkpoints and self-contained
//! savepoints of the runner's state and source positions, kept in object
//! storage (a local folder or S3).
//!
//! A checkpoint is the state directory's files at one instant, sealed by the
//! engine thread between two batches, together with the source positions of
//! that instant. Because records keep their greatest version, replaying
//! messages past the positions into a restored state changes nothing they
//! have not already changed: restore plus replay gives exactly the state of a
//! run that never stopped.

pub mod coordinator;
pub mod metadata;
pub mod restore;
pub mod storage;

pub use coordinator::{Completed, Coordinator, CoordinatorConfig, Job, SavepointReplyFn};
pub use metadata::Metadata;
pub use storage::{CheckpointStorage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{url}: {message}")]
    Invalid { url: String, message: String },
    #[error("local file {path}: {source}")]
    Local {
        path: String,
        source: std::io::Error,
    },
    #[error("checkpoint not taken: {0}")]
    Sinks(String),
    #[error("not committed: this runner does not hold its pipeline's Lease (another runner may be writing the checkpoints)")]
    Fenced,
}
