//! Taking, renewing and giving up a Lease through the API server.

use super::fence::Fence;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::Api;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a holder stopped holding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Lost {
    #[error("Lease {name} was taken over by {holder}")]
    TakenOver { name: String, holder: String },
    #[error("could not renew Lease {name} within {seconds} s (last: {last})")]
    RenewDeadline {
        name: String,
        seconds: u64,
        last: String,
    },
}

/// What this process last saw of another holder's Lease: a contender counts
/// the lease duration from when the record last changed, by its own clock
/// (so clock skew between machines does not matter).
struct Observed {
    resource_version: Option<String>,
    at: Instant,
}

enum Taken {
    Yes,
    HeldBy(String),
}

/// Takes the Lease `name` (waiting while someone else holds it) and keeps
/// it, renewing every `retry`, until a renewal misses the deadline or
/// someone else took it over: then the fence is lost and this returns why.
/// Each attempt is cut off at the deadline: an API server that accepts the
/// connection and never answers must not keep a holder acting past it.
pub async fn hold(api: Api<Lease>, name: &str, fence: Arc<Fence>) -> Lost {
    let timing = fence.timing();
    let mut observed: Option<Observed> = None;
    let mut last_renewal: Option<Instant> = None;
    let mut last_error = String::from("no answer");
    loop {
        let sent = Instant::now();
        let left = last_renewal.map_or(timing.renew_deadline, |t| {
            timing
                .renew_deadline
                .saturating_sub(t.elapsed())
                .max(Duration::from_millis(1))
        });
        let attempt = tokio::time::timeout(left, try_take(&api, name, &fence, &mut observed, sent));
        match attempt.await {
            Ok(Ok(Taken::Yes)) => {
                if last_renewal.is_none() {
                    tracing::info!(lease = name, holder = fence.identity(), "holding the Lease");
                }
                fence.renewed(sent);
                last_renewal = Some(sent);
            }
            Ok(Ok(Taken::HeldBy(holder))) => {
                if last_renewal.is_some() {
                    // Someone else took it while this process held it: its
                    // renewals were late. It must not act again.
                    tracing::error!(lease = name, holder = %holder, "the Lease was taken over");
                    fence.lose();
                    return Lost::TakenOver {
                        name: name.to_string(),
                        holder,
                    };
                }
                fence.wait_for(&holder);
            }
            Ok(Err(e)) => {
                tracing::warn!(lease = name, error = %e, "cannot read or renew the Lease; retrying");
                last_error = e.to_string();
            }
            Err(_) => {
                tracing::warn!(
                    lease = name,
                    "no answer about the Lease within {} ms",
                    left.as_millis()
                );
                last_error = format!("no answer within {} ms", left.as_millis());
            }
        }
        if let Some(t) = last_renewal {
            if t.elapsed() >= timing.renew_deadline {
                tracing::error!(
                    lease = name,
                    "could not renew the Lease within {} s",
                    timing.renew_deadline.as_secs()
                );
                fence.lose();
                return Lost::RenewDeadline {
                    name: name.to_string(),
                    seconds: t.elapsed().as_secs(),
                    last: last_error,
                };
            }
        }
        tokio::time::sleep(timing.retry).await;
    }
}

/// Gives the Lease up (a clean stop), so that a successor need not wait out
/// the lease duration. Only a Lease this process still holds is changed.
pub async fn release(api: Api<Lease>, name: &str, fence: &Fence) {
    if !fence.held() {
        return;
    }
    fence.give_up();
    let Ok(Some(mut lease)) = api.get_opt(name).await else {
        return;
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(fence.identity()) {
        return;
    }
    spec.holder_identity = None;
    spec.renew_time = Some(now());
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => tracing::info!(lease = name, "released the Lease"),
        Err(e) => {
            tracing::warn!(lease = name, error = %e, "cannot release the Lease; it expires by itself")
        }
    }
}

/// One look at the Lease: create it, renew it, take it over once expired
/// or released. Every write carries the resourceVersion read, so a conflict
/// means someone else wrote first (not taken this time) and two contenders
/// never both win.
async fn try_take(
    api: &Api<Lease>,
    name: &str,
    fence: &Fence,
    observed: &mut Option<Observed>,
    now_local: Instant,
) -> Result<Taken, kube::Error> {
    let timing = fence.timing();
    let duration_s = i32::try_from(timing.lease_duration.as_secs()).unwrap_or(i32::MAX);
    let Some(mut lease) = api.get_opt(name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(fence.identity().to_string()),
                lease_duration_seconds: Some(duration_s),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Taken::Yes),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                Ok(Taken::HeldBy("(another contender)".into()))
            }
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let ours = holder.as_deref() == Some(fence.identity());
    if let (Some(other), false) = (&holder, ours) {
        let rv = lease.metadata.resource_version.clone();
        let changed = observed.as_ref().is_none_or(|o| o.resource_version != rv);
        if changed {
            *observed = Some(Observed {
                resource_version: rv,
                at: now_local,
            });
        }
        let unchanged_for = observed.as_ref().map_or(Duration::ZERO, |o| {
            now_local.saturating_duration_since(o.at)
        });
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(timing.lease_duration, Duration::from_secs);
        if unchanged_for < duration {
            return Ok(Taken::HeldBy(other.clone()));
        }
        tracing::info!(lease = name, previous = %other, "the Lease expired; taking it over");
    }
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if !ours {
        spec.acquire_time = Some(now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
    }
    spec.holder_identity = Some(fence.identity().to_string());
    spec.lease_duration_seconds = Some(duration_s);
    spec.renew_time = Some(now());
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(Taken::Yes),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            // Someone wrote first; whoever it was holds it now.
            let holder = api
                .get_opt(name)
                .await?
                .and_then(|l| l.spec.and_then(|s| s.holder_identity))
                .unwrap_or_default();
            if holder == fence.identity() {
                Ok(Taken::Yes)
            } else {
                Ok(Taken::HeldBy(holder))
            }
        }
        Err(e) => Err(e),
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}
