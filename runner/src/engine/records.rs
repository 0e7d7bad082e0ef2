//! The record table: the current version of every `(source, id)` key, live or
//! retracted (a tombstone), and the records derived from relationships.
//!
//! Version resolution lives here and only here (DESIGN §2): a later `ts` wins;
//! on equal `ts` a retraction wins, then the version whose canonical JSON sorts
//! last. Because the winner depends only on the two versions, the final table
//! depends only on the set of observations, never on their order.

use super::keys::{IdentId, NameId, ProfileSlot, RecordId};
use crate::observation::{Kind, Timestamp};
use std::cmp::Ordering;

/// What makes a derived record: the relationship of its parent it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Derived {
    pub parent: RecordId,
    pub rel_type: NameId,
    /// Position of the relationship in the parent's sorted list.
    pub index: u16,
}

/// The content of a live record, with interned identifiers.
#[derive(Debug, Clone)]
pub struct Live {
    pub kind: Kind,
    /// Sorted, distinct.
    pub idents: Box<[IdentId]>,
    /// Attribute name and compact JSON value, sorted by name.
    pub attributes: Box<[(NameId, Box<str>)]>,
    /// The records derived from this record's relationships, in relationship order.
    pub derived: Box<[RecordId]>,
}

#[derive(Debug)]
pub struct Record {
    pub source: NameId,
    pub id: Box<str>,
    pub derived: Option<Derived>,
    pub ts: Timestamp,
    /// `None` for a tombstone (or a free derived slot).
    pub live: Option<Box<Live>>,
    /// The profile holding this record while it is live.
    pub profile: Option<ProfileSlot>,
}

/// How an incoming version compares with the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The incoming version replaces the stored one.
    Replace,
    /// The stored version stays (it is newer, or the same).
    Keep,
}

/// Decides between a stored and an incoming version. `canonical` renders a
/// version's canonical JSON; it is only called on a timestamp tie.
pub fn resolve(
    stored_ts: Timestamp,
    stored_retracted: bool,
    incoming_ts: Timestamp,
    incoming_retracted: bool,
    canonical: impl FnOnce() -> (String, String),
) -> Resolution {
    match incoming_ts.cmp(&stored_ts) {
        Ordering::Greater => Resolution::Replace,
        Ordering::Less => Resolution::Keep,
        Ordering::Equal => match (stored_retracted, incoming_retracted) {
            (true, _) => Resolution::Keep,
            (false, true) => Resolution::Replace,
            (false, false) => {
                let (stored, incoming) = canonical();
                if incoming > stored {
                    Resolution::Replace
                } else {
                    Resolution::Keep
                }
            }
        },
    }
}

#[derive(Debug, Default)]
pub struct Records {
    slots: Vec<Record>,
    free: Vec<RecordId>,
    /// Per source (indexed by the source's name id), id to record: a nested map
    /// so that a lookup borrows the incoming `&str` instead of allocating.
    by_key: Vec<hashbrown::HashMap<Box<str>, RecordId>>,
    live: usize,
}

impl Records {
    pub fn get(&self, id: RecordId) -> &Record {
        &self.slots[id.index()]
    }

    pub fn get_mut(&mut self, id: RecordId) -> &mut Record {
        &mut self.slots[id.index()]
    }

    pub fn find(&self, source: NameId, id: &str) -> Option<RecordId> {
        self.by_key.get(source.index())?.get(id).copied()
    }

    /// The slot of a top-level key, created (as an empty tombstone at the
    /// smallest time) when new.
    pub fn slot_for(&mut self, source: NameId, id: &str) -> (RecordId, bool) {
        if self.by_key.len() <= source.index() {
            self.by_key.resize_with(source.index() + 1, Default::default);
        }
        // One hash per lookup; the key is allocated only for a new record.
        let next = RecordId(match self.free.last() {
            Some(r) => r.0,
            None => self.slots.len() as u32,
        });
        match self.by_key[source.index()].entry_ref(id) {
            hashbrown::hash_map::EntryRef::Occupied(e) => (*e.get(), false),
            hashbrown::hash_map::EntryRef::Vacant(e) => {
                e.insert(next);
                let rid = self.alloc(Record {
                    source,
                    id: id.into(),
                    derived: None,
                    ts: Timestamp(i64::MIN),
                    live: None,
                    profile: None,
                });
                debug_assert_eq!(rid, next);
                (rid, true)
            }
        }
    }

    pub fn alloc(&mut self, record: Record) -> RecordId {
        if let Some(rid) = self.free.pop() {
            self.slots[rid.index()] = record;
            rid
        } else {
            self.slots.push(record);
            RecordId((self.slots.len() - 1) as u32)
        }
    }

    /// Frees a derived record's slot.
    pub fn free_derived(&mut self, rid: RecordId) {
        let r = &mut self.slots[rid.index()];
        debug_assert!(r.derived.is_some());
        r.live = None;
        r.profile = None;
        r.derived = None;
        r.id = Box::from("");
        self.free.push(rid);
    }

    pub fn add_live(&mut self, delta: isize) {
        self.live = (self.live as isize + delta) as usize;
    }

    /// Live top-level records (derived records not counted).
    pub fn live_count(&self) -> usize {
        self.live
    }

    /// Every top-level key with its record id, live or tombstone.
    pub fn keys(&self) -> impl Iterator<Item = RecordId> + '_ {
        self.by_key.iter().flat_map(|m| m.values().copied())
    }

    pub fn key_count(&self) -> usize {
        self.by_key.iter().map(|m| m.len()).sum()
    }
}
