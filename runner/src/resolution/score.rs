//! Fellegi-Sunter scoring of a pair: the prior log-odds plus, per comparison,
//! the weight `log2(m / u)` of the level the pair lands on (a missing value
//! on either side adds nothing). Pure and symmetric, so a pair scores the same
//! whichever record arrived first.

use super::compare::share_group;
use super::config::{probability, Comparison, ResolutionConfig, Weights};
use super::features::Features;

/// One comparison's part of a score, for explanations.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub comparison: String,
    /// The level name, or `missing` when either value is absent.
    pub level: String,
    pub weight: f64,
    /// The share of records holding the value, when term frequencies adjusted
    /// an exact match.
    pub term_frequency: Option<f64>,
}

/// The level of comparison `i` for a pair, None when a side lacks the value.
/// Right after "exact" come, when the comparison has them, "swapped" (not
/// equal, but both fields match crosswise) and then "nickname" (the two
/// names share a nickname group); the method's own levels follow, shifted.
pub fn level(c: &Comparison, i: usize, a: &Features, b: &Features) -> Option<u8> {
    let (pa, pb) = (a.prepared[i].as_ref()?, b.prepared[i].as_ref()?);
    let direct = c.comparator.compare(pa, pb);
    if direct == 0 {
        return Some(0);
    }
    let mut inserted = 0u8;
    if c.swapped_with.is_some() {
        let different = (c.comparator.levels() - 1) as u8;
        let swapped = match (&a.prepared_swapped[i], &b.prepared_swapped[i]) {
            (Some(a_other), Some(b_other)) => {
                c.comparator.compare(pa, b_other) < different
                    && c.comparator.compare(a_other, pb) < different
            }
            _ => false,
        };
        if swapped {
            return Some(1);
        }
        inserted += 1;
    }
    if c.nicknames.is_some() {
        if share_group(&a.nickname_groups[i], &b.nickname_groups[i]) {
            return Some(1 + inserted);
        }
        inserted += 1;
    }
    Some(direct + inserted)
}

/// The term-frequency key of an exact match, when the comparison uses them.
fn tf_key<'f>(c: &Comparison, i: usize, level: u8, a: &'f Features) -> Option<&'f str> {
    if level != 0 || !c.term_frequency {
        return None;
    }
    a.prepared[i].as_ref().map(|p| c.comparator.tf_key(p))
}

/// The log2 odds that two records match. The household comparisons' weights
/// are combined apart ([`HouseholdEvidence`]): they are correlated (one
/// household shares them all, and a move changes them all), so counting each
/// as independent evidence would make spouses one person and a mover two.
pub fn score(config: &ResolutionConfig, weights: &Weights, a: &Features, b: &Features) -> f64 {
    let mut total = weights.prior_log2_odds;
    let mut household = HouseholdEvidence::default();
    for (i, c) in config.comparisons.iter().enumerate() {
        if let Some(level) = level(c, i, a, b) {
            let w = weights.levels[i].weight(level, tf_key(c, i, level, a));
            if is_household(config, i) {
                household.add(w, is_address(config, i));
            } else {
                total += w;
            }
        }
    }
    total + household.combined(weights.household_cap)
}

/// The household comparisons' weights of one pair, combined as one piece
/// of evidence about the household rather than as independent ones.
///
/// Agreement is summed and capped (`households.maxProbability`): a spouse
/// agrees on all of it. Disagreement of the address comparisons
/// (`households.address`) counts once, by its strongest weight: a household
/// that moved changes house number, street, zip and landline together, and
/// the chance of that among matches is the chance of a move, not its product
/// over four fields. Other household disagreement (a surname) adds as usual,
/// and so does agreement, so a mover who kept the city still gains the city.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HouseholdEvidence {
    agreeing: f64,
    /// Disagreement outside the address comparisons.
    other_disagreement: f64,
    address_disagreeing: f64,
    strongest_address_disagreement: f64,
}

impl HouseholdEvidence {
    pub(crate) fn add(&mut self, weight: f64, address: bool) {
        if weight > 0.0 {
            self.agreeing += weight;
        } else if address {
            self.address_disagreeing += weight;
            self.strongest_address_disagreement = self.strongest_address_disagreement.min(weight);
        } else {
            self.other_disagreement += weight;
        }
    }

    /// The agreement, at most `cap`.
    fn capped_agreement(&self, cap: Option<f64>) -> f64 {
        match cap {
            Some(cap) => self.agreeing.min(cap),
            None => self.agreeing,
        }
    }

    /// The agreement, at most `cap`, and the disagreement.
    pub(crate) fn combined(&self, cap: Option<f64>) -> f64 {
        self.capped_agreement(cap) + self.other_disagreement + self.strongest_address_disagreement
    }

    /// The sum of the weights as if each were independent evidence.
    pub(crate) fn summed(&self) -> f64 {
        self.agreeing + self.other_disagreement + self.address_disagreeing
    }
}

/// How strongly two records say they are different people, in bits (0 or
/// more): the sum of the negative weights, household comparisons aside. A
/// different address is what a mover looks like; a different date of birth
/// and a different first name are what two people look like.
pub fn disagreement(
    config: &ResolutionConfig,
    weights: &Weights,
    a: &Features,
    b: &Features,
) -> f64 {
    let mut against = 0.0;
    for (i, c) in config.comparisons.iter().enumerate() {
        if is_household(config, i) {
            continue;
        }
        if let Some(level) = level(c, i, a, b) {
            let w = weights.levels[i].weight(level, None);
            if w < 0.0 {
                against -= w;
            }
        }
    }
    against
}

fn is_address(config: &ResolutionConfig, i: usize) -> bool {
    config.households.as_ref().is_some_and(|h| h.is_address(i))
}

fn is_household(config: &ResolutionConfig, i: usize) -> bool {
    config.households.as_ref().is_some_and(|h| h.is_member(i))
}

/// Every comparison's level and weight, then the total.
pub fn waterfall(
    config: &ResolutionConfig,
    weights: &Weights,
    a: &Features,
    b: &Features,
) -> (Vec<Step>, f64) {
    let mut steps = Vec::new();
    let mut total = weights.prior_log2_odds;
    let mut household = HouseholdEvidence::default();
    for (i, c) in config.comparisons.iter().enumerate() {
        let step = match level(c, i, a, b) {
            Some(level) => {
                let tf_key = tf_key(c, i, level, a);
                let weight = weights.levels[i].weight(level, tf_key);
                let term_frequency = tf_key.and_then(|k| {
                    weights.levels[i]
                        .term_frequencies
                        .as_ref()
                        .map(|(t, floor)| t.get(k).copied().unwrap_or(*floor))
                });
                Step {
                    comparison: c.name.clone(),
                    level: c.level_names()[level as usize].clone(),
                    weight,
                    term_frequency,
                }
            }
            None => Step {
                comparison: c.name.clone(),
                level: "missing".to_string(),
                weight: 0.0,
                term_frequency: None,
            },
        };
        total += step.weight;
        if is_household(config, i) {
            household.add(step.weight, is_address(config, i));
        }
        steps.push(step);
    }
    // One line for what combining the household fields changed, so the
    // steps still add up to the total.
    let summed = household.summed();
    let combined = household.combined(weights.household_cap);
    let change = combined - summed;
    if change.abs() > 1e-9 {
        let capped = household.capped_agreement(weights.household_cap);
        let mut parts = Vec::new();
        if capped < household.agreeing {
            parts.push(format!(
                "agreeing {:+.2} capped at {capped:+.2}",
                household.agreeing
            ));
        }
        if household.strongest_address_disagreement > household.address_disagreeing {
            parts.push(format!(
                "address disagreeing {:+.2} counted once at {:+.2}",
                household.address_disagreeing, household.strongest_address_disagreement
            ));
        }
        steps.push(Step {
            comparison: "household".to_string(),
            level: parts.join("; "),
            weight: change,
            term_frequency: None,
        });
        total += change;
    }
    (steps, total)
}

/// The text a data steward reads: one line per comparison, then the total
/// against the thresholds.
pub fn render_waterfall(
    config: &ResolutionConfig,
    weights: &Weights,
    steps: &[Step],
    total: f64,
) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<24} {:<28} {:>8}",
        "prior",
        format!("p = {:.6}", weights.prior),
        format!("{:+.2}", weights.prior_log2_odds)
    )];
    for s in steps {
        let level = match s.term_frequency {
            Some(tf) => format!("{} (value share {tf:.2e})", s.level),
            None => s.level.clone(),
        };
        // Where this comparison's m came from, so a weight that looks wrong
        // can be traced to the training session that produced it.
        let source = config
            .comparisons
            .iter()
            .position(|c| c.name == s.comparison)
            .and_then(|i| weights.levels.get(i))
            .filter(|l| !l.trained_by.is_empty())
            .map(|l| format!("   m from {}", l.trained_by.join(", ")))
            .unwrap_or_default();
        lines.push(format!(
            "{:<24} {:<28} {:>8}{source}",
            s.comparison,
            level,
            format!("{:+.2}", s.weight)
        ));
    }
    let p = probability(total);
    let verdict = if total >= weights.match_log2_odds {
        "match: linked"
    } else if total >= weights.possible_log2_odds {
        "possible match: reported, not linked"
    } else {
        "no match"
    };
    lines.push(format!(
        "{:<24} {:<28} {:>8}   match probability {p:.6}; thresholds: match {} ({:+.2}), possible {} ({:+.2}): {verdict}",
        "total",
        "",
        format!("{total:+.2}"),
        config.match_threshold,
        weights.match_log2_odds,
        config.possible_threshold,
        weights.possible_log2_odds
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolution::features::{Features, FieldValue, ValueCounters};
    use crate::resolution::ResolutionConfig;
    use kith_api::pipeline::ResolutionSpec;

    fn config() -> ResolutionConfig {
        let spec: ResolutionSpec = serde_json::from_value(serde_json::json!({
            "keys": [{"name": "g", "attribute": "given_name"}],
            "blocking": {"rules": [["g"]]},
            "comparisons": [
                {"attribute": "given_name", "method": {"jaroWinkler": {"thresholds": [0.9]}}, "swappedWith": "surname"},
                {"attribute": "surname", "method": "exact"}
            ]
        }))
        .unwrap();
        let types: Vec<kith_api::pipeline::IdentifierTypeSpec> =
            serde_json::from_value(serde_json::json!([{"type": "email"}])).unwrap();
        let identifiers = crate::config::IdentifierTypes::from_spec(&types).unwrap();
        ResolutionConfig::compile(&spec, &identifiers).unwrap()
    }

    fn features(config: &ResolutionConfig, given: &str, surname: &str) -> Features {
        let values = [format!("\"{given}\""), format!("\"{surname}\"")];
        let lookup = |i: usize| Some(FieldValue::Json(values[i].as_str()));
        Features::extract(config, &lookup, &mut ValueCounters::default())
    }

    #[test]
    fn swapped_fields_land_on_their_own_level() {
        let c = config();
        let names = c.comparisons[0].level_names();
        assert_eq!(
            names,
            [
                "exact",
                "swapped with surname",
                "jaro-winkler >= 0.9",
                "different"
            ]
        );
        let ann_lee = features(&c, "Ann", "Lee");
        let level_of = |other: &Features| level(&c.comparisons[0], 0, &ann_lee, other);
        assert_eq!(level_of(&features(&c, "Ann", "Lee")), Some(0));
        assert_eq!(level_of(&features(&c, "Lee", "Ann")), Some(1));
        // Only one of the two crosswise comparisons matches: not a swap.
        assert_eq!(level_of(&features(&c, "Lee", "Smith")), Some(3));
        assert_eq!(level_of(&features(&c, "Anne", "Lee")), Some(2));
        assert_eq!(c.comparisons[0].levels(), 4);
    }
}
