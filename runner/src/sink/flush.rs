//! A flush: the operations that bring a store from what it held after the
//! sink's previous flush to the engine's state now. Built on the engine
//! thread from a [`Pending`] set, by reading the engine's current state (never
//! from the events' history), so that any run holding the same records
//! derives the same operations and replaying one twice changes nothing.

use super::pending::Pending;
use crate::config::TypeId;
use crate::engine::{Engine, ProfileId, ProfileSlot, ProfileView};
use ahash::AHashSet;
use std::time::Instant;

/// Versions order every write of a lineage: the writer epoch (claimed anew
/// by every runner that starts, see [`super::epoch`]) in the high 32 bits,
/// the flush number within that runner in the low 32. A store keeps the
/// greatest version it has seen for a key, so a late write of a runner that
/// was replaced can never undo its successor's.
pub fn version(writer_epoch: u32, flush: u32) -> u64 {
    (u64::from(writer_epoch) << 32) | u64::from(flush)
}

/// One profile to write or to remove.
#[derive(Debug)]
pub enum ProfileOp {
    /// The profile as `export` prints it.
    Upsert(Box<ProfileView>),
    /// The profile no longer exists: it was absorbed by or renamed into
    /// `redirect` (when that exists), split, or its last record retracted.
    Delete {
        profile_id: String,
        redirect: Option<String>,
    },
}

impl ProfileOp {
    pub fn profile_id(&self) -> &str {
        match self {
            ProfileOp::Upsert(v) => &v.profile_id,
            ProfileOp::Delete { profile_id, .. } => profile_id,
        }
    }
}

/// One identifier's index row: the profiles holding it, none meaning the
/// row (or vertex) is to be removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierOp {
    pub type_name: String,
    pub value: String,
    /// Sorted ids of every profile holding the identifier, of any kind.
    pub profile_ids: Vec<String>,
}

/// What the change feed says besides a profile's state: how it came to be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hint {
    pub created: bool,
    pub absorbed: Vec<String>,
    pub split_into: Vec<String>,
}

pub struct Flush {
    /// Position of this flush in the sink's sequence (from 1).
    pub seq: u64,
    /// The version every write of this flush carries.
    pub version: u64,
    /// Sorted by profile id; each id once.
    pub profiles: Vec<ProfileOp>,
    /// Sorted by (type, value); each key once.
    pub identifiers: Vec<IdentifierOp>,
    /// For the profiles that were created, absorbed others or were split
    /// since the previous flush, by profile id.
    pub hints: std::collections::HashMap<String, Hint>,
    /// When the oldest change in this flush happened.
    pub oldest: Option<Instant>,
    /// Answered once the flush is durably written (a checkpoint waits on it).
    pub ack: Option<std::sync::mpsc::Sender<Result<(), String>>>,
}

impl Flush {
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty() && self.identifiers.is_empty()
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.profiles.len() + self.identifiers.len()
    }
}

/// Turns pending keys into operations against the engine's current state.
pub fn build(pending: Pending, engine: &Engine, seq: u64, version: u64) -> Flush {
    let Pending {
        profiles: dirty,
        identifiers: touched,
        oldest,
    } = pending;
    let mut ids: Vec<(ProfileId, super::pending::DirtyProfile)> = dirty.into_iter().collect();
    ids.sort_by_key(|(id, _)| *id);
    let exists = |id: ProfileId, slot: Option<ProfileSlot>| -> Option<ProfileView> {
        slot.and_then(|s| engine.profile_at(s, id))
    };

    let mut written: AHashSet<ProfileId> = AHashSet::default();
    let mut profiles: Vec<ProfileOp> = Vec::with_capacity(ids.len());
    let mut identifier_keys: AHashSet<(TypeId, String)> = AHashSet::default();
    let mut referrers: Vec<(ProfileSlot, ProfileId)> = Vec::new();
    let mut hints = std::collections::HashMap::new();
    for (id, d) in &ids {
        written.insert(*id);
        if d.created || !d.absorbed.is_empty() || !d.split_into.is_empty() {
            // Only ids that are gone now: a profile absorbed and then
            // recreated within the window is not reported absorbed.
            let gone = |p: &ProfileId| {
                ids.binary_search_by_key(p, |(i, _)| *i)
                    .ok()
                    .and_then(|k| ids[k].1.slot)
                    .is_none_or(|s| !engine.profile_exists(s, *p))
            };
            let absorbed: Vec<ProfileId> = d.absorbed.iter().copied().filter(gone).collect();
            let strings = |v: &[ProfileId]| {
                let mut s: Vec<String> = v.iter().map(ProfileId::to_string).collect();
                s.sort();
                s
            };
            hints.insert(
                id.to_string(),
                Hint {
                    created: d.created,
                    absorbed: strings(&absorbed),
                    split_into: strings(&d.split_into),
                },
            );
        }
        match exists(*id, d.slot) {
            Some(view) => {
                if d.members_changed {
                    for i in &view.identifiers {
                        if let Some(t) = engine.pipeline().identifiers.id(&i.type_name) {
                            identifier_keys.insert((t, i.value.clone()));
                        }
                    }
                    if let Some(slot) = d.slot {
                        referrers.extend(engine.referrers(slot));
                    }
                }
                profiles.push(ProfileOp::Upsert(Box::new(view)));
            }
            None => {
                // Redirect only to a profile that exists now.
                let redirect = d.successor.and_then(|s| {
                    let live = ids
                        .binary_search_by_key(&s, |(i, _)| *i)
                        .ok()
                        .and_then(|k| ids[k].1.slot)
                        .is_some_and(|slot| engine.profile_exists(slot, s));
                    live.then(|| s.to_string())
                });
                profiles.push(ProfileOp::Delete {
                    profile_id: id.to_string(),
                    redirect,
                });
            }
        }
    }
    // A profile whose id or members changed is named by the relationships
    // of the profiles that refer to it: those are rewritten too.
    for (slot, id) in referrers {
        if written.insert(id) {
            if let Some(view) = engine.profile_at(slot, id) {
                profiles.push(ProfileOp::Upsert(Box::new(view)));
            }
        }
    }
    profiles.sort_by(|a, b| a.profile_id().cmp(b.profile_id()));

    for ident in touched {
        let (t, value) = engine.identifier_key(ident);
        identifier_keys.insert((t, value.to_string()));
    }
    let mut keys: Vec<(TypeId, String)> = identifier_keys.into_iter().collect();
    keys.sort_by(|a, b| {
        engine
            .identifier_type_name(a.0)
            .cmp(engine.identifier_type_name(b.0))
            .then_with(|| a.1.cmp(&b.1))
    });
    let identifiers = keys
        .into_iter()
        .map(|(t, value)| {
            let mut profile_ids: Vec<String> = engine
                .holders_of(t, &value)
                .into_iter()
                .map(|p| p.to_string())
                .collect();
            profile_ids.sort();
            IdentifierOp {
                type_name: engine.identifier_type_name(t).to_string(),
                profile_ids,
                value,
            }
        })
        .collect();
    Flush {
        seq,
        version,
        profiles,
        identifiers,
        hints,
        oldest,
        ack: None,
    }
}
