//! Source positions: for every Kafka partition read, the offset of the next
//! message to apply. A checkpoint stores them beside the state they belong
//! to; a restart resumes every partition from its position.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `topic → partition → next offset`. Ordered maps, so that the JSON written
/// into manifests and checkpoint metadata is stable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Positions(pub BTreeMap<String, BTreeMap<i32, i64>>);

impl Positions {
    pub fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.0.get(topic).and_then(|p| p.get(&partition)).copied()
    }

    /// Moves a partition forward; a position never moves back.
    pub fn advance(&mut self, topic: &str, partition: i32, next_offset: i64) {
        let slot = self
            .0
            .entry(topic.to_string())
            .or_default()
            .entry(partition)
            .or_insert(next_offset);
        *slot = (*slot).max(next_offset);
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeMap::is_empty)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, i32, i64)> + '_ {
        self.0
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |(p, o)| (t.as_str(), *p, *o)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_only_move_forward_and_serialize_stably() {
        let mut p = Positions::default();
        p.advance("obs", 1, 10);
        p.advance("obs", 0, 5);
        p.advance("obs", 1, 7);
        assert_eq!(p.get("obs", 1), Some(10));
        assert_eq!(p.get("obs", 2), None);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"obs":{"0":5,"1":10}}"#
        );
        let back: Positions = serde_json::from_str(r#"{"obs":{"0":5,"1":10}}"#).unwrap();
        assert_eq!(back, p);
    }
}
