use super::ConfigError;
use kith_api::pipeline::{SurvivorshipPolicy, SurvivorshipSpec};
use std::collections::HashMap;

/// The policy of one attribute, with the source ranking it uses.
#[derive(Debug, Clone)]
pub struct AttributePolicy {
    pub policy: SurvivorshipPolicy,
    /// Source name to rank (0 = most trusted); unlisted sources rank last.
    pub source_rank: HashMap<String, u32>,
}

impl AttributePolicy {
    pub fn rank(&self, source: &str) -> u32 {
        self.source_rank.get(source).copied().unwrap_or(u32::MAX)
    }
}

#[derive(Debug, Clone)]
pub struct Survivorship {
    default: AttributePolicy,
    per_attribute: HashMap<String, AttributePolicy>,
}

fn ranks(sources: &[String], field: &str) -> Result<HashMap<String, u32>, ConfigError> {
    let mut map = HashMap::new();
    for (i, s) in sources.iter().enumerate() {
        if map.insert(s.clone(), i as u32).is_some() {
            return Err(ConfigError::invalid(
                field,
                format!("source `{s}` is listed twice"),
            ));
        }
    }
    Ok(map)
}

impl Survivorship {
    pub fn from_spec(spec: &SurvivorshipSpec) -> Result<Self, ConfigError> {
        let global = ranks(&spec.source_priority, "survivorship.sourcePriority")?;
        let needs_ranking = |p: SurvivorshipPolicy, ranking: &HashMap<String, u32>, field: &str| {
            if p == SurvivorshipPolicy::SourcePriority && ranking.is_empty() {
                Err(ConfigError::invalid(
                    field,
                    "policy `sourcePriority` needs `survivorship.sourcePriority` (or the attribute's own `sourcePriority`) to list sources",
                ))
            } else {
                Ok(())
            }
        };
        needs_ranking(spec.default, &global, "survivorship.default")?;
        let mut per_attribute = HashMap::new();
        for (name, attr) in &spec.attributes {
            let field = format!("survivorship.attributes.{name}");
            let source_rank = match &attr.source_priority {
                Some(list) => ranks(list, &format!("{field}.sourcePriority"))?,
                None => global.clone(),
            };
            needs_ranking(attr.policy, &source_rank, &format!("{field}.policy"))?;
            per_attribute.insert(
                name.clone(),
                AttributePolicy {
                    policy: attr.policy,
                    source_rank,
                },
            );
        }
        Ok(Survivorship {
            default: AttributePolicy {
                policy: spec.default,
                source_rank: global,
            },
            per_attribute,
        })
    }

    pub fn policy(&self, attribute: &str) -> &AttributePolicy {
        self.per_attribute.get(attribute).unwrap_or(&self.default)
    }
}
