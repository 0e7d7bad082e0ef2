use super::{
    Body, Identifier, Kind, Observation, Relationship, Timestamp, WireIdentifier, WireObservation,
};
use crate::config::Pipeline;
use std::fmt;

/// Lines longer than this are dead-lettered unread (docs/design.md §4: bad input).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Why an input line was not applied. The message names the field and what
/// would be accepted; it never quotes identifier values (personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("line is longer than {MAX_LINE_BYTES} bytes")]
    TooLong,
    #[error("line is not valid UTF-8")]
    InvalidUtf8,
    #[error("not a JSON observation: {0}")]
    Malformed(String),
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("field `{0}` must not be empty")]
    Empty(&'static str),
    #[error("field `ts`: not an RFC 3339 timestamp such as 2026-01-05T10:00:00Z")]
    BadTimestamp,
    #[error(
        "field `ts`: outside the times Kith holds, {} to {}",
        super::timestamp::EARLIEST,
        super::timestamp::LATEST
    )]
    TimestampOutOfRange,
    #[error(
        "field `{field}`: unknown kind `{kind}`; accepted: person, organization, device, account"
    )]
    UnknownKind { field: String, kind: String },
    #[error(
        "field `{field}`: unknown identifier type `{type_name}`; this pipeline accepts: {accepted}"
    )]
    UnknownIdentifierType {
        field: String,
        type_name: String,
        accepted: String,
    },
    #[error("field `{field}`: {reason}")]
    BadIdentifier { field: String, reason: String },
    #[error("field `{field}`: holds {count} distinct `{type_name}` values, more than its exclusive limit {limit}")]
    ExclusiveLimit {
        field: String,
        type_name: String,
        count: usize,
        limit: u32,
    },
    #[error("template: {0}")]
    Template(String),
}

impl Rejection {
    /// A short stable category, used as a metrics label.
    pub fn category(&self) -> &'static str {
        match self {
            Rejection::TooLong => "too_long",
            Rejection::InvalidUtf8 => "invalid_utf8",
            Rejection::Malformed(_) => "malformed",
            Rejection::Missing(_) => "missing_field",
            Rejection::Empty(_) => "empty_field",
            Rejection::BadTimestamp | Rejection::TimestampOutOfRange => "bad_timestamp",
            Rejection::UnknownKind { .. } => "unknown_kind",
            Rejection::UnknownIdentifierType { .. } => "unknown_identifier_type",
            Rejection::BadIdentifier { .. } => "bad_identifier",
            Rejection::ExclusiveLimit { .. } => "exclusive_limit",
            Rejection::Template(_) => "template",
        }
    }
}

/// Parses and validates one canonical line.
pub fn parse_line(line: &[u8], pipeline: &Pipeline) -> Result<Observation, Rejection> {
    if line.len() > MAX_LINE_BYTES {
        return Err(Rejection::TooLong);
    }
    let text = std::str::from_utf8(line).map_err(|_| Rejection::InvalidUtf8)?;
    let wire: WireObservation<'_> =
        serde_json::from_str(text).map_err(|e| Rejection::Malformed(describe_json_error(&e)))?;
    wire.validate(pipeline)
}

/// serde_json's message without the echo of the input.
fn describe_json_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.find(" at line ") {
        Some(pos) => format!("{} (column {})", &msg[..pos], e.column()),
        None => msg,
    }
}

struct Field<'p>(&'p str, usize);

impl fmt::Display for Field<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.0, self.1)
    }
}

impl WireObservation<'_> {
    /// Checks and normalizes the observation against the pipeline.
    pub fn validate(self, pipeline: &Pipeline) -> Result<Observation, Rejection> {
        let source = required(self.source, "source")?;
        let id = required(self.id, "id")?;
        let ts = required(self.ts, "ts")?;
        let ts = Timestamp::parse(ts.trim()).map_err(|e| match e {
            super::timestamp::TimestampError::NotRfc3339 => Rejection::BadTimestamp,
            super::timestamp::TimestampError::OutOfRange => Rejection::TimestampOutOfRange,
        })?;
        if self.retract {
            return Ok(Observation {
                source,
                id,
                ts,
                body: None,
            });
        }
        let kind_text = required(self.kind, "kind")?;
        let kind = Kind::parse(&kind_text).ok_or_else(|| Rejection::UnknownKind {
            field: "kind".into(),
            kind: clip(&kind_text),
        })?;
        let identifiers = normalize_all(&self.identifiers, "identifiers", pipeline)?;
        check_exclusive_limits(&identifiers, "identifiers", pipeline)?;
        let mut attributes: Vec<(String, String)> = self
            .attributes
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, v.to_string()))
            .collect();
        attributes.sort();
        let mut relationships = Vec::with_capacity(self.relationships.len());
        for (i, rel) in self.relationships.iter().enumerate() {
            let field = Field("relationships", i).to_string();
            if rel.rel_type.trim().is_empty() {
                return Err(Rejection::BadIdentifier {
                    field: format!("{field}.type"),
                    reason: "must not be empty".into(),
                });
            }
            let rel_kind = Kind::parse(&rel.kind).ok_or_else(|| Rejection::UnknownKind {
                field: format!("{field}.kind"),
                kind: clip(&rel.kind),
            })?;
            let ids = normalize_all(&rel.identifiers, &format!("{field}.identifiers"), pipeline)?;
            if ids.is_empty() {
                return Err(Rejection::BadIdentifier {
                    field: format!("{field}.identifiers"),
                    reason: "a relationship needs at least one identifier of the related entity"
                        .into(),
                });
            }
            check_exclusive_limits(&ids, &format!("{field}.identifiers"), pipeline)?;
            relationships.push(Relationship {
                rel_type: rel.rel_type.trim().to_string(),
                kind: rel_kind,
                identifiers: ids,
            });
        }
        relationships.sort();
        relationships.dedup();
        Ok(Observation {
            source,
            id,
            ts,
            body: Some(Body {
                kind,
                identifiers,
                attributes,
                relationships,
            }),
        })
    }
}

fn required(
    value: Option<std::borrow::Cow<'_, str>>,
    field: &'static str,
) -> Result<String, Rejection> {
    match value {
        None => Err(Rejection::Missing(field)),
        Some(v) if v.trim().is_empty() => Err(Rejection::Empty(field)),
        Some(v) => Ok(v.into_owned()),
    }
}

/// Shortens user text quoted in an error (kinds, type names: never identifier values).
fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

fn normalize_all(
    wire: &[WireIdentifier<'_>],
    field: &str,
    pipeline: &Pipeline,
) -> Result<Vec<Identifier>, Rejection> {
    let mut out = Vec::with_capacity(wire.len());
    for (i, w) in wire.iter().enumerate() {
        let type_id = pipeline.identifiers.id(&w.type_name).ok_or_else(|| {
            Rejection::UnknownIdentifierType {
                field: format!("{}.type", Field(field, i)),
                type_name: clip(&w.type_name),
                accepted: pipeline.identifiers.names(),
            }
        })?;
        let spec = pipeline.identifiers.get(type_id);
        let value = spec
            .normalizer
            .apply(&w.value, pipeline.region)
            .map_err(|e| Rejection::BadIdentifier {
                field: format!("{}.value", Field(field, i)),
                reason: format!("{} value {e}", spec.name),
            })?;
        out.push(Identifier { type_id, value });
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn check_exclusive_limits(
    ids: &[Identifier],
    field: &str,
    pipeline: &Pipeline,
) -> Result<(), Rejection> {
    for (type_id, limit) in pipeline.identifiers.exclusive() {
        let count = ids.iter().filter(|i| i.type_id == type_id).count();
        if count > limit as usize {
            return Err(Rejection::ExclusiveLimit {
                field: field.to_string(),
                type_name: pipeline.identifiers.name(type_id).to_string(),
                count,
                limit,
            });
        }
    }
    Ok(())
}
