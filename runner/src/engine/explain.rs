//! `explain`: why two identifiers are, or are not, in one profile (docs/design.md
//! §3.3). The answer is built from the kept evidence: the chain of records and
//! shared identifiers that links them, or, for each identifier the two sides
//! share, the rule that stopped it from counting.

use super::keys::{IdentId, ProfileSlot, RecordId};
use super::view::LookupError;
use super::Engine;
use crate::resolution::index::LinkConflict;
use ahash::{AHashMap, AHashSet};
use std::fmt::Write;

/// How one record reaches the next in an evidence chain.
#[derive(Debug, Clone, Copy)]
enum Via {
    Identifier(IdentId),
    /// An entity-resolution link, with its log2 odds.
    Match(f64),
}

/// A readable explanation, one statement per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub same_profile: bool,
    pub lines: Vec<String>,
}

impl Engine {
    /// Explains two references, each `TYPE:VALUE` (an identifier) or
    /// `record:SOURCE/ID` (a record, for entity resolution's comparisons).
    pub fn explain(&self, a: (&str, &str), b: (&str, &str)) -> Result<Explanation, LookupError> {
        if a.0 == "record" || b.0 == "record" {
            return self.explain_records(a, b);
        }
        let (ids_a, ids_b) = (self.find_idents(a.0, a.1)?, self.find_idents(b.0, b.1)?);
        let holders = |ids: &[IdentId]| -> Vec<RecordId> {
            ids.iter()
                .flat_map(|i| self.idents.get(*i).holders.iter().copied())
                .collect()
        };
        let (ha, hb) = (holders(&ids_a), holders(&ids_b));
        let mut lines = Vec::new();
        if ha.is_empty() || hb.is_empty() {
            let missing = if ha.is_empty() { a } else { b };
            lines.push(format!("no live record holds {}:{}", missing.0, missing.1));
            return Ok(Explanation {
                same_profile: false,
                lines,
            });
        }
        let profiles_of = |hs: &[RecordId]| -> Vec<ProfileSlot> {
            let mut ps: Vec<ProfileSlot> = hs
                .iter()
                .filter_map(|h| self.records.get(*h).profile)
                .collect();
            ps.sort();
            ps.dedup();
            ps
        };
        let (pa, pb) = (profiles_of(&ha), profiles_of(&hb));
        if let Some(common) = pa.iter().find(|p| pb.contains(p)) {
            let id = self.profiles.get(*common).id;
            lines.push(format!("same profile {id}"));
            let start: Vec<RecordId> = ha
                .iter()
                .copied()
                .filter(|h| self.records.get(*h).profile == Some(*common))
                .collect();
            let goal: AHashSet<RecordId> = hb
                .iter()
                .copied()
                .filter(|h| self.records.get(*h).profile == Some(*common))
                .collect();
            lines.extend(self.evidence_chain(&start, &goal));
            return Ok(Explanation {
                same_profile: true,
                lines,
            });
        }
        let names = |ps: &[ProfileSlot]| {
            ps.iter()
                .map(|p| self.profiles.get(*p).id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        lines.push(format!(
            "different profiles: {}:{} is in {}; {}:{} is in {}",
            a.0,
            a.1,
            names(&pa),
            b.0,
            b.1,
            names(&pb)
        ));
        let idents_of = |ps: &[ProfileSlot]| -> AHashSet<IdentId> {
            ps.iter()
                .flat_map(|p| self.profiles.get(*p).members.iter())
                .flat_map(|m| {
                    self.records
                        .get(*m)
                        .live
                        .as_ref()
                        .unwrap()
                        .idents
                        .iter()
                        .copied()
                })
                .collect()
        };
        let (ia, ib) = (idents_of(&pa), idents_of(&pb));
        let mut shared: Vec<IdentId> = ia.intersection(&ib).copied().collect();
        shared.sort_by(|x, y| self.idents.value(*x).cmp(self.idents.value(*y)));
        if shared.is_empty() {
            lines.push("they share no identifier".to_string());
        }
        for i in shared {
            lines.push(format!(
                "shared {}: {}",
                self.ident_label(i),
                self.why_not_evidence(i)
            ));
        }
        Ok(Explanation {
            same_profile: false,
            lines,
        })
    }

    fn ident_label(&self, i: IdentId) -> String {
        let ident = self.idents.get(i);
        format!(
            "{}:{}",
            self.pipeline.identifiers.name(ident.type_id),
            self.idents.value(i)
        )
    }

    fn record_label(&self, r: RecordId) -> String {
        let rec = self.record_ref(r);
        match rec.relationship {
            Some(rel) => format!(
                "{}/{} ({} #{})",
                rec.source,
                rec.id,
                rel,
                rec.index.unwrap_or(0)
            ),
            None => format!("{}/{}", rec.source, rec.id),
        }
    }

    /// Why a shared identifier does not link two profiles.
    fn why_not_evidence(&self, i: IdentId) -> String {
        let ident = self.idents.get(i);
        let t = self.pipeline.identifiers.get(ident.type_id);
        if !t.link {
            return format!("type {} does not link records (link: false)", t.name);
        }
        if ident.blocked {
            return "blocklisted as a junk value".to_string();
        }
        if !ident.evidence {
            let mut per_type: AHashMap<&str, usize> = AHashMap::default();
            for (x, _) in &ident.exclusive_seen {
                *per_type
                    .entry(self.pipeline.identifiers.name(self.idents.get(*x).type_id))
                    .or_default() += 1;
            }
            let mut parts: Vec<String> = per_type
                .into_iter()
                .filter_map(|(name, n)| {
                    let limit = self
                        .pipeline
                        .identifiers
                        .get(self.pipeline.identifiers.id(name)?)
                        .exclusive_limit?;
                    (n > limit as usize)
                        .then(|| format!("{n} distinct {name} values (limit {limit})"))
                })
                .collect();
            parts.sort();
            return format!(
                "generic: its {} records carry {}",
                ident.holders.len(),
                parts.join(", ")
            );
        }
        if ident.conflict {
            return "not used: linking through it would put more values of an exclusive type in one profile than the limit allows".to_string();
        }
        "links them (the profiles are being rebuilt)".to_string()
    }

    /// The shortest chain of records linked by evidence from `start` to `goal`.
    fn evidence_chain(&self, start: &[RecordId], goal: &AHashSet<RecordId>) -> Vec<String> {
        let mut prev: AHashMap<RecordId, Option<(RecordId, Via)>> = AHashMap::default();
        let mut queue = std::collections::VecDeque::new();
        for &s in start {
            prev.insert(s, None);
            queue.push_back(s);
        }
        let mut found = None;
        while let Some(r) = queue.pop_front() {
            if goal.contains(&r) {
                found = Some(r);
                break;
            }
            for &i in self.records.get(r).live.as_ref().unwrap().idents.iter() {
                let ident = self.idents.get(i);
                if !ident.evidence || ident.conflict {
                    continue;
                }
                for &h in &ident.holders {
                    if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(h) {
                        e.insert(Some((r, Via::Identifier(i))));
                        queue.push_back(h);
                    }
                }
            }
            for l in self.resolver.links(r) {
                if l.matched && l.conflict.is_none() {
                    if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(l.other) {
                        e.insert(Some((r, Via::Match(l.score))));
                        queue.push_back(l.other);
                    }
                }
            }
        }
        let Some(mut at) = found else {
            return vec!["no evidence chain found".to_string()];
        };
        let mut steps = Vec::new();
        while let Some(Some((from, via))) = prev.get(&at) {
            steps.push((*from, *via, at));
            at = *from;
        }
        steps.reverse();
        let mut lines = Vec::new();
        if steps.is_empty() {
            lines.push(format!(
                "both identifiers are on record {}",
                self.record_label(at)
            ));
        }
        for (from, via, to) in steps {
            let mut line = String::new();
            let _ = match via {
                Via::Identifier(i) => write!(
                    line,
                    "{} and {} share {}",
                    self.record_label(from),
                    self.record_label(to),
                    self.ident_label(i)
                ),
                Via::Match(score) => write!(
                    line,
                    "{} and {} match by their attributes (probability {:.6})",
                    self.record_label(from),
                    self.record_label(to),
                    crate::resolution::config::probability(score)
                ),
            };
            lines.push(line);
        }
        lines
    }

    fn find_record(&self, reference: (&str, &str)) -> Result<RecordId, LookupError> {
        let missing = || LookupError::UnknownRecord {
            reference: format!("{}:{}", reference.0, reference.1),
        };
        if reference.0 != "record" {
            return Err(missing());
        }
        let (source, id) = reference.1.split_once('/').ok_or_else(missing)?;
        let source = self.names.find(source).ok_or_else(missing)?;
        let r = self.records.find(source, id).ok_or_else(missing)?;
        if self.records.get(r).live.is_none() {
            return Err(missing());
        }
        Ok(r)
    }

    /// Two records: whether they are one profile and by which chain, then
    /// entity resolution's comparison of the two, level by level.
    fn explain_records(
        &self,
        a: (&str, &str),
        b: (&str, &str),
    ) -> Result<Explanation, LookupError> {
        let (ra, rb) = (self.find_record(a)?, self.find_record(b)?);
        let (pa, pb) = (self.records.get(ra).profile, self.records.get(rb).profile);
        let same_profile = pa.is_some() && pa == pb;
        let mut lines = Vec::new();
        if same_profile {
            lines.push(format!(
                "same profile {}",
                self.profiles.get(pa.unwrap()).id
            ));
            lines.extend(self.evidence_chain(&[ra], &[rb].into_iter().collect()));
        } else {
            let id = |p: Option<super::keys::ProfileSlot>| {
                p.map(|p| self.profiles.get(p).id.to_string())
                    .unwrap_or_default()
            };
            lines.push(format!(
                "different profiles: {} is in {}; {} is in {}",
                self.record_label(ra),
                id(pa),
                self.record_label(rb),
                id(pb)
            ));
            if let Some(l) = self
                .resolver
                .links(ra)
                .iter()
                .find(|l| l.other == rb && l.matched)
            {
                let p = crate::resolution::config::probability(l.score);
                match l.conflict {
                    Some(LinkConflict::ExclusiveLimit) => lines.push(format!(
                        "their match (probability {p:.6}) is not used: it would put more values of an exclusive type in one profile than the limit allows"
                    )),
                    Some(LinkConflict::Disagreement) => lines.push(format!(
                        "their match (probability {p:.6}) is not used: it would put in one profile records that disagree by more than maxDisagreement bits (different dates of birth and first names, say)"
                    )),
                    None => {}
                }
            }
        }
        if let Some(resolution) = &self.pipeline.resolution {
            if let (Some(weights), Some(fa), Some(fb)) = (
                &resolution.weights,
                self.resolver.features(ra),
                self.resolver.features(rb),
            ) {
                let (fa, fb) = if fa.fingerprint <= fb.fingerprint {
                    (fa, fb)
                } else {
                    (fb, fa)
                };
                let (steps, total) =
                    crate::resolution::score::waterfall(&resolution.config, weights, fa, fb);
                lines.push(String::new());
                lines.extend(crate::resolution::score::render_waterfall(
                    &resolution.config,
                    weights,
                    &steps,
                    total,
                ));
                let blocked = fa.blocks.iter().any(|k| fb.blocks.contains(k));
                if !blocked {
                    lines.push(
                        "note: the two records share no block, so resolution never compares them"
                            .to_string(),
                    );
                }
            }
        }
        Ok(Explanation {
            same_profile,
            lines,
        })
    }
}
