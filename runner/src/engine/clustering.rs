//! The canonical clustering of a component: the one definition of which live
//! records form a profile. The engine's fast path only ever takes shortcuts
//! that provably give the same answer.
//!
//! Given the records reachable from some seeds through evidence identifiers
//! (linking, not blocklisted, not generic), identifiers are considered in a
//! canonical order: type rank (exclusive types first by default, then the
//! pipeline's order), then rarer values first (a value held by fewer records is
//! stronger evidence), then type and value. Each identifier merges the clusters
//! of its holders unless the merge would give a cluster more distinct values of
//! an exclusive type than its limit; such an identifier is marked *in conflict*
//! and links nothing. Entity-resolution links (pairs of records) come after
//! all identifiers, strongest first, under the same limits, and one more: a
//! link is not followed when some record on one side disagrees with some
//! record on the other beyond `maxDisagreement` (a tax record without a date
//! of birth matching both a father and his son must not make them one
//! person). The order is a function of the records alone, so the result is
//! too (sequence neutrality, docs/design.md §3.2).

use super::identifiers::{ExclusiveSet, Idents, TypeRules};
use super::keys::Names;
use super::keys::{IdentId, ProfileSlot, RecordId};
use super::profiles::cmp_record_keys;
use super::profiles::Profiles;
use super::records::Records;
use crate::resolution::index::LinkConflict;
use crate::resolution::{ResolutionConfig, Resolver, Weights};
use ahash::{AHashMap, AHashSet};

/// The outcome for the records reached from the seeds.
#[derive(Debug, Default)]
pub struct Clustering {
    /// Each cluster's members.
    pub clusters: Vec<Vec<RecordId>>,
    /// Evidence identifiers visited (their conflict flags are decided here).
    pub visited_idents: Vec<IdentId>,
    /// Visited identifiers that were not used because of an exclusive limit.
    pub conflicts: Vec<IdentId>,
    /// Resolution links visited (each pair once, smaller record first).
    pub visited_links: Vec<(RecordId, RecordId)>,
    /// Visited links that were not used, and why.
    pub link_conflicts: Vec<(RecordId, RecordId, LinkConflict)>,
}

/// Above this many cross pairs (the two sides' sizes multiplied, counting
/// the records resolution compares) a link's
/// sides are not checked for disagreement: a profile that large was built
/// from identifiers, and scoring every pair would cost more than the rest of
/// the clustering. The fast path never merges more than
/// [`MAX_CHECKED_RECORDS`] records through a link, so it never needs to
/// know whether this cap was reached.
pub const MAX_CHECKED_PAIRS: usize = 4096;

/// The most records the fast path merges through a resolution link after
/// checking every pair for disagreement itself; beyond this it leaves the
/// merge to the canonical path. Any two sides of a union this size have at
/// most (64 / 2)² = 1024 cross pairs, under [`MAX_CHECKED_PAIRS`].
pub const MAX_CHECKED_RECORDS: usize = 64;

/// The entity-resolution side of clustering: the links, and the scoring
/// that checks them for disagreement (None when the pipeline has no
/// resolution weights).
#[derive(Clone, Copy)]
pub struct Matches<'a> {
    pub resolver: &'a Resolver<RecordId>,
    pub scoring: Option<(&'a ResolutionConfig, &'a Weights)>,
}

/// Whether some record of `a` disagrees with some record of `b` beyond
/// the pipeline's `maxDisagreement`.
pub fn sides_disagree(
    a: &[RecordId],
    b: &[RecordId],
    resolver: &Resolver<RecordId>,
    config: &ResolutionConfig,
    weights: &Weights,
) -> bool {
    a.iter().any(|x| {
        b.iter().any(|y| {
            resolver
                .disagreement(*x, *y, config, weights)
                .is_some_and(|d| d > config.max_disagreement)
        })
    })
}

/// Clusters the live records reachable from `seeds` through evidence
/// identifiers, also pulling in every member of a reached record's current
/// profile, so that all affected profiles are rebuilt whole. Each profile is
/// expanded once, so the work is linear in what is reached.
pub fn cluster(
    seeds: &[RecordId],
    records: &Records,
    idents: &Idents,
    profiles: &Profiles,
    rules: &TypeRules,
    matches: Matches<'_>,
    names: &Names,
) -> Clustering {
    let Matches {
        resolver,
        scoring: resolution,
    } = matches;
    // 1. Reach.
    let mut local: AHashMap<RecordId, u32> = AHashMap::default();
    let mut nodes: Vec<RecordId> = Vec::new();
    let mut queue: Vec<RecordId> = Vec::new();
    let mut seen_idents: AHashSet<IdentId> = AHashSet::default();
    let mut expanded: AHashSet<ProfileSlot> = AHashSet::default();
    let mut visited_idents: Vec<IdentId> = Vec::new();
    let mut visited_links: Vec<(RecordId, RecordId, f64)> = Vec::new();
    let visit = |r: RecordId,
                 local: &mut AHashMap<RecordId, u32>,
                 nodes: &mut Vec<RecordId>,
                 queue: &mut Vec<RecordId>| {
        if records.get(r).live.is_some() && !local.contains_key(&r) {
            local.insert(r, nodes.len() as u32);
            nodes.push(r);
            queue.push(r);
        }
    };
    for &s in seeds {
        visit(s, &mut local, &mut nodes, &mut queue);
    }
    while let Some(r) = queue.pop() {
        if let Some(p) = records.get(r).profile {
            if expanded.insert(p) {
                for &m in &profiles.get(p).members {
                    visit(m, &mut local, &mut nodes, &mut queue);
                }
            }
        }
        let live = records
            .get(r)
            .live
            .as_ref()
            .expect("only live records are queued");
        for &i in live.idents.iter() {
            let ident = idents.get(i);
            if ident.evidence && seen_idents.insert(i) {
                visited_idents.push(i);
                for &h in &ident.holders {
                    visit(h, &mut local, &mut nodes, &mut queue);
                }
            }
        }
        for l in resolver.links(r) {
            if l.matched {
                if r < l.other {
                    visited_links.push((r, l.other, l.score));
                }
                visit(l.other, &mut local, &mut nodes, &mut queue);
            }
        }
    }

    // 2. Canonical order of the evidence.
    let mut order = visited_idents.clone();
    order.sort_by(|a, b| {
        let (ia, ib) = (idents.get(*a), idents.get(*b));
        rules
            .rank(ia.type_id)
            .cmp(&rules.rank(ib.type_id))
            .then(ia.holders.len().cmp(&ib.holders.len()))
            .then(ia.type_id.cmp(&ib.type_id))
            .then_with(|| idents.value(*a).cmp(idents.value(*b)))
    });

    // 3. Merge under the exclusive limits.
    let mut parent: Vec<u32> = (0..nodes.len() as u32).collect();
    let mut exclusive: Vec<ExclusiveSet> = nodes
        .iter()
        .map(|r| {
            let mut x = idents.exclusive_of(&records.get(*r).live.as_ref().unwrap().idents, rules);
            x.sort();
            x
        })
        .collect();
    let mut conflicts = Vec::new();
    let mut roots: Vec<u32> = Vec::new();
    for &i in &order {
        roots.clear();
        for h in &idents.get(i).holders {
            let root = find(&mut parent, local[h]);
            if !roots.contains(&root) {
                roots.push(root);
            }
        }
        if roots.len() < 2 {
            continue;
        }
        let mut union = ExclusiveSet::new();
        for &root in &roots {
            union.extend_from_slice(&exclusive[root as usize]);
        }
        union.sort();
        union.dedup();
        if exceeds_limits(&union, idents, rules) {
            conflicts.push(i);
            continue;
        }
        let keep = roots[0];
        for &other in &roots[1..] {
            parent[other as usize] = keep;
            exclusive[other as usize] = ExclusiveSet::new();
        }
        exclusive[keep as usize] = union;
    }

    // 3b. Then resolution links, strongest first; equal scores in the order
    // of the records' keys, so that the order depends on the records alone.
    let key_ordered = |(a, b, s): (RecordId, RecordId, f64)| {
        if cmp_record_keys(a, b, records, names).is_le() {
            (a, b, s)
        } else {
            (b, a, s)
        }
    };
    let mut links: Vec<(RecordId, RecordId, f64)> =
        visited_links.iter().copied().map(key_ordered).collect();
    links.sort_by(|x, y| {
        y.2.total_cmp(&x.2)
            .then_with(|| cmp_record_keys(x.0, y.0, records, names))
            .then_with(|| cmp_record_keys(x.1, y.1, records, names))
    });
    let mut link_conflicts = Vec::new();
    // The members of each root, for the disagreement check (only built when
    // there are links to check).
    let mut members: Vec<Vec<RecordId>> = Vec::new();
    if resolution.is_some() && !links.is_empty() {
        members = vec![Vec::new(); nodes.len()];
        for n in 0..nodes.len() as u32 {
            // Only records resolution compares can disagree; the others
            // (another kind, no resolution fields) neither count nor cost.
            if resolver.features(nodes[n as usize]).is_some() {
                let root = find(&mut parent, n);
                members[root as usize].push(nodes[n as usize]);
            }
        }
    }
    for &(a, b, _) in &links {
        let (ra, rb) = (find(&mut parent, local[&a]), find(&mut parent, local[&b]));
        if ra == rb {
            continue;
        }
        let mut union = exclusive[ra as usize].clone();
        union.extend_from_slice(&exclusive[rb as usize]);
        union.sort();
        union.dedup();
        if exceeds_limits(&union, idents, rules) {
            link_conflicts.push((a, b, LinkConflict::ExclusiveLimit));
            continue;
        }
        if let Some((config, weights)) = resolution {
            let (side_a, side_b) = (&members[ra as usize], &members[rb as usize]);
            if side_a.len() * side_b.len() <= MAX_CHECKED_PAIRS
                && sides_disagree(side_a, side_b, resolver, config, weights)
            {
                link_conflicts.push((a, b, LinkConflict::Disagreement));
                continue;
            }
            let moved = std::mem::take(&mut members[rb as usize]);
            members[ra as usize].extend(moved);
        }
        parent[rb as usize] = ra;
        exclusive[rb as usize] = ExclusiveSet::new();
        exclusive[ra as usize] = union;
    }

    // 4. Clusters.
    let mut by_root: AHashMap<u32, usize> = AHashMap::default();
    let mut clusters: Vec<Vec<RecordId>> = Vec::new();
    for n in 0..nodes.len() as u32 {
        let root = find(&mut parent, n);
        let c = *by_root.entry(root).or_insert_with(|| {
            clusters.push(Vec::new());
            clusters.len() - 1
        });
        clusters[c].push(nodes[n as usize]);
    }
    Clustering {
        clusters,
        visited_idents,
        conflicts,
        visited_links: visited_links.into_iter().map(|(a, b, _)| (a, b)).collect(),
        link_conflicts,
    }
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        let p = parent[x as usize];
        parent[x as usize] = parent[p as usize];
        x = p;
    }
    x
}

/// Whether a set of distinct exclusive identifiers breaks a type's limit.
pub fn exceeds_limits(exclusive: &[IdentId], idents: &Idents, rules: &TypeRules) -> bool {
    if exclusive.len() < 2 {
        return false;
    }
    let mut per_type: Vec<(crate::config::TypeId, u32)> = Vec::new();
    for x in exclusive {
        let t = idents.get(*x).type_id;
        match per_type.iter_mut().find(|(pt, _)| *pt == t) {
            Some((_, n)) => *n += 1,
            None => per_type.push((t, 1)),
        }
    }
    per_type
        .iter()
        .any(|(t, n)| rules.limit(*t).is_some_and(|l| *n > l))
}
