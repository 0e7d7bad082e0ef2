//! Snapshots the operator takes on a schedule (`spec.snapshots.interval`) and
//! the pruning of the ones it made (`retain`, `maxAge`). Which to delete is a
//! pure function of the snapshots and the clock; users' snapshots are never
//! touched, nor any still pending or in progress.

use super::{events, Context};
use crate::build::{self, Names, PIPELINE_LABEL, SNAPSHOT_REASON_LABEL};
use crate::error::Error;
use k8s_openapi::jiff::Timestamp;
use kith_api::crd::{ProfilePipeline, ProfileSnapshot, SnapshotState};
use kith_pipeline::config::parse_duration;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use std::time::Duration;

/// What the pruning looks at.
#[derive(Debug, Clone)]
pub struct Taken {
    pub name: String,
    pub created: Timestamp,
    pub state: SnapshotState,
}

/// Takes a periodic snapshot when one is due (and `runners_ready`), deletes
/// what the policy no longer keeps, and returns when the next is due.
pub async fn schedule_and_prune(
    pipeline: &ProfilePipeline,
    ctx: &Context,
    names: &Names,
    runners_ready: bool,
) -> Result<Option<Duration>, Error> {
    let policy = &pipeline.spec.snapshots;
    let interval = policy.interval.as_deref().and_then(parse_duration);
    let max_age = policy.max_age.as_deref().and_then(parse_duration);
    let api: Api<ProfileSnapshot> = Api::namespaced(ctx.client.clone(), &names.namespace);
    // A final savepoint (of a deleted pipeline of the same name) is kept.
    let selector = format!(
        "{PIPELINE_LABEL}={},{SNAPSHOT_REASON_LABEL},{SNAPSHOT_REASON_LABEL}!=final",
        names.pipeline
    );
    let made = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::kube("list", "ProfileSnapshot"))?;
    let now = Timestamp::now();
    let taken: Vec<Taken> = made
        .iter()
        .filter(|s| s.spec.pipeline == names.pipeline)
        .map(|s| Taken {
            name: s.name_any(),
            created: s.creation_timestamp().map(|t| t.0).unwrap_or(now),
            state: s.status.as_ref().map(|st| st.state).unwrap_or_default(),
        })
        .collect();
    for name in to_delete(&taken, policy.retain.max(1) as usize, max_age, now) {
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => tracing::debug!(snapshot = %name, "pruned"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(Error::kube("delete", "ProfileSnapshot")(e)),
        }
    }
    let Some(interval) = interval else {
        return Ok(None);
    };
    let last_periodic = made
        .iter()
        .filter(|s| s.labels().get(SNAPSHOT_REASON_LABEL).map(String::as_str) == Some("periodic"))
        .filter_map(|s| s.creation_timestamp().map(|t| t.0))
        .max();
    let wait = until_due(last_periodic, interval, now);
    if !wait.is_zero() {
        return Ok(Some(wait));
    }
    if !runners_ready {
        return Ok(Some(interval.min(Duration::from_secs(30))));
    }
    let name = format!("{}-periodic-{}", names.pipeline, now.as_second());
    request(
        ctx,
        pipeline,
        names,
        &name,
        "periodic",
        "SavepointScheduled",
        format!("created ProfileSnapshot {name}"),
    )
    .await?;
    Ok(Some(interval))
}

/// Creates the operator's snapshot `name` (made for `reason`: `requested`,
/// `upgrade` or `periodic`) and records Event `event` with `note`; a
/// snapshot of that name already there was made by an earlier reconcile
/// whose status write was lost, and is left as it is.
pub async fn request(
    ctx: &Context,
    pipeline: &ProfilePipeline,
    names: &Names,
    name: &str,
    reason: &str,
    event: &str,
    note: String,
) -> Result<(), Error> {
    let api: Api<ProfileSnapshot> = Api::namespaced(ctx.client.clone(), &names.namespace);
    let snapshot = build::snapshot(pipeline, names, name, reason);
    match api.create(&PostParams::default(), &snapshot).await {
        Ok(_) => events::publish(ctx, pipeline, EventType::Normal, event, note).await,
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(Error::kube("create", "ProfileSnapshot")(e)),
    }
    Ok(())
}

/// Time until a periodic snapshot is due; zero when it is.
pub fn until_due(last: Option<Timestamp>, interval: Duration, now: Timestamp) -> Duration {
    let Some(last) = last else {
        return Duration::ZERO;
    };
    let elapsed = now.duration_since(last);
    let elapsed = Duration::try_from(elapsed).unwrap_or(Duration::ZERO);
    interval.saturating_sub(elapsed)
}

/// The operator's snapshots the policy no longer keeps: completed ones beyond
/// the newest `retain`, failed ones beyond the newest `retain`, and any older
/// than `max_age`, except the newest completed one; never one still pending
/// or in progress.
pub fn to_delete(
    taken: &[Taken],
    retain: usize,
    max_age: Option<Duration>,
    now: Timestamp,
) -> Vec<String> {
    let newest_first = |state: SnapshotState| {
        let mut of: Vec<&Taken> = taken.iter().filter(|t| t.state == state).collect();
        of.sort_by(|a, b| b.created.cmp(&a.created).then(b.name.cmp(&a.name)));
        of
    };
    let completed = newest_first(SnapshotState::Completed);
    let failed = newest_first(SnapshotState::Failed);
    let too_old = |t: &Taken| {
        max_age.is_some_and(|age| {
            Duration::try_from(now.duration_since(t.created)).is_ok_and(|d| d > age)
        })
    };
    let mut doomed = Vec::new();
    for (i, t) in completed.iter().enumerate() {
        if i >= retain || (i > 0 && too_old(t)) {
            doomed.push(t.name.clone());
        }
    }
    for (i, t) in failed.iter().enumerate() {
        if i >= retain || too_old(t) {
            doomed.push(t.name.clone());
        }
    }
    doomed.sort();
    doomed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn taken(name: &str, second: i64, state: SnapshotState) -> Taken {
        Taken {
            name: name.into(),
            created: at(second),
            state,
        }
    }

    #[test]
    fn keeps_the_newest_completed_and_never_touches_running_ones() {
        use SnapshotState::*;
        let all = [
            taken("a", 100, Completed),
            taken("b", 200, Completed),
            taken("c", 300, Completed),
            taken("d", 50, InProgress),
            taken("e", 40, Pending),
            taken("f", 250, Failed),
        ];
        assert_eq!(to_delete(&all, 2, None, at(1000)), ["a"]);
        assert_eq!(to_delete(&all, 1, None, at(1000)), ["a", "b"]);
        // Past the age limit, all but the newest completed go; running ones stay.
        assert_eq!(
            to_delete(&all, 5, Some(Duration::from_secs(100)), at(1000)),
            ["a", "b", "f"]
        );
    }

    #[test]
    fn a_periodic_snapshot_is_due_an_interval_after_the_last() {
        let hour = Duration::from_secs(3600);
        assert_eq!(until_due(None, hour, at(10)), Duration::ZERO);
        assert_eq!(
            until_due(Some(at(0)), hour, at(600)),
            Duration::from_secs(3000)
        );
        assert_eq!(until_due(Some(at(0)), hour, at(7200)), Duration::ZERO);
    }
}
