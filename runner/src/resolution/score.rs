//! Fellegi-Sunter scoring of a pair: the prior log-odds plus, per comparison,
//! the weight `log2(m / u)` of the level the pair lands on (a missing value
//! on either side adds nothing). Pure and symmetric, so a pair scores the same
//! whichever record arrived first.

use super::config::{probability, ResolutionConfig, Weights};
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

/// The log2 odds that two records match.
pub fn score(config: &ResolutionConfig, weights: &Weights, a: &Features, b: &Features) -> f64 {
    let mut total = weights.prior_log2_odds;
    for (i, c) in config.comparisons.iter().enumerate() {
        if let (Some(pa), Some(pb)) = (&a.prepared[i], &b.prepared[i]) {
            let level = c.comparator.compare(pa, pb);
            let tf_key = (level == 0 && c.term_frequency).then(|| c.comparator.tf_key(pa));
            total += weights.levels[i].weight(level, tf_key);
        }
    }
    total
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
    for (i, c) in config.comparisons.iter().enumerate() {
        let step = match (&a.prepared[i], &b.prepared[i]) {
            (Some(pa), Some(pb)) => {
                let level = c.comparator.compare(pa, pb);
                let tf_key = (level == 0 && c.term_frequency).then(|| c.comparator.tf_key(pa));
                let weight = weights.levels[i].weight(level, tf_key);
                let term_frequency = tf_key.and_then(|k| {
                    weights.levels[i]
                        .term_frequencies
                        .as_ref()
                        .map(|(t, floor)| t.get(k).copied().unwrap_or(*floor))
                });
                Step {
                    comparison: c.name.clone(),
                    level: c.comparator.level_names()[level as usize].clone(),
                    weight,
                    term_frequency,
                }
            }
            _ => Step {
                comparison: c.name.clone(),
                level: "missing".to_string(),
                weight: 0.0,
                term_frequency: None,
            },
        };
        total += step.weight;
        steps.push(step);
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
        lines.push(format!(
            "{:<24} {:<28} {:>8}",
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
