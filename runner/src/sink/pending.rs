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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyProfile {
    /// Where the profile lives now; `None` once it no longer exists (as far
    /// as the events say; the flush checks the slot again).
    pub slot: Option<ProfileSlot>,
    /// Its members may have changed: its identifiers' index rows and the
    /// profiles that refer to it are rewritten too.
    pub members_changed: bool,
    /// The profile that absorbed it or took over its id, for a redirect.
    pub successor: Option<ProfileId>,
    /// Created since the last flush (the change feed says `created`).
    pub created: bool,
    /// Profiles it absorbed since the last flush.
    pub absorbed: Vec<ProfileId>,
    /// The profiles it split into, when it was split.
    pub split_into: Vec<ProfileId>,
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
                        self.entry(e.profile_id).split_into = e.related.clone();
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
                entry.created |= e.kind == ChangeKind::Created;
                if e.kind == ChangeKind::Merged {
                    for r in &e.related {
                        if *r != e.profile_id && !entry.absorbed.contains(r) {
                            entry.absorbed.push(*r);
                        }
                    }
                }
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
            created: false,
            absorbed: Vec::new(),
            split_into: Vec::new(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{ChangeEvent, ChangeKind, Engine, ProfileId, ProfileSlot};

    /// Real ids and a real event to copy, from an engine that applied one
    /// record per name.
    fn ids(names: &[&str]) -> (Vec<ProfileId>, ChangeEvent) {
        let pipeline = std::sync::Arc::new(
            crate::config::Pipeline::from_yaml(
                "name: t\nidentifiers:\n  - type: email\n    normalize: email\n",
                "t.yaml",
                &|_| None,
            )
            .unwrap(),
        );
        let mut engine = Engine::new(pipeline.clone());
        let mut out = Vec::new();
        let mut template = None;
        for (i, name) in names.iter().enumerate() {
            let line = format!(
                r#"{{"source":"s","id":"{name}","ts":"2026-01-01T00:00:0{i}Z","kind":"person","identifiers":[{{"type":"email","value":"{name}@x.y"}}]}}"#
            );
            let obs = crate::observation::parse_line(line.as_bytes(), &pipeline).unwrap();
            engine.apply(&obs);
            let e: Vec<ChangeEvent> = engine.drain_events().collect();
            out.push(e[0].profile_id);
            template = Some(e[0].clone());
        }
        (out, template.unwrap())
    }

    fn event(
        template: &ChangeEvent,
        kind: ChangeKind,
        id: ProfileId,
        related: Vec<ProfileId>,
        slot: Option<u32>,
    ) -> ChangeEvent {
        let mut e = template.clone();
        e.kind = kind;
        e.profile_id = id;
        e.related = related;
        e.slot = slot.map(ProfileSlot);
        e.members_changed = true;
        e
    }

    #[test]
    fn a_piece_that_keeps_an_id_after_a_split_stays_existing_whatever_the_event_order() {
        let (v, t) = ids(&["a", "b"]);
        let (x, z) = (v[0], v[1]);
        let mut p = Pending::default();
        // The piece keeping X is reported first, then the piece that was X.
        let events = vec![
            event(&t, ChangeKind::Updated, x, vec![x], Some(1)),
            event(&t, ChangeKind::Updated, z, vec![x], Some(2)),
            event(&t, ChangeKind::Split, x, vec![x, z], None),
        ];
        p.mark(&events, &[], Instant::now());
        assert_eq!(p.profiles[&x].slot, Some(ProfileSlot(1)));
        assert_eq!(p.profiles[&z].slot, Some(ProfileSlot(2)));
    }

    #[test]
    fn an_absorbed_profile_is_kept_as_a_removal_with_its_successor() {
        let (v, t) = ids(&["a", "b"]);
        let (x, y) = (v[0], v[1]);
        let mut p = Pending::default();
        p.mark(
            &[event(&t, ChangeKind::Created, y, vec![], Some(3))],
            &[],
            Instant::now(),
        );
        p.mark(
            &[event(&t, ChangeKind::Merged, x, vec![x, y], Some(4))],
            &[],
            Instant::now(),
        );
        assert_eq!(p.profiles[&y].slot, None, "y is gone");
        assert_eq!(p.profiles[&y].successor, Some(x));
        assert_eq!(p.profiles[&x].slot, Some(ProfileSlot(4)));
        assert!(p.oldest.is_some());
        // Created then deleted between two flushes: still sent as a removal.
        let mut p = Pending::default();
        p.mark(
            &[event(&t, ChangeKind::Created, y, vec![], Some(3))],
            &[],
            Instant::now(),
        );
        p.mark(
            &[event(&t, ChangeKind::Deleted, y, vec![], None)],
            &[],
            Instant::now(),
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p.profiles[&y].slot, None);
    }
}
