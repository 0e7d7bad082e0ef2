//! `${NAME}` in a pipeline file, expanded so that no value can change the
//! document's structure.
//!
//! Substituting text before parsing lets a value inject YAML: a newline
//! starts a new key, `#` a comment, `!!binary` a tag. Here every reference is
//! first replaced by an inert placeholder (letters, digits and underscores,
//! which mean the same in every YAML context), the document is parsed, and
//! only then are the values put into the string scalars that hold the
//! placeholders. A value always ends up inside one scalar.
//!
//! A scalar that is exactly one unquoted reference (`keyGroups: ${GROUPS}`)
//! takes the type YAML would give the value written there: a number, a
//! boolean, or null for an empty value, never a mapping, a sequence or a
//! tag. Quoted (`'${GROUPS}'`) it stays a string.
//!
//! Parsing into `serde_yaml::Value` also refuses a key written twice in one
//! mapping, which a parse straight into JSON would let the last one win.

use super::ConfigError;
use std::collections::HashMap;

/// One `${...}` of the file: its variable, its value (`None` when the
/// variable is unset and has no default), and whether quotes surround it.
struct Reference {
    name: String,
    value: Option<String>,
    quoted: bool,
}

impl Reference {
    /// The value, or the error for an unset variable. Asked only for a
    /// reference the parsed document holds: one in a comment never is.
    fn value(&self) -> Result<&str, ConfigError> {
        self.value
            .as_deref()
            .ok_or_else(|| ConfigError::MissingVariable {
                name: self.name.clone(),
            })
    }
}

/// Parses a pipeline file's YAML with its `${NAME}` references (and
/// `${NAME:-default}`; `$${` for a literal `${`) expanded from `env`.
pub fn parse_with_variables(
    text: &str,
    shown_path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<serde_json::Value, ConfigError> {
    let marker = unused_marker(text);
    let (inert, references) = replace_references(text, &marker, env)?;
    let parsed: serde_yaml::Value = serde_yaml::from_str(&inert).map_err(|source| {
        let message = source.to_string();
        match message.strip_prefix("duplicate entry with key ") {
            // serde_yaml repeats the message after a colon and gives no line.
            Some(rest) => ConfigError::invalid(
                "(file)",
                format!(
                    "the key {} appears twice in one mapping; each key may appear once",
                    rest.split(": ").next().unwrap_or(rest)
                ),
            ),
            None => ConfigError::Yaml {
                path: shown_path.to_string(),
                source,
            },
        }
    })?;
    refuse_inline_credentials(&parsed, &marker, &references)?;
    let filled = fill(parsed, &marker, &references)?;
    to_json(filled, "")
}

/// Credentials must come from the environment (see
/// `kith_api::pipeline::credentials`); checked before the references are
/// filled in, the only time a written-out value can be told from one.
fn refuse_inline_credentials(
    parsed: &serde_yaml::Value,
    marker: &str,
    references: &[Reference],
) -> Result<(), ConfigError> {
    use kith_api::pipeline::credentials;
    let written = to_json(parsed.clone(), "")?;
    let is_reference = |s: &str| lone_reference(s, marker, references).is_some();
    match credentials::inline_credential(&written, &is_reference) {
        Some(path) => Err(ConfigError::invalid(
            &path,
            credentials::inline_credential_message(),
        )),
        None => Ok(()),
    }
}

/// A placeholder prefix the file does not contain.
fn unused_marker(text: &str) -> String {
    let mut marker = String::from("kithvar");
    while text.contains(&marker) {
        marker.push('x');
    }
    marker
}

fn placeholder(marker: &str, index: usize) -> String {
    format!("{marker}{index}_")
}

/// The text with each reference replaced by its placeholder, and the
/// references in order.
fn replace_references(
    text: &str,
    marker: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<Reference>), ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut references = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(literal) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = literal;
        } else if let Some(body) = after.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or_else(|| ConfigError::invalid("(file)", "`${` without a closing `}`"))?;
            // `${NAME:-default}` falls back when NAME is unset or empty.
            let (name, default) = match body[..end].split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (&body[..end], None),
            };
            let value = match (env(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => Some(v),
                (None, Some(d)) => Some(d.to_string()),
                (None, None) => None,
            };
            let next = body[end + 1..].chars().next();
            let quoted = matches!(
                (out.chars().last(), next),
                (Some('\''), Some('\'')) | (Some('"'), Some('"'))
            );
            out.push_str(&placeholder(marker, references.len()));
            references.push(Reference {
                name: name.to_string(),
                value,
                quoted,
            });
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok((out, references))
}

/// Puts the values into the scalars holding placeholders.
fn fill(
    value: serde_yaml::Value,
    marker: &str,
    references: &[Reference],
) -> Result<serde_yaml::Value, ConfigError> {
    use serde_yaml::Value;
    Ok(match value {
        Value::String(s) => fill_scalar(&s, marker, references)?,
        Value::Sequence(items) => Value::Sequence(
            items
                .into_iter()
                .map(|v| fill(v, marker, references))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(map) => {
            let mut out = serde_yaml::Mapping::with_capacity(map.len());
            for (key, v) in map {
                // Only values are expanded: a key holding a value could
                // carry a secret into an "unknown field" message.
                if matches!(&key, Value::String(s) if s.contains(marker)) {
                    return Err(ConfigError::invalid(
                        "(file)",
                        "a key may not contain a `${...}` reference; only values are expanded",
                    ));
                }
                out.insert(key, fill(v, marker, references)?);
            }
            Value::Mapping(out)
        }
        Value::Tagged(tagged) => {
            let tagged = *tagged;
            Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
                tag: tagged.tag,
                value: fill(tagged.value, marker, references)?,
            }))
        }
        other => other,
    })
}

/// A string scalar after expansion: a lone unquoted reference is typed as
/// YAML would type its value; anything else is a string.
fn fill_scalar(
    s: &str,
    marker: &str,
    references: &[Reference],
) -> Result<serde_yaml::Value, ConfigError> {
    if let Some(reference) = lone_reference(s, marker, references) {
        if !reference.quoted {
            return Ok(plain_scalar(reference.value()?));
        }
    }
    Ok(serde_yaml::Value::String(substitute(
        s, marker, references,
    )?))
}

fn lone_reference<'a>(s: &str, marker: &str, references: &'a [Reference]) -> Option<&'a Reference> {
    let index: usize = s.strip_prefix(marker)?.strip_suffix('_')?.parse().ok()?;
    let reference = references.get(index)?;
    (placeholder(marker, index) == s).then_some(reference)
}

/// `s` with every placeholder replaced by its value.
fn substitute(s: &str, marker: &str, references: &[Reference]) -> Result<String, ConfigError> {
    if !s.contains(marker) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find(marker) {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + marker.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let reference = after[..digits]
            .parse::<usize>()
            .ok()
            .filter(|_| after[digits..].starts_with('_'))
            .and_then(|i| references.get(i));
        match reference {
            Some(r) => {
                out.push_str(r.value()?);
                rest = &after[digits + 1..];
            }
            None => {
                out.push_str(marker);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The value of a plain scalar as YAML 1.2's core schema reads it, limited
/// to null, booleans and numbers: whatever else the text is, a string.
fn plain_scalar(text: &str) -> serde_yaml::Value {
    use serde_yaml::Value;
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let is_integer = !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit());
    if is_integer {
        if let Ok(n) = text.parse::<i64>() {
            return Value::Number(n.into());
        }
        if let Ok(n) = text.trim_start_matches('+').parse::<u64>() {
            return Value::Number(n.into());
        }
    } else if is_decimal(unsigned) {
        if let Ok(n) = text.parse::<f64>() {
            if n.is_finite() {
                return Value::Number(n.into());
            }
        }
    }
    Value::String(text.to_string())
}

/// `1.5`, `.5`, `2.`, `1e3`, `1.5E-3` (no sign: the caller strips it).
fn is_decimal(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(whole)
        && fraction.is_none_or(digits)
        && (whole.len() + fraction.map_or(0, str::len)) > 0;
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok && (fraction.is_some() || exponent.is_some())
}

/// The document as JSON, which is what the spec types read. Tags and keys
/// that are not strings, numbers or booleans have no JSON form.
fn to_json(value: serde_yaml::Value, at: &str) -> Result<serde_json::Value, ConfigError> {
    use serde_yaml::Value;
    let field = |at: &str| {
        if at.is_empty() {
            "(file)".to_string()
        } else {
            at.to_string()
        }
    };
    Ok(match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(u) = n.as_u64() {
                u.into()
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(serde_json::Value::Number)
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            field(at),
                            "is not a finite number (.inf and .nan are not accepted)",
                        )
                    })?
            }
        }
        Value::String(s) => serde_json::Value::String(s),
        Value::Sequence(items) => serde_json::Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| to_json(v, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Mapping(map) => {
            let mut out = serde_json::Map::with_capacity(map.len());
            let mut seen: HashMap<String, ()> = HashMap::with_capacity(map.len());
            for (k, v) in map {
                let key = match k {
                    Value::String(s) => s,
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    _ => {
                        return Err(ConfigError::invalid(
                            field(at),
                            "has a key that is not a string, a number or a boolean",
                        ))
                    }
                };
                // `1: a` and `"1": b` are one key in JSON.
                if seen.insert(key.clone(), ()).is_some() {
                    return Err(ConfigError::invalid(
                        field(at),
                        format!("has the key `{key}` twice"),
                    ));
                }
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                out.insert(key, to_json(v, &path)?);
            }
            serde_json::Value::Object(out)
        }
        Value::Tagged(tagged) => {
            return Err(ConfigError::invalid(
                field(at),
                format!(
                    "has the YAML tag `{}`; tags are not accepted in a pipeline file",
                    tagged.tag
                ),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<serde_json::Value, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_with_variables(text, "p.yaml", &|name| env.get(name).cloned())
    }

    #[test]
    fn a_reference_in_a_key_is_refused_without_its_value() {
        // Found by the pipeline_file fuzz target: the unknown key's name,
        // secret included, reached the error.
        let e = parse(
            "name: x\nidentifiers: [{pe:ytr ${SECRET}, topics: [t]}]\n",
            &[("SECRET", "s3cret-7f1c")],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("key may not contain"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn a_reference_in_a_comment_needs_no_variable_but_one_in_use_does() {
        let doc = parse(
            "# export ${UNSET_IN_COMMENT} first\nname: p # or ${ALSO_UNSET}\n",
            &[],
        )
        .unwrap();
        assert_eq!(doc["name"], "p");
        let e = parse("name: ${UNSET_IN_USE}\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("UNSET_IN_USE"), "{e}");
        let e = parse("name: pre-${UNSET_IN_TEXT}\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("UNSET_IN_TEXT"), "{e}");
    }

    #[test]
    fn a_credential_is_taken_from_the_environment_only() {
        let file = |password: &str| {
            format!(
                "sources:\n  - type: kafka\n    properties:\n      sasl.username: kith\n      sasl.password: {password}\n"
            )
        };
        let refused = parse(&file("hunter2-secret"), &[]).unwrap_err().to_string();
        assert!(
            refused.contains("sources[0].properties.sasl.password") && refused.contains("${NAME}"),
            "{refused}"
        );
        assert!(
            !refused.contains("hunter2"),
            "the value is never shown: {refused}"
        );
        // A digits-only password written out is refused the same way.
        assert!(parse(&file("12345678"), &[]).is_err());
        let doc = parse(
            &file("${KAFKA_PASSWORD}"),
            &[("KAFKA_PASSWORD", "12345678")],
        )
        .unwrap();
        assert_eq!(
            doc["sources"][0]["properties"]["sasl.password"],
            serde_json::json!(12345678),
            "filled from the environment"
        );
        // Part of a value is not a reference to the whole credential.
        assert!(parse(&file("pre-${KAFKA_PASSWORD}"), &[("KAFKA_PASSWORD", "x")]).is_err());
    }

    #[test]
    fn a_value_never_adds_keys_comments_or_tags() {
        let doc = parse(
            "name: ${NAME}\nkeyGroups: 4\nnote: a ${NAME} b\n",
            &[("NAME", "x\nkeyGroups: 7")],
        )
        .unwrap();
        assert_eq!(doc["name"], "x\nkeyGroups: 7");
        assert_eq!(doc["keyGroups"], 4);
        assert_eq!(doc["note"], "a x\nkeyGroups: 7 b");
        let doc = parse(
            "a: ${V}\nb: ${W}\n",
            &[("V", "s3cret # not a comment"), ("W", "!!binary aGk=")],
        )
        .unwrap();
        assert_eq!(doc["a"], "s3cret # not a comment");
        assert_eq!(doc["b"], "!!binary aGk=");
        let doc = parse("topics: [${T}]\n", &[("T", "a, b]")]).unwrap();
        assert_eq!(doc["topics"], serde_json::json!(["a, b]"]));
    }

    #[test]
    fn a_lone_unquoted_reference_is_typed_as_yaml_types_it() {
        let env = [
            ("N", "7"),
            ("F", "0.5"),
            ("B", "true"),
            ("E", ""),
            ("S", "10s"),
        ];
        let doc = parse(
            "n: ${N}\nf: ${F}\nb: ${B}\ne: ${E:-}\ns: ${S}\nq: '${N}'\nd: \"${B}\"\nm: ${N}${N}\nx: ${N} and more\n",
            &env,
        )
        .unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"n": 7, "f": 0.5, "b": true, "e": null, "s": "10s",
                               "q": "7", "d": "true", "m": "77", "x": "7 and more"})
        );
    }

    #[test]
    fn defaults_escapes_and_missing_variables() {
        let doc = parse(
            "a: ${SET:-1m}\nb: ${UNSET:-2m}\nc: ${EMPTY:-3m}\nd: $${SET}\ne: $5\n",
            &[("SET", "10s"), ("EMPTY", "")],
        )
        .unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"a": "10s", "b": "2m", "c": "3m", "d": "${SET}", "e": "$5"})
        );
        let err = parse("a: ${NOPE}\n", &[]).unwrap_err().to_string();
        assert!(err.contains("`NOPE`"), "{err}");
        let err = parse("a: ${OPEN\n", &[]).unwrap_err().to_string();
        assert!(err.contains("closing"), "{err}");
    }

    #[test]
    fn a_key_written_twice_is_refused_by_name() {
        let err = parse("name: a\nkeyGroups: 4\nname: b\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("twice") && err.contains("\"name\""), "{err}");
        let err = parse("s: {a: 1, ${K}: 2}\n", &[("K", "a")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("key may not contain"), "{err}");
        let err = parse("s: {1: x, '1': y}\n", &[]).unwrap_err().to_string();
        assert!(err.contains("`1` twice") && err.contains("s"), "{err}");
    }

    #[test]
    fn tags_are_refused_naming_the_field() {
        let err = parse("a:\n  b: !vault aGk=\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("a.b") && err.contains("tag"), "{err}");
    }

    #[test]
    fn the_marker_never_collides_with_the_text() {
        let doc = parse("a: kithvar0_\nb: ${V}\n", &[("V", "v")]).unwrap();
        assert_eq!(doc, serde_json::json!({"a": "kithvar0_", "b": "v"}));
    }

    #[test]
    fn plain_scalars_are_numbers_only_when_yaml_says_so() {
        for (text, json) in [
            ("12345678", serde_json::json!(12345678)),
            ("-3", serde_json::json!(-3)),
            ("1e3", serde_json::json!(1000.0)),
            (".5", serde_json::json!(0.5)),
            (
                "18446744073709551615",
                serde_json::json!(18446744073709551615u64),
            ),
            (
                "99999999999999999999999",
                serde_json::json!("99999999999999999999999"),
            ),
            ("1.2.3", serde_json::json!("1.2.3")),
            ("0x1F", serde_json::json!("0x1F")),
            ("e5", serde_json::json!("e5")),
            ("yes", serde_json::json!("yes")),
            ("#x", serde_json::json!("#x")),
        ] {
            let doc = to_json(plain_scalar(text), "").unwrap();
            assert_eq!(doc, json, "{text}");
        }
    }
}
