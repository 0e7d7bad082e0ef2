use super::ConfigError;
use crate::normalize::Normalizer;
use kith_api::pipeline::IdentifierTypeSpec;
use regex::RegexSet;

/// Index of an identifier type in the pipeline's list: compact and cheap to
/// compare, it is what the engine stores instead of type names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TypeId(pub u16);

/// The longest identifier type name: it is part of every stored key
/// (`type:value`, the DynamoDB index's `type#value`, graph ids).
pub const MAX_TYPE_NAME: usize = 64;

#[derive(Debug)]
pub struct IdentifierType {
    pub name: String,
    pub normalizer: Normalizer,
    /// Shared values link records.
    pub link: bool,
    /// At most this many distinct values per profile.
    pub exclusive_limit: Option<u32>,
    /// Junk values that never count as evidence.
    pub blocklist: Option<RegexSet>,
    /// Canonical rank when conflicting links are decided (lower first): the
    /// spec's `priority`, else 0 for exclusive types and 100 for the others, so
    /// that records anchored by an exclusive identifier form first and weaker,
    /// shared identifiers are weighed against them.
    pub priority: u32,
}

impl IdentifierType {
    pub fn is_blocked(&self, normalized: &str) -> bool {
        self.blocklist
            .as_ref()
            .is_some_and(|b| b.is_match(normalized))
    }
}

/// The identifier types of a pipeline, by name and by [`TypeId`].
#[derive(Debug)]
pub struct IdentifierTypes {
    types: Vec<IdentifierType>,
}

impl IdentifierTypes {
    pub fn from_spec(specs: &[IdentifierTypeSpec]) -> Result<Self, ConfigError> {
        if specs.is_empty() {
            return Err(ConfigError::invalid(
                "identifiers",
                "list at least one identifier type",
            ));
        }
        if specs.len() > u16::MAX as usize {
            return Err(ConfigError::invalid(
                "identifiers",
                "too many identifier types",
            ));
        }
        let mut types = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let field = |name: &str| format!("identifiers[{i}].{name}");
            let name = spec.type_name.trim();
            if name.len() > MAX_TYPE_NAME {
                let shown: String = name.chars().take(32).collect();
                return Err(ConfigError::invalid(
                    field("type"),
                    format!(
                        "`{shown}…` is {} characters long; a type name has at most {MAX_TYPE_NAME}",
                        name.chars().count()
                    ),
                ));
            }
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(ConfigError::invalid(
                    field("type"),
                    format!(
                        "`{}` is not a valid type name; use letters, digits, `_` and `-`",
                        spec.type_name
                    ),
                ));
            }
            if types.iter().any(|t: &IdentifierType| t.name == name) {
                return Err(ConfigError::invalid(
                    field("type"),
                    format!("`{name}` is listed twice"),
                ));
            }
            if spec.exclusive_limit == Some(0) {
                return Err(ConfigError::invalid(
                    field("exclusiveLimit"),
                    "must be at least 1",
                ));
            }
            let normalizer = Normalizer::compile(spec.normalize, &spec.rules)
                .map_err(|e| ConfigError::invalid(field("rules"), e.to_string()))?;
            let blocklist = if spec.blocklist.is_empty() {
                None
            } else {
                // Each entry alone first, so that the error names the one at fault.
                for (j, pattern) in spec.blocklist.iter().enumerate() {
                    regex::Regex::new(pattern).map_err(|e| {
                        ConfigError::invalid(
                            format!("{}[{j}]", field("blocklist")),
                            format!("not a valid regular expression: {e}"),
                        )
                    })?;
                }
                Some(RegexSet::new(&spec.blocklist).map_err(|e| {
                    ConfigError::invalid(
                        field("blocklist"),
                        format!("the expressions together are too large: {e}"),
                    )
                })?)
            };
            types.push(IdentifierType {
                name: name.to_string(),
                normalizer,
                link: spec.link,
                exclusive_limit: spec.exclusive_limit,
                blocklist,
                priority: spec.priority.unwrap_or(if spec.exclusive_limit.is_some() {
                    0
                } else {
                    100
                }),
            });
        }
        Ok(IdentifierTypes { types })
    }

    pub fn id(&self, name: &str) -> Option<TypeId> {
        self.types
            .iter()
            .position(|t| t.name == name)
            .map(|i| TypeId(i as u16))
    }

    pub fn get(&self, id: TypeId) -> &IdentifierType {
        &self.types[id.0 as usize]
    }

    pub fn name(&self, id: TypeId) -> &str {
        &self.types[id.0 as usize].name
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (TypeId, &IdentifierType)> {
        self.types
            .iter()
            .enumerate()
            .map(|(i, t)| (TypeId(i as u16), t))
    }

    /// The names of all types, for error messages.
    pub fn names(&self) -> String {
        self.types
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Exclusive types with their limits.
    pub fn exclusive(&self) -> impl Iterator<Item = (TypeId, u32)> + '_ {
        self.iter()
            .filter_map(|(id, t)| t.exclusive_limit.map(|l| (id, l)))
    }
}
