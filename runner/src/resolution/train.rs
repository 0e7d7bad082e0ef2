//! `kith-runner train`: estimates a resolution model from the data itself,
//! without labels, the way Fellegi-Sunter models are usually fitted:
//!
//! - `u` (how often each comparison level occurs among non-matching pairs)
//!   from random pairs of records, nearly all of which do not match;
//! - `m` (the same among matching pairs) by expectation maximisation over
//!   the candidate pairs of each blocking rule in turn, with `u` held fixed
//!   and the comparisons of the rule's own attributes left out: pairs that
//!   share a surname block all agree on surname, which says nothing about
//!   matches. Each comparison's `m` is the mean over the rules that could
//!   estimate it;
//! - the prior (the chance that two random records match) from the share of
//!   matches EM finds among all candidate pairs, with `m` and `u` held fixed,
//!   spread over all pairs of records;
//! - term frequencies (the share of records holding each exact value) for
//!   comparisons that use them.
//!
//! The result is a pure function of the set of records, the pipeline and the
//! seed; it never looks at which pairs truly match.

use super::config::ResolutionConfig;
use super::features::{Features, ValueCounters};
use super::model::{ComparisonModel, Model, MODEL_FORMAT};
use crate::config::Pipeline;
use crate::observation::Observation;
use ahash::{AHashMap, AHashSet};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// Level value standing for "missing on either side" in a comparison vector.
const MISSING: u8 = u8::MAX;

/// Pairs added to every level's expected count when estimating `m`.
const M_PSEUDO_COUNT: f64 = 1.0;

#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Random pairs drawn to estimate `u`.
    pub random_pairs: usize,
    pub seed: u64,
    pub max_iterations: usize,
    /// Term-frequency tables keep at most this many of the most common values.
    pub max_tf_values: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            random_pairs: 1_000_000,
            seed: 1,
            max_iterations: 500,
            max_tf_values: 100_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("the pipeline has no `resolution` section to train")]
    NoResolution,
    #[error("training needs at least 2 live records of kind {kind}; the input holds {found}")]
    TooFewRecords { kind: String, found: usize },
}

/// Estimates a model from the current versions of the input's records.
pub fn train(
    pipeline: &Pipeline,
    versions: &[Observation],
    opts: &TrainOptions,
) -> Result<Model, TrainError> {
    let resolution = pipeline
        .resolution
        .as_ref()
        .ok_or(TrainError::NoResolution)?;
    let config = &resolution.config;
    let mut counters = ValueCounters::default();
    // Records in key order, so that the random pairs (and so the model)
    // depend on the set of records, not on the order they were read in.
    let mut live: Vec<&Observation> = versions
        .iter()
        .filter(|v| v.body.as_ref().is_some_and(|b| b.kind == config.kind))
        .collect();
    live.sort_by(|a, b| (&a.source, &a.id).cmp(&(&b.source, &b.id)));
    let records: Vec<Features> = live
        .iter()
        .filter_map(|v| v.body.as_ref())
        .map(|b| {
            let lookup = |i: usize| {
                let name = &config.attributes[i];
                b.attributes
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
            };
            Features::extract(config, &lookup, &mut counters)
        })
        .collect();
    let n = records.len();
    if n < 2 {
        return Err(TrainError::TooFewRecords {
            kind: config.kind.to_string(),
            found: n,
        });
    }

    let u = estimate_u(config, &records, opts);
    let pairs_by_rule = candidate_pairs_by_rule(config, &records);
    let mut m_sums: Vec<Vec<f64>> = u.iter().map(|l| vec![0.0; l.len()]).collect();
    let mut m_sessions = vec![0usize; u.len()];
    let mut iterations = 0;
    for (rule, pairs) in pairs_by_rule.iter().enumerate() {
        let blocked = rule_comparisons(config, rule);
        let estimable: Vec<bool> = (0..u.len()).map(|c| !blocked.contains(&c)).collect();
        if pairs.is_empty() || !estimable.iter().any(|e| *e) {
            continue;
        }
        let patterns = patterns_of(config, &records, pairs.iter().copied(), &estimable);
        let (m_rule, _, rounds) = expectation_maximisation(
            &patterns,
            &initial_m(config),
            &u,
            &estimable,
            opts.max_iterations,
        );
        iterations += rounds;
        for c in (0..u.len()).filter(|c| estimable[*c]) {
            m_sessions[c] += 1;
            for (sum, value) in m_sums[c].iter_mut().zip(&m_rule[c]) {
                *sum += value;
            }
        }
    }
    let initial = initial_m(config);
    let m: Vec<Vec<f64>> = (0..u.len())
        .map(|c| {
            if records.iter().filter(|r| r.prepared[c].is_some()).count() < 2 {
                // The data never holds this value twice: it can say nothing
                // either way, so every level weighs zero (m = u).
                u[c].clone()
            } else if m_sessions[c] == 0 {
                tracing::warn!(comparison = %config.comparisons[c].name, "every blocking rule uses this comparison's attribute: its m cannot be estimated and keeps its starting values");
                initial[c].clone()
            } else {
                m_sums[c].iter().map(|s| s / m_sessions[c] as f64).collect()
            }
        })
        .collect();
    let mut all_pairs: Vec<(u32, u32)> = pairs_by_rule.iter().flatten().copied().collect();
    all_pairs.sort_unstable();
    all_pairs.dedup();
    let candidate_pairs = all_pairs.len();
    let everything = vec![true; u.len()];
    let patterns = patterns_of(config, &records, all_pairs.into_iter(), &everything);
    let (_, candidate_prior, rounds) =
        expectation_maximisation(&patterns, &m, &u, &[], opts.max_iterations);
    iterations += rounds;
    // m and u describe random pairs, so the prior must too: the matches found
    // among the candidates (nearly all matches, if blocking is good) spread
    // over all pairs. Using the candidates' own share would count the
    // agreement that made them candidates twice.
    let all_record_pairs = (n as f64) * (n as f64 - 1.0) / 2.0;
    let prior = (candidate_prior * candidate_pairs as f64 / all_record_pairs).clamp(1e-12, 0.5);

    let comparisons = config
        .comparisons
        .iter()
        .enumerate()
        .map(|(c, comparison)| {
            let (term_frequencies, tf_floor) = if comparison.term_frequency {
                let (table, floor) = term_frequencies(c, config, &records, opts.max_tf_values);
                (table, Some(floor))
            } else {
                (BTreeMap::new(), None)
            };
            ComparisonModel {
                name: comparison.name.clone(),
                levels: comparison.level_names(),
                m: m[c].clone(),
                u: u[c].clone(),
                term_frequencies,
                tf_floor,
            }
        })
        .collect();
    let mut training = BTreeMap::new();
    training.insert("records".to_string(), n as f64);
    training.insert("candidatePairs".to_string(), candidate_pairs as f64);
    training.insert("emIterations".to_string(), iterations as f64);
    training.insert("candidateMatchShare".to_string(), candidate_prior);
    training.insert("unusableValues".to_string(), counters.unusable as f64);
    training.insert("truncatedValues".to_string(), counters.truncated as f64);
    Ok(Model {
        format: MODEL_FORMAT,
        prior,
        comparisons,
        training,
    })
}

/// The level of every comparison for a pair (MISSING where a side lacks it).
fn levels(config: &ResolutionConfig, a: &Features, b: &Features) -> Vec<u8> {
    config
        .comparisons
        .iter()
        .enumerate()
        .map(|(c, comparison)| super::score::level(comparison, c, a, b).unwrap_or(MISSING))
        .collect()
}

/// `u` from random pairs, with add-one smoothing so that no level is impossible.
fn estimate_u(
    config: &ResolutionConfig,
    records: &[Features],
    opts: &TrainOptions,
) -> Vec<Vec<f64>> {
    let n = records.len();
    let all_pairs = n * (n - 1) / 2;
    let mut counts: Vec<Vec<f64>> = config
        .comparisons
        .iter()
        .map(|c| vec![0.0; c.levels()])
        .collect();
    let tally = |a: usize, b: usize, counts: &mut Vec<Vec<f64>>| {
        for (c, level) in levels(config, &records[a], &records[b])
            .into_iter()
            .enumerate()
        {
            if level != MISSING {
                counts[c][level as usize] += 1.0;
            }
        }
    };
    if all_pairs <= opts.random_pairs {
        for a in 0..n {
            for b in a + 1..n {
                tally(a, b, &mut counts);
            }
        }
    } else {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
        let mut drawn = 0;
        while drawn < opts.random_pairs {
            let (a, b) = (rng.gen_range(0..n), rng.gen_range(0..n));
            if a != b {
                tally(a, b, &mut counts);
                drawn += 1;
            }
        }
    }
    counts
        .into_iter()
        .map(|levels| {
            let total: f64 = levels.iter().sum::<f64>() + levels.len() as f64;
            levels.iter().map(|c| (c + 1.0) / total).collect()
        })
        .collect()
}

/// The candidate pairs of each blocking rule (blocks over the size limit skipped).
fn candidate_pairs_by_rule(
    config: &ResolutionConfig,
    records: &[Features],
) -> Vec<Vec<(u32, u32)>> {
    let mut blocks: AHashMap<&str, Vec<u32>> = AHashMap::default();
    for (i, r) in records.iter().enumerate() {
        for key in &r.blocks {
            blocks.entry(key.as_str()).or_default().push(i as u32);
        }
    }
    let mut by_rule: Vec<AHashSet<(u32, u32)>> = vec![AHashSet::default(); config.rules.len()];
    for (key, members) in &blocks {
        if members.len() > config.max_block_size {
            continue;
        }
        let rule: usize = key
            .split('\u{1f}')
            .next()
            .and_then(|r| r.parse().ok())
            .expect("block keys start with their rule");
        for (i, &a) in members.iter().enumerate() {
            for &b in &members[i + 1..] {
                by_rule[rule].insert((a.min(b), a.max(b)));
            }
        }
    }
    by_rule
        .into_iter()
        .map(|set| {
            let mut pairs: Vec<(u32, u32)> = set.into_iter().collect();
            pairs.sort_unstable();
            pairs
        })
        .collect()
}

/// The comparisons reading an attribute that a rule's keys are made from.
fn rule_comparisons(config: &ResolutionConfig, rule: usize) -> Vec<usize> {
    let attributes: Vec<usize> = config.rules[rule]
        .iter()
        .map(|k| config.keys[*k].attribute)
        .collect();
    (0..config.comparisons.len())
        .filter(|c| attributes.contains(&config.comparisons[*c].attribute))
        .collect()
}

/// Comparison vectors of pairs counted by pattern; comparisons not `used`
/// count as missing.
fn patterns_of(
    config: &ResolutionConfig,
    records: &[Features],
    pairs: impl Iterator<Item = (u32, u32)>,
    used: &[bool],
) -> Vec<(Vec<u8>, f64)> {
    let mut patterns: AHashMap<Vec<u8>, f64> = AHashMap::default();
    for (a, b) in pairs {
        let mut v = levels(config, &records[a as usize], &records[b as usize]);
        for (c, level) in v.iter_mut().enumerate() {
            if !used[c] {
                *level = MISSING;
            }
        }
        *patterns.entry(v).or_default() += 1.0;
    }
    let mut patterns: Vec<(Vec<u8>, f64)> = patterns.into_iter().collect();
    // A fixed order makes the floating-point sums, and so the model, reproducible.
    patterns.sort_by(|x, y| x.0.cmp(&y.0));
    patterns
}

/// The usual starting point: matches mostly agree, the best level is likely.
fn initial_m(config: &ResolutionConfig) -> Vec<Vec<f64>> {
    config
        .comparisons
        .iter()
        .map(|c| {
            let levels = c.levels();
            let mut m: Vec<f64> = (0..levels)
                .map(|l| if l == 0 { 0.9 } else { 0.1 / (l as f64 * 2.0) })
                .collect();
            let total: f64 = m.iter().sum();
            m.iter_mut().for_each(|x| *x /= total);
            m
        })
        .collect()
}

/// EM with `u` fixed: estimates the prior and the `m` of the comparisons
/// marked in `estimate` (others keep `m_start`).
fn expectation_maximisation(
    patterns: &[(Vec<u8>, f64)],
    m_start: &[Vec<f64>],
    u: &[Vec<f64>],
    estimate: &[bool],
    max_iterations: usize,
) -> (Vec<Vec<f64>>, f64, usize) {
    let mut m = m_start.to_vec();
    let mut prior = 0.1;
    let mut iterations = 0;
    for _ in 0..max_iterations {
        iterations += 1;
        let mut m_counts: Vec<Vec<f64>> = m.iter().map(|l| vec![0.0; l.len()]).collect();
        let (mut matched, mut total) = (0.0, 0.0);
        for (pattern, count) in patterns {
            let (mut pm, mut pu) = (prior, 1.0 - prior);
            for (c, &level) in pattern.iter().enumerate() {
                if level != MISSING {
                    pm *= m[c][level as usize];
                    pu *= u[c][level as usize];
                }
            }
            let w = pm / (pm + pu);
            matched += w * count;
            total += count;
            for (c, &level) in pattern.iter().enumerate() {
                if level != MISSING {
                    m_counts[c][level as usize] += w * count;
                }
            }
        }
        let new_prior = (matched / total).clamp(1e-9, 1.0 - 1e-9);
        let mut change = (new_prior - prior).abs();
        for (c, levels) in m_counts.iter().enumerate() {
            if !estimate.get(c).copied().unwrap_or(false) {
                continue;
            }
            // One pseudo-pair per level: a level no match happened to show
            // in the training data is rare among matches, not impossible, so
            // it cannot veto a match on its own.
            let sum: f64 = levels.iter().sum::<f64>() + levels.len() as f64 * M_PSEUDO_COUNT;
            for (l, value) in levels.iter().enumerate() {
                let new = (value + M_PSEUDO_COUNT) / sum;
                change = change.max((new - m[c][l]).abs());
                m[c][l] = new;
            }
        }
        prior = new_prior;
        if change < 1e-9 {
            break;
        }
    }
    (m, prior, iterations)
}

/// The share of records holding each exact value, for the most common ones,
/// and the share assumed for the others (one record).
fn term_frequencies(
    c: usize,
    config: &ResolutionConfig,
    records: &[Features],
    max_values: usize,
) -> (BTreeMap<String, f64>, f64) {
    let comparator = &config.comparisons[c].comparator;
    let mut counts: AHashMap<&str, u64> = AHashMap::default();
    let mut holders = 0u64;
    for r in records {
        if let Some(p) = &r.prepared[c] {
            *counts.entry(comparator.tf_key(p)).or_default() += 1;
            holders += 1;
        }
    }
    let holders = holders.max(1) as f64;
    let mut common: Vec<(&str, u64)> = counts.into_iter().filter(|(_, n)| *n > 1).collect();
    common.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    common.truncate(max_values);
    let table = common
        .into_iter()
        .map(|(k, n)| (k.to_string(), n as f64 / holders))
        .collect();
    (table, 1.0 / holders)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::parse_line;

    const PIPELINE: &str = r#"
name: train
identifiers: [{type: none, link: false}]
resolution:
  keys:
    - {name: sur, attribute: surname}
    - {name: city, attribute: city}
  blocking:
    rules: [[sur], [city]]
  comparisons:
    - attribute: given_name
      method: {jaroWinkler: {thresholds: [0.88]}}
    - attribute: surname
      method: exact
      termFrequency: true
    - attribute: city
      method: exact
"#;

    /// 400 people, each seen twice; the second record has a typo in the given
    /// name for one person in four.
    fn workload() -> (Pipeline, Vec<Observation>) {
        let p = Pipeline::from_yaml(PIPELINE, "test", &|_| None).unwrap();
        let syllables = [
            "an", "bo", "ché", "da", "em", "fa", "gu", "ha", "iv", "ju", "ka", "lo",
        ];
        let combine = |a: &[&str], b: &[&str]| -> Vec<String> {
            a.iter()
                .flat_map(|x| b.iter().map(move |y| format!("{x}{y}")))
                .collect()
        };
        let given = combine(&syllables[..8], &syllables[4..]);
        let surnames = combine(&syllables, &syllables[..9]);
        let cities = combine(&syllables[..6], &syllables[6..]);
        let mut state = 7u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut versions = Vec::new();
        for i in 0..400 {
            let (g, s, c) = (
                &given[next(given.len())],
                &surnames[next(surnames.len())],
                &cities[next(cities.len())],
            );
            for copy in 0..2 {
                let g = if copy == 1 && i % 4 == 0 {
                    format!("{g}x")
                } else {
                    g.to_string()
                };
                let line = format!(
                    r#"{{"source":"s","id":"{i}-{copy}","ts":"2026-01-01T00:00:00Z","kind":"person","attributes":{{"given_name":"{g}","surname":"{s}","city":"{c}"}}}}"#
                );
                versions.push(parse_line(line.as_bytes(), &p).unwrap());
            }
        }
        (p, versions)
    }

    #[test]
    fn em_finds_that_matches_agree_and_random_pairs_do_not() {
        let (p, versions) = workload();
        let model = train(&p, &versions, &TrainOptions::default()).unwrap();
        let given = &model.comparisons[0];
        assert_eq!(given.levels.len(), 3);
        // Among matches the exact level dominates; among random pairs it is rare.
        assert!(given.m[0] > 0.6, "{given:?}");
        assert!(given.u[0] < 0.2, "{given:?}");
        let surname = &model.comparisons[1];
        assert!(surname.m[0] > surname.u[0] * 5.0, "{surname:?}");
        assert!(!surname.term_frequencies.is_empty() && surname.tf_floor.is_some());
        assert!(model.prior > 0.0 && model.prior < 0.5, "{}", model.prior);
        assert_eq!(model.training["records"], 800.0);
    }

    #[test]
    fn training_is_reproducible() {
        let (p, versions) = workload();
        let opts = TrainOptions {
            random_pairs: 5_000,
            ..Default::default()
        };
        let a = train(&p, &versions, &opts).unwrap();
        let mut reversed = versions.clone();
        reversed.reverse();
        let b = train(&p, &reversed, &opts).unwrap();
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
    }
}
