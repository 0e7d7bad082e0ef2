//! The mapping template: how a product team turns its raw domain events
//! (sign-ups, logins, payments...) into canonical observations without Rust.
//!
//! The language is deliberately small and data-only: JSON paths, constants,
//! concatenation, fallbacks and conditions. Nothing in an event is ever
//! evaluated as code.

use schemars::JsonSchema;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateSpec {
    /// Where the event type is read, for example `$.type`.
    pub event_type: ValueSpec,
    /// One mapping per event type value.
    pub events: BTreeMap<String, EventMappingSpec>,
    /// Event types without a mapping are skipped (counted) instead of dead-lettered.
    #[serde(default)]
    pub skip_unknown_events: bool,
}

/// How one event type becomes an observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventMappingSpec {
    /// Only events matching this condition are mapped; others are skipped (counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<ConditionSpec>,
    pub source: ValueSpec,
    pub id: ValueSpec,
    pub ts: ValueSpec,
    /// person, organization, device or account.
    pub kind: ValueSpec,
    /// When true for an event, the observation retracts the record `(source, id)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retract: Option<ConditionSpec>,
    /// The identifiers of the observed entity; one whose value is absent in
    /// the event is left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<IdentifierMappingSpec>,
    /// Attribute name to value; a value that is absent in the event is left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, ValueSpec>,
    /// Links from the observed entity to others (a person `uses` a device).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relationships: Vec<RelationshipMappingSpec>,
}

/// One identifier of the observation; left out when its value is absent or
/// `when` is false.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentifierMappingSpec {
    /// An identifier type of the pipeline's `identifiers`.
    #[serde(rename = "type")]
    pub type_name: String,
    pub value: ValueSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<ConditionSpec>,
}

/// A relationship from the observed entity to another one; left out when none
/// of its identifiers is present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelationshipMappingSpec {
    /// The relationship's name, such as `uses` or `member_of`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The kind of the other entity: person, organization, device or account.
    pub kind: String,
    /// The other entity's identifiers, which find (or create) its profile.
    pub identifiers: Vec<IdentifierMappingSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<ConditionSpec>,
}

/// A value taken from the event.
///
/// In YAML a plain string starting with `$` is a JSON path (`$.user.email`,
/// `$.items[0].sku`); any other plain string is a constant. The map forms are
/// `{const: ...}` (any JSON value, also a string starting with `$`),
/// `{path: ..., default: ...}`, `{concat: [...], separator: ...}` and
/// `{firstOf: [...]}` (the first present value).
#[derive(Debug, Clone, PartialEq)]
pub enum ValueSpec {
    Path {
        path: String,
        default: Option<Value>,
    },
    Const(Value),
    Concat {
        parts: Vec<ValueSpec>,
        separator: String,
    },
    FirstOf(Vec<ValueSpec>),
}

/// The map forms of [`ValueSpec`], as written in YAML: exactly one of
/// `const`, `path`, `concat` and `firstOf`, with `default` beside `path` and
/// `separator` beside `concat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ValueExpr {
    /// A constant (any JSON value, also a string starting with `$`).
    #[serde(default, rename = "const", skip_serializing_if = "Option::is_none")]
    constant: Option<Value>,
    /// A JSON path into the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// The value when `path` finds nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default: Option<Value>,
    /// Values joined as strings (a missing part leaves the whole missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    concat: Option<Vec<ValueSpec>>,
    /// What `concat` puts between parts (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    separator: Option<String>,
    /// The first of these values that is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_of: Option<Vec<ValueSpec>>,
}

impl ValueExpr {
    fn into_spec(self) -> Result<ValueSpec, &'static str> {
        let forms = [
            self.constant.is_some(),
            self.path.is_some(),
            self.concat.is_some(),
            self.first_of.is_some(),
        ];
        if forms.iter().filter(|f| **f).count() != 1 {
            return Err("a value needs exactly one of `const`, `path`, `concat`, `firstOf`");
        }
        if self.default.is_some() && self.path.is_none() {
            return Err("`default` is only accepted beside `path`");
        }
        if self.separator.is_some() && self.concat.is_none() {
            return Err("`separator` is only accepted beside `concat`");
        }
        Ok(if let Some(v) = self.constant {
            ValueSpec::Const(v)
        } else if let Some(path) = self.path {
            ValueSpec::Path {
                path,
                default: self.default,
            }
        } else if let Some(parts) = self.concat {
            ValueSpec::Concat {
                parts,
                separator: self.separator.unwrap_or_default(),
            }
        } else {
            ValueSpec::FirstOf(self.first_of.unwrap_or_default())
        })
    }
}

impl ValueSpec {
    pub fn path(path: &str) -> Self {
        ValueSpec::Path {
            path: path.to_string(),
            default: None,
        }
    }
}

impl Serialize for ValueSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let expr = match self {
            ValueSpec::Path {
                path,
                default: None,
            } => return s.serialize_str(path),
            ValueSpec::Const(Value::String(v)) if !v.starts_with('$') => return s.serialize_str(v),
            ValueSpec::Path { path, default } => ValueExpr {
                path: Some(path.clone()),
                default: default.clone(),
                ..Default::default()
            },
            ValueSpec::Const(v) => ValueExpr {
                constant: Some(v.clone()),
                ..Default::default()
            },
            ValueSpec::Concat { parts, separator } => ValueExpr {
                concat: Some(parts.clone()),
                separator: Some(separator.clone()),
                ..Default::default()
            },
            ValueSpec::FirstOf(parts) => ValueExpr {
                first_of: Some(parts.clone()),
                ..Default::default()
            },
        };
        expr.serialize(s)
    }
}

/// The schema of what [`ValueSpec`]'s `Deserialize` accepts: a plain
/// scalar (a string is a path when it starts with `$`) or one map form.
impl JsonSchema for ValueSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Value".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let forms = generator.subschema_for::<ValueExpr>();
        schemars::json_schema!({
            "description": "A value taken from the event: a string starting with `$` is a JSON path (`$.user.email`, `$.items[0].sku`), any other string, number or boolean a constant; or exactly one of the map forms `{const}`, `{path, default}`, `{concat, separator}`, `{firstOf}`.",
            "anyOf": [
                {"type": ["string", "number", "boolean"]},
                forms
            ]
        })
    }
}

impl<'de> Deserialize<'de> for ValueSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ValueSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a JSON path such as `$.user.email`, a constant string, or one of \
                     {const}, {path, default}, {concat, separator}, {firstOf}",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ValueSpec, E> {
                if v.starts_with('$') {
                    Ok(ValueSpec::path(v))
                } else {
                    Ok(ValueSpec::Const(Value::String(v.to_string())))
                }
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ValueSpec, E> {
                Ok(ValueSpec::Const(Value::Bool(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ValueSpec, E> {
                Ok(ValueSpec::Const(Value::Number(v.into())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ValueSpec, E> {
                Ok(ValueSpec::Const(Value::Number(v.into())))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ValueSpec, A::Error> {
                let expr = ValueExpr::deserialize(de::value::MapAccessDeserializer::new(map))?;
                expr.into_spec().map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A condition on the event. Exactly one key per map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum ConditionSpec {
    /// The value is present and not null.
    Exists(ValueSpec),
    /// The value equals a constant (JSON equality; strings compare exactly).
    Equals {
        value: ValueSpec,
        to: Value,
    },
    /// The value equals one of the constants.
    In {
        value: ValueSpec,
        of: Vec<Value>,
    },
    /// The value is a string matching the regular expression.
    Matches {
        value: ValueSpec,
        regex: String,
    },
    All(Vec<ConditionSpec>),
    Any(Vec<ConditionSpec>),
    Not(Box<ConditionSpec>),
}
