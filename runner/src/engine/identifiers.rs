//! The identifier table: every distinct normalized identifier per kind, the
//! live records holding it (its posting list), and whether it counts as
//! evidence.
//!
//! An identifier stops counting as evidence when it is blocklisted, or when it
//! is *generic*: the records holding it carry, between them, more distinct
//! values of an exclusive type than that type's limit allows (a family tablet
//! seen with three people's accounts, `test@test.com` typed by hundreds of
//! customers). Both are functions of the current set of records only, and
//! updating them costs work proportional to the changed record, never to the
//! number of holders, so a junk value touching thousands of people stays cheap.

use super::keys::{IdentId, RecordId};
use super::storage::{ChunkedVec, StrArena, StrRef};
use crate::config::{IdentifierTypes, TypeId};
use crate::observation::Kind;
use smallvec::SmallVec;
use std::hash::BuildHasher;

/// The distinct exclusive identifiers of a record or a profile: rarely more
/// than one or two, so kept inline.
pub type ExclusiveSet = SmallVec<[IdentId; 2]>;

pub struct Ident {
    pub kind: Kind,
    pub type_id: TypeId,
    /// The normalized value, in the table's arena (see [`Idents::value`]).
    value: StrRef,
    /// Live records holding this identifier, in no particular order. Most
    /// identifiers have one or two: those stay inline.
    pub holders: SmallVec<[RecordId; 2]>,
    /// Exclusive identifiers (not blocklisted) carried by the holders, with how
    /// many holders carry each: the input of generic detection.
    pub exclusive_seen: SmallVec<[(IdentId, u32); 1]>,
    pub blocked: bool,
    /// Linking type, not blocked, not generic.
    pub evidence: bool,
    /// Set by the last clustering of its component: linking through it would
    /// have broken an exclusive limit, so it was not used (see `clustering`).
    pub conflict: bool,
}

/// Static facts about identifier types that the table needs on every change.
#[derive(Debug)]
pub struct TypeRules {
    pub link: Vec<bool>,
    /// Canonical processing rank per type (see `clustering`).
    pub rank: Vec<(u32, u16)>,
    pub exclusive_limit: Vec<Option<u32>>,
    pub generic_detection: bool,
}

impl TypeRules {
    pub fn new(types: &IdentifierTypes, generic_detection: bool) -> Self {
        TypeRules {
            link: types.iter().map(|(_, t)| t.link).collect(),
            rank: types.iter().map(|(id, t)| (t.priority, id.0)).collect(),
            exclusive_limit: types.iter().map(|(_, t)| t.exclusive_limit).collect(),
            generic_detection,
        }
    }

    pub fn rank(&self, t: TypeId) -> (u32, u16) {
        self.rank[t.0 as usize]
    }

    pub fn limit(&self, t: TypeId) -> Option<u32> {
        self.exclusive_limit[t.0 as usize]
    }
}

/// The identifier table. Values live once, in an arena; the hash table holds
/// only 4-byte ids and compares through the arena.
#[derive(Default)]
pub struct Idents {
    slots: ChunkedVec<Ident>,
    values: StrArena,
    table: hashbrown::HashTable<IdentId>,
    hasher: foldhash::fast::RandomState,
}

impl Idents {
    pub fn new() -> Self {
        Self::default()
    }

    fn hash(&self, kind: Kind, t: TypeId, value: &str) -> u64 {
        self.hasher.hash_one((kind as u8, t.0, value.as_bytes()))
    }

    pub fn find(&self, kind: Kind, t: TypeId, value: &str) -> Option<IdentId> {
        let hash = self.hash(kind, t, value);
        self.table
            .find(hash, |id| {
                let i = &self.slots[id.index()];
                i.kind == kind && i.type_id == t && self.values.bytes(i.value) == value.as_bytes()
            })
            .copied()
    }

    /// The normalized value of an identifier.
    pub fn value(&self, id: IdentId) -> &str {
        self.values.get(self.slots[id.index()].value)
    }

    /// The identifier, created when new. `blocked` is evaluated only then.
    pub fn intern(
        &mut self,
        kind: Kind,
        t: TypeId,
        value: &str,
        blocked: impl FnOnce() -> bool,
        rules: &TypeRules,
    ) -> IdentId {
        let hash = self.hash(kind, t, value);
        let (slots, values, hasher) = (&self.slots, &self.values, &self.hasher);
        let entry = self.table.entry(
            hash,
            |id| {
                let i = &slots[id.index()];
                i.kind == kind && i.type_id == t && values.bytes(i.value) == value.as_bytes()
            },
            |id| {
                let i = &slots[id.index()];
                hasher.hash_one((i.kind as u8, i.type_id.0, values.bytes(i.value)))
            },
        );
        let id = IdentId(self.slots.len() as u32);
        match entry {
            hashbrown::hash_table::Entry::Occupied(e) => return *e.get(),
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(id);
            }
        }
        let blocked = blocked();
        let value = self.values.push(value);
        self.slots.push(Ident {
            kind,
            type_id: t,
            value,
            holders: SmallVec::new(),
            exclusive_seen: SmallVec::new(),
            blocked,
            evidence: rules.link[t.0 as usize] && !blocked,
            conflict: false,
        });
        id
    }

    pub fn get(&self, id: IdentId) -> &Ident {
        &self.slots[id.index()]
    }

    pub fn get_mut(&mut self, id: IdentId) -> &mut Ident {
        &mut self.slots[id.index()]
    }

    /// The exclusive, non-blocked identifiers among `idents`: what a record
    /// contributes to limits.
    pub fn exclusive_of(&self, idents: &[IdentId], rules: &TypeRules) -> ExclusiveSet {
        idents
            .iter()
            .copied()
            .filter(|i| {
                let ident = self.get(*i);
                !ident.blocked && rules.limit(ident.type_id).is_some()
            })
            .collect()
    }

    /// Adds a holder; pushes onto `changed` every identifier whose evidence
    /// status flipped.
    pub fn attach(
        &mut self,
        record: RecordId,
        idents: &[IdentId],
        rules: &TypeRules,
        changed: &mut Vec<IdentId>,
    ) {
        let exclusive = self.exclusive_of(idents, rules);
        for &i in idents {
            let ident = &mut self.slots[i.index()];
            ident.holders.push(record);
            for &x in &exclusive {
                match ident.exclusive_seen.iter_mut().find(|(e, _)| *e == x) {
                    Some((_, n)) => *n += 1,
                    None => ident.exclusive_seen.push((x, 1)),
                }
            }
            if !exclusive.is_empty() {
                self.refresh_evidence(i, rules, changed);
            }
        }
    }

    /// Removes a holder; pushes onto `changed` every identifier whose evidence
    /// status flipped.
    pub fn detach(
        &mut self,
        record: RecordId,
        idents: &[IdentId],
        rules: &TypeRules,
        changed: &mut Vec<IdentId>,
    ) {
        let exclusive = self.exclusive_of(idents, rules);
        for &i in idents {
            let ident = &mut self.slots[i.index()];
            if let Some(pos) = ident.holders.iter().position(|r| *r == record) {
                ident.holders.swap_remove(pos);
            }
            for &x in &exclusive {
                if let Some(pos) = ident.exclusive_seen.iter().position(|(e, _)| *e == x) {
                    ident.exclusive_seen[pos].1 -= 1;
                    if ident.exclusive_seen[pos].1 == 0 {
                        ident.exclusive_seen.swap_remove(pos);
                    }
                }
            }
            if !exclusive.is_empty() {
                self.refresh_evidence(i, rules, changed);
            }
        }
    }

    fn refresh_evidence(&mut self, i: IdentId, rules: &TypeRules, changed: &mut Vec<IdentId>) {
        let generic = rules.generic_detection && self.is_generic(i, rules);
        let ident = &self.slots[i.index()];
        let evidence = rules.link[ident.type_id.0 as usize] && !ident.blocked && !generic;
        if evidence != ident.evidence {
            self.slots[i.index()].evidence = evidence;
            changed.push(i);
        }
    }

    /// Whether the holders carry more distinct values of some exclusive type
    /// than its limit.
    pub fn is_generic(&self, i: IdentId, rules: &TypeRules) -> bool {
        let seen: SmallVec<[IdentId; 4]> = self.slots[i.index()]
            .exclusive_seen
            .iter()
            .map(|(x, _)| *x)
            .collect();
        super::clustering::exceeds_limits(&seen, self, rules)
    }
}
