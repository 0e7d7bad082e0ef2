//! The exported shape of a profile (docs/design.md §4): a pure function of the live
//! records, with no processing times or run-specific values, so that two runs
//! over the same set compare byte for byte.

use super::keys::ProfileSlot;
use super::keys::RecordId;
use super::profiles::cmp_record_keys;
use super::reconcile::reconcile;
use super::Engine;
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct ProfileView {
    pub profile_id: String,
    pub kind: &'static str,
    pub records: Vec<RecordRef>,
    pub identifiers: Vec<IdentifierView>,
    pub attributes: BTreeMap<String, Box<RawValue>>,
    /// For each attribute, the record that gave the golden value.
    pub provenance: BTreeMap<String, Provenance>,
    pub relationships: Vec<RelationshipView>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RecordRef {
    pub source: String,
    pub id: String,
    /// For an entity named by a relationship of the record: its type and position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct IdentifierView {
    #[serde(rename = "type")]
    pub type_name: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct Provenance {
    pub source: String,
    pub id: String,
    pub ts: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RelationshipView {
    #[serde(rename = "type")]
    pub rel_type: String,
    pub kind: &'static str,
    pub profile_id: String,
}

impl Engine {
    pub(crate) fn record_ref(&self, r: RecordId) -> RecordRef {
        let rec = self.records.get(r);
        RecordRef {
            source: self.names.name(rec.source).to_string(),
            id: self.records.id(r).to_string(),
            relationship: rec.derived.map(|d| self.names.name(d.rel_type).to_string()),
            index: rec.derived.map(|d| d.index),
        }
    }

    /// The `(source, id)` of the record whose change caused an event.
    pub fn cause_key(&self, event: &super::ChangeEvent) -> (&str, &str) {
        let r = self.records.get(event.cause);
        (self.names.name(r.source), self.records.id(event.cause))
    }

    /// The view of one profile.
    pub(crate) fn view(&self, slot: ProfileSlot) -> ProfileView {
        let p = self.profiles.get(slot);
        let mut members = p.members.clone();
        members.sort_by(|a, b| cmp_record_keys(*a, *b, &self.records, &self.names));
        let records = members.iter().map(|m| self.record_ref(*m)).collect();
        let mut identifiers: Vec<IdentifierView> = Vec::new();
        let mut relationships: Vec<RelationshipView> = Vec::new();
        for &m in &members {
            let live = self
                .records
                .get(m)
                .live
                .as_ref()
                .expect("profile members are live");
            for &i in live.idents.iter() {
                let ident = self.idents.get(i);
                identifiers.push(IdentifierView {
                    type_name: self.pipeline.identifiers.name(ident.type_id).to_string(),
                    value: self.idents.value(i).to_string(),
                });
            }
            for &child in live.derived.iter() {
                let c = self.records.get(child);
                if let (Some(d), Some(cp)) = (c.derived, c.profile) {
                    let target = self.profiles.get(cp);
                    relationships.push(RelationshipView {
                        rel_type: self.names.name(d.rel_type).to_string(),
                        kind: target.kind.as_str(),
                        profile_id: target.id.to_string(),
                    });
                }
            }
        }
        identifiers.sort();
        identifiers.dedup();
        relationships.sort();
        relationships.dedup();
        let mut attributes = BTreeMap::new();
        let mut provenance = BTreeMap::new();
        for g in reconcile(
            &members,
            &self.records,
            &self.names,
            &self.pipeline.survivorship,
        ) {
            let name = self.names.name(g.attribute).to_string();
            let value = RawValue::from_string(g.chosen.value.to_string())
                .expect("stored attribute values are JSON");
            attributes.insert(name.clone(), value);
            let rec = self.records.get(g.chosen.record);
            provenance.insert(
                name,
                Provenance {
                    source: self.names.name(rec.source).to_string(),
                    id: self.records.id(g.chosen.record).to_string(),
                    ts: g.chosen.ts.to_string(),
                },
            );
        }
        ProfileView {
            profile_id: p.id.to_string(),
            kind: p.kind.as_str(),
            records,
            identifiers,
            attributes,
            provenance,
            relationships,
        }
    }

    /// Every profile, sorted by id.
    pub fn export(&self) -> Vec<ProfileView> {
        let mut slots: Vec<(String, ProfileSlot)> = self
            .profiles
            .iter()
            .map(|(s, p)| (p.id.to_string(), s))
            .collect();
        slots.sort();
        slots.into_iter().map(|(_, s)| self.view(s)).collect()
    }

    /// The profiles (of any kind) holding an identifier; the value is
    /// normalized with the type's rules first.
    pub fn lookup(
        &self,
        type_name: &str,
        raw_value: &str,
    ) -> Result<Vec<ProfileView>, LookupError> {
        let ids = self.find_idents(type_name, raw_value)?;
        let mut slots: Vec<ProfileSlot> = Vec::new();
        for i in ids {
            for h in &self.idents.get(i).holders {
                if let Some(p) = self.records.get(*h).profile {
                    if !slots.contains(&p) {
                        slots.push(p);
                    }
                }
            }
        }
        let mut views: Vec<ProfileView> = slots.into_iter().map(|s| self.view(s)).collect();
        views.sort_by(|a, b| a.profile_id.cmp(&b.profile_id));
        Ok(views)
    }

    pub(crate) fn find_idents(
        &self,
        type_name: &str,
        raw_value: &str,
    ) -> Result<Vec<super::keys::IdentId>, LookupError> {
        let types = &self.pipeline.identifiers;
        let t = types
            .id(type_name)
            .ok_or_else(|| LookupError::UnknownType {
                type_name: type_name.to_string(),
                accepted: types.names(),
            })?;
        let value = types
            .get(t)
            .normalizer
            .apply(raw_value, self.pipeline.region)
            .map_err(|e| LookupError::BadValue {
                type_name: type_name.to_string(),
                reason: e.to_string(),
            })?;
        Ok(crate::observation::Kind::ALL
            .iter()
            .filter_map(|k| self.idents.find(*k, t, &value))
            .collect())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("unknown identifier type `{type_name}`; this pipeline accepts: {accepted}")]
    UnknownType { type_name: String, accepted: String },
    #[error("the {type_name} value {reason}")]
    BadValue { type_name: String, reason: String },
    #[error("no live record `{reference}`; write a record as record:SOURCE/ID")]
    UnknownRecord { reference: String },
}
