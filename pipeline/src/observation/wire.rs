use serde::Deserialize;
use std::borrow::Cow;

/// An observation as it arrives on the wire, before any check. Strings borrow
/// from the input line where no unescaping is needed. Unknown fields are
/// refused so that a misspelt `identifers` is dead-lettered, not ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireObservation<'a> {
    #[serde(borrow, default)]
    pub source: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub ts: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default)]
    pub retract: bool,
    #[serde(borrow, default)]
    pub identifiers: Vec<WireIdentifier<'a>>,
    #[serde(default)]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(borrow, default)]
    pub relationships: Vec<WireRelationship<'a>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireIdentifier<'a> {
    #[serde(borrow, rename = "type")]
    pub type_name: Cow<'a, str>,
    #[serde(borrow)]
    pub value: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireRelationship<'a> {
    #[serde(borrow, rename = "type")]
    pub rel_type: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
    #[serde(borrow)]
    pub identifiers: Vec<WireIdentifier<'a>>,
}
