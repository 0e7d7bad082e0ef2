//! The mapping template (see `kith_api::pipeline::TemplateSpec`) compiled for
//! execution: it turns a product team's raw domain events (sign-ups, logins,
//! tickets, payments) into canonical wire observations.
//!
//! Everything that can be checked without an event is checked once, in
//! [`Template::compile`]: paths are parsed into steps, regexes compiled,
//! identifier types and kinds resolved. Mapping an event then never parses a
//! path or fails on configuration.
//!
//! Mapping must never decide what the observation validation decides: a
//! missing `source`, `id` or `ts` is left `None`, and the normal validation
//! dead-letters it with "missing field"; identifier values are passed raw to
//! the normalizers. It must never evaluate event content as code, and its
//! errors must never quote event values (identifiers are personal data): they
//! name the event type, the template field and the JSON type found.
//!
//! Semantics, as users rely on them:
//! - a value that is absent or JSON null is absent; an absent identifier,
//!   attribute or relationship is left out;
//! - strings, numbers and booleans become strings where the observation needs
//!   text (a numeric id `17` becomes `"17"`); arrays and objects there are errors;
//! - an array at an identifier's value is several identifiers of that type,
//!   one per element (null elements are left out);
//! - `when` false on the event skips it (counted, not dead-lettered); an event
//!   type without mapping is dead-lettered, or skipped with `skipUnknownEvents`;
//! - `retract` true makes the observation a retraction of `(source, id)`; the
//!   rest of the mapping is then not evaluated.

mod expr;
mod path;

use crate::config::{ConfigError, IdentifierTypes};
use crate::observation::{Kind, Rejection, WireIdentifier, WireObservation, WireRelationship};
use expr::{into_text, is_scalar, scalar_text, type_name, Condition, Expr, Problem};
use kith_api::pipeline::{
    ConditionSpec, EventMappingSpec, IdentifierMappingSpec, RelationshipMappingSpec, TemplateSpec,
    ValueSpec,
};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A compiled mapping template.
#[derive(Debug)]
pub struct Template {
    event_type: Expr,
    events: BTreeMap<String, EventMapping>,
    skip_unknown_events: bool,
    /// The mapped event types, comma-separated, for the unknown-type message.
    mapped_types: String,
}

/// The outcome of mapping one event.
#[derive(Debug)]
pub enum Mapped {
    Observation(WireObservation<'static>),
    Skipped(SkipReason),
}

/// Why an event produced no observation without being an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// Its type has no mapping and the template sets `skipUnknownEvents`.
    UnknownEventType,
    /// The `when` condition of its mapping is false.
    NotSelected,
}

impl SkipReason {
    /// A short stable name, used as a metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::UnknownEventType => "unknown_event_type",
            SkipReason::NotSelected => "when_false",
        }
    }
}

/// Why an event could not be mapped; becomes [`Rejection::Template`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum TemplateError {
    #[error("the event type ({0}) is absent")]
    NoEventType(String),
    #[error("the event type: {0}")]
    BadEventType(Problem),
    #[error(
        "event type {shown} has no mapping (set `skipUnknownEvents: true` to skip such events); mapped types: {mapped}"
    )]
    UnknownEventType { shown: String, mapped: String },
    #[error("event \"{event}\": field {field}: {problem}")]
    Field {
        event: String,
        field: String,
        problem: Problem,
    },
}

impl From<TemplateError> for Rejection {
    fn from(e: TemplateError) -> Self {
        Rejection::Template(e.to_string())
    }
}

#[derive(Debug)]
struct EventMapping {
    name: String,
    when: Option<Condition>,
    source: Expr,
    id: Expr,
    ts: Expr,
    kind: KindExpr,
    retract: Option<Condition>,
    identifiers: Vec<IdentifierMapping>,
    attributes: Vec<(String, Expr)>,
    relationships: Vec<RelationshipMapping>,
}

/// A constant kind is resolved at compile time; a kind read from the event is
/// checked by the observation validation like any canonical line.
#[derive(Debug)]
enum KindExpr {
    Known(Kind),
    FromEvent(Expr),
}

#[derive(Debug)]
struct IdentifierMapping {
    /// The template field, relative to the event mapping (`identifiers[0]`).
    field: String,
    type_name: String,
    value: Expr,
    when: Option<Condition>,
}

#[derive(Debug)]
struct RelationshipMapping {
    field: String,
    rel_type: String,
    kind: Kind,
    identifiers: Vec<IdentifierMapping>,
    when: Option<Condition>,
}

const KINDS: &str = "person, organization, device, account";

impl Template {
    /// Validates the template against the pipeline's identifier types.
    /// Errors name the field, such as `template.events.signup.identifiers[0].value`.
    pub fn compile(spec: &TemplateSpec, types: &IdentifierTypes) -> Result<Self, ConfigError> {
        if spec.events.is_empty() {
            return Err(ConfigError::invalid(
                "template.events",
                "map at least one event type",
            ));
        }
        let event_type = Expr::compile(&spec.event_type, "template.eventType")?;
        let mut events = BTreeMap::new();
        for (name, event) in &spec.events {
            let field = format!("template.events.{name}");
            if name.trim().is_empty() {
                return Err(ConfigError::invalid(
                    field,
                    "an event type name must not be empty",
                ));
            }
            events.insert(
                name.clone(),
                EventMapping::compile(name, event, &field, types)?,
            );
        }
        let mapped_types = spec
            .events
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if let Some(constant) = event_type.constant() {
            // A constant type is legitimate for a single-type stream, but it
            // must name a mapping or every event would be refused.
            let known = scalar_text(constant).is_some_and(|t| events.contains_key(&*t));
            if !known {
                return Err(ConfigError::invalid(
                    "template.eventType",
                    format!(
                        "a constant event type must be one of the mapped types: {mapped_types}"
                    ),
                ));
            }
        }
        Ok(Template {
            event_type,
            events,
            skip_unknown_events: spec.skip_unknown_events,
            mapped_types,
        })
    }

    /// Maps one raw event: `Ok(None)` when it is skipped (see
    /// [`Template::map_with_skip_reason`] to count skips by reason).
    pub fn map(&self, event: &Value) -> Result<Option<WireObservation<'static>>, Rejection> {
        Ok(match self.map_with_skip_reason(event)? {
            Mapped::Observation(wire) => Some(wire),
            Mapped::Skipped(_) => None,
        })
    }

    /// Maps one raw event, saying why it was skipped. The observation still
    /// has to be validated (`WireObservation::validate`).
    pub fn map_with_skip_reason(&self, event: &Value) -> Result<Mapped, Rejection> {
        Ok(self.map_event(event)?)
    }

    fn map_event(&self, event: &Value) -> Result<Mapped, TemplateError> {
        let type_value = self
            .event_type
            .eval(event)
            .map_err(TemplateError::BadEventType)?
            .ok_or_else(|| TemplateError::NoEventType(self.event_type.describe()))?;
        let Some(type_name_text) = scalar_text(&type_value) else {
            return Err(TemplateError::BadEventType(Problem::NotScalar {
                at: self.event_type.describe(),
                found: type_name(&type_value),
            }));
        };
        match self.events.get(&*type_name_text) {
            Some(mapping) => mapping.map(event),
            None if self.skip_unknown_events => Ok(Mapped::Skipped(SkipReason::UnknownEventType)),
            None => Err(TemplateError::UnknownEventType {
                shown: show_event_type(&type_name_text),
                mapped: self.mapped_types.clone(),
            }),
        }
    }
}

/// An unmapped event type is quoted only when it looks like a type name: if
/// `eventType` points at the wrong field, the "type" may be personal data (an
/// email, a phone number: hence the letter required and `@`, `+` refused).
fn show_event_type(t: &str) -> String {
    let looks_like_a_name = t.len() <= 64
        && t.chars().any(|c| c.is_ascii_alphabetic())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/'));
    if looks_like_a_name {
        format!("\"{t}\"")
    } else {
        "(not shown: it does not look like a type name)".to_string()
    }
}

impl EventMapping {
    fn compile(
        name: &str,
        spec: &EventMappingSpec,
        field: &str,
        types: &IdentifierTypes,
    ) -> Result<Self, ConfigError> {
        let at = |sub: &str| format!("{field}.{sub}");
        let condition = |c: &Option<ConditionSpec>, sub: &str| {
            c.as_ref()
                .map(|c| Condition::compile(c, &at(sub)))
                .transpose()
        };
        let kind = match Expr::compile(&spec.kind, &at("kind"))? {
            Expr::Const(v) => {
                let kind = v.as_str().and_then(Kind::parse).ok_or_else(|| {
                    ConfigError::invalid(at("kind"), format!("not a known kind; accepted: {KINDS}"))
                })?;
                KindExpr::Known(kind)
            }
            other => KindExpr::FromEvent(other),
        };
        let mut attributes = Vec::with_capacity(spec.attributes.len());
        for (attr, value) in &spec.attributes {
            if attr.trim().is_empty() {
                return Err(ConfigError::invalid(
                    at("attributes"),
                    "an attribute name must not be empty",
                ));
            }
            attributes.push((
                attr.clone(),
                Expr::compile(value, &at(&format!("attributes.{attr}")))?,
            ));
        }
        Ok(EventMapping {
            name: name.to_string(),
            when: condition(&spec.when, "when")?,
            source: text_field(&spec.source, &at("source"))?,
            id: text_field(&spec.id, &at("id"))?,
            ts: text_field(&spec.ts, &at("ts"))?,
            kind,
            retract: condition(&spec.retract, "retract")?,
            identifiers: compile_identifiers(&spec.identifiers, field, "identifiers", types)?,
            attributes,
            relationships: spec
                .relationships
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    RelationshipMapping::compile(r, field, &format!("relationships[{i}]"), types)
                })
                .collect::<Result<_, _>>()?,
        })
    }

    fn map(&self, event: &Value) -> Result<Mapped, TemplateError> {
        let fail = |field: &str, problem: Problem| TemplateError::Field {
            event: self.name.clone(),
            field: field.to_string(),
            problem,
        };
        if let Some(when) = &self.when {
            if !when.eval(event).map_err(|p| fail("when", p))? {
                return Ok(Mapped::Skipped(SkipReason::NotSelected));
            }
        }
        let text = |expr: &Expr, field: &str| -> Result<Option<Cow<'static, str>>, TemplateError> {
            match expr.eval(event).map_err(|p| fail(field, p))? {
                None => Ok(None),
                Some(v) => {
                    let found = type_name(&v);
                    into_text(v).map(|s| Some(Cow::Owned(s))).ok_or_else(|| {
                        fail(
                            field,
                            Problem::NotScalar {
                                at: expr.describe(),
                                found,
                            },
                        )
                    })
                }
            }
        };
        let mut wire = WireObservation {
            source: text(&self.source, "source")?,
            id: text(&self.id, "id")?,
            ts: text(&self.ts, "ts")?,
            ..WireObservation::default()
        };
        if let Some(retract) = &self.retract {
            if retract.eval(event).map_err(|p| fail("retract", p))? {
                wire.retract = true;
                return Ok(Mapped::Observation(wire));
            }
        }
        wire.kind = match &self.kind {
            KindExpr::Known(kind) => Some(Cow::Borrowed(kind.as_str())),
            KindExpr::FromEvent(expr) => text(expr, "kind")?,
        };
        for mapping in &self.identifiers {
            mapping
                .push_into(event, &mut wire.identifiers)
                .map_err(|(field, p)| fail(&field, p))?;
        }
        let mut attributes = serde_json::Map::new();
        for (name, expr) in &self.attributes {
            let value = expr
                .eval(event)
                .map_err(|p| fail(&format!("attributes.{name}"), p))?;
            if let Some(value) = value {
                attributes.insert(name.clone(), value.into_owned());
            }
        }
        if !attributes.is_empty() {
            wire.attributes = Some(attributes);
        }
        for rel in &self.relationships {
            if let Some(r) = rel.map(event).map_err(|(field, p)| fail(&field, p))? {
                wire.relationships.push(r);
            }
        }
        Ok(Mapped::Observation(wire))
    }
}

/// `source`, `id` and `ts` become text: a constant there must be a non-empty
/// scalar, or every event would be dead-lettered.
fn text_field(spec: &ValueSpec, field: &str) -> Result<Expr, ConfigError> {
    let expr = Expr::compile(spec, field)?;
    if let Some(v) = expr.constant() {
        let usable = is_scalar(v) && v.as_str().is_none_or(|s| !s.trim().is_empty());
        if !usable {
            return Err(ConfigError::invalid(
                field,
                format!(
                    "a constant here must be a non-empty string, number or boolean, not {}",
                    type_name(v)
                ),
            ));
        }
    }
    Ok(expr)
}

fn compile_identifiers(
    specs: &[IdentifierMappingSpec],
    event_field: &str,
    list_field: &str,
    types: &IdentifierTypes,
) -> Result<Vec<IdentifierMapping>, ConfigError> {
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let field = format!("{list_field}[{i}]");
            let at = |sub: &str| format!("{event_field}.{field}.{sub}");
            if types.id(&spec.type_name).is_none() {
                return Err(ConfigError::invalid(
                    at("type"),
                    format!("unknown identifier type `{}`; this pipeline accepts: {}", spec.type_name, types.names()),
                ));
            }
            let value = Expr::compile(&spec.value, &at("value"))?;
            if let Some(v) = value.constant() {
                let usable = is_scalar(v) || v.as_array().is_some_and(|items| items.iter().all(is_scalar));
                if !usable {
                    return Err(ConfigError::invalid(
                        at("value"),
                        format!(
                            "a constant identifier must be a string, number, boolean or array of them, not {}",
                            type_name(v)
                        ),
                    ));
                }
            }
            let when = spec.when.as_ref().map(|c| Condition::compile(c, &at("when"))).transpose()?;
            Ok(IdentifierMapping { field, type_name: spec.type_name.clone(), value, when })
        })
        .collect()
}

/// An evaluation problem with the template field it happened at.
type FieldProblem = (String, Problem);

impl IdentifierMapping {
    /// Appends this mapping's identifiers for `event` (none, one, or one per
    /// array element).
    fn push_into(
        &self,
        event: &Value,
        out: &mut Vec<WireIdentifier<'static>>,
    ) -> Result<(), FieldProblem> {
        if let Some(when) = &self.when {
            if !when
                .eval(event)
                .map_err(|p| (format!("{}.when", self.field), p))?
            {
                return Ok(());
            }
        }
        let value_field = || format!("{}.value", self.field);
        let Some(value) = self.value.eval(event).map_err(|p| (value_field(), p))? else {
            return Ok(());
        };
        let identifier = |text: String| WireIdentifier {
            type_name: Cow::Owned(self.type_name.clone()),
            value: Cow::Owned(text),
        };
        if let Value::Array(items) = &*value {
            out.reserve(items.len());
            for (i, item) in items.iter().enumerate() {
                if item.is_null() {
                    continue;
                }
                let text = scalar_text(item).ok_or_else(|| {
                    let at = format!("{}, element {i},", self.value.describe());
                    (
                        value_field(),
                        Problem::NotScalar {
                            at,
                            found: type_name(item),
                        },
                    )
                })?;
                out.push(identifier(text.into_owned()));
            }
            return Ok(());
        }
        let found = type_name(&value);
        let text = into_text(value).ok_or_else(|| {
            (
                value_field(),
                Problem::NotScalar {
                    at: self.value.describe(),
                    found,
                },
            )
        })?;
        out.push(identifier(text));
        Ok(())
    }
}

impl RelationshipMapping {
    fn compile(
        spec: &RelationshipMappingSpec,
        event_field: &str,
        field: &str,
        types: &IdentifierTypes,
    ) -> Result<Self, ConfigError> {
        let at = |sub: &str| format!("{event_field}.{field}.{sub}");
        if spec.type_name.trim().is_empty() {
            return Err(ConfigError::invalid(
                at("type"),
                "a relationship type such as `uses` or `owns` is required",
            ));
        }
        let kind = Kind::parse(&spec.kind).ok_or_else(|| {
            ConfigError::invalid(
                at("kind"),
                format!("`{}` is not a known kind; accepted: {KINDS}", spec.kind),
            )
        })?;
        if spec.identifiers.is_empty() {
            return Err(ConfigError::invalid(
                at("identifiers"),
                "list at least one identifier of the related entity",
            ));
        }
        Ok(RelationshipMapping {
            field: field.to_string(),
            rel_type: spec.type_name.trim().to_string(),
            kind,
            identifiers: compile_identifiers(
                &spec.identifiers,
                &format!("{event_field}.{field}"),
                "identifiers",
                types,
            )?
            .into_iter()
            .map(|mut m| {
                // Messages at map time name the field from the event mapping.
                m.field = format!("{field}.{}", m.field);
                m
            })
            .collect(),
            when: spec
                .when
                .as_ref()
                .map(|c| Condition::compile(c, &at("when")))
                .transpose()?,
        })
    }

    /// The relationship for `event`, or `None` when `when` is false or none of
    /// its identifiers is present.
    fn map(&self, event: &Value) -> Result<Option<WireRelationship<'static>>, FieldProblem> {
        if let Some(when) = &self.when {
            if !when
                .eval(event)
                .map_err(|p| (format!("{}.when", self.field), p))?
            {
                return Ok(None);
            }
        }
        let mut identifiers = Vec::new();
        for mapping in &self.identifiers {
            mapping.push_into(event, &mut identifiers)?;
        }
        Ok((!identifiers.is_empty()).then(|| WireRelationship {
            rel_type: Cow::Owned(self.rel_type.clone()),
            kind: Cow::Borrowed(self.kind.as_str()),
            identifiers,
        }))
    }
}

#[cfg(test)]
mod tests;
