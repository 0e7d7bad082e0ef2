//! Profiles: the current partition of live records, with deterministic ids.
//!
//! A profile's id is a hash of its kind and its smallest member key (source,
//! id, relationship), so any runner that holds the same records computes the
//! same id (docs/design.md §3.6), and a profile that only grows keeps its id unless a
//! record with a smaller key joins.

use super::identifiers::ExclusiveSet;
use super::keys::{Names, ProfileSlot, RecordId};
use super::records::Records;
use super::storage::ChunkedVec;
use crate::observation::Kind;
use smallvec::SmallVec;
use std::cmp::Ordering;
use std::fmt;

/// A profile id: the kind and 96 bits of hash, shown as `person-<24 hex>`.
/// Kept in 16 bytes (no `u128`, whose alignment would double that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProfileId {
    pub kind: Kind,
    high: u64,
    low: u32,
}

#[cfg(test)]
impl ProfileId {
    /// An id from its parts, for tests of what only compares ids.
    pub fn from_parts(kind: Kind, high: u64, low: u32) -> Self {
        ProfileId { kind, high, low }
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:016x}{:08x}", self.kind, self.high, self.low)
    }
}

pub struct Profile {
    pub kind: Kind,
    /// Most profiles hold one or two records: those stay inline.
    pub members: SmallVec<[RecordId; 2]>,
    /// Distinct exclusive identifiers of the members, sorted.
    pub exclusive: ExclusiveSet,
    /// Some member holds an evidence identifier in conflict: the profile is
    /// part of a larger component and changes to it take the canonical path.
    pub conflict: bool,
    pub min_member: RecordId,
    pub id: ProfileId,
}

#[derive(Default)]
pub struct Profiles {
    slots: ChunkedVec<Option<Profile>>,
    free: Vec<ProfileSlot>,
    count: usize,
}

impl Profiles {
    pub fn get(&self, slot: ProfileSlot) -> &Profile {
        self.slots[slot.index()]
            .as_ref()
            .expect("profile slot in use")
    }

    /// The profile at `slot`, if the slot is in use.
    pub fn try_get(&self, slot: ProfileSlot) -> Option<&Profile> {
        self.slots.get(slot.index()).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, slot: ProfileSlot) -> &mut Profile {
        self.slots[slot.index()]
            .as_mut()
            .expect("profile slot in use")
    }

    pub fn insert(&mut self, profile: Profile) -> ProfileSlot {
        self.count += 1;
        if let Some(slot) = self.free.pop() {
            self.slots[slot.index()] = Some(profile);
            slot
        } else {
            ProfileSlot(self.slots.push(Some(profile)) as u32)
        }
    }

    pub fn remove(&mut self, slot: ProfileSlot) -> Profile {
        self.count -= 1;
        self.free.push(slot);
        self.slots[slot.index()]
            .take()
            .expect("profile slot in use")
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn iter(&self) -> impl Iterator<Item = (ProfileSlot, &Profile)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (ProfileSlot(i as u32), p)))
    }
}

/// Orders records by key: source name, id, then (for derived records) the
/// relationship type and position. Top-level records sort before their derived ones.
pub fn cmp_record_keys(a: RecordId, b: RecordId, records: &Records, names: &Names) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (ra, rb) = (records.get(a), records.get(b));
    names
        .name(ra.source)
        .cmp(names.name(rb.source))
        .then_with(|| records.id(a).cmp(records.id(b)))
        .then_with(|| match (ra.derived, rb.derived) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(da), Some(db)) => names
                .name(da.rel_type)
                .cmp(names.name(db.rel_type))
                .then(da.index.cmp(&db.index)),
        })
}

/// The id of a profile whose smallest member is `min_member`.
pub fn profile_id(kind: Kind, min_member: RecordId, records: &Records, names: &Names) -> ProfileId {
    let r = records.get(min_member);
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(kind.as_str().as_bytes());
    h.update(&[0]);
    h.update(names.name(r.source).as_bytes());
    h.update(&[0]);
    h.update(records.id(min_member).as_bytes());
    if let Some(d) = r.derived {
        h.update(&[0]);
        h.update(names.name(d.rel_type).as_bytes());
        h.update(&[0]);
        h.update(&d.index.to_be_bytes());
    }
    let hash = h.digest128();
    ProfileId {
        kind,
        high: (hash >> 64) as u64,
        low: (hash >> 32) as u32,
    }
}
