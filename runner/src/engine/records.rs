//! The record table: the current version of every `(source, id)` key, live or
//! retracted (a tombstone), and the records derived from relationships.
//!
//! Version resolution lives here and only here (docs/design.md §2): a later `ts` wins;
//! on equal `ts` a retraction wins, then the version whose canonical JSON sorts
//! last. Because the winner depends only on the two versions, the final table
//! depends only on the set of observations, never on their order.

use super::keys::{IdentId, NameId, ProfileSlot, RecordId};
use super::storage::{ChunkedVec, StrArena, StrRef};
use crate::observation::{Kind, Timestamp};
use std::cmp::Ordering;
use std::hash::BuildHasher;

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
    /// Attribute names and compact JSON values, sorted by name.
    pub attributes: Attributes,
    /// The records derived from this record's relationships, in relationship order.
    pub derived: Box<[RecordId]>,
}

/// A record's attributes in one allocation: `[name u32][length u32][JSON]`
/// repeated, instead of one allocation per value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes(Box<[u8]>);

impl Attributes {
    pub fn new<'a>(attributes: impl Iterator<Item = (NameId, &'a str)>) -> Self {
        let mut bytes = Vec::new();
        for (name, value) in attributes {
            bytes.extend_from_slice(&name.0.to_le_bytes());
            bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
            bytes.extend_from_slice(value.as_bytes());
        }
        Attributes(bytes.into_boxed_slice())
    }

    pub fn iter(&self) -> impl Iterator<Item = (NameId, &str)> {
        let mut rest: &[u8] = &self.0;
        std::iter::from_fn(move || {
            if rest.len() < 8 {
                return None;
            }
            let name = u32::from_le_bytes(rest[0..4].try_into().unwrap());
            let len = u32::from_le_bytes(rest[4..8].try_into().unwrap()) as usize;
            let value = std::str::from_utf8(&rest[8..8 + len]).expect("attributes hold UTF-8");
            rest = &rest[8 + len..];
            Some((NameId(name), value))
        })
    }
}

#[derive(Debug)]
pub struct Record {
    pub source: NameId,
    /// The record's id in the table's arena (see [`Records::id`]); derived
    /// records share their parent's.
    pub id: StrRef,
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

/// The record table. Ids live once, in an arena; the key index holds only
/// 4-byte record ids and compares through the arena.
#[derive(Default)]
pub struct Records {
    slots: ChunkedVec<Record>,
    free: Vec<RecordId>,
    ids: StrArena,
    by_key: hashbrown::HashTable<RecordId>,
    hasher: foldhash::fast::RandomState,
    live: usize,
}

impl Records {
    pub fn get(&self, id: RecordId) -> &Record {
        &self.slots[id.index()]
    }

    pub fn get_mut(&mut self, id: RecordId) -> &mut Record {
        &mut self.slots[id.index()]
    }

    pub fn id(&self, r: RecordId) -> &str {
        self.ids.get(self.slots[r.index()].id)
    }

    fn hash(&self, source: NameId, id: &str) -> u64 {
        self.hasher.hash_one((source.0, id.as_bytes()))
    }

    /// The record of a top-level key, if it was ever seen.
    pub fn find(&self, source: NameId, id: &str) -> Option<RecordId> {
        let hash = self.hash(source, id);
        self.by_key
            .find(hash, |r| {
                let rec = &self.slots[r.index()];
                rec.source == source && self.ids.bytes(rec.id) == id.as_bytes()
            })
            .copied()
    }

    /// The slot of a top-level key, created (as an empty tombstone at the
    /// smallest time) when new.
    pub fn slot_for(&mut self, source: NameId, id: &str) -> (RecordId, bool) {
        let hash = self.hash(source, id);
        let (slots, ids, hasher) = (&self.slots, &self.ids, &self.hasher);
        let entry = self.by_key.entry(
            hash,
            |r| {
                let rec = &slots[r.index()];
                rec.source == source && ids.bytes(rec.id) == id.as_bytes()
            },
            |r| {
                let rec = &slots[r.index()];
                hasher.hash_one((rec.source.0, ids.bytes(rec.id)))
            },
        );
        let next = RecordId(match self.free.last() {
            Some(r) => r.0,
            None => self.slots.len() as u32,
        });
        match entry {
            hashbrown::hash_table::Entry::Occupied(e) => (*e.get(), false),
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(next);
                let id = self.ids.push(id);
                let rid = self.alloc(Record {
                    source,
                    id,
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
            RecordId(self.slots.push(record) as u32)
        }
    }

    /// Frees a derived record's slot.
    pub fn free_derived(&mut self, rid: RecordId) {
        let r = &mut self.slots[rid.index()];
        debug_assert!(r.derived.is_some());
        r.live = None;
        r.profile = None;
        r.derived = None;
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
        self.by_key.iter().copied()
    }
}
