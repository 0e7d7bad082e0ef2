//! The diff of a rebuild: old profiles against the clusters that replace
//! them, as a pure function of their ids, sizes and overlaps. It decides
//! which old profile slot each cluster takes over, which change events the
//! rebuild emits (docs/design.md §3.6) and which old slots are freed; the
//! engine only carries the plan out.

use super::change::ChangeKind;
use super::keys::ProfileSlot;
use super::profiles::ProfileId;
use ahash::AHashMap;

/// A profile as it was before the rebuild.
#[derive(Debug, Clone, Copy)]
pub struct OldProfile {
    pub slot: ProfileSlot,
    pub id: ProfileId,
    pub members: usize,
}

/// A cluster the rebuild computed.
#[derive(Debug, Clone)]
pub struct NewCluster {
    pub id: ProfileId,
    pub members: usize,
    /// The distinct old profiles its members were in, in member order.
    pub olds: Vec<ProfileSlot>,
    /// Whether the record that caused the rebuild (or one derived from it)
    /// is a member.
    pub touched: bool,
}

/// One change event of the rebuild.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedEvent {
    pub kind: ChangeKind,
    pub profile_id: ProfileId,
    pub related: Vec<ProfileId>,
    /// The cluster whose profile `profile_id` is after the rebuild; none for
    /// the old id of a split or a deletion.
    pub cluster: Option<usize>,
}

/// What the engine does to carry a rebuild out.
#[derive(Debug, Default, PartialEq)]
pub struct Diff {
    /// Per cluster, the old profile slot it takes over; none for a new slot.
    pub reuse: Vec<Option<ProfileSlot>>,
    /// In the order the change feed reports them: the clusters' events in
    /// cluster order, then the splits and deletions of old profiles in
    /// their order.
    pub events: Vec<PlannedEvent>,
    /// Old slots no cluster takes over, to free once the clusters are placed.
    pub freed: Vec<ProfileSlot>,
    pub merges: u64,
    pub splits: u64,
}

/// Plans the rebuild that replaces `olds` by `clusters`. Every slot a
/// cluster names in [`NewCluster::olds`] is one of `olds`.
pub fn diff(olds: &[OldProfile], clusters: &[NewCluster]) -> Diff {
    let by_slot: AHashMap<ProfileSlot, OldProfile> = olds.iter().map(|o| (o.slot, *o)).collect();
    let mut news_of_old: AHashMap<ProfileSlot, Vec<usize>> = AHashMap::default();
    for (c, cluster) in clusters.iter().enumerate() {
        for p in &cluster.olds {
            news_of_old.entry(*p).or_default().push(c);
        }
    }
    let old_id = |p: &ProfileSlot| by_slot.get(p).map(|o| o.id);
    let mut out = Diff::default();
    for (c, cluster) in clusters.iter().enumerate() {
        // An old profile that maps one to one keeps its slot.
        let reuse = match cluster.olds.as_slice() {
            [p] if news_of_old.get(p).map_or(0, Vec::len) == 1 => by_slot.get(p).copied(),
            _ => None,
        };
        let event = |kind, related| PlannedEvent {
            kind,
            profile_id: cluster.id,
            related,
            cluster: Some(c),
        };
        match reuse {
            Some(old) if old.id != cluster.id => {
                out.events.push(event(ChangeKind::Updated, vec![old.id]));
            }
            // A rebuild may move records between profiles without changing
            // a count: the cause's own profile is reported either way.
            Some(old) if old.members != cluster.members || cluster.touched => {
                out.events.push(event(ChangeKind::Updated, Vec::new()));
            }
            Some(_) => {}
            None => {
                let previous: Vec<ProfileId> = cluster.olds.iter().filter_map(old_id).collect();
                let kind = match previous.len() {
                    0 => ChangeKind::Created,
                    1 => ChangeKind::Updated,
                    _ => {
                        out.merges += 1;
                        ChangeKind::Merged
                    }
                };
                let related = if kind == ChangeKind::Created {
                    Vec::new()
                } else {
                    previous
                };
                out.events.push(event(kind, related));
            }
        }
        out.reuse.push(reuse.map(|o| o.slot));
    }
    for old in olds {
        let news = news_of_old.get(&old.slot).map(Vec::as_slice).unwrap_or(&[]);
        let gone = |kind, related| PlannedEvent {
            kind,
            profile_id: old.id,
            related,
            cluster: None,
        };
        if news.len() > 1 {
            out.splits += 1;
            let into = news.iter().map(|c| clusters[*c].id).collect();
            out.events.push(gone(ChangeKind::Split, into));
        }
        if news.is_empty() {
            out.events.push(gone(ChangeKind::Deleted, Vec::new()));
        }
        if !out.reuse.contains(&Some(old.slot)) {
            out.freed.push(old.slot);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::Kind;

    fn id(n: u64) -> ProfileId {
        ProfileId::from_parts(Kind::Person, n, 0)
    }

    fn old(slot: u32, n: u64, members: usize) -> OldProfile {
        OldProfile {
            slot: ProfileSlot(slot),
            id: id(n),
            members,
        }
    }

    fn cluster(n: u64, members: usize, olds: &[u32], touched: bool) -> NewCluster {
        NewCluster {
            id: id(n),
            members,
            olds: olds.iter().map(|s| ProfileSlot(*s)).collect(),
            touched,
        }
    }

    fn event(kind: ChangeKind, n: u64, related: &[u64], cluster: Option<usize>) -> PlannedEvent {
        PlannedEvent {
            kind,
            profile_id: id(n),
            related: related.iter().map(|r| id(*r)).collect(),
            cluster,
        }
    }

    #[test]
    fn a_record_of_its_own_creates_a_profile_in_a_new_slot() {
        let d = diff(&[], &[cluster(1, 1, &[], true)]);
        assert_eq!(d.reuse, [None]);
        assert_eq!(d.events, [event(ChangeKind::Created, 1, &[], Some(0))]);
        assert!(d.freed.is_empty());
    }

    #[test]
    fn a_grown_profile_keeps_its_slot_and_id() {
        let d = diff(&[old(4, 1, 2)], &[cluster(1, 3, &[4], true)]);
        assert_eq!(d.reuse, [Some(ProfileSlot(4))]);
        assert_eq!(d.events, [event(ChangeKind::Updated, 1, &[], Some(0))]);
        assert!(d.freed.is_empty());
    }

    #[test]
    fn a_profile_whose_smallest_member_changed_reports_its_previous_id() {
        let d = diff(&[old(4, 1, 2)], &[cluster(2, 3, &[4], false)]);
        assert_eq!(d.events, [event(ChangeKind::Updated, 2, &[1], Some(0))]);
    }

    #[test]
    fn a_profile_the_rebuild_left_as_it_was_reports_nothing() {
        let d = diff(
            &[old(4, 1, 2), old(5, 2, 1)],
            &[cluster(1, 2, &[4], false), cluster(2, 2, &[5], true)],
        );
        assert_eq!(d.reuse, [Some(ProfileSlot(4)), Some(ProfileSlot(5))]);
        assert_eq!(d.events, [event(ChangeKind::Updated, 2, &[], Some(1))]);
    }

    #[test]
    fn a_touched_profile_of_the_same_size_is_reported() {
        let d = diff(&[old(4, 1, 2)], &[cluster(1, 2, &[4], true)]);
        assert_eq!(d.events, [event(ChangeKind::Updated, 1, &[], Some(0))]);
    }

    #[test]
    fn two_profiles_merge_into_a_new_slot_and_both_old_slots_are_freed() {
        let d = diff(
            &[old(4, 1, 2), old(7, 2, 1)],
            &[cluster(1, 3, &[4, 7], true)],
        );
        assert_eq!(d.reuse, [None]);
        assert_eq!(d.events, [event(ChangeKind::Merged, 1, &[1, 2], Some(0))]);
        assert_eq!(d.freed, [ProfileSlot(4), ProfileSlot(7)]);
        assert_eq!((d.merges, d.splits), (1, 0));
    }

    #[test]
    fn a_split_reports_each_part_then_the_split_of_the_old_id() {
        let d = diff(
            &[old(4, 1, 3)],
            &[cluster(1, 2, &[4], false), cluster(3, 1, &[4], true)],
        );
        assert_eq!(d.reuse, [None, None], "neither part maps one to one");
        assert_eq!(
            d.events,
            [
                event(ChangeKind::Updated, 1, &[1], Some(0)),
                event(ChangeKind::Updated, 3, &[1], Some(1)),
                event(ChangeKind::Split, 1, &[1, 3], None),
            ]
        );
        assert_eq!(d.freed, [ProfileSlot(4)]);
        assert_eq!((d.merges, d.splits), (0, 1));
    }

    #[test]
    fn a_profile_whose_last_record_was_retracted_is_deleted() {
        let d = diff(&[old(4, 1, 1)], &[]);
        assert!(d.reuse.is_empty());
        assert_eq!(d.events, [event(ChangeKind::Deleted, 1, &[], None)]);
        assert_eq!(d.freed, [ProfileSlot(4)]);
    }
}
