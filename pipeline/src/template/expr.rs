//! Values and conditions of the mapping template, compiled once from
//! `ValueSpec` / `ConditionSpec` and evaluated per event.
//!
//! Evaluation must never panic on an event and never put a value of the event
//! into an error: a [`Problem`] says where (path, constant...) and what JSON
//! type was found, never what the value was, because events carry personal data.

use super::path::{JsonPath, SYNTAX};
use crate::config::ConfigError;
use kith_api::pipeline::{ConditionSpec, ValueSpec};
use regex::Regex;
use serde_json::Value;
use std::borrow::Cow;

/// A value taken from the event. `None` from [`Expr::eval`] is absence; JSON
/// null counts as absent, so that `"phone": null` and no `phone` mean the same.
#[derive(Debug)]
pub(super) enum Expr {
    Path {
        path: JsonPath,
        default: Option<Value>,
    },
    Const(Value),
    Concat {
        parts: Vec<Expr>,
        separator: String,
    },
    FirstOf(Vec<Expr>),
}

/// What went wrong evaluating a value of one event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Problem {
    #[error("{at} holds {found}; expected a string, number or boolean")]
    NotScalar { at: String, found: &'static str },
}

impl Expr {
    /// Compiles a value written at `field` (a pipeline field path for errors).
    pub(super) fn compile(spec: &ValueSpec, field: &str) -> Result<Expr, ConfigError> {
        Ok(match spec {
            ValueSpec::Path { path, default } => {
                let parsed = JsonPath::parse(path).map_err(|e| {
                    ConfigError::invalid(
                        field,
                        format!("`{path}` is not a valid JSON path: {e}; {SYNTAX}"),
                    )
                })?;
                // A null default is no default: null is absence.
                Expr::Path {
                    path: parsed,
                    default: default.clone().filter(|d| !d.is_null()),
                }
            }
            ValueSpec::Const(v) => Expr::Const(v.clone()),
            ValueSpec::Concat { parts, separator } => {
                if parts.is_empty() {
                    return Err(ConfigError::invalid(
                        field,
                        "`concat` needs at least one part",
                    ));
                }
                let parts = parts
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let part_field = format!("{field}.concat[{i}]");
                        if let ValueSpec::Const(v) = p {
                            if !is_scalar(v) {
                                return Err(ConfigError::invalid(
                                    part_field,
                                    format!(
                                        "a concat part must be a string, number or boolean, not {}",
                                        type_name(v)
                                    ),
                                ));
                            }
                        }
                        Expr::compile(p, &part_field)
                    })
                    .collect::<Result<_, _>>()?;
                Expr::Concat {
                    parts,
                    separator: separator.clone(),
                }
            }
            ValueSpec::FirstOf(options) => {
                if options.is_empty() {
                    return Err(ConfigError::invalid(
                        field,
                        "`firstOf` needs at least one value",
                    ));
                }
                let options = options
                    .iter()
                    .enumerate()
                    .map(|(i, o)| Expr::compile(o, &format!("{field}.firstOf[{i}]")))
                    .collect::<Result<_, _>>()?;
                Expr::FirstOf(options)
            }
        })
    }

    /// The constant this expression always yields, if it is one.
    pub(super) fn constant(&self) -> Option<&Value> {
        match self {
            Expr::Const(v) => Some(v),
            _ => None,
        }
    }

    /// The value for `event`: borrowed from the event or the template when it
    /// can be, built only for `concat`.
    pub(super) fn eval<'a>(&'a self, event: &'a Value) -> Result<Option<Cow<'a, Value>>, Problem> {
        Ok(match self {
            Expr::Path { path, default } => match path.get(event) {
                Some(v) if !v.is_null() => Some(Cow::Borrowed(v)),
                _ => default.as_ref().map(Cow::Borrowed),
            },
            Expr::Const(v) => (!v.is_null()).then_some(Cow::Borrowed(v)),
            Expr::Concat { parts, separator } => {
                let mut out = String::new();
                for (i, part) in parts.iter().enumerate() {
                    let Some(v) = part.eval(event)? else {
                        return Ok(None);
                    };
                    if i > 0 {
                        out.push_str(separator);
                    }
                    match &*v {
                        Value::String(s) => out.push_str(s),
                        Value::Number(n) => out.push_str(&n.to_string()),
                        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                        other => {
                            return Err(Problem::NotScalar {
                                at: part.describe(),
                                found: type_name(other),
                            })
                        }
                    }
                }
                Some(Cow::Owned(Value::String(out)))
            }
            Expr::FirstOf(options) => {
                for option in options {
                    if let Some(v) = option.eval(event)? {
                        return Ok(Some(v));
                    }
                }
                None
            }
        })
    }

    /// Where a value came from, for messages (never the value itself).
    pub(super) fn describe(&self) -> String {
        match self {
            Expr::Path { path, .. } => format!("path {path}"),
            Expr::Const(_) => "the constant".to_string(),
            Expr::Concat { .. } => "the concat".to_string(),
            Expr::FirstOf(_) => "the first present value of firstOf".to_string(),
        }
    }
}

/// The text form of a scalar: strings as they are, numbers in JSON notation
/// (`17` becomes `"17"`), booleans as `true`/`false`. `None` for arrays and objects.
pub(super) fn scalar_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(true) => Some(Cow::Borrowed("true")),
        Value::Bool(false) => Some(Cow::Borrowed("false")),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Like [`scalar_text`], taking ownership so that a built string is not copied.
pub(super) fn into_text(v: Cow<'_, Value>) -> Option<String> {
    match v {
        Cow::Owned(Value::String(s)) => Some(s),
        other => scalar_text(&other).map(Cow::into_owned),
    }
}

pub(super) fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// The JSON type of a value with its article, for messages.
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A condition on the event.
#[derive(Debug)]
pub(super) enum Condition {
    Exists(Expr),
    Equals(Expr, Value),
    In(Expr, Vec<Value>),
    Matches(Expr, Regex),
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

impl Condition {
    pub(super) fn compile(spec: &ConditionSpec, field: &str) -> Result<Condition, ConfigError> {
        let never_null = |v: &Value, at: String| {
            if v.is_null() {
                Err(ConfigError::invalid(
                    at,
                    "null never matches: null counts as absent; use `not: {exists: ...}` to test for absence",
                ))
            } else {
                Ok(())
            }
        };
        let list = |items: &[ConditionSpec], name: &str| -> Result<Vec<Condition>, ConfigError> {
            if items.is_empty() {
                return Err(ConfigError::invalid(
                    format!("{field}.{name}"),
                    "list at least one condition",
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, c)| Condition::compile(c, &format!("{field}.{name}[{i}]")))
                .collect()
        };
        Ok(match spec {
            ConditionSpec::Exists(v) => {
                Condition::Exists(Expr::compile(v, &format!("{field}.exists"))?)
            }
            ConditionSpec::Equals { value, to } => {
                never_null(to, format!("{field}.equals.to"))?;
                Condition::Equals(
                    Expr::compile(value, &format!("{field}.equals.value"))?,
                    to.clone(),
                )
            }
            ConditionSpec::In { value, of } => {
                if of.is_empty() {
                    return Err(ConfigError::invalid(
                        format!("{field}.in.of"),
                        "list at least one value",
                    ));
                }
                for (i, v) in of.iter().enumerate() {
                    never_null(v, format!("{field}.in.of[{i}]"))?;
                }
                Condition::In(
                    Expr::compile(value, &format!("{field}.in.value"))?,
                    of.clone(),
                )
            }
            ConditionSpec::Matches { value, regex } => {
                let compiled = Regex::new(regex).map_err(|e| {
                    ConfigError::invalid(
                        format!("{field}.matches.regex"),
                        format!("not a valid regular expression: {e}"),
                    )
                })?;
                Condition::Matches(
                    Expr::compile(value, &format!("{field}.matches.value"))?,
                    compiled,
                )
            }
            ConditionSpec::All(items) => Condition::All(list(items, "all")?),
            ConditionSpec::Any(items) => Condition::Any(list(items, "any")?),
            ConditionSpec::Not(inner) => Condition::Not(Box::new(Condition::compile(
                inner,
                &format!("{field}.not"),
            )?)),
        })
    }

    pub(super) fn eval(&self, event: &Value) -> Result<bool, Problem> {
        Ok(match self {
            Condition::Exists(v) => v.eval(event)?.is_some(),
            Condition::Equals(v, to) => v.eval(event)?.is_some_and(|v| json_eq(&v, to)),
            Condition::In(v, of) => v
                .eval(event)?
                .is_some_and(|v| of.iter().any(|o| json_eq(&v, o))),
            // Only strings are matched: a number is not silently turned into text.
            Condition::Matches(v, re) => v
                .eval(event)?
                .is_some_and(|v| v.as_str().is_some_and(|s| re.is_match(s))),
            Condition::All(items) => {
                for c in items {
                    if !c.eval(event)? {
                        return Ok(false);
                    }
                }
                true
            }
            Condition::Any(items) => {
                for c in items {
                    if c.eval(event)? {
                        return Ok(true);
                    }
                }
                false
            }
            Condition::Not(inner) => !inner.eval(event)?,
        })
    }
}

/// JSON equality: numbers compare by value (`1` equals `1.0`), objects ignore
/// key order; a number never equals its string form.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(x), Some(y), _, _) => x == y,
                (_, _, Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}
