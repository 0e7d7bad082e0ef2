//! `kith-runner train`: estimates a resolution model from the data itself,
//! without labels, the way Fellegi-Sunter models are usually fitted:
//!
//! - `u` (how often each comparison level occurs among non-matching pairs)
//!   from random pairs of records, nearly all of which do not match;
//! - `m` (the same among matching pairs) by expectation maximisation in
//!   sessions, one per training rule (`training.rules`, by default the
//!   blocking rules), with `u` held fixed and the comparisons of the rule's
//!   own fields left out: pairs that share a surname block all agree on
//!   surname, which says nothing about matches. Each comparison's `m` is the
//!   mean over the sessions that could estimate it without bias;
//! - the prior (the chance that two random records match) from the share of
//!   matches EM finds among the blocking rules' candidate pairs, with `m` and
//!   `u` held fixed, spread over all pairs of records;
//! - term frequencies (the share of records holding each exact value) for
//!   comparisons that use them.
//!
//! Households are what makes person data hard: members share surname,
//! address and phone, so a session blocked on those finds households, and EM
//! happily learns "same household" as the match class. Two guards keep such
//! a session out of the model, and the report says which and why:
//! - with `households` declared, a session whose rule reads household
//!   fields only is not used (its pairs are households, not people);
//! - a session whose match class disagrees on a comparison more often than
//!   not (`m` of "different" above one half) found something else than
//!   matches, whatever its rule, and is not used either.
//!
//! The result is a pure function of the set of records, the pipeline and the
//! seed; it never looks at which pairs truly match. A model that could not
//! score (no candidate pairs, a probability that is not a finite number) is
//! an error naming the rule or the comparison, never a file.

use super::config::{Households, ResolutionConfig};
use super::features::{block_keys, Features, FieldValue, ValueCounters};
use super::model::{ComparisonModel, Model, SessionModel, MODEL_FORMAT};
use super::score::HouseholdEvidence;
use crate::config::Pipeline;
use crate::observation::Observation;
use ahash::{AHashMap, AHashSet};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// Level value standing for "missing on either side" in a comparison vector.
const MISSING: u8 = u8::MAX;

/// Pairs added to every level's expected count when estimating `m`.
const M_PSEUDO_COUNT: f64 = 1.0;

/// A session whose match class shows "different" on a comparison more often
/// than this did not find matches.
const MAX_M_DIFFERENT: f64 = 0.5;

/// The share of a session's pairs a comparison must be made on (both
/// values present) for that guard to look at it.
const MIN_PRESENT_SHARE: f64 = 0.1;

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
    #[error("no training rule finds a candidate pair ({rules}): EM has nothing to learn from; use rules on fields the records share (a date of birth, a full name), or check that the input holds those fields")]
    NoTrainingPairs { rules: String },
    #[error("`resolution.blocking.rules` ({rules}) find no candidate pair: the prior cannot be estimated and nothing would ever be scored")]
    NoCandidatePairs { rules: String },
    #[error(
        "no training session could be used ({notes}); the model would only hold starting values"
    )]
    NoUsableSession { notes: String },
    #[error("training gave a {what} that is not a finite number ({value}){rule}: the model is not written")]
    NotFinite {
        what: String,
        value: f64,
        rule: String,
    },
}

/// A training session whose `m` goes into the model.
struct UsedSession {
    /// Index into the training rules.
    rule: usize,
    /// Which comparisons the session could estimate (its rule does not read them).
    estimable: Vec<bool>,
    m: Vec<Vec<f64>>,
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
        .map(|b| Features::extract(config, &|i| field_value(config, b, i), &mut counters))
        .collect();
    let n = records.len();
    if n < 2 {
        return Err(TrainError::TooFewRecords {
            kind: config.kind.to_string(),
            found: n,
        });
    }

    let u = estimate_u(config, &records, opts);
    let training_blocks: Vec<Vec<String>> = records
        .iter()
        .map(|r| block_keys(config, &config.training_rules, &r.fingerprint))
        .collect();
    let pairs_by_session = candidate_pairs_by_rule(
        config.training_rules.len(),
        config.max_block_size,
        &training_blocks,
    );
    if pairs_by_session.iter().all(|p| p.is_empty()) {
        return Err(TrainError::NoTrainingPairs {
            rules: rules_text(config, &config.training_rules),
        });
    }
    let initial = initial_m(config);
    let households = config.households.as_ref();
    let mut sessions = Vec::new();
    let mut session_m = Vec::new();
    let mut iterations = 0;
    for (rule, pairs) in pairs_by_session.iter().enumerate() {
        let read = rule_comparisons(config, &config.training_rules[rule]);
        let estimable: Vec<bool> = (0..u.len()).map(|c| !read.contains(&c)).collect();
        let mut session = SessionModel {
            rule: config.rule_text(&config.training_rules[rule]),
            candidate_pairs: pairs.len() as u64,
            match_share: 0.0,
            iterations: 0,
            used: false,
            note: None,
            m: BTreeMap::new(),
        };
        if pairs.is_empty() {
            session.note = Some("no candidate pairs".into());
        } else if !estimable.iter().any(|e| *e) {
            session.note = Some("its rule reads every compared field".into());
        } else {
            let patterns = patterns_of(config, &records, pairs.iter().copied(), &estimable);
            let (m_rule, share, rounds) = expectation_maximisation(
                &patterns,
                &initial,
                &u,
                &estimable,
                households,
                opts.max_iterations,
            );
            iterations += rounds;
            session.match_share = share;
            session.iterations = rounds as u64;
            for c in (0..u.len()).filter(|c| estimable[*c]) {
                session
                    .m
                    .insert(config.comparisons[c].name.clone(), m_rule[c].clone());
            }
            let pairs_in = patterns.iter().map(|(_, n)| n).sum::<f64>().max(1.0);
            let present: Vec<f64> = (0..u.len())
                .map(|c| {
                    patterns
                        .iter()
                        .filter(|(v, _)| v[c] != MISSING)
                        .map(|(_, n)| n)
                        .sum::<f64>()
                        / pairs_in
                })
                .collect();
            session.note = unusable_session(config, &read, &estimable, &present, &m_rule);
            session.used = session.note.is_none();
            if session.used {
                session_m.push(UsedSession {
                    rule,
                    estimable,
                    m: m_rule,
                });
            }
        }
        sessions.push(session);
    }
    if session_m.is_empty() {
        let notes: Vec<String> = sessions
            .iter()
            .map(|s| format!("{}: {}", s.rule, s.note.as_deref().unwrap_or("not used")))
            .collect();
        return Err(TrainError::NoUsableSession {
            notes: notes.join("; "),
        });
    }

    let mut trained_by: Vec<Vec<String>> = vec![Vec::new(); u.len()];
    let m: Vec<Vec<f64>> = (0..u.len())
        .map(|c| {
            let from: Vec<&UsedSession> = session_m.iter().filter(|s| s.estimable[c]).collect();
            if records.iter().filter(|r| r.prepared[c].is_some()).count() < 2 {
                // The data never holds this value twice: it can say nothing
                // either way, so every level weighs zero (m = u).
                trained_by[c].push("no data: m = u".into());
                u[c].clone()
            } else if from.is_empty() {
                tracing::warn!(comparison = %config.comparisons[c].name, "no usable training session leaves this comparison out of its rule: its m cannot be estimated and keeps its starting values");
                trained_by[c].push("starting values".into());
                initial[c].clone()
            } else {
                let mut sum = vec![0.0; u[c].len()];
                for session in &from {
                    trained_by[c].push(config.rule_text(&config.training_rules[session.rule]));
                    for (s, v) in sum.iter_mut().zip(&session.m[c]) {
                        *s += v;
                    }
                }
                sum.iter().map(|s| s / from.len() as f64).collect()
            }
        })
        .collect();

    // The prior, from the pairs that will be scored: the blocking rules'.
    let prediction_blocks: Vec<&[String]> = records.iter().map(|r| r.blocks.as_slice()).collect();
    let mut all_pairs: Vec<(u32, u32)> = candidate_pairs_by_rule(
        config.rules.len(),
        config.max_block_size,
        &prediction_blocks,
    )
    .into_iter()
    .flatten()
    .collect();
    all_pairs.sort_unstable();
    all_pairs.dedup();
    if all_pairs.is_empty() {
        return Err(TrainError::NoCandidatePairs {
            rules: rules_text(config, &config.rules),
        });
    }
    let candidate_pairs = all_pairs.len();
    let everything = vec![true; u.len()];
    let patterns = patterns_of(config, &records, all_pairs.into_iter(), &everything);
    let (_, candidate_prior, rounds) =
        expectation_maximisation(&patterns, &m, &u, &[], households, opts.max_iterations);
    iterations += rounds;
    // m and u describe random pairs, so the prior must too: the matches found
    // among the candidates (nearly all matches, if blocking is good) spread
    // over all pairs. Using the candidates' own share would count the
    // agreement that made them candidates twice.
    let all_record_pairs = (n as f64) * (n as f64 - 1.0) / 2.0;
    let prior = (candidate_prior * candidate_pairs as f64 / all_record_pairs).clamp(1e-12, 0.5);

    let comparisons: Vec<ComparisonModel> = config
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
                trained_by: std::mem::take(&mut trained_by[c]),
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
    let model = Model {
        format: MODEL_FORMAT,
        prior,
        comparisons,
        training,
        sessions,
    };
    check_finite(&model)?;
    Ok(model)
}

/// The value of field `i` in a record's body.
fn field_value<'a>(
    config: &ResolutionConfig,
    body: &'a crate::observation::Body,
    i: usize,
) -> Option<FieldValue<'a>> {
    use super::config::Field;
    match &config.fields[i] {
        Field::Attribute(name) => body
            .attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| FieldValue::Json(v.as_str())),
        // Identifiers are sorted: the first of the type is the smallest,
        // as the engine takes it.
        Field::Identifier(t, _) => body
            .identifiers
            .iter()
            .filter(|id| id.type_id == *t)
            .map(|id| id.value.as_str())
            .min()
            .map(FieldValue::Text),
    }
}

/// Why a session's `m` cannot be used, or None when it can.
fn unusable_session(
    config: &ResolutionConfig,
    read: &[usize],
    estimable: &[bool],
    present: &[f64],
    m: &[Vec<f64>],
) -> Option<String> {
    if let Some(h) = &config.households {
        // A rule on household fields alone (surname and street) finds
        // households; one that also reads a personal field (given name and
        // surname) finds people.
        if !read.is_empty() && read.iter().all(|c| h.is_member(*c)) {
            let names: Vec<&str> = read
                .iter()
                .map(|c| config.comparisons[*c].name.as_str())
                .collect();
            return Some(format!(
                "its rule reads only household fields ({}): its pairs are households, not people",
                names.join(", ")
            ));
        }
    }
    // Only a comparison most pairs can make speaks for the session: a
    // suffix present on a few pairs (mostly Jr. against Sr.) says little
    // about what the rest of the match class is.
    (0..m.len())
        .filter(|c| estimable[*c] && present.get(*c).copied().unwrap_or(0.0) >= MIN_PRESENT_SHARE)
        .find_map(|c| {
            let different = m[c].last().copied().unwrap_or(0.0);
            (different > MAX_M_DIFFERENT).then(|| {
                format!(
                    "its match class shows `{}` different in {:.0}% of pairs: it found something else than matches (households?)",
                    config.comparisons[c].name,
                    different * 100.0
                )
            })
        })
}

/// Every probability of the model is a finite number, or an error naming it.
fn check_finite(model: &Model) -> Result<(), TrainError> {
    let bad = |what: String, value: f64, rule: String| TrainError::NotFinite { what, value, rule };
    if !model.prior.is_finite() {
        return Err(bad("prior".into(), model.prior, String::new()));
    }
    for c in &model.comparisons {
        for (what, values) in [("m", &c.m), ("u", &c.u)] {
            if let Some((l, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                let rule = if what == "m" && !c.trained_by.is_empty() {
                    format!(" from sessions {}", c.trained_by.join(", "))
                } else {
                    String::new()
                };
                return Err(bad(
                    format!(
                        "{what} of `{}` level `{}`",
                        c.name,
                        c.levels.get(l).map(String::as_str).unwrap_or("?")
                    ),
                    *v,
                    rule,
                ));
            }
        }
    }
    Ok(())
}

fn rules_text(config: &ResolutionConfig, rules: &[Vec<usize>]) -> String {
    rules
        .iter()
        .map(|r| config.rule_text(r))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `train` prints: per session its candidates, match share and the `m`
/// it estimated; then per comparison `m`, `u` and the weight of each level,
/// with the sessions `m` came from.
pub fn report(model: &Model) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, s) in model.sessions.iter().enumerate() {
        let status = match (&s.note, s.used) {
            (_, true) => "used".to_string(),
            (Some(note), false) => format!("NOT USED: {note}"),
            (None, false) => "not used".to_string(),
        };
        lines.push(format!(
            "session {} {}: {} candidate pairs, estimated match share {:.4}, {} EM iterations; {status}",
            i + 1,
            s.rule,
            s.candidate_pairs,
            s.match_share,
            s.iterations
        ));
        for (name, m) in &s.m {
            let levels = model
                .comparisons
                .iter()
                .find(|c| &c.name == name)
                .map(|c| c.levels.clone())
                .unwrap_or_default();
            let cells: Vec<String> = m
                .iter()
                .enumerate()
                .map(|(l, p)| {
                    format!(
                        "{} {p:.4}",
                        levels.get(l).map(String::as_str).unwrap_or("?")
                    )
                })
                .collect();
            lines.push(format!("    m {name:<20} {}", cells.join(" | ")));
        }
    }
    lines.push(format!("model: prior {:.3e}", model.prior));
    for c in &model.comparisons {
        lines.push(format!("  {} (m from {})", c.name, c.trained_by.join(", ")));
        for (l, level) in c.levels.iter().enumerate() {
            let (m, u) = (
                c.m.get(l).copied().unwrap_or(0.0),
                c.u.get(l).copied().unwrap_or(0.0),
            );
            lines.push(format!(
                "    {level:<40} m {m:.4}  u {u:.6}  weight {:+.2}",
                (m / u).log2()
            ));
        }
    }
    lines
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

/// The candidate pairs of each of `rules` rules, from every record's block
/// keys (each starting with its rule's index); blocks over the size limit
/// are skipped.
fn candidate_pairs_by_rule<B: AsRef<[String]>>(
    rules: usize,
    max_block_size: usize,
    record_blocks: &[B],
) -> Vec<Vec<(u32, u32)>> {
    let mut blocks: AHashMap<&str, Vec<u32>> = AHashMap::default();
    for (i, keys) in record_blocks.iter().enumerate() {
        for key in keys.as_ref() {
            blocks.entry(key.as_str()).or_default().push(i as u32);
        }
    }
    let mut by_rule: Vec<AHashSet<(u32, u32)>> = vec![AHashSet::default(); rules];
    for (key, members) in &blocks {
        if members.len() > max_block_size {
            continue;
        }
        let rule = key
            .split('\u{1f}')
            .next()
            .and_then(|r| r.parse::<usize>().ok());
        let Some(set) = rule.and_then(|r| by_rule.get_mut(r)) else {
            continue;
        };
        for (i, &a) in members.iter().enumerate() {
            for &b in &members[i + 1..] {
                set.insert((a.min(b), a.max(b)));
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

/// The comparisons reading a field that a rule's keys are made from.
fn rule_comparisons(config: &ResolutionConfig, rule: &[usize]) -> Vec<usize> {
    let fields: Vec<usize> = rule.iter().map(|k| config.keys[*k].field).collect();
    (0..config.comparisons.len())
        .filter(|c| fields.contains(&config.comparisons[*c].field))
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
    households: Option<&Households>,
    max_iterations: usize,
) -> (Vec<Vec<f64>>, f64, usize) {
    let mut m = m_start.to_vec();
    let mut prior: f64 = 0.1;
    let mut iterations = 0;
    let household = |c: usize| households.is_some_and(|h| h.is_member(c));
    let address = |c: usize| households.is_some_and(|h| h.is_address(c));
    for _ in 0..max_iterations {
        iterations += 1;
        let mut m_counts: Vec<Vec<f64>> = m.iter().map(|l| vec![0.0; l.len()]).collect();
        let (mut matched, mut total) = (0.0, 0.0);
        // The household comparisons are combined here as they are when
        // scoring: a father and his namesake son agree on every household
        // field, and without the cap that agreement would carry them into
        // the match class and teach it that dates of birth and suffixes
        // differ; a mover's address would count against him four times.
        let cap = households.map(|h| {
            (h.max_probability / (1.0 - h.max_probability)).ln() - (prior / (1.0 - prior)).ln()
        });
        for (pattern, count) in patterns {
            let mut log_ratio = 0.0;
            let mut household_ratio = HouseholdEvidence::default();
            for (c, &level) in pattern.iter().enumerate() {
                if level != MISSING {
                    let l = level as usize;
                    let r = m[c][l].ln() - u[c][l].ln();
                    if household(c) {
                        household_ratio.add(r, address(c));
                    } else {
                        log_ratio += r;
                    }
                }
            }
            log_ratio += household_ratio.combined(cap);
            // P(match | pattern) from the prior odds and the likelihood ratio.
            let odds = (prior / (1.0 - prior)).ln() + log_ratio;
            let w = 1.0 / (1.0 + (-odds).exp());
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

    #[test]
    fn rules_that_find_no_pair_are_an_error_naming_them() {
        let (_, versions) = workload();
        // Block on a field no record holds: no session has a pair.
        let text = PIPELINE.replace("[[sur], [city]]", "[[nothing]]").replace(
            "    - {name: city, attribute: city}\n",
            "    - {name: city, attribute: city}\n    - {name: nothing, attribute: middle_name}\n",
        );
        let p = Pipeline::from_yaml(&text, "test", &|_| None).unwrap();
        let err = train(&p, &versions, &TrainOptions::default()).unwrap_err();
        assert!(matches!(err, TrainError::NoTrainingPairs { .. }), "{err}");
        assert!(err.to_string().contains("[nothing]"), "{err}");

        // Training rules that find pairs, blocking rules that find none: the
        // prior cannot be estimated.
        let text = text.replace(
            "    rules: [[nothing]]\n",
            "    rules: [[nothing]]\n  training:\n    rules: [[sur]]\n",
        );
        let p = Pipeline::from_yaml(&text, "test", &|_| None).unwrap();
        let err = train(&p, &versions, &TrainOptions::default()).unwrap_err();
        assert!(matches!(err, TrainError::NoCandidatePairs { .. }), "{err}");
        assert!(err.to_string().contains("[nothing]"), "{err}");
    }

    #[test]
    fn a_model_that_is_not_finite_is_refused_naming_the_level() {
        let (p, versions) = workload();
        let mut model = train(&p, &versions, &TrainOptions::default()).unwrap();
        assert!(check_finite(&model).is_ok());
        model.comparisons[1].m[0] = f64::NAN;
        let err = check_finite(&model).unwrap_err().to_string();
        assert!(err.contains("m of `surname` level `exact`"), "{err}");
        assert!(err.contains("from sessions [city]"), "{err}");
        model.comparisons[1].m[0] = 0.5;
        model.prior = f64::INFINITY;
        let err = check_finite(&model).unwrap_err().to_string();
        assert!(err.contains("prior"), "{err}");
    }

    #[test]
    fn sessions_leave_out_their_own_fields_and_households() {
        let (_, versions) = workload();
        let text = PIPELINE.replace(
            "  comparisons:\n",
            "  households:\n    comparisons: [city]\n  comparisons:\n",
        );
        let p = Pipeline::from_yaml(&text, "test", &|_| None).unwrap();
        let model = train(&p, &versions, &TrainOptions::default()).unwrap();
        assert_eq!(model.sessions.len(), 2);
        let (sur, city) = (&model.sessions[0], &model.sessions[1]);
        assert_eq!((sur.rule.as_str(), sur.used), ("[sur]", true));
        assert!(!sur.m.contains_key("surname") && sur.m.contains_key("city"));
        assert_eq!((city.rule.as_str(), city.used), ("[city]", false));
        assert!(
            city.note
                .as_deref()
                .unwrap_or("")
                .contains("only household fields (city)"),
            "{city:?}"
        );
        // surname is only estimable by the unused session: its m keeps the
        // starting values, and the report says so.
        let surname = model
            .comparisons
            .iter()
            .find(|c| c.name == "surname")
            .unwrap();
        assert_eq!(surname.trained_by, ["starting values"]);
        let city_m = model.comparisons.iter().find(|c| c.name == "city").unwrap();
        assert_eq!(city_m.trained_by, ["[sur]"]);
        let report = report(&model).join("\n");
        assert!(
            report.contains("session 2 [city]") && report.contains("NOT USED"),
            "{report}"
        );
        assert!(report.contains("weight"), "{report}");
    }

    /// 300 people seen twice (a tenth with a slip in the day of birth) and 60
    /// fathers with a namesake son at the same home, each seen twice. Street,
    /// zip and phone are one per home.
    fn namesakes(households: &str) -> (Pipeline, Vec<Observation>) {
        let text = format!(
            r#"
name: namesakes
identifiers: [{{type: none, link: false}}]
resolution:
  keys:
    - {{name: g, attribute: given_name}}
    - {{name: s, attribute: surname}}
  blocking:
    rules: [[g, s]]
{households}  comparisons:
    - attribute: given_name
      method: exact
    - attribute: surname
      method: exact
    - attribute: dob
      method: {{date: {{maxYearDistances: []}}}}
    - attribute: street
      method: exact
    - attribute: zip
      method: exact
    - attribute: phone
      method: exact
"#
        );
        let p = Pipeline::from_yaml(&text, "test", &|_| None).unwrap();
        let mut versions = Vec::new();
        let mut add = |id: String, given: &str, surname: &str, dob: &str, home: &str| {
            let line = format!(
                r#"{{"source":"s","id":"{id}","ts":"2026-01-01T00:00:00Z","kind":"person","attributes":{{"given_name":"{given}","surname":"{surname}","dob":"{dob}","street":"{home} st","zip":"z{home}","phone":"t{home}"}}}}"#
            );
            versions.push(parse_line(line.as_bytes(), &p).unwrap());
        };
        for i in 0..300u32 {
            let (given, surname) = (format!("g{i}"), format!("s{i}"));
            let home = format!("p{i}");
            let day = 1 + i % 28;
            add(
                format!("p{i}a"),
                &given,
                &surname,
                &format!("1960-01-{day:02}"),
                &home,
            );
            let day = if i % 10 == 0 { day % 28 + 1 } else { day };
            add(
                format!("p{i}b"),
                &given,
                &surname,
                &format!("1960-01-{day:02}"),
                &home,
            );
        }
        for i in 0..60u32 {
            let (given, surname) = (format!("f{i}"), format!("fs{i}"));
            let home = format!("f{i}");
            for (who, year) in [("father", 1948), ("son", 1979)] {
                for copy in ["a", "b"] {
                    add(
                        format!("{who}{i}{copy}"),
                        &given,
                        &surname,
                        &format!("{year}-05-{:02}", 1 + i % 28),
                        &home,
                    );
                }
            }
        }
        (p, versions)
    }

    #[test]
    fn a_namesake_son_at_the_same_address_does_not_teach_that_dates_of_birth_differ() {
        let m_different = |households: &str| {
            let (p, versions) = namesakes(households);
            let model = train(&p, &versions, &TrainOptions::default()).unwrap();
            let dob = model.comparisons.iter().find(|c| c.name == "dob").unwrap();
            *dob.m.last().unwrap()
        };
        // Without households, the street, zip and phone they share carry
        // father and son into the match class: a date of birth "different"
        // in about a third of it (240 such pairs beside 420 true ones).
        let without = m_different("");
        assert!(without > 0.15, "{without}");
        // With the home's fields declared household fields, their agreement
        // lifts a pair only to the cap, and the match class is the people:
        // a date of birth differs in it about as often as it does among the
        // people (three slips, 9th to 10th and the like, change two digits).
        let with = m_different("  households:\n    comparisons: [street, zip, phone]\n");
        assert!(with < 0.02, "{with}");
    }
}
