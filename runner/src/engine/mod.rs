//! The engine: applies validated observations to the record table and keeps
//! the profiles, the partition of live records, up to date (docs/design.md §3).
//!
//! Every change goes through one of two paths that give the same profiles:
//! - the *fast path*, for a record that only adds links inside components free
//!   of conflicts: it merges the profiles its evidence reaches, at a cost
//!   proportional to the record (and amortized, to the smaller profile moved);
//! - the *canonical path* (`clustering`), for everything else (a record losing
//!   identifiers, a retraction, an identifier becoming generic, a link that
//!   would break an exclusive limit): it rebuilds the affected component from
//!   the records alone.
//!
//! The engine never does I/O; it queues change events for the caller.

mod change;
mod clustering;
mod diff;
mod explain;
mod identifiers;
mod keys;
mod profiles;
mod reconcile;
mod records;
mod sink_view;
mod storage;
mod view;

pub use change::{ChangeEvent, ChangeKind};
pub use explain::Explanation;
pub use keys::{IdentId, ProfileSlot};
pub use profiles::ProfileId;
pub use view::{IdentifierView, LookupError, ProfileView, RecordRef, RelationshipView};

use crate::config::Pipeline;
use crate::config::TypeId;
use crate::observation::{Body, Identifier, Kind, Observation};
use crate::resolution::config::Field;
use crate::resolution::features::FieldValue;
use crate::resolution::{Changes, Features, Resolver, ValueCounters};
use ahash::AHashSet;
use identifiers::{Idents, TypeRules};
use keys::{NameId, Names, RecordId};
use profiles::{cmp_record_keys, profile_id, Profile, Profiles};
use records::{resolve, Attributes, Derived, Live, Record, Records, Resolution};
use std::sync::Arc;

/// What applying an observation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The observation is the record's new current version.
    Accepted,
    /// The stored version is newer (or the same): nothing changed.
    Stale,
}

/// Counters the runner exports as metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct EngineStats {
    pub merges: u64,
    pub splits: u64,
    pub canonical_rebuilds: u64,
}

pub struct Engine {
    pipeline: Arc<Pipeline>,
    rules: TypeRules,
    names: Names,
    records: Records,
    idents: Idents,
    profiles: Profiles,
    events: Vec<ChangeEvent>,
    stats: EngineStats,
    /// Derived slots freed during the current change, released at its end so
    /// that no slot is reused while old profiles still list it.
    pending_free: Vec<RecordId>,
    /// Entity resolution's blocks and links (empty without a `resolution` section).
    resolver: Resolver<RecordId>,
    /// The fields resolution reads: attribute names interned, identifier types.
    resolution_fields: Vec<ResolutionField>,
    value_counters: ValueCounters,
    /// Identifiers whose holders may have changed, for sinks (kept only
    /// when `track_identifiers` is on).
    touched: Vec<IdentId>,
    track_identifiers: bool,
}

/// A field resolution reads, as the engine finds it in a record.
#[derive(Debug, Clone, Copy)]
enum ResolutionField {
    Attribute(NameId),
    Identifier(TypeId),
}

impl Engine {
    pub fn new(pipeline: Arc<Pipeline>) -> Self {
        let rules = TypeRules::new(&pipeline.identifiers, pipeline.generic_detection);
        let idents = Idents::new();
        let mut names = Names::default();
        let resolution_fields = match &pipeline.resolution {
            Some(r) => r
                .config
                .fields
                .iter()
                .map(|f| match f {
                    Field::Attribute(a) => ResolutionField::Attribute(names.intern(a)),
                    Field::Identifier(t, _) => ResolutionField::Identifier(*t),
                })
                .collect(),
            None => Vec::new(),
        };
        Engine {
            pipeline,
            rules,
            names,
            records: Records::default(),
            idents,
            profiles: Profiles::default(),
            events: Vec::new(),
            stats: EngineStats::default(),
            pending_free: Vec::new(),
            resolver: Resolver::default(),
            resolution_fields,
            value_counters: ValueCounters::default(),
            touched: Vec::new(),
            track_identifiers: false,
        }
    }

    /// Keeps the identifiers each change touches, for sinks to index
    /// (see [`Engine::take_touched_identifiers`]).
    pub fn track_identifiers(&mut self, on: bool) {
        self.track_identifiers = on;
        self.touched.clear();
    }

    /// Moves the identifiers touched since the last call into `into`
    /// (emptied first): those of every version taken out or put in.
    pub fn take_touched_identifiers(&mut self, into: &mut Vec<IdentId>) {
        into.clear();
        std::mem::swap(&mut self.touched, into);
    }

    /// Entity resolution's oversized-block skips and scored pairs, so far.
    pub fn resolution_stats(&self) -> (u64, u64) {
        (self.resolver.oversized_skips, self.resolver.pairs_scored)
    }

    /// Values entity resolution truncated or could not use, so far.
    pub fn value_counters(&self) -> ValueCounters {
        self.value_counters
    }

    /// Resolution's features of a new version, when its kind is resolved.
    fn features_for(&mut self, live: &Live) -> Option<Features> {
        let pipeline = self.pipeline.clone();
        let resolution = pipeline.resolution.as_ref()?;
        resolution.weights.as_ref()?;
        if live.kind != resolution.config.kind {
            return None;
        }
        let fields = &self.resolution_fields;
        let idents = &self.idents;
        let lookup = |i: usize| match fields[i] {
            ResolutionField::Attribute(name) => live
                .attributes
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| FieldValue::Json(v)),
            // The smallest value of the type, so that the choice depends on
            // the record alone.
            ResolutionField::Identifier(t) => live
                .idents
                .iter()
                .filter(|id| idents.get(**id).type_id == t)
                .map(|id| idents.value(*id))
                .min()
                .map(FieldValue::Text),
        };
        Some(Features::extract(
            &resolution.config,
            &lookup,
            &mut self.value_counters,
        ))
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Number of profiles (all kinds).
    pub fn profile_count(&self) -> usize {
        self.profiles.len()
    }

    /// Number of live top-level records.
    pub fn live_records(&self) -> usize {
        self.records.live_count()
    }

    /// Takes the change events queued since the last call.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, ChangeEvent> {
        self.events.drain(..)
    }

    /// Moves the queued change events into `into` (emptied first), keeping
    /// both buffers' allocations for reuse.
    pub fn take_events(&mut self, into: &mut Vec<ChangeEvent>) {
        into.clear();
        std::mem::swap(&mut self.events, into);
    }

    /// Discards queued change events (when nobody reads the feed).
    pub fn clear_events(&mut self) {
        self.events.clear();
    }

    /// Applies one validated observation.
    pub fn apply(&mut self, obs: &Observation) -> Applied {
        let source = self.names.intern(&obs.source);
        let (rid, _) = self.records.slot_for(source, &obs.id);
        let stored = self.records.get(rid);
        let resolution = resolve(
            stored.ts,
            stored.live.is_none(),
            obs.ts,
            obs.is_retraction(),
            || {
                let stored_version = self
                    .current_version(rid)
                    .expect("a tie with a live version");
                (
                    canonical_json(&stored_version, &self.pipeline),
                    canonical_json(obs, &self.pipeline),
                )
            },
        );
        if resolution == Resolution::Keep {
            return Applied::Stale;
        }
        let cause = rid;
        let old = {
            let r = self.records.get_mut(rid);
            r.ts = obs.ts;
            r.live.take()
        };
        let new = obs.body.as_ref().map(|b| self.intern_body(b));
        let new_features = new.as_ref().and_then(|(live, _)| self.features_for(live));
        // Whether resolution sees the new version as it saw the old one.
        // (Without a resolution section there is nothing to look up.)
        let same_resolution = self.pipeline.resolution.is_none()
            || self.resolver.features(rid).map(|f| &f.fingerprint)
                == new_features.as_ref().map(|f| &f.fingerprint);

        // Updates that change only attributes resolution does not read keep
        // every link: no clustering at all.
        if let (Some(old_live), Some((new_live, rels))) = (&old, &new) {
            if old_live.kind == new_live.kind
                && old_live.idents == new_live.idents
                && same_resolution
                && self.same_relationships(&old_live.derived, rels)
            {
                let mut live = new_live.clone();
                live.derived = old_live.derived.clone();
                self.records.get_mut(rid).live = Some(Box::new(live));
                if let Some(p) = self.records.get(rid).profile {
                    let id = self.profiles.get(p).id;
                    self.events.push(
                        ChangeEvent::new(ChangeKind::Updated, id, Vec::new(), cause).at(p, false),
                    );
                }
                return Applied::Accepted;
            }
        }

        let mut changed: Vec<IdentId> = Vec::new();
        let mut dirty: Vec<ProfileSlot> = Vec::new();
        let mut placed: Vec<RecordId> = Vec::new();
        // Identifiers a removed version held: their other holders may now link
        // (a conflict the removed record caused is gone) or split.
        let mut released: Vec<IdentId> = Vec::new();
        // Records whose resolution links changed other than through `rid`.
        let mut resolved = Changes::default();
        let pipeline = self.pipeline.clone();
        let resolution = pipeline
            .resolution
            .as_ref()
            .and_then(|r| r.weights.as_ref().map(|w| (&r.config, w)));

        // A version that only adds identifiers (same kind, same relationships,
        // same values for resolution) cannot split anything: it keeps its
        // place, its derived records and its resolution links.
        let grows = match (&old, &new) {
            (Some(o), Some((n, rels))) => {
                o.kind == n.kind
                    && same_resolution
                    && self.same_relationships(&o.derived, rels)
                    && o.idents.iter().all(|i| n.idents.binary_search(i).is_ok())
            }
            _ => false,
        };

        // A retraction of a record without relationships may leave its
        // profile as it is, less the record (see `try_leaf_retraction`).
        let leaf_candidate = new.is_none()
            && resolution.is_none()
            && old.as_ref().is_some_and(|o| o.derived.is_empty());
        // Take the old version out.
        let mut kept_children: Option<Box<[RecordId]>> = None;
        if let Some(old_live) = old {
            if self.track_identifiers {
                self.touched.extend_from_slice(&old_live.idents);
            }
            self.records.add_live(-1);
            self.idents
                .detach(rid, &old_live.idents, &self.rules, &mut changed);
            if grows {
                kept_children = Some(old_live.derived);
            } else {
                if let Some(p) = self.records.get(rid).profile {
                    dirty.push(p);
                }
                released.extend_from_slice(&old_live.idents);
                if let Some((config, weights)) = resolution {
                    self.resolver.remove(rid, config, weights, &mut resolved);
                }
                for &child in old_live.derived.iter() {
                    let idents = self.live_idents(child);
                    if self.track_identifiers {
                        self.touched.extend_from_slice(&idents);
                    }
                    self.idents
                        .detach(child, &idents, &self.rules, &mut changed);
                    released.extend_from_slice(&idents);
                    if let Some(p) = self.records.get(child).profile {
                        dirty.push(p);
                    }
                    self.records.get_mut(child).live = None;
                    self.pending_free.push(child);
                }
            }
        }

        // Put the new version in.
        if let Some((mut live, rels)) = new {
            self.records.add_live(1);
            let children = match kept_children {
                Some(children) => children,
                None => {
                    let mut children = Vec::with_capacity(rels.len());
                    for (index, (rel_type, kind, idents)) in rels.into_iter().enumerate() {
                        let parent_id = self.records.get(rid).id;
                        let child = self.records.alloc(Record {
                            source,
                            id: parent_id,
                            derived: Some(Derived {
                                parent: rid,
                                rel_type,
                                index: index as u16,
                            }),
                            ts: obs.ts,
                            live: Some(Box::new(Live {
                                kind,
                                idents,
                                attributes: Attributes::default(),
                                derived: Box::new([]),
                            })),
                            profile: None,
                        });
                        let child_idents = self.live_idents(child);
                        if self.track_identifiers {
                            self.touched.extend_from_slice(&child_idents);
                        }
                        self.idents
                            .attach(child, &child_idents, &self.rules, &mut changed);
                        children.push(child);
                    }
                    placed.extend_from_slice(&children);
                    children.into_boxed_slice()
                }
            };
            live.derived = children;
            if self.track_identifiers {
                self.touched.extend_from_slice(&live.idents);
            }
            self.idents
                .attach(rid, &live.idents, &self.rules, &mut changed);
            if let (false, Some(features), Some((config, weights))) =
                (grows, new_features, resolution)
            {
                self.resolver
                    .insert(rid, features, config, weights, &mut resolved);
            }
            self.records.get_mut(rid).live = Some(Box::new(live));
            placed.insert(0, rid);
        }
        // Detaching then attaching the same identifiers may flip a status
        // twice: only odd counts are real changes.
        changed.sort();
        let mut net: Vec<IdentId> = Vec::with_capacity(changed.len());
        for run in changed.chunk_by(|a, b| a == b) {
            if run.len() % 2 == 1 {
                net.push(run[0]);
            }
        }
        let changed = net;

        let leaf = leaf_candidate
            && changed.is_empty()
            && resolved.touched.is_empty()
            && placed.is_empty()
            && matches!(dirty.as_slice(), [p] if self.try_leaf_retraction(rid, *p, &released, cause));
        if leaf {
            // Done: the profile lost one record and nothing else changed.
        } else if dirty.is_empty() && changed.is_empty() && resolved.touched.is_empty() {
            let mut rest = Vec::new();
            for r in placed {
                if !self.try_fast_path(r, cause) {
                    rest.push(r);
                }
            }
            if !rest.is_empty() {
                self.canonical_path(rest, cause);
            }
        } else {
            let mut seeds = placed;
            for p in dirty {
                seeds.extend_from_slice(&self.profiles.get(p).members);
            }
            for i in changed {
                seeds.extend_from_slice(&self.idents.get(i).holders);
            }
            for i in released {
                let ident = self.idents.get(i);
                if ident.evidence {
                    seeds.extend_from_slice(&ident.holders);
                }
            }
            seeds.extend(
                resolved
                    .touched
                    .iter()
                    .copied()
                    .filter(|r| self.records.get(*r).live.is_some()),
            );
            self.canonical_path(seeds, cause);
        }
        for (a, b, log2_odds) in resolved.possible {
            if let (Some(pa), Some(pb)) = (self.records.get(a).profile, self.records.get(b).profile)
            {
                let (ia, ib) = (self.profiles.get(pa).id, self.profiles.get(pb).id);
                let mut event = ChangeEvent::new(ChangeKind::PossibleMatch, ia, vec![ib], cause);
                event.probability = Some(crate::resolution::config::probability(log2_odds));
                self.events.push(event);
            }
        }
        for child in self.pending_free.drain(..) {
            self.records.free_derived(child);
        }
        Applied::Accepted
    }

    /// Interns a body's identifiers and names; relationships come back as
    /// `(type, kind, identifiers)` to become derived records.
    #[allow(clippy::type_complexity)]
    fn intern_body(&mut self, body: &Body) -> (Live, Vec<(NameId, Kind, Box<[IdentId]>)>) {
        let idents = self.intern_idents(body.kind, &body.identifiers);
        let names = &mut self.names;
        let attributes = Attributes::new(
            body.attributes
                .iter()
                .filter(|(_, v)| v.as_str() != "\"\"")
                .map(|(k, v)| (names.intern(k), v.as_str())),
        );
        let rels = body
            .relationships
            .iter()
            .map(|r| {
                (
                    self.names.intern(&r.rel_type),
                    r.kind,
                    self.intern_idents(r.kind, &r.identifiers),
                )
            })
            .collect();
        (
            Live {
                kind: body.kind,
                idents,
                attributes,
                derived: Box::new([]),
            },
            rels,
        )
    }

    fn intern_idents(&mut self, kind: Kind, ids: &[Identifier]) -> Box<[IdentId]> {
        let types = &self.pipeline.identifiers;
        let mut out: Vec<IdentId> = ids
            .iter()
            .map(|i| {
                self.idents.intern(
                    kind,
                    i.type_id,
                    &i.value,
                    || types.get(i.type_id).is_blocked(&i.value),
                    &self.rules,
                )
            })
            .collect();
        out.sort();
        out.dedup();
        out.into_boxed_slice()
    }

    /// The identifiers of a live record.
    fn live_idents(&self, r: RecordId) -> Box<[IdentId]> {
        self.records
            .get(r)
            .live
            .as_ref()
            .expect("a live record")
            .idents
            .clone()
    }

    fn same_relationships(&self, old: &[RecordId], new: &[(NameId, Kind, Box<[IdentId]>)]) -> bool {
        old.len() == new.len()
            && old
                .iter()
                .zip(new)
                .all(|(child, (rel_type, kind, idents))| {
                    let r = self.records.get(*child);
                    let live = r.live.as_ref().unwrap();
                    r.derived.map(|d| d.rel_type) == Some(*rel_type)
                        && live.kind == *kind
                        && live.idents == *idents
                })
    }

    /// Merges the profiles a new or grown record links to, when that provably
    /// equals the canonical clustering. Returns false to ask for the canonical path.
    fn try_fast_path(&mut self, r: RecordId, cause: RecordId) -> bool {
        let record = self.records.get(r);
        let live = record.live.as_ref().unwrap();
        let mut involved: Vec<ProfileSlot> = record.profile.into_iter().collect();
        for &i in live.idents.iter() {
            let ident = self.idents.get(i);
            if !ident.evidence {
                continue;
            }
            if ident.conflict {
                return false;
            }
            // All placed holders of a conflict-free evidence identifier share
            // one profile; holders placed by this same change have none yet.
            if let Some(p) = ident.holders.iter().find_map(|h| {
                if *h == r {
                    None
                } else {
                    self.records.get(*h).profile
                }
            }) {
                if !involved.contains(&p) {
                    involved.push(p);
                }
            }
        }
        for l in self.resolver.links(r) {
            if !l.matched {
                continue;
            }
            if l.conflict.is_some() {
                return false;
            }
            if let Some(p) = self.records.get(l.other).profile {
                if !involved.contains(&p) {
                    involved.push(p);
                }
            }
        }
        if involved.iter().any(|p| self.profiles.get(*p).conflict) {
            return false;
        }
        if !self.union_agrees(r, &involved) {
            return false;
        }
        let mut exclusive = self.idents.exclusive_of(&live.idents, &self.rules);
        for p in &involved {
            exclusive.extend_from_slice(&self.profiles.get(*p).exclusive);
        }
        exclusive.sort();
        exclusive.dedup();
        if clustering::exceeds_limits(&exclusive, &self.idents, &self.rules) {
            return false;
        }
        let kind = live.kind;
        if involved.is_empty() {
            let id = profile_id(kind, r, &self.records, &self.names);
            let slot = self.profiles.insert(Profile {
                kind,
                members: smallvec::smallvec![r],
                exclusive,
                conflict: false,
                min_member: r,
                id,
            });
            self.records.get_mut(r).profile = Some(slot);
            self.events
                .push(ChangeEvent::new(ChangeKind::Created, id, Vec::new(), cause).at(slot, true));
            return true;
        }
        // Move the smaller profiles into the largest.
        involved.sort_by_key(|p| std::cmp::Reverse(self.profiles.get(*p).members.len()));
        let target = involved[0];
        let previous: Vec<ProfileId> = involved.iter().map(|p| self.profiles.get(*p).id).collect();
        let mut min_member = self.profiles.get(target).min_member;
        let mut moved: Vec<RecordId> = Vec::new();
        for &p in &involved[1..] {
            let other = self.profiles.remove(p);
            if cmp_record_keys(other.min_member, min_member, &self.records, &self.names).is_lt() {
                min_member = other.min_member;
            }
            moved.extend(other.members);
        }
        // A record already in one of the involved profiles moves with it.
        if self.records.get(r).profile.is_none() {
            moved.push(r);
            if cmp_record_keys(r, min_member, &self.records, &self.names).is_lt() {
                min_member = r;
            }
        }
        for &m in &moved {
            self.records.get_mut(m).profile = Some(target);
        }
        let id = profile_id(kind, min_member, &self.records, &self.names);
        let profile = self.profiles.get_mut(target);
        profile.members.extend(moved);
        profile.exclusive = exclusive;
        profile.min_member = min_member;
        profile.id = id;
        if involved.len() > 1 {
            self.stats.merges += 1;
            self.events
                .push(ChangeEvent::new(ChangeKind::Merged, id, previous, cause).at(target, true));
        } else {
            // One profile grew by this record: only the record's own
            // identifiers changed holders, unless the id changed.
            let renamed = previous[0] != id;
            let previous = if renamed { previous } else { Vec::new() };
            self.events.push(
                ChangeEvent::new(ChangeKind::Updated, id, previous, cause).at(target, renamed),
            );
        }
        true
    }

    /// Takes the retracted record `r` out of its profile `p` without a
    /// rebuild, when that is certain to equal the canonical clustering
    /// (without entity resolution, which the caller checks): `p` holds no
    /// conflict, no identifier changed status, and `r` was joined to the
    /// rest through exactly one linking identifier that others still hold.
    /// Every path between two other members through `r` passed through that
    /// identifier, whose holders stay linked by it, so the rest stays one
    /// profile; and a profile in no conflict kept nothing apart that could
    /// join it now. The tail of a long chain is such a record. Returns false
    /// to ask for the canonical path.
    fn try_leaf_retraction(
        &mut self,
        r: RecordId,
        p: ProfileSlot,
        released: &[IdentId],
        cause: RecordId,
    ) -> bool {
        let profile = self.profiles.get(p);
        if profile.conflict || profile.members.len() < 2 {
            return false;
        }
        let mut bridges = 0;
        for &i in released {
            let ident = self.idents.get(i);
            if ident.conflict {
                return false;
            }
            if ident.evidence && !ident.holders.is_empty() {
                bridges += 1;
            }
        }
        if bridges != 1 {
            return false;
        }
        let Some(position) = profile.members.iter().position(|m| *m == r) else {
            return false;
        };
        let previous = profile.id;
        let kind = profile.kind;
        let old_exclusive = self.idents.exclusive_of(released, &self.rules);
        let mut members = std::mem::take(&mut self.profiles.get_mut(p).members);
        members.remove(position);
        let mut min_member = self.profiles.get(p).min_member;
        if min_member == r {
            min_member = members[0];
            for &m in &members[1..] {
                if cmp_record_keys(m, min_member, &self.records, &self.names).is_lt() {
                    min_member = m;
                }
            }
        }
        // The exclusive identifiers only shrink, and only if `r` held one.
        let exclusive = if old_exclusive.is_empty() {
            None
        } else {
            let mut all: Vec<IdentId> = Vec::new();
            for &m in &members {
                if let Some(live) = &self.records.get(m).live {
                    all.extend(self.idents.exclusive_of(&live.idents, &self.rules));
                }
            }
            all.sort();
            all.dedup();
            Some(all)
        };
        let id = profile_id(kind, min_member, &self.records, &self.names);
        let profile = self.profiles.get_mut(p);
        profile.members = members;
        profile.min_member = min_member;
        profile.id = id;
        if let Some(exclusive) = exclusive {
            profile.exclusive = exclusive.into();
        }
        self.records.get_mut(r).profile = None;
        let renamed = if previous != id {
            vec![previous]
        } else {
            Vec::new()
        };
        self.events
            .push(ChangeEvent::new(ChangeKind::Updated, id, renamed, cause).at(p, true));
        true
    }

    /// Whether merging `r` with the `involved` profiles is certain to pass
    /// the canonical path's disagreement check: no record of one part (`r`,
    /// or one profile) disagrees with a record of another beyond
    /// `maxDisagreement`. This holds for identifier merges too: the canonical
    /// path joins identifiers first, so a record joined by an identifier can
    /// end up on one side of a link that its profile once accepted. Within a
    /// canonical profile every pair either came together in the identifier
    /// phase or was checked when its two sides merged, so with no
    /// disagreement across parts no merge of the union can be refused, in
    /// any order. False (ask for the canonical path) when the union is too
    /// large to check here (more than 64 records that resolution compares).
    fn union_agrees(&self, r: RecordId, involved: &[ProfileSlot]) -> bool {
        let Some((config, weights)) = self
            .pipeline
            .resolution
            .as_ref()
            .and_then(|res| res.weights.as_ref().map(|w| (&res.config, w)))
        else {
            return true;
        };
        let own = self.records.get(r).profile;
        let mut parts: Vec<&[RecordId]> = vec![std::slice::from_ref(&r)];
        for p in involved {
            // The record's own profile already holds it: that part is the
            // profile, checked against the others like any part.
            if Some(*p) == own {
                parts[0] = &self.profiles.get(*p).members;
            } else {
                parts.push(&self.profiles.get(*p).members);
            }
        }
        // Only records resolution compares can disagree, and only they count
        // towards the limit, as on the canonical path; the others are
        // skipped by `sides_disagree` after one lookup each.
        let total: usize = parts
            .iter()
            .flat_map(|p| p.iter())
            .filter(|m| self.resolver.features(**m).is_some())
            .count();
        if total > clustering::MAX_CHECKED_RECORDS {
            return false;
        }
        parts.iter().enumerate().all(|(i, a)| {
            parts[i + 1..]
                .iter()
                .all(|b| !clustering::sides_disagree(a, b, &self.resolver, config, weights))
        })
    }

    /// Rebuilds every profile reachable from the seeds with the canonical
    /// clustering, and reports what changed.
    fn canonical_path(&mut self, seeds: Vec<RecordId>, cause: RecordId) {
        self.stats.canonical_rebuilds += 1;
        let result = clustering::cluster(
            &seeds,
            &self.records,
            &self.idents,
            &self.profiles,
            &self.rules,
            clustering::Matches {
                resolver: &self.resolver,
                scoring: self
                    .pipeline
                    .resolution
                    .as_ref()
                    .and_then(|r| r.weights.as_ref().map(|w| (&r.config, w))),
            },
            &self.names,
        );
        for &i in &result.visited_idents {
            self.idents.get_mut(i).conflict = false;
        }
        for &i in &result.conflicts {
            self.idents.get_mut(i).conflict = true;
        }
        for &(a, b) in &result.visited_links {
            self.resolver.set_conflict(a, b, None);
        }
        for &(a, b, why) in &result.link_conflicts {
            self.resolver.set_conflict(a, b, Some(why));
        }

        // Old profiles touched: every profile of a reached record, plus the
        // profiles of records that died in this change (dirty seeds).
        let mut old_slots: Vec<ProfileSlot> = Vec::new();
        let mut seen_old: AHashSet<ProfileSlot> = AHashSet::default();
        for &s in &seeds {
            if let Some(p) = self.records.get(s).profile {
                if seen_old.insert(p) {
                    old_slots.push(p);
                }
            }
        }
        for cluster in &result.clusters {
            for &m in cluster {
                if let Some(p) = self.records.get(m).profile {
                    if seen_old.insert(p) {
                        old_slots.push(p);
                    }
                }
            }
        }
        // Dead members (taken out by this change) lose their profile now.
        for &p in &old_slots {
            for &m in &self.profiles.get(p).members {
                if self.records.get(m).live.is_none() {
                    self.records.get_mut(m).profile = None;
                }
            }
        }

        // The old profiles as they were, and the clusters replacing them.
        let olds: Vec<diff::OldProfile> = old_slots
            .iter()
            .map(|p| {
                let old = self.profiles.get(*p);
                diff::OldProfile {
                    slot: *p,
                    id: old.id,
                    members: old.members.len(),
                }
            })
            .collect();
        let conflicts: AHashSet<IdentId> = result.conflicts.iter().copied().collect();
        let mut profiles: Vec<Profile> = Vec::with_capacity(result.clusters.len());
        let mut clusters: Vec<diff::NewCluster> = Vec::with_capacity(result.clusters.len());
        for cluster in &result.clusters {
            let profile = self.profile_of(cluster, &conflicts);
            let mut previous: Vec<ProfileSlot> = Vec::new();
            for &m in cluster {
                if let Some(p) = self.records.get(m).profile {
                    if !previous.contains(&p) {
                        previous.push(p);
                    }
                }
            }
            let touched = cluster.iter().any(|m| {
                *m == cause
                    || self
                        .records
                        .get(*m)
                        .derived
                        .is_some_and(|d| d.parent == cause)
            });
            clusters.push(diff::NewCluster {
                id: profile.id,
                members: cluster.len(),
                olds: previous,
                touched,
            });
            profiles.push(profile);
        }
        let plan = diff::diff(&olds, &clusters);

        // Carry the plan out: place each cluster, then report, then free.
        let mut slots: Vec<ProfileSlot> = Vec::with_capacity(profiles.len());
        for ((profile, reuse), cluster) in
            profiles.into_iter().zip(&plan.reuse).zip(&result.clusters)
        {
            let slot = match reuse {
                Some(p) => {
                    *self.profiles.get_mut(*p) = profile;
                    *p
                }
                None => self.profiles.insert(profile),
            };
            for &m in cluster {
                self.records.get_mut(m).profile = Some(slot);
            }
            slots.push(slot);
        }
        self.stats.merges += plan.merges;
        self.stats.splits += plan.splits;
        for planned in plan.events {
            let event = ChangeEvent::new(planned.kind, planned.profile_id, planned.related, cause);
            self.events.push(match planned.cluster {
                Some(c) => event.at(slots[c], true),
                None => event,
            });
        }
        for p in plan.freed {
            self.profiles.remove(p);
        }
    }

    /// The profile a rebuilt cluster forms: its kind, members, exclusive
    /// identifiers, whether it holds a conflict, and its id.
    fn profile_of(&self, cluster: &[RecordId], conflicts: &AHashSet<IdentId>) -> Profile {
        let kind = self.records.get(cluster[0]).live.as_ref().unwrap().kind;
        let mut min_member = cluster[0];
        let mut exclusive: Vec<IdentId> = Vec::new();
        let mut conflict = false;
        for &m in cluster {
            if cmp_record_keys(m, min_member, &self.records, &self.names).is_lt() {
                min_member = m;
            }
            let live = self.records.get(m).live.as_ref().unwrap();
            exclusive.extend(self.idents.exclusive_of(&live.idents, &self.rules));
            conflict |= live
                .idents
                .iter()
                .any(|i| conflicts.contains(i) && self.idents.get(*i).evidence)
                || self
                    .resolver
                    .links(m)
                    .iter()
                    .any(|l| l.matched && l.conflict.is_some());
        }
        exclusive.sort();
        exclusive.dedup();
        Profile {
            kind,
            members: cluster.iter().copied().collect(),
            exclusive: exclusive.into(),
            conflict,
            min_member,
            id: profile_id(kind, min_member, &self.records, &self.names),
        }
    }

    /// The current version of a record as an observation (None when it has
    /// never been seen), as stored in snapshots.
    pub fn current_version(&self, rid: RecordId) -> Option<Observation> {
        let r = self.records.get(rid);
        if r.derived.is_some() || r.ts.0 == i64::MIN {
            return None;
        }
        let body = r.live.as_ref().map(|live| Body {
            kind: live.kind,
            identifiers: self.identifiers_of(&live.idents),
            attributes: live
                .attributes
                .iter()
                .map(|(k, v)| (self.names.name(k).to_string(), v.to_string()))
                .collect(),
            relationships: live
                .derived
                .iter()
                .map(|c| {
                    let child = self.records.get(*c);
                    let cl = child.live.as_ref().unwrap();
                    crate::observation::Relationship {
                        rel_type: self.names.name(child.derived.unwrap().rel_type).to_string(),
                        kind: cl.kind,
                        identifiers: self.identifiers_of(&cl.idents),
                    }
                })
                .collect(),
        });
        Some(Observation {
            source: self.names.name(r.source).to_string(),
            id: self.records.id(rid).to_string(),
            ts: r.ts,
            body,
        })
    }

    fn identifiers_of(&self, idents: &[IdentId]) -> Vec<Identifier> {
        let mut out: Vec<Identifier> = idents
            .iter()
            .map(|i| {
                let ident = self.idents.get(*i);
                Identifier {
                    type_id: ident.type_id,
                    value: self.idents.value(*i).to_string(),
                }
            })
            .collect();
        out.sort();
        out
    }

    /// Every stored version (live or tombstone), for snapshots.
    pub fn versions(&self) -> impl Iterator<Item = Observation> + '_ {
        self.records.keys().filter_map(|r| self.current_version(r))
    }
}

/// Whether `incoming` replaces `stored` as the current version of a record
/// (docs/design.md §2): the rule the engine applies, for tools that keep versions
/// outside an engine.
pub fn supersedes(stored: &Observation, incoming: &Observation, pipeline: &Pipeline) -> bool {
    resolve(
        stored.ts,
        stored.is_retraction(),
        incoming.ts,
        incoming.is_retraction(),
        || {
            (
                canonical_json(stored, pipeline),
                canonical_json(incoming, pipeline),
            )
        },
    ) == Resolution::Replace
}

/// The canonical JSON of a version, used only to break timestamp ties: fields
/// in a fixed order, identifiers and attributes sorted.
pub fn canonical_json(obs: &Observation, pipeline: &Pipeline) -> String {
    use serde_json::json;
    let ids = |ids: &[Identifier]| -> Vec<serde_json::Value> {
        ids.iter()
            .map(|i| json!([pipeline.identifiers.name(i.type_id), i.value]))
            .collect()
    };
    let body = obs.body.as_ref().map(|b| {
        json!([
            b.kind.as_str(),
            ids(&b.identifiers),
            b.attributes,
            b.relationships
                .iter()
                .map(|r| json!([r.rel_type, r.kind.as_str(), ids(&r.identifiers)]))
                .collect::<Vec<_>>()
        ])
    });
    json!([obs.source, obs.id, obs.ts.0, body]).to_string()
}

#[cfg(test)]
mod resolution_tests;
#[cfg(test)]
mod shape_tests;
#[cfg(test)]
mod tests;
