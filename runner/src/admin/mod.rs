//! The runner's admin HTTP port: metrics, health probes, profile lookups and
//! savepoints, for Prometheus, Kubernetes probes and operators.
//!
//! The runner is synchronous (std threads) and its engine is single-threaded
//! and not `Sync`, so the server cannot touch the engine. Instead:
//!
//! - [`Metrics`] and [`Health`] are shared (`Arc`) and updated by the engine
//!   thread with atomic operations; the server only reads them.
//! - Requests that need the engine ([`AdminRequest`]) travel over a bounded
//!   `std::sync::mpsc` channel, each carrying a `tokio::sync::oneshot` sender
//!   for the answer. **The engine thread polls the receiver with `try_recv`
//!   between batches** and answers every request it takes (dropping a reply
//!   sender unanswered is fine: the caller gets a 503). The server uses
//!   `try_send`, so a busy engine yields a 503 instead of blocking a tokio
//!   worker, and it waits for the answer with a timeout
//!   ([`AdminConfig`]).
//!
//! The server runs on a tokio runtime on its own OS thread, so it answers
//! probes and scrapes even while the engine is busy with a long batch.
//!
//! Profiles and savepoints need an authenticated caller ([`auth`]); the
//! port serves HTTPS when given a certificate ([`tls`]); every connection
//! has a header-read timeout and their number is bounded.
//!
//! Identifiers are personal data: nothing here logs an identifier value above
//! debug level, and [`AdminRequest`]'s `Debug` redacts it.

pub mod auth;
mod metrics;
mod server;
pub mod tls;

#[cfg(test)]
mod tests;

pub use metrics::Metrics;
pub use server::{identifier_of, AdminConfig, AdminError, AdminServer, AdminState, Health};

use serde::Serialize;
use std::fmt;
use std::sync::mpsc::{Receiver, SyncSender};
use tokio::sync::oneshot;

/// What a profile lookup answers: the profiles (as export JSON, docs/design.md §4)
/// holding the identifier, possibly none.
pub type LookupReply = Result<Vec<serde_json::Value>, LookupFailure>;

/// What a savepoint request answers.
pub type SavepointReply = Result<SavepointDone, String>;

/// A request the admin server needs the engine thread to answer.
pub enum AdminRequest {
    /// The profiles holding the identifier `identifier_type:value` (the value
    /// as given, before normalization; the engine normalizes it).
    Lookup {
        identifier_type: String,
        value: String,
        reply: oneshot::Sender<LookupReply>,
    },
    /// Write a savepoint now and say where.
    Savepoint {
        reply: oneshot::Sender<SavepointReply>,
    },
}

impl fmt::Debug for AdminRequest {
    // Hand-written so that a stray `{:?}` cannot put an identifier value in
    // the logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminRequest::Lookup {
                identifier_type, ..
            } => f
                .debug_struct("Lookup")
                .field("identifier_type", identifier_type)
                .field("value", &"<redacted>")
                .finish_non_exhaustive(),
            AdminRequest::Savepoint { .. } => f.debug_struct("Savepoint").finish_non_exhaustive(),
        }
    }
}

/// Why the engine could not answer a lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupFailure {
    /// The identifier type is not one the pipeline declares (HTTP 400).
    #[error("unknown identifier type; accepted types: {}", accepted.join(", "))]
    UnknownType { accepted: Vec<String> },
    /// The engine cannot answer right now, e.g. while restoring state
    /// (HTTP 503).
    #[error("lookup unavailable: {0}")]
    Unavailable(String),
}

/// A savepoint the engine wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavepointDone {
    /// Where the savepoint is (a directory or object-store URL).
    pub path: String,
    /// Live records it holds.
    pub records: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// The channel between server and engine. `capacity` is clamped to at least
/// 1: a zero-capacity (rendezvous) channel would refuse every `try_send`,
/// since the engine polls with `try_recv` and is never blocked in `recv`.
pub fn request_channel(capacity: usize) -> (SyncSender<AdminRequest>, Receiver<AdminRequest>) {
    std::sync::mpsc::sync_channel(capacity.max(1))
}
