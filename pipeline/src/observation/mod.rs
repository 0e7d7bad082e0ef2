//! The canonical observation (docs/design.md §2): its wire form, its validated form, and
//! the checks between them. Everything after this module works on validated,
//! normalized observations only.

mod parse;
mod timestamp;
mod wire;

pub use parse::{parse_line, Rejection, MAX_LINE_BYTES};
pub use timestamp::{Timestamp, TimestampError};
pub use wire::{WireIdentifier, WireObservation, WireRelationship};

use crate::config::TypeId;
use std::fmt;

/// The kind of entity a record describes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Kind {
    Person,
    Organization,
    Device,
    Account,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Person,
        Kind::Organization,
        Kind::Device,
        Kind::Account,
    ];

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "person" => Some(Kind::Person),
            "organization" => Some(Kind::Organization),
            "device" => Some(Kind::Device),
            "account" => Some(Kind::Account),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Person => "person",
            Kind::Organization => "organization",
            Kind::Device => "device",
            Kind::Account => "account",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A normalized identifier.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Identifier {
    pub type_id: TypeId,
    pub value: String,
}

/// A link from the observed entity to another entity, named by its identifiers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Relationship {
    pub rel_type: String,
    pub kind: Kind,
    /// Sorted and free of duplicates.
    pub identifiers: Vec<Identifier>,
}

/// The content of a live record version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Body {
    pub kind: Kind,
    /// Sorted and free of duplicates.
    pub identifiers: Vec<Identifier>,
    /// Attribute name and its value as compact JSON text, sorted by name.
    /// Null values are left out: a missing value is no evidence.
    pub attributes: Vec<(String, String)>,
    /// Sorted.
    pub relationships: Vec<Relationship>,
}

/// A validated observation: a new version of the record `(source, id)` at `ts`,
/// or its retraction when `body` is `None`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Observation {
    pub source: String,
    pub id: String,
    pub ts: Timestamp,
    pub body: Option<Body>,
}

impl Observation {
    pub fn is_retraction(&self) -> bool {
        self.body.is_none()
    }
}
