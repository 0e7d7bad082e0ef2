//! Identifier normalization (docs/design.md §2): the same person's identifiers, written
//! differently by different systems, must become the same value before they
//! can link records.

mod phone;

pub use phone::{to_e164, Region};

use kith_api::pipeline::{NormalizePreset, NormalizeRule};
use regex::Regex;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("is empty after normalization")]
    Empty,
    #[error(
        "is not a phone number (expected digits, optionally with a leading + and a country code)"
    )]
    NotAPhone,
    #[error("is not an email address (expected one @ with text on both sides)")]
    NotAnEmail,
    #[error("rule `regexReplace`: `{0}` is not a valid regular expression")]
    BadRegex(String),
}

#[derive(Debug, Clone)]
enum Rule {
    Trim,
    Lowercase,
    Uppercase,
    DigitsOnly,
    StripPrefix(String),
    RegexReplace(Regex, String),
}

/// The compiled normalization of one identifier type: a preset, then rules.
#[derive(Debug, Clone)]
pub struct Normalizer {
    preset: NormalizePreset,
    rules: Vec<Rule>,
}

impl Normalizer {
    pub fn compile(
        preset: NormalizePreset,
        rules: &[NormalizeRule],
    ) -> Result<Self, NormalizeError> {
        let rules = rules
            .iter()
            .map(|r| {
                Ok(match r {
                    NormalizeRule::Trim => Rule::Trim,
                    NormalizeRule::Lowercase => Rule::Lowercase,
                    NormalizeRule::Uppercase => Rule::Uppercase,
                    NormalizeRule::DigitsOnly => Rule::DigitsOnly,
                    NormalizeRule::StripPrefix(p) => Rule::StripPrefix(p.clone()),
                    NormalizeRule::RegexReplace(r) => Rule::RegexReplace(
                        Regex::new(&r.pattern)
                            .map_err(|_| NormalizeError::BadRegex(r.pattern.clone()))?,
                        r.replacement.clone(),
                    ),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Normalizer { preset, rules })
    }

    /// Normalizes a raw value; an empty result is an error, never a silent drop.
    pub fn apply(&self, raw: &str, region: Region) -> Result<String, NormalizeError> {
        let mut value = match self.preset {
            NormalizePreset::Email => email(raw)?,
            NormalizePreset::Phone => {
                phone::to_e164(raw, region).ok_or(NormalizeError::NotAPhone)?
            }
            NormalizePreset::Lowercase => lowercase(raw.trim()),
            NormalizePreset::Trim => raw.trim().to_string(),
            NormalizePreset::None => raw.to_string(),
        };
        for rule in &self.rules {
            value = match rule {
                Rule::Trim => value.trim().to_string(),
                Rule::Lowercase => lowercase(&value),
                Rule::Uppercase => value.to_uppercase(),
                Rule::DigitsOnly => value.chars().filter(char::is_ascii_digit).collect(),
                Rule::StripPrefix(p) => value
                    .strip_prefix(p.as_str())
                    .map(str::to_string)
                    .unwrap_or(value),
                Rule::RegexReplace(re, with) => re.replace_all(&value, with.as_str()).into_owned(),
            };
        }
        if value.is_empty() {
            return Err(NormalizeError::Empty);
        }
        Ok(value)
    }
}

/// Lower-cases without allocating twice for the common ASCII case.
fn lowercase(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        s.to_lowercase()
    }
}

/// Email: trimmed and lower-cased (docs/design.md §2), with one `@` and text on both sides.
fn email(raw: &str) -> Result<String, NormalizeError> {
    let v = lowercase(raw.trim());
    if v.is_empty() {
        return Err(NormalizeError::Empty);
    }
    match v.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            Ok(v)
        }
        _ => Err(NormalizeError::NotAnEmail),
    }
}

#[cfg(test)]
mod tests;
