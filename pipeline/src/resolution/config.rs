//! The `resolution` section validated into typed values: blocking keys and
//! rules by index, compiled comparators, and (from the model or the spec) the
//! match weight of every comparison level.

use super::compare::Comparator;
use super::model::{ComparisonModel, Model};
use crate::config::ConfigError;
use crate::observation::Kind;
use kith_api::pipeline::{KeyTransform, ResolutionSpec};
use std::collections::HashMap;

#[derive(Debug)]
pub struct BlockingKey {
    pub name: String,
    /// Index into [`ResolutionConfig::attributes`].
    pub attribute: usize,
    pub transform: KeyTransform,
}

pub struct Comparison {
    pub name: String,
    /// Index into [`ResolutionConfig::attributes`].
    pub attribute: usize,
    pub comparator: Comparator,
    pub term_frequency: bool,
    /// The attribute (index) this one is compared with crosswise, with its name.
    pub swapped_with: Option<(usize, String)>,
}

impl Comparison {
    /// Number of levels, best first; the last is "different".
    pub fn levels(&self) -> usize {
        self.comparator.levels() + usize::from(self.swapped_with.is_some())
    }

    /// Level names, as stored in models and shown by `explain`.
    pub fn level_names(&self) -> Vec<String> {
        let mut names = self.comparator.level_names();
        if let Some((_, other)) = &self.swapped_with {
            names.insert(1, format!("swapped with {other}"));
        }
        names
    }
}

/// What entity resolution compares and how it blocks (no probabilities).
pub struct ResolutionConfig {
    pub kind: Kind,
    /// The attributes resolution reads, each once.
    pub attributes: Vec<String>,
    pub keys: Vec<BlockingKey>,
    /// Each rule: indexes into `keys`, all equal (AND); rules are OR-ed.
    pub rules: Vec<Vec<usize>>,
    pub max_block_size: usize,
    pub comparisons: Vec<Comparison>,
    pub max_value_chars: usize,
    pub match_threshold: f64,
    pub possible_threshold: f64,
}

/// Match weights: `log2(m / u)` per comparison level, with term frequencies.
#[derive(Debug, Clone)]
pub struct Weights {
    pub prior: f64,
    pub prior_log2_odds: f64,
    pub levels: Vec<LevelWeights>,
    pub match_log2_odds: f64,
    pub possible_log2_odds: f64,
}

#[derive(Debug, Clone)]
pub struct LevelWeights {
    pub m: Vec<f64>,
    pub u: Vec<f64>,
    pub weights: Vec<f64>,
    /// Exact-match key to its share of records, for term-frequency comparisons.
    pub term_frequencies: Option<(HashMap<String, f64>, f64)>,
}

impl LevelWeights {
    /// The weight of a level; for an exact match with term frequencies, the
    /// value's own share replaces the average `u`.
    pub fn weight(&self, level: u8, tf_key: Option<&str>) -> f64 {
        let l = level as usize;
        if l == 0 {
            if let (Some((table, floor)), Some(key)) = (&self.term_frequencies, tf_key) {
                let share = table.get(key).copied().unwrap_or(*floor).max(1e-12);
                return (self.m[0] / share).log2();
            }
        }
        self.weights[l]
    }
}

pub fn log2_odds(p: f64) -> f64 {
    (p / (1.0 - p)).log2()
}

pub fn probability(log2_odds: f64) -> f64 {
    let odds = log2_odds.exp2();
    odds / (1.0 + odds)
}

impl ResolutionConfig {
    pub fn compile(spec: &ResolutionSpec) -> Result<Self, ConfigError> {
        let field = |f: &str| format!("resolution.{f}");
        let kind = Kind::parse(&spec.kind).ok_or_else(|| {
            ConfigError::invalid(
                field("kind"),
                "accepted: person, organization, device, account",
            )
        })?;
        let mut attributes: Vec<String> = Vec::new();
        let mut attribute = |name: &str| match attributes.iter().position(|a| a == name) {
            Some(i) => i,
            None => {
                attributes.push(name.to_string());
                attributes.len() - 1
            }
        };
        let mut keys: Vec<BlockingKey> = Vec::new();
        for (i, k) in spec.keys.iter().enumerate() {
            if k.name.trim().is_empty() || keys.iter().any(|x| x.name == k.name) {
                return Err(ConfigError::invalid(
                    field(&format!("keys[{i}].name")),
                    "key names must be non-empty and distinct",
                ));
            }
            if let KeyTransform::Prefix(0) | KeyTransform::Suffix(0) = k.transform {
                return Err(ConfigError::invalid(
                    field(&format!("keys[{i}].transform")),
                    "a length of at least 1",
                ));
            }
            keys.push(BlockingKey {
                name: k.name.clone(),
                attribute: attribute(&k.attribute),
                transform: k.transform.clone(),
            });
        }
        if spec.blocking.rules.is_empty() {
            return Err(ConfigError::invalid(
                field("blocking.rules"),
                "list at least one rule",
            ));
        }
        let mut rules = Vec::new();
        for (r, rule) in spec.blocking.rules.iter().enumerate() {
            if rule.is_empty() {
                return Err(ConfigError::invalid(
                    field(&format!("blocking.rules[{r}]")),
                    "a rule names at least one key",
                ));
            }
            let mut ids = Vec::new();
            for (j, name) in rule.iter().enumerate() {
                let id = keys.iter().position(|k| &k.name == name).ok_or_else(|| {
                    ConfigError::invalid(
                        field(&format!("blocking.rules[{r}][{j}]")),
                        format!(
                            "unknown key `{name}`; keys: {}",
                            keys.iter()
                                .map(|k| k.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?;
                ids.push(id);
            }
            rules.push(ids);
        }
        if spec.blocking.max_block_size < 2 {
            return Err(ConfigError::invalid(
                field("blocking.maxBlockSize"),
                "at least 2",
            ));
        }
        if spec.comparisons.is_empty() {
            return Err(ConfigError::invalid(
                field("comparisons"),
                "list at least one comparison",
            ));
        }
        let mut comparisons: Vec<Comparison> = Vec::new();
        for (i, c) in spec.comparisons.iter().enumerate() {
            let name = c.name.clone().unwrap_or_else(|| c.attribute.clone());
            if comparisons.iter().any(|x| x.name == name) {
                return Err(ConfigError::invalid(
                    field(&format!("comparisons[{i}].name")),
                    format!("`{name}` is used twice; give one of them a `name`"),
                ));
            }
            let comparator = Comparator::compile(&c.method)
                .map_err(|e| ConfigError::invalid(field(&format!("comparisons[{i}].method")), e))?;
            let swapped_with = match &c.swapped_with {
                Some(other) if other == &c.attribute => {
                    return Err(ConfigError::invalid(
                        field(&format!("comparisons[{i}].swappedWith")),
                        "another attribute than the compared one",
                    ));
                }
                Some(other) => Some((attribute(other), other.clone())),
                None => None,
            };
            comparisons.push(Comparison {
                name,
                attribute: attribute(&c.attribute),
                comparator,
                term_frequency: c.term_frequency,
                swapped_with,
            });
        }
        for (name, p) in [
            ("matchThreshold", spec.match_threshold),
            ("possibleThreshold", spec.possible_threshold),
        ] {
            if !(p > 0.0 && p < 1.0) {
                return Err(ConfigError::invalid(
                    field(name),
                    "a probability strictly between 0 and 1",
                ));
            }
        }
        if spec.possible_threshold > spec.match_threshold {
            return Err(ConfigError::invalid(
                field("possibleThreshold"),
                "at most matchThreshold",
            ));
        }
        if spec.max_value_chars == 0 {
            return Err(ConfigError::invalid(field("maxValueChars"), "at least 1"));
        }
        Ok(ResolutionConfig {
            kind,
            attributes,
            keys,
            rules,
            max_block_size: spec.blocking.max_block_size as usize,
            comparisons,
            max_value_chars: spec.max_value_chars as usize,
            match_threshold: spec.match_threshold,
            possible_threshold: spec.possible_threshold,
        })
    }

    /// Weights from a model file, else from the spec's own `m`, `u` and `prior`.
    pub fn weights(
        &self,
        spec: &ResolutionSpec,
        model: Option<&Model>,
    ) -> Result<Weights, ConfigError> {
        let field = |f: String| format!("resolution.{f}");
        let prior = match model {
            Some(m) => m.prior,
            None => spec.prior.ok_or_else(|| {
                ConfigError::invalid(
                    field("model".into()),
                    "resolution needs a model (write one with `kith-runner train`) or `prior` with `m` and `u` on every comparison",
                )
            })?,
        };
        if !(prior > 0.0 && prior < 1.0) {
            return Err(ConfigError::invalid(
                field("prior".into()),
                "a probability strictly between 0 and 1",
            ));
        }
        let mut levels = Vec::new();
        for (i, c) in self.comparisons.iter().enumerate() {
            let n = c.levels();
            let (m, u, tf) = match model {
                Some(model) => {
                    let cm: &ComparisonModel = model
                        .comparisons
                        .iter()
                        .find(|x| x.name == c.name)
                        .ok_or_else(|| {
                            ConfigError::invalid(
                                field(format!("comparisons[{i}]")),
                                format!("the model has no comparison `{}`: train it again", c.name),
                            )
                        })?;
                    if cm.levels != c.level_names() {
                        return Err(ConfigError::invalid(
                            field(format!("comparisons[{i}].method")),
                            format!("the model's levels for `{}` ({}) differ from the pipeline's: train it again", c.name, cm.levels.join(", ")),
                        ));
                    }
                    let tf = (c.term_frequency && cm.tf_floor.is_some()).then(|| {
                        (
                            cm.term_frequencies
                                .iter()
                                .map(|(k, v)| (k.clone(), *v))
                                .collect(),
                            cm.tf_floor.unwrap_or(1e-6),
                        )
                    });
                    (cm.m.clone(), cm.u.clone(), tf)
                }
                None => {
                    let spec_c = &spec.comparisons[i];
                    let need = |v: &Option<Vec<f64>>, what: &str| {
                        v.clone().ok_or_else(|| {
                            ConfigError::invalid(
                                field(format!("comparisons[{i}].{what}")),
                                format!(
                                    "{n} probabilities, one per level, best first, or a model file"
                                ),
                            )
                        })
                    };
                    (need(&spec_c.m, "m")?, need(&spec_c.u, "u")?, None)
                }
            };
            for (what, v) in [("m", &m), ("u", &u)] {
                if v.len() != n || v.iter().any(|p| !(*p > 0.0 && *p <= 1.0)) {
                    return Err(ConfigError::invalid(
                        field(format!("comparisons[{i}].{what}")),
                        format!(
                            "{n} probabilities in (0, 1], one per level: {}",
                            c.level_names().join(", ")
                        ),
                    ));
                }
            }
            let weights = m.iter().zip(&u).map(|(m, u)| (m / u).log2()).collect();
            levels.push(LevelWeights {
                m,
                u,
                weights,
                term_frequencies: tf,
            });
        }
        Ok(Weights {
            prior,
            prior_log2_odds: log2_odds(prior),
            levels,
            match_log2_odds: log2_odds(self.match_threshold),
            possible_log2_odds: log2_odds(self.possible_threshold),
        })
    }
}
