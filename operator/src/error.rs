//! Errors of a reconcile. A spec mistake is not one of them: it becomes the
//! Degraded condition. These are the failures that are retried.

use kube::runtime::finalizer;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} {kind} failed: {source}")]
    Kube {
        action: &'static str,
        kind: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("the finalizer of the pipeline failed: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
    #[error("object has no {0}")]
    MissingMetadata(&'static str),
    /// Not a failure: a step that waits for the runners (a final savepoint
    /// before a deletion), looked at again after `retry`.
    #[error("waiting: {why}")]
    Waiting {
        why: String,
        retry: std::time::Duration,
    },
}

impl Error {
    /// Wraps a failed API call: `map_err(Error::kube("apply", "Deployment"))`.
    pub fn kube(action: &'static str, kind: &'static str) -> impl FnOnce(kube::Error) -> Error {
        move |source| Error::Kube {
            action,
            kind,
            source,
        }
    }

    /// A short, bounded label for `kith_operator_reconcile_errors_total{reason}`.
    pub fn metric_reason(&self) -> String {
        match self {
            Error::Kube {
                action,
                kind,
                source,
            } => match source {
                kube::Error::Api(status) => format!("{action} {kind}: {}", status.reason),
                _ => format!("{action} {kind}: transport"),
            },
            Error::Finalizer(inner) => match inner.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => {
                    e.metric_reason()
                }
                _ => "finalizer".into(),
            },
            Error::MissingMetadata(_) => "metadata".into(),
            Error::Waiting { .. } => "waiting".into(),
        }
    }

    /// When the step is only waiting, how long until it is looked at again.
    pub fn waiting(&self) -> Option<std::time::Duration> {
        match self {
            Error::Waiting { retry, .. } => Some(*retry),
            Error::Finalizer(inner) => match inner.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => {
                    e.waiting()
                }
                _ => None,
            },
            _ => None,
        }
    }
}
