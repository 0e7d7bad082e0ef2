//! The `resolution` section validated into typed values: blocking keys and
//! rules by index, compiled comparators, and (from the model or the spec) the
//! match weight of every comparison level.

use super::compare::{Comparator, DateFormat, Nicknames};
use super::model::{ComparisonModel, Model};
use crate::config::{ConfigError, IdentifierTypes, TypeId};
use crate::observation::Kind;
use kith_api::pipeline::{KeyTransform, ResolutionSpec};
use std::collections::HashMap;
use std::fmt;

/// What a blocking key or a comparison reads from a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// An attribute, by name.
    Attribute(String),
    /// The normalized value of an identifier type (the smallest, when a
    /// record has several).
    Identifier(TypeId, String),
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Attribute(name) => f.write_str(name),
            Field::Identifier(_, name) => write!(f, "identifier {name}"),
        }
    }
}

#[derive(Debug)]
pub struct BlockingKey {
    pub name: String,
    /// Index into [`ResolutionConfig::fields`].
    pub field: usize,
    pub transform: KeyTransform,
    /// The date formats a date comparison declares for the same field, so
    /// that `year` and `monthDay` read dates as the comparison does.
    pub date_formats: Box<[DateFormat]>,
}

pub struct Comparison {
    pub name: String,
    /// Index into [`ResolutionConfig::fields`].
    pub field: usize,
    pub comparator: Comparator,
    pub term_frequency: bool,
    /// The field (index) this one is compared with crosswise, with its name.
    pub swapped_with: Option<(usize, String)>,
    /// Names that are the same name, for a "nickname" level.
    pub nicknames: Option<Nicknames>,
}

impl Comparison {
    /// Number of levels, best first; the last is "different".
    pub fn levels(&self) -> usize {
        self.comparator.levels()
            + usize::from(self.swapped_with.is_some())
            + usize::from(self.nicknames.is_some())
    }

    /// Level names, as stored in models and shown by `explain`: the
    /// comparator's, with "swapped" and then "nickname" right after "exact".
    pub fn level_names(&self) -> Vec<String> {
        let mut names = self.comparator.level_names();
        let mut at = 1;
        if let Some((_, other)) = &self.swapped_with {
            names.insert(at, format!("swapped with {other}"));
            at += 1;
        }
        if self.nicknames.is_some() {
            names.insert(at, "nickname".to_string());
        }
        names
    }
}

/// Comparisons whose agreement says "same household" (surname, address,
/// home phone), capped together.
#[derive(Debug, Clone)]
pub struct Households {
    /// Per comparison: whether it is a household comparison.
    pub member: Vec<bool>,
    /// Per comparison: whether it is one of the household's address
    /// comparisons, whose disagreements count once.
    pub address: Vec<bool>,
    pub max_probability: f64,
}

impl Households {
    /// Whether comparison `i` is a household comparison.
    pub fn is_member(&self, i: usize) -> bool {
        self.member.get(i).copied().unwrap_or(false)
    }

    /// Whether comparison `i` is one of the address comparisons.
    pub fn is_address(&self, i: usize) -> bool {
        self.address.get(i).copied().unwrap_or(false)
    }
}

/// What entity resolution compares and how it blocks (no probabilities).
pub struct ResolutionConfig {
    pub kind: Kind,
    /// The attributes and identifier types resolution reads, each once.
    pub fields: Vec<Field>,
    pub keys: Vec<BlockingKey>,
    /// Each rule: indexes into `keys`, all equal (AND); rules are OR-ed.
    pub rules: Vec<Vec<usize>>,
    /// The rules of `train`'s EM sessions (default: `rules`).
    pub training_rules: Vec<Vec<usize>>,
    pub households: Option<Households>,
    pub max_block_size: usize,
    pub comparisons: Vec<Comparison>,
    pub max_value_chars: usize,
    pub match_threshold: f64,
    pub possible_threshold: f64,
    /// Bits of disagreement between two records beyond which no match may
    /// put them in one profile (`maxDisagreement`).
    pub max_disagreement: f64,
}

/// Match weights: `log2(m / u)` per comparison level, with term frequencies.
#[derive(Debug, Clone)]
pub struct Weights {
    pub prior: f64,
    pub prior_log2_odds: f64,
    pub levels: Vec<LevelWeights>,
    pub match_log2_odds: f64,
    pub possible_log2_odds: f64,
    /// The most the household comparisons add together, in log2 odds: what
    /// lifts the prior to `households.maxProbability`.
    pub household_cap: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct LevelWeights {
    pub m: Vec<f64>,
    pub u: Vec<f64>,
    pub weights: Vec<f64>,
    /// Exact-match key to its share of records, for term-frequency comparisons.
    pub term_frequencies: Option<(HashMap<String, f64>, f64)>,
    /// Where `m` came from: the training sessions (their rules) that
    /// estimated it, or "the pipeline" for inline probabilities.
    pub trained_by: Vec<String>,
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
    /// Validates a `resolution` section; `identifiers` are the pipeline's
    /// identifier types, which keys and comparisons may read instead of an
    /// attribute.
    pub fn compile(
        spec: &ResolutionSpec,
        identifiers: &IdentifierTypes,
    ) -> Result<Self, ConfigError> {
        let field = |f: &str| format!("resolution.{f}");
        let kind = Kind::parse(&spec.kind).ok_or_else(|| {
            ConfigError::invalid(
                field("kind"),
                "accepted: person, organization, device, account",
            )
        })?;
        let mut fields: Vec<Field> = Vec::new();
        // The field an `attribute` or `identifier` names, added once.
        let mut field_of = |at: String,
                            attribute: &Option<String>,
                            identifier: &Option<String>|
         -> Result<usize, ConfigError> {
            let wanted = match (attribute, identifier) {
                (Some(a), None) if !a.trim().is_empty() => Field::Attribute(a.clone()),
                (None, Some(t)) => {
                    let id = identifiers.id(t).ok_or_else(|| {
                        ConfigError::invalid(
                            format!("{at}.identifier"),
                            format!(
                                "`{t}` is not an identifier type of the pipeline; types: {}",
                                identifiers.names()
                            ),
                        )
                    })?;
                    Field::Identifier(id, t.clone())
                }
                _ => {
                    return Err(ConfigError::invalid(
                        at,
                        "exactly one of `attribute` (a non-empty attribute name) and `identifier` (an identifier type)",
                    ))
                }
            };
            Ok(match fields.iter().position(|f| *f == wanted) {
                Some(i) => i,
                None => {
                    fields.push(wanted);
                    fields.len() - 1
                }
            })
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
                field: field_of(field(&format!("keys[{i}]")), &k.attribute, &k.identifier)?,
                transform: k.transform.clone(),
                date_formats: Box::default(),
            });
        }
        if spec.blocking.rules.is_empty() {
            return Err(ConfigError::invalid(
                field("blocking.rules"),
                "list at least one rule",
            ));
        }
        let rules = rules_of(&spec.blocking.rules, &keys, "blocking.rules")?;
        let training_rules = match &spec.training {
            Some(t) if !t.rules.is_empty() => rules_of(&t.rules, &keys, "training.rules")?,
            _ => rules.clone(),
        };
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
            let at = field(&format!("comparisons[{i}]"));
            let compared = field_of(at.clone(), &c.attribute, &c.identifier)?;
            let name = match &c.name {
                Some(n) => n.clone(),
                None => c
                    .attribute
                    .clone()
                    .or_else(|| c.identifier.clone())
                    .unwrap_or_default(),
            };
            if comparisons.iter().any(|x| x.name == name) {
                return Err(ConfigError::invalid(
                    format!("{at}.name"),
                    format!("`{name}` is used twice; give one of them a `name`"),
                ));
            }
            let comparator = Comparator::compile(&c.method)
                .map_err(|e| ConfigError::invalid(format!("{at}.method"), e))?;
            let swapped_with = match &c.swapped_with {
                Some(other) if Some(other) == c.attribute.as_ref() => {
                    return Err(ConfigError::invalid(
                        format!("{at}.swappedWith"),
                        "another attribute than the compared one",
                    ));
                }
                Some(other) => Some((
                    field_of(format!("{at}.swappedWith"), &Some(other.clone()), &None)?,
                    other.clone(),
                )),
                None => None,
            };
            let nicknames = c
                .nicknames
                .as_ref()
                .map(|n| {
                    Nicknames::compile(n)
                        .map_err(|e| ConfigError::invalid(format!("{at}.nicknames"), e))
                })
                .transpose()?;
            comparisons.push(Comparison {
                name,
                field: compared,
                comparator,
                term_frequency: c.term_frequency,
                swapped_with,
                nicknames,
            });
        }
        for key in &mut keys {
            if let Some(c) = comparisons
                .iter()
                .find(|c| c.field == key.field && !c.comparator.date_formats().is_empty())
            {
                key.date_formats = c.comparator.date_formats().into();
            }
        }
        let households = match &spec.households {
            None => None,
            Some(h) => {
                let mut member = vec![false; comparisons.len()];
                for (j, name) in h.comparisons.iter().enumerate() {
                    let c = comparisons
                        .iter()
                        .position(|c| &c.name == name)
                        .ok_or_else(|| {
                            ConfigError::invalid(
                                field(&format!("households.comparisons[{j}]")),
                                format!(
                                    "unknown comparison `{name}`; comparisons: {}",
                                    comparisons
                                        .iter()
                                        .map(|c| c.name.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            )
                        })?;
                    member[c] = true;
                }
                if !member.iter().any(|m| *m) {
                    return Err(ConfigError::invalid(
                        field("households.comparisons"),
                        "name at least one comparison",
                    ));
                }
                let mut address = vec![false; comparisons.len()];
                for (j, name) in h.address.iter().enumerate() {
                    let c = comparisons
                        .iter()
                        .position(|c| &c.name == name)
                        .filter(|c| member[*c])
                        .ok_or_else(|| {
                            ConfigError::invalid(
                                field(&format!("households.address[{j}]")),
                                format!(
                                    "`{name}` is not one of `households.comparisons` ({})",
                                    h.comparisons.join(", ")
                                ),
                            )
                        })?;
                    address[c] = true;
                }
                if !(h.max_probability > 0.0 && h.max_probability < 1.0) {
                    return Err(ConfigError::invalid(
                        field("households.maxProbability"),
                        "a probability strictly between 0 and 1",
                    ));
                }
                Some(Households {
                    member,
                    address,
                    max_probability: h.max_probability,
                })
            }
        };
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
        if !(spec.max_disagreement.is_finite() && spec.max_disagreement > 0.0) {
            return Err(ConfigError::invalid(
                field("maxDisagreement"),
                "a number of bits above 0, e.g. 12",
            ));
        }
        if spec.max_value_chars == 0 {
            return Err(ConfigError::invalid(field("maxValueChars"), "at least 1"));
        }
        Ok(ResolutionConfig {
            kind,
            fields,
            keys,
            rules,
            training_rules,
            households,
            max_block_size: spec.blocking.max_block_size as usize,
            comparisons,
            max_value_chars: spec.max_value_chars as usize,
            match_threshold: spec.match_threshold,
            possible_threshold: spec.possible_threshold,
            max_disagreement: spec.max_disagreement,
        })
    }

    /// A rule as written in the pipeline (`[given, dob]`), for messages.
    pub fn rule_text(&self, rule: &[usize]) -> String {
        let names: Vec<&str> = rule.iter().map(|k| self.keys[*k].name.as_str()).collect();
        format!("[{}]", names.join(", "))
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
            let (m, u, tf, trained_by) = match model {
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
                    (cm.m.clone(), cm.u.clone(), tf, cm.trained_by.clone())
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
                    (
                        need(&spec_c.m, "m")?,
                        need(&spec_c.u, "u")?,
                        None,
                        vec!["the pipeline".to_string()],
                    )
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
                trained_by,
            });
        }
        Ok(Weights {
            prior,
            prior_log2_odds: log2_odds(prior),
            levels,
            match_log2_odds: log2_odds(self.match_threshold),
            possible_log2_odds: log2_odds(self.possible_threshold),
            household_cap: self
                .households
                .as_ref()
                .map(|h| log2_odds(h.max_probability) - log2_odds(prior)),
        })
    }
}

/// Rules of key names validated into key indexes; `at` is the field.
fn rules_of(
    written: &[Vec<String>],
    keys: &[BlockingKey],
    at: &str,
) -> Result<Vec<Vec<usize>>, ConfigError> {
    let mut rules = Vec::new();
    for (r, rule) in written.iter().enumerate() {
        if rule.is_empty() {
            return Err(ConfigError::invalid(
                format!("resolution.{at}[{r}]"),
                "a rule names at least one key",
            ));
        }
        let mut ids = Vec::new();
        for (j, name) in rule.iter().enumerate() {
            let id = keys.iter().position(|k| &k.name == name).ok_or_else(|| {
                ConfigError::invalid(
                    format!("resolution.{at}[{r}][{j}]"),
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
    Ok(rules)
}
