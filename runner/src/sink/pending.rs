//! The keys a sink has yet to write, coalesced: a profile changed fifty
//! times since the sink's last flush is one entry here, written once with
//! its state at the next flush. Entries are marked from the engine's change
//! events and never cancel out: a profile created and absorbed between two
//! flushes is still sent (as a deletion), because an earlier run that died
//! may have written it.

use crate::engine::{ChangeEvent, ChangeKind, IdentId, ProfileId, ProfileSlot};
use ahash::{AHashMap, AHashSet};
use std::time::Instant;

/// What is known of one changed profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirtyProfile {
    /// Where the profile lives now; `None` once it no longer exists (as far
    /// as the events say; the flush checks the slot again).
    pub slot: Option<ProfileSlot>,
    /// Its members may have changed: its identifiers' index rows and the
    /// profiles that refer to it are rewritten too.
    pub members_changed: bool,
    /// The profile that absorbed it or took over its id, for a redirect.
    pub successor: Option<ProfileId>,
}

#[derive(Debug, Default)]
pub struct Pending {
    pub profiles: AHashMap<ProfileId, DirtyProfile>,
    pub identifiers: AHashSet<IdentId>,
    /// When the oldest change not written yet happened.
    pub oldest: Option<Instant>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty() && self.identifiers.is_empty()
    }

    /// Keys waiting: the measure the engine is held back by.
    pub fn len(&self) -> usize {
        self.profiles.len() + self.identifiers.len()
    }

    /// Records the effects of one applied observation. Removals first, then
    /// the profiles that exist after it: within one change a rebuilt
    /// component may report a piece that keeps an id after another piece
    /// that took over from it, and the id must end up existing. (A profile
    /// reported and then absorbed within the same change is caught when
    /// the flush finds its slot no longer holds it.)
    pub fn mark(&mut self, events: &[ChangeEvent], touched: &[IdentId], now: Instant) {
        let before = self.len();
        for e in events {
            match e.kind {
                ChangeKind::PossibleMatch => {}
                ChangeKind::Deleted => self.gone(e.profile_id, None),
                ChangeKind::Split => {
                    // The pieces have events of their own (one may keep the id).
                    if !e.related.contains(&e.profile_id) {
                        self.gone(e.profile_id, None);
                    }
                }
                ChangeKind::Created | ChangeKind::Updated | ChangeKind::Merged => {
                    for r in &e.related {
                        if *r != e.profile_id {
                            self.gone(*r, Some(e.profile_id));
                        }
                    }
                }
            }
        }
        for e in events {
            if matches!(
                e.kind,
                ChangeKind::Created | ChangeKind::Updated | ChangeKind::Merged
            ) {
                let entry = self.entry(e.profile_id);
                entry.slot = e.slot;
                entry.members_changed |= e.members_changed;
            }
        }
        self.identifiers.extend(touched.iter().copied());
        if self.oldest.is_none() && self.len() > before {
            self.oldest = Some(now);
        }
    }

    fn entry(&mut self, id: ProfileId) -> &mut DirtyProfile {
        self.profiles.entry(id).or_insert(DirtyProfile {
            slot: None,
            members_changed: false,
            successor: None,
        })
    }

    fn gone(&mut self, id: ProfileId, successor: Option<ProfileId>) {
        let entry = self.entry(id);
        entry.slot = None;
        entry.members_changed = true;
        if successor.is_some() {
            entry.successor = successor;
        }
    }
}
