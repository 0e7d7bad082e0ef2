//! Reconciliation: the golden value of each attribute of a profile, chosen by
//! the attribute's survivorship policy, with its provenance (docs/design.md §3.5).
//!
//! Every tie is broken by the data alone (then the value, then the record
//! key), so the golden record is a function of the members, never of arrival.

use super::keys::{NameId, Names, RecordId};
use super::profiles::cmp_record_keys;
use super::records::Records;
use crate::config::Survivorship;
use crate::observation::Timestamp;
use kith_api::pipeline::SurvivorshipPolicy;
use std::cmp::Ordering;

/// One candidate value of an attribute.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub value: &'a str,
    pub record: RecordId,
    pub source: NameId,
    pub ts: Timestamp,
}

/// The chosen value of one attribute and the record that gave it.
#[derive(Debug, Clone, Copy)]
pub struct Golden<'a> {
    pub attribute: NameId,
    pub chosen: Candidate<'a>,
}

/// Golden values of all attributes of the given members, sorted by attribute name.
pub fn reconcile<'a>(
    members: &[RecordId],
    records: &'a Records,
    names: &Names,
    policy: &Survivorship,
) -> Vec<Golden<'a>> {
    let mut all: Vec<(NameId, Candidate<'a>)> = Vec::new();
    for &m in members {
        let r = records.get(m);
        if let Some(live) = &r.live {
            for (name, value) in live.attributes.iter() {
                all.push((
                    name,
                    Candidate {
                        value,
                        record: m,
                        source: r.source,
                        ts: r.ts,
                    },
                ));
            }
        }
    }
    all.sort_by(|a, b| names.name(a.0).cmp(names.name(b.0)));
    let mut out = Vec::new();
    for group in all.chunk_by(|a, b| a.0 == b.0) {
        let attribute = group[0].0;
        let candidates: Vec<Candidate<'a>> = group.iter().map(|(_, c)| *c).collect();
        let chosen = choose(&candidates, names.name(attribute), records, names, policy);
        out.push(Golden { attribute, chosen });
    }
    out
}

/// Newer first; then the value that sorts last (as for record versions); then the key.
fn recency(a: &Candidate, b: &Candidate, records: &Records, names: &Names) -> Ordering {
    a.ts.cmp(&b.ts)
        .then_with(|| a.value.cmp(b.value))
        .then_with(|| cmp_record_keys(a.record, b.record, records, names))
}

fn choose<'a>(
    cands: &[Candidate<'a>],
    attribute: &str,
    records: &Records,
    names: &Names,
    policy: &Survivorship,
) -> Candidate<'a> {
    let p = policy.policy(attribute);
    let most_recent = |cs: &mut dyn Iterator<Item = &Candidate<'a>>| {
        *cs.max_by(|a, b| recency(a, b, records, names)).unwrap()
    };
    match p.policy {
        SurvivorshipPolicy::MostRecent => most_recent(&mut cands.iter()),
        SurvivorshipPolicy::SourcePriority => {
            let best = cands
                .iter()
                .map(|c| p.rank(names.name(c.source)))
                .min()
                .unwrap();
            most_recent(
                &mut cands
                    .iter()
                    .filter(|c| p.rank(names.name(c.source)) == best),
            )
        }
        SurvivorshipPolicy::MostFrequent => {
            let mut by_value: Vec<&Candidate<'a>> = cands.iter().collect();
            by_value.sort_by(|a, b| a.value.cmp(b.value));
            let best = by_value
                .chunk_by(|a, b| a.value == b.value)
                .map(|group| (group.len(), most_recent(&mut group.iter().copied())))
                .max_by(|(na, a), (nb, b)| na.cmp(nb).then_with(|| recency(a, b, records, names)))
                .unwrap();
            best.1
        }
        SurvivorshipPolicy::FirstNonEmpty => *cands
            .iter()
            .min_by(|a, b| recency(a, b, records, names))
            .unwrap(),
    }
}
