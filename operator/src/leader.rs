//! Leader election with a `coordination.k8s.io/v1` Lease, as client-go's
//! leaderelection does it: the holder renews `renewTime` every few seconds;
//! a candidate takes the Lease over once it has seen the same record, unchanged,
//! for the lease duration by its own clock (so clock skew between machines
//! does not matter). Writes are optimistic (`resourceVersion`), so two
//! candidates never both win.
//!
//! A leader that cannot renew within the renew deadline stops leading (the
//! process exits and its restart competes again); it gives the Lease up on a
//! clean stop so that the next leader takes over at once.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica (the pod name).
    pub identity: String,
    /// How long a Lease not renewed stays the holder's: the longest failover.
    pub lease_duration: Duration,
    /// Time between attempts (renewals of a leader, tries of a candidate).
    pub retry_period: Duration,
    /// A leader that has not renewed for this long stops leading; shorter
    /// than `lease_duration`, so that it stops before anyone takes over.
    pub renew_deadline: Duration,
}

impl LeaseConfig {
    /// Takeover at most 12 s after a leader dies (10 s lease, 2 s retries).
    pub fn new(namespace: String, name: String, identity: String) -> LeaseConfig {
        LeaseConfig {
            namespace,
            name,
            identity,
            lease_duration: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            renew_deadline: Duration::from_secs(7),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("could not renew Lease {namespace}/{name} for {seconds} s (last error: {last})")]
    RenewDeadline {
        namespace: String,
        name: String,
        seconds: u64,
        last: String,
    },
    #[error("Lease {namespace}/{name} was taken over by {holder}")]
    TakenOver {
        namespace: String,
        name: String,
        holder: String,
    },
}

pub struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
}

/// What a candidate last saw of the Lease, and when (by its own clock).
struct Observed {
    record: (Option<String>, Option<MicroTime>, Option<i32>),
    at: Instant,
}

impl Elector {
    pub fn new(client: Client, config: LeaseConfig) -> Elector {
        Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
        }
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&self) {
        let mut observed: Option<Observed> = None;
        loop {
            match self.try_acquire(&mut observed).await {
                Ok(true) => {
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became the leader");
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: Lease not readable or writable; retrying")
                }
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    async fn try_acquire(&self, observed: &mut Option<Observed>) -> Result<bool, kube::Error> {
        let now = Instant::now();
        let Some(lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.holder_spec(None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let record = (
            holder.clone(),
            spec.renew_time.clone(),
            spec.lease_transitions,
        );
        let expired = match holder.as_deref() {
            None => true,
            Some(h) if h == self.config.identity => true,
            Some(_) => {
                let duration = spec
                    .lease_duration_seconds
                    .map(|s| Duration::from_secs(s.max(1) as u64))
                    .unwrap_or(self.config.lease_duration);
                match observed {
                    Some(o) if o.record == record => now.duration_since(o.at) >= duration,
                    _ => {
                        *observed = Some(Observed { record, at: now });
                        false
                    }
                }
            }
        };
        if !expired {
            return Ok(false);
        }
        let mut taken = lease.clone();
        taken.spec = Some(self.holder_spec(Some(&spec)));
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &taken)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A spec naming this replica, renewed now; `previous` is the spec taken over.
    fn holder_spec(&self, previous: Option<&LeaseSpec>) -> LeaseSpec {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let was_mine = previous
            .and_then(|p| p.holder_identity.as_deref())
            .is_some_and(|h| h == self.config.identity);
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_duration.as_secs() as i32),
            acquire_time: if was_mine {
                previous.and_then(|p| p.acquire_time.clone())
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(
                previous.and_then(|p| p.lease_transitions).unwrap_or(0)
                    + i32::from(!was_mine && previous.is_some()),
            ),
            ..LeaseSpec::default()
        }
    }

    /// Renews the Lease until leadership is lost; returns why. Each renewal
    /// is cut off at the renew deadline (an API server that accepts the
    /// connection and never answers must not keep a stale leader leading),
    /// and the deadline counts from when the last successful one was sent.
    pub async fn hold(&self) -> LeaderError {
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            let sent = Instant::now();
            let left = self
                .config
                .renew_deadline
                .saturating_sub(last_renewed.elapsed())
                .max(Duration::from_millis(1));
            let last = match tokio::time::timeout(left, self.renew()).await {
                Ok(Ok(())) => {
                    last_renewed = sent;
                    continue;
                }
                Ok(Err(RenewError::TakenOver(holder))) => {
                    return LeaderError::TakenOver {
                        namespace: self.config.namespace.clone(),
                        name: self.config.name.clone(),
                        holder,
                    }
                }
                Ok(Err(RenewError::Api(e))) => e.to_string(),
                Err(_) => format!("no answer within {} ms", left.as_millis()),
            };
            tracing::warn!(error = %last, "could not renew the leader Lease");
            if last_renewed.elapsed() >= self.config.renew_deadline {
                return LeaderError::RenewDeadline {
                    namespace: self.config.namespace.clone(),
                    name: self.config.name.clone(),
                    seconds: last_renewed.elapsed().as_secs(),
                    last,
                };
            }
        }
    }

    async fn renew(&self) -> Result<(), RenewError> {
        let mut lease = self
            .api
            .get(&self.config.name)
            .await
            .map_err(RenewError::Api)?;
        let spec = lease.spec.clone().unwrap_or_default();
        match spec.holder_identity.as_deref() {
            Some(h) if h == self.config.identity => {}
            other => return Err(RenewError::TakenOver(other.unwrap_or("nobody").to_string())),
        }
        lease.spec = Some(self.holder_spec(Some(&spec)));
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
            .map_err(RenewError::Api)?;
        Ok(())
    }

    /// Gives the Lease up (best effort) so that a standby takes over at once.
    pub async fn release(&self) {
        let Ok(mut lease) = self.api.get(&self.config.name).await else {
            return;
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!("released the leader Lease"),
            Err(e) => tracing::warn!(error = %e, "could not release the leader Lease"),
        }
    }
}

enum RenewError {
    TakenOver(String),
    Api(kube::Error),
}
