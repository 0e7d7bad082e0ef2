//! Names that are the same name: Bob and Robert, Peggy and Margaret. A
//! comparison with `nicknames` puts such a pair on a level of its own, so
//! that EM can weigh "Bob Smith" against "Robert Smith" as the evidence it
//! is rather than as a typo far off.
//!
//! A group is a name and its short forms. Two names are equivalent when they
//! share a group, which is not transitive on purpose: Chris is short for
//! Christopher and for Christine, yet those two are different names. Group
//! ids are looked up once per record (`groups`); comparing a pair is a merge
//! of two short sorted lists, without hashing or allocating.

use super::text::clean;
use kith_api::pipeline::NicknameSpec;
use std::collections::HashMap;

/// The table shipped with the runner (see `pipeline/data/nicknames/README.md`
/// for its source and licence): `name,has_nickname,nickname` per line.
const BUILTIN: &str = include_str!("../../../data/nicknames/names.csv");

/// Longest name kept in a table, in characters, like attribute values.
const MAX_NAME_CHARS: usize = 200;

/// More groups than this in a pipeline is a data file, not configuration.
const MAX_PIPELINE_GROUPS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Nicknames {
    /// Cleaned name to the sorted ids of the groups holding it.
    groups: HashMap<Box<str>, Box<[u32]>>,
}

impl Nicknames {
    /// The builtin table (when asked) plus the pipeline's groups. An error
    /// names the group that is not usable.
    pub fn compile(spec: &NicknameSpec) -> Result<Nicknames, String> {
        let mut all: Vec<Vec<String>> = Vec::new();
        if spec.builtin {
            all.extend(builtin_groups());
        }
        if spec.groups.len() > MAX_PIPELINE_GROUPS {
            return Err(format!("at most {MAX_PIPELINE_GROUPS} groups"));
        }
        for (i, group) in spec.groups.iter().enumerate() {
            let cleaned: Vec<String> = group
                .iter()
                .filter_map(|n| clean(n, MAX_NAME_CHARS).map(|(c, _)| c))
                .collect();
            if cleaned.len() < 2 || cleaned.len() != group.len() {
                return Err(format!(
                    "groups[{i}]: a group lists at least two non-empty names, e.g. [\"peggy\", \"margaret\"]"
                ));
            }
            all.push(cleaned);
        }
        let mut groups: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        for (id, group) in all.into_iter().enumerate() {
            let id = u32::try_from(id).map_err(|_| "too many groups".to_string())?;
            for name in group {
                let ids = groups.entry(name.into_boxed_str()).or_default();
                if ids.last() != Some(&id) {
                    ids.push(id);
                }
            }
        }
        Ok(Nicknames {
            groups: groups
                .into_iter()
                .map(|(name, ids)| (name, ids.into_boxed_slice()))
                .collect(),
        })
    }

    /// The sorted group ids of a cleaned name (empty when it is in none).
    pub fn groups(&self, cleaned: &str) -> Box<[u32]> {
        self.groups.get(cleaned).cloned().unwrap_or_default()
    }

    /// Names known to the table.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// Whether two sorted lists of group ids share one.
pub fn share_group(a: &[u32], b: &[u32]) -> bool {
    let (mut i, mut j) = (0, 0);
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        match x.cmp(y) {
            std::cmp::Ordering::Equal => return true,
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
        }
    }
    false
}

/// The builtin table as groups: each name with its nicknames, in file order.
fn builtin_groups() -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    for line in BUILTIN.lines().skip(1) {
        let mut fields = line.split(',');
        let (Some(name), Some("has_nickname"), Some(nickname)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Some((name, _)), Some((nickname, _))) =
            (clean(name, MAX_NAME_CHARS), clean(nickname, MAX_NAME_CHARS))
        else {
            continue;
        };
        match groups.last_mut() {
            Some(group) if group[0] == name => group.push(nickname),
            _ => groups.push(vec![name, nickname]),
        }
    }
    groups
}
