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
use crate::config::{IdentifierTypes, TypeId};
use crate::observation::Kind;

#[derive(Debug)]
pub struct Ident {
    pub kind: Kind,
    pub type_id: TypeId,
    pub value: Box<str>,
    /// Live records holding this identifier, in no particular order.
    pub holders: Vec<RecordId>,
    /// Exclusive identifiers (not blocklisted) carried by the holders, with how
    /// many holders carry each: the input of generic detection.
    pub exclusive_seen: Vec<(IdentId, u32)>,
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

#[derive(Debug, Default)]
pub struct Idents {
    slots: Vec<Ident>,
    /// Indexed by `kind * types + type`: value to identifier.
    by_value: Vec<hashbrown::HashMap<Box<str>, IdentId>>,
    types: usize,
}

impl Idents {
    pub fn new(types: usize) -> Self {
        Idents {
            slots: Vec::new(),
            by_value: (0..types * Kind::ALL.len()).map(|_| Default::default()).collect(),
            types,
        }
    }

    fn bucket(&self, kind: Kind, t: TypeId) -> usize {
        kind as usize * self.types + t.0 as usize
    }

    pub fn find(&self, kind: Kind, t: TypeId, value: &str) -> Option<IdentId> {
        self.by_value[self.bucket(kind, t)].get(value).copied()
    }

    /// The identifier, created when new. `blocked` is evaluated only then.
    pub fn intern(&mut self, kind: Kind, t: TypeId, value: &str, blocked: impl FnOnce() -> bool, rules: &TypeRules) -> IdentId {
        let bucket = self.bucket(kind, t);
        let id = IdentId(self.slots.len() as u32);
        match self.by_value[bucket].entry_ref(value) {
            hashbrown::hash_map::EntryRef::Occupied(e) => return *e.get(),
            hashbrown::hash_map::EntryRef::Vacant(e) => {
                e.insert(id);
            }
        }
        let blocked = blocked();
        self.slots.push(Ident {
            kind,
            type_id: t,
            value: value.into(),
            holders: Vec::new(),
            exclusive_seen: Vec::new(),
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

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The exclusive, non-blocked identifiers among `idents`: what a record
    /// contributes to limits.
    pub fn exclusive_of(&self, idents: &[IdentId], rules: &TypeRules) -> Vec<IdentId> {
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
    pub fn attach(&mut self, record: RecordId, idents: &[IdentId], rules: &TypeRules, changed: &mut Vec<IdentId>) {
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
    pub fn detach(&mut self, record: RecordId, idents: &[IdentId], rules: &TypeRules, changed: &mut Vec<IdentId>) {
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
        let seen: Vec<IdentId> = self.slots[i.index()].exclusive_seen.iter().map(|(x, _)| *x).collect();
        super::clustering::exceeds_limits(&seen, self, rules)
    }
}
