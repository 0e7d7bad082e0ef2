//! What entity resolution reads from a record: its cleaned attribute values,
//! prepared once per comparison, and its blocking keys per rule.
//!
//! Bad values never stop anything: a value that is not text or a number, or
//! that a comparison cannot read (a date in an ambiguous format), counts as
//! missing (no evidence either way) and is counted; an over-long value is
//! truncated and counted.

use super::compare::{clean, derive_key, Prepared};
use super::config::ResolutionConfig;

/// A field's value as a record holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValue<'a> {
    /// An attribute: its compact JSON.
    Json(&'a str),
    /// An identifier: its normalized value.
    Text(&'a str),
}

/// Counters of values that could not be used as they were.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ValueCounters {
    pub truncated: u64,
    pub unusable: u64,
}

pub struct Features {
    /// Per comparison: the prepared value, or None when missing or unusable.
    pub prepared: Vec<Option<Prepared>>,
    /// Per comparison with `swappedWith`: the other attribute, prepared by
    /// this comparison's method.
    pub prepared_swapped: Vec<Option<Prepared>>,
    /// Per comparison with `nicknames`: the groups of the name (sorted ids;
    /// empty otherwise).
    pub nickname_groups: Vec<Box<[u32]>>,
    /// Per blocking rule that applies: the rule index and the joined key values.
    pub blocks: Vec<String>,
    /// The cleaned values of the fields resolution reads: two versions
    /// with the same fingerprint resolve the same way.
    pub fingerprint: Vec<Option<String>>,
}

/// The text of a stored attribute (compact JSON): strings unescaped, numbers
/// and booleans as written; arrays and objects are not comparable values.
pub fn attribute_text(json: &str) -> Option<String> {
    match json.as_bytes().first()? {
        b'"' => serde_json::from_str::<String>(json).ok(),
        b'[' | b'{' | b'n' => None,
        _ => Some(json.to_string()),
    }
}

impl Features {
    /// Extracts features; `field(i)` gives the value of the config's i-th
    /// field.
    pub fn extract<'a>(
        config: &ResolutionConfig,
        field: &dyn Fn(usize) -> Option<FieldValue<'a>>,
        counters: &mut ValueCounters,
    ) -> Features {
        let fingerprint: Vec<Option<String>> = (0..config.fields.len())
            .map(|i| {
                let text = match field(i)? {
                    FieldValue::Json(json) => attribute_text(json),
                    FieldValue::Text(text) => Some(text.to_string()),
                };
                let Some(text) = text else {
                    counters.unusable += 1;
                    return None;
                };
                let (value, truncated) = clean(&text, config.max_value_chars)?;
                if truncated {
                    counters.truncated += 1;
                }
                Some(value)
            })
            .collect();
        let prepared = config
            .comparisons
            .iter()
            .map(|c| {
                let value = fingerprint[c.field].as_deref()?;
                let p = c.comparator.prepare(value);
                if p.is_none() {
                    counters.unusable += 1;
                }
                p
            })
            .collect();
        let prepared_swapped = config
            .comparisons
            .iter()
            .map(|c| {
                let (other, _) = c.swapped_with.as_ref()?;
                c.comparator.prepare(fingerprint[*other].as_deref()?)
            })
            .collect();
        let nickname_groups = config
            .comparisons
            .iter()
            .map(|c| match (&c.nicknames, fingerprint[c.field].as_deref()) {
                (Some(table), Some(name)) => table.groups(name),
                _ => Box::default(),
            })
            .collect();
        let blocks = block_keys(config, &config.rules, &fingerprint);
        Features {
            prepared,
            prepared_swapped,
            nickname_groups,
            blocks,
            fingerprint,
        }
    }
}

/// The block keys of a record under `rules` (each: the rule's index, then
/// its keys' values), from the record's cleaned field values. A rule with a
/// key that does not apply (a missing value) gives no block.
pub fn block_keys(
    config: &ResolutionConfig,
    rules: &[Vec<usize>],
    fingerprint: &[Option<String>],
) -> Vec<String> {
    let key_values: Vec<Option<String>> = config
        .keys
        .iter()
        .map(|k| {
            fingerprint[k.field]
                .as_deref()
                .and_then(|v| derive_key(&k.transform, v, &k.date_formats))
        })
        .collect();
    let mut blocks = Vec::new();
    'rules: for (r, rule) in rules.iter().enumerate() {
        let mut key = r.to_string();
        for &k in rule {
            match &key_values[k] {
                Some(v) => {
                    key.push('\u{1f}');
                    key.push_str(v);
                }
                None => continue 'rules,
            }
        }
        blocks.push(key);
    }
    blocks
}
