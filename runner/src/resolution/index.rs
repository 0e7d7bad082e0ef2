//! The streaming side of entity resolution: blocks maintained incrementally,
//! and the links (pairs scored at or above the match threshold) and possible
//! matches of every record.
//!
//! The set of links is a function of the set of live records: a pair is
//! linked when the two share at least one block that is not oversized and
//! their score reaches the threshold. So when a record arrives its pairs are
//! scored against its blocks; when it leaves its links go; and when a block
//! crosses its size limit, the pairs that only that block produced are
//! dropped (or, when it shrinks back, scored), so that no link depends on
//! which records came first.

use super::config::{ResolutionConfig, Weights};
use super::features::Features;
use super::score::{disagreement, score};
use ahash::AHashMap;
use std::hash::Hash;

/// A scored pair, seen from one of its records (`R` is the engine's record handle).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link<RecordId> {
    pub other: RecordId,
    /// Log2 odds of a match.
    pub score: f64,
    /// At or above the match threshold (else a possible match).
    pub matched: bool,
    /// Set by clustering when the pair is not followed, and why.
    pub conflict: Option<LinkConflict>,
}

/// Why clustering did not follow a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkConflict {
    /// It would put more values of an exclusive type in one profile than
    /// the type's limit allows.
    ExclusiveLimit,
    /// It would put in one profile two records that disagree beyond
    /// `maxDisagreement`.
    Disagreement,
}

struct Entry<RecordId> {
    features: Features,
    links: Vec<Link<RecordId>>,
}

/// What a change did to records other than the one being placed.
#[derive(Debug)]
pub struct Changes<RecordId> {
    /// Records that lost or gained a link: their profiles must be rebuilt.
    pub touched: Vec<RecordId>,
    /// Newly found possible matches (pairs and log2 odds), for the change feed.
    pub possible: Vec<(RecordId, RecordId, f64)>,
}

impl<R> Default for Changes<R> {
    fn default() -> Self {
        Changes {
            touched: Vec::new(),
            possible: Vec::new(),
        }
    }
}

pub struct Resolver<RecordId> {
    blocks: AHashMap<String, Vec<RecordId>>,
    entries: AHashMap<RecordId, Entry<RecordId>>,
    /// Times a block was skipped because it held more records than allowed.
    pub oversized_skips: u64,
    pub pairs_scored: u64,
}

impl<R> Default for Resolver<R> {
    fn default() -> Self {
        Resolver {
            blocks: AHashMap::default(),
            entries: AHashMap::default(),
            oversized_skips: 0,
            pairs_scored: 0,
        }
    }
}

impl<RecordId: Copy + Eq + Hash + Ord> Resolver<RecordId> {
    pub fn links(&self, r: RecordId) -> &[Link<RecordId>] {
        self.entries
            .get(&r)
            .map(|e| e.links.as_slice())
            .unwrap_or(&[])
    }

    pub fn features(&self, r: RecordId) -> Option<&Features> {
        self.entries.get(&r).map(|e| &e.features)
    }

    /// How strongly two indexed records disagree (see [`disagreement`]),
    /// None when either is not indexed. Pure: it counts nothing.
    pub fn disagreement(
        &self,
        a: RecordId,
        b: RecordId,
        config: &ResolutionConfig,
        weights: &Weights,
    ) -> Option<f64> {
        let (fa, fb) = (self.features(a)?, self.features(b)?);
        Some(disagreement(config, weights, fa, fb))
    }

    pub fn set_conflict(&mut self, a: RecordId, b: RecordId, conflict: Option<LinkConflict>) {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(e) = self.entries.get_mut(&x) {
                if let Some(l) = e.links.iter_mut().find(|l| l.other == y) {
                    l.conflict = conflict;
                }
            }
        }
    }

    fn oversized(&self, key: &str, config: &ResolutionConfig) -> bool {
        self.blocks
            .get(key)
            .is_some_and(|m| m.len() > config.max_block_size)
    }

    /// Whether two records share a block that is not oversized.
    fn share_usable_block(&self, a: RecordId, b: RecordId, config: &ResolutionConfig) -> bool {
        let (Some(ea), Some(eb)) = (self.entries.get(&a), self.entries.get(&b)) else {
            return false;
        };
        ea.features
            .blocks
            .iter()
            .any(|k| eb.features.blocks.contains(k) && !self.oversized(k, config))
    }

    /// Scores a pair in an order fixed by the records' content, so that the
    /// score cannot depend on which record is `a`.
    fn score_pair(
        &mut self,
        a: RecordId,
        b: RecordId,
        config: &ResolutionConfig,
        weights: &Weights,
    ) -> f64 {
        self.pairs_scored += 1;
        let (fa, fb) = (&self.entries[&a].features, &self.entries[&b].features);
        if fa.fingerprint <= fb.fingerprint {
            score(config, weights, fa, fb)
        } else {
            score(config, weights, fb, fa)
        }
    }

    fn add_link(&mut self, a: RecordId, b: RecordId, s: f64, matched: bool) {
        for (x, y) in [(a, b), (b, a)] {
            let e = self
                .entries
                .get_mut(&x)
                .expect("linked records are indexed");
            e.links.push(Link {
                other: y,
                score: s,
                matched,
                conflict: None,
            });
        }
    }

    fn remove_link(&mut self, a: RecordId, b: RecordId) {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(e) = self.entries.get_mut(&x) {
                e.links.retain(|l| l.other != y);
            }
        }
    }

    /// Scores a pair and records it as a link or possible match.
    fn evaluate(
        &mut self,
        a: RecordId,
        b: RecordId,
        config: &ResolutionConfig,
        weights: &Weights,
        changes: &mut Changes<RecordId>,
    ) -> bool {
        let s = self.score_pair(a, b, config, weights);
        if s >= weights.match_log2_odds {
            self.add_link(a, b, s, true);
            true
        } else {
            if s >= weights.possible_log2_odds {
                self.add_link(a, b, s, false);
                changes.possible.push((a, b, s));
            }
            false
        }
    }

    /// Indexes a record that became live and scores it against its blocks.
    /// Its own new links are left for the caller to place; other records
    /// whose links changed are reported in `changes`.
    pub fn insert(
        &mut self,
        r: RecordId,
        features: Features,
        config: &ResolutionConfig,
        weights: &Weights,
        changes: &mut Changes<RecordId>,
    ) {
        let keys = features.blocks.clone();
        self.entries.insert(
            r,
            Entry {
                features,
                links: Vec::new(),
            },
        );
        for key in &keys {
            let members = self.blocks.entry(key.clone()).or_default();
            members.push(r);
            if members.len() == config.max_block_size + 1 {
                self.block_became_oversized(key, config, changes);
            }
        }
        let mut candidates: Vec<RecordId> = Vec::new();
        for key in &keys {
            if self.oversized(key, config) {
                self.oversized_skips += 1;
                continue;
            }
            candidates.extend(self.blocks[key].iter().copied().filter(|c| *c != r));
        }
        candidates.sort_unstable();
        candidates.dedup();
        for c in candidates {
            self.evaluate(r, c, config, weights, changes);
        }
    }

    /// Removes a record that is no longer live, with its links; a block that
    /// shrinks back under its limit has its pairs scored.
    pub fn remove(
        &mut self,
        r: RecordId,
        config: &ResolutionConfig,
        weights: &Weights,
        changes: &mut Changes<RecordId>,
    ) {
        let Some(entry) = self.entries.remove(&r) else {
            return;
        };
        for l in &entry.links {
            if let Some(e) = self.entries.get_mut(&l.other) {
                e.links.retain(|x| x.other != r);
            }
            if l.matched {
                changes.touched.push(l.other);
            }
        }
        for key in &entry.features.blocks {
            let Some(members) = self.blocks.get_mut(key) else {
                continue;
            };
            if let Some(pos) = members.iter().position(|m| *m == r) {
                members.swap_remove(pos);
            }
            if members.is_empty() {
                self.blocks.remove(key);
            } else if members.len() == config.max_block_size {
                self.block_became_usable(key, config, weights, changes);
            }
        }
    }

    /// Drops the links that only this block produced.
    fn block_became_oversized(
        &mut self,
        key: &str,
        config: &ResolutionConfig,
        changes: &mut Changes<RecordId>,
    ) {
        let members = self.blocks[key].clone();
        let mut drop = Vec::new();
        for &a in &members {
            for l in self.links(a) {
                if l.other > a && members.contains(&l.other) {
                    drop.push((a, l.other, l.matched));
                }
            }
        }
        for (a, b, matched) in drop {
            if !self.share_usable_block(a, b, config) {
                self.remove_link(a, b);
                if matched {
                    changes.touched.push(a);
                    changes.touched.push(b);
                }
            }
        }
    }

    /// Scores the pairs of a block that is usable again and not yet scored.
    fn block_became_usable(
        &mut self,
        key: &str,
        config: &ResolutionConfig,
        weights: &Weights,
        changes: &mut Changes<RecordId>,
    ) {
        let members = self.blocks[key].clone();
        for (i, &a) in members.iter().enumerate() {
            for &b in &members[i + 1..] {
                if self.links(a).iter().any(|l| l.other == b) {
                    continue;
                }
                if self.evaluate(a, b, config, weights, changes) {
                    changes.touched.push(a);
                    changes.touched.push(b);
                }
            }
        }
    }
}
