//! The configuration reference (`docs/reference/`), rendered from the same
//! JSON schemas that refuse a bad document: the pipeline file's (derived from
//! [`PipelineSpec`](crate::PipelineSpec)) and the CRDs' `openAPIV3Schema`.
//! Rendering from the schema, not writing the page by hand, is what keeps the
//! reference true: a field added to a type appears on the page, and a test
//! fails until the page is regenerated.
//!
//! One section per object, a table of its fields (type, whether required,
//! default, description with the schema's constraints); lists, maps and
//! alternatives (`oneOf`, `anyOf`, tagged enums) link to the sections of the
//! objects they hold. Named definitions (`$ref` into `$defs`) get one section
//! however often they are used, which also ends recursion (a condition made
//! of conditions).

use serde_json::{Map, Value};
use std::collections::{BTreeSet, VecDeque};
use std::fmt::Write;

/// The pipeline file's JSON schema (draft 2020-12), as `kith-runner run`
/// and the operator accept it.
pub fn pipeline_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(crate::PipelineSpec)).unwrap_or(Value::Null)
}

/// A Markdown page for `schema`, titled `title`, with `intro` below the
/// title. Sections are ordered as first reached from the root.
pub fn markdown(title: &str, intro: &str, schema: &Value) -> String {
    Renderer::new(schema).page(title, intro)
}

/// A section still to write: its heading, its anchor, and its schema.
struct Section {
    heading: String,
    anchor: String,
    schema: Value,
}

struct Renderer<'a> {
    root: &'a Value,
    /// `$defs` of the root, for `$ref`.
    defs: Option<&'a Map<String, Value>>,
    queue: VecDeque<Section>,
    /// Anchors already queued, so a definition gets one section.
    queued: BTreeSet<String>,
}

impl<'a> Renderer<'a> {
    fn new(root: &'a Value) -> Self {
        Renderer {
            root,
            defs: root.get("$defs").and_then(Value::as_object),
            queue: VecDeque::new(),
            queued: BTreeSet::new(),
        }
    }

    fn page(mut self, title: &str, intro: &str) -> String {
        let mut out = format!("# {title}\n");
        if !intro.trim().is_empty() {
            out.push_str(&format!("\n{}\n", intro.trim_end()));
        }
        out.push_str(
            "\nGenerated from the schema the document is checked against; \
             do not edit by hand.\n",
        );
        // The root is the first section; everything else is reached from it.
        self.queue.push_back(Section {
            heading: "Top level".to_string(),
            anchor: "top-level".to_string(),
            schema: self.root_schema(),
        });
        self.queued.insert("top-level".to_string());
        while let Some(section) = self.queue.pop_front() {
            self.section(&mut out, &section);
        }
        out
    }

    /// The root without its `$defs` (they are reached through `$ref`).
    fn root_schema(&self) -> Value {
        let mut root = self.root.clone();
        if let Value::Object(m) = &mut root {
            m.remove("$defs");
            m.remove("$schema");
            m.remove("title");
        }
        root
    }

    fn section(&mut self, out: &mut String, section: &Section) {
        let schema = self.resolve(&section.schema);
        let _ = write!(out, "\n## {}\n\n", section.heading);
        // An explicit anchor keeps links stable whatever the heading's
        // punctuation and however a Markdown renderer derives its own.
        let _ = writeln!(out, "<a id=\"{}\"></a>\n", section.anchor);
        if let Some(d) = description(&schema) {
            let _ = writeln!(out, "{}\n", d.trim());
        }
        let alternatives = alternatives(&schema);
        if alternatives.is_empty() {
            self.fields(out, &section.heading, &schema);
            return;
        }
        let alternatives: Vec<(String, Value)> = alternatives
            .iter()
            .enumerate()
            .map(|(i, alt)| {
                let alt = self.merged(alt);
                let label = alternative_label(&alt).unwrap_or_else(|| format!("form {}", i + 1));
                (label, alt)
            })
            .collect();
        out.push_str("One of:\n\n");
        for (label, alt) in &alternatives {
            let _ = write!(out, "- {label}");
            if let Some(d) = description(alt) {
                let _ = write!(out, ": {}", one_line(&d));
            }
            out.push('\n');
        }
        for (label, alt) in &alternatives {
            if properties(alt).is_none() {
                continue;
            }
            let _ = write!(out, "\n### {label}\n\n");
            // An externally tagged variant (`{jaroWinkler: {...}}`): its one
            // key's row says what the variant is.
            let fallback = properties(alt)
                .filter(|p| p.len() == 1)
                .and(description(alt));
            self.fields_with(out, &section.heading, alt, fallback);
        }
    }

    /// The table of an object's fields.
    fn fields(&mut self, out: &mut String, path: &str, schema: &Value) {
        self.fields_with(out, path, schema, None);
    }

    /// As [`Self::fields`], `fallback` describing a field that has no
    /// description of its own.
    fn fields_with(
        &mut self,
        out: &mut String,
        path: &str,
        schema: &Value,
        fallback: Option<String>,
    ) {
        let Some(props) = properties(schema) else {
            let _ = writeln!(out, "Type: {}.", self.type_of(path, schema));
            return;
        };
        let required: BTreeSet<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        out.push_str("| field | type | required | default | description |\n");
        out.push_str("|---|---|---|---|---|\n");
        for (name, field) in props {
            let child = if path == "Top level" {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            let resolved = self.resolve(field);
            let mut text = description(&resolved)
                .or_else(|| description(field))
                .or_else(|| fallback.clone())
                .map(|d| one_line(&d))
                .unwrap_or_default();
            let limits = constraints(&resolved);
            if !limits.is_empty() {
                if !text.is_empty() {
                    text.push(' ');
                }
                let _ = write!(text, "*{}.*", limits.join("; "));
            }
            let default = field
                .get("default")
                .or_else(|| resolved.get("default"))
                .map(|d| format!("`{}`", compact(d)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| `{name}` | {} | {} | {} | {} |",
                self.type_of(&child, field),
                if required.contains(name.as_str()) {
                    "yes"
                } else {
                    ""
                },
                escape(&default),
                escape(&text),
            );
        }
    }

    /// A short type for a table cell; objects and alternatives get a section
    /// of their own and a link to it.
    fn type_of(&mut self, path: &str, schema: &Value) -> String {
        let schema = &collapse_optional(schema);
        if let Some(name) = reference_name(schema) {
            let target = self.resolve(schema);
            if is_structured(&target) {
                // Headed by the path it is first reached by (what a user
                // writes), anchored by its name (one section however often
                // it is used).
                return self.link(path, &anchor_of(&name), target);
            }
            return self.type_of(path, &target);
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            return values
                .iter()
                .map(|v| format!("`{}`", compact(v)))
                .collect::<Vec<_>>()
                .join(" \\| ");
        }
        if let Some(c) = schema.get("const") {
            return format!("`{}`", compact(c));
        }
        if schema
            .get("x-kubernetes-int-or-string")
            .and_then(Value::as_bool)
            == Some(true)
        {
            return "integer or string".to_string();
        }
        let alternatives = alternatives(schema);
        if !alternatives.is_empty() {
            if alternatives.iter().any(|a| is_structured(&self.merged(a))) {
                return self.link(path, &anchor_of(path), schema.clone());
            }
            let mut kinds: Vec<String> =
                alternatives.iter().map(|a| self.type_of(path, a)).collect();
            kinds.dedup();
            return kinds.join(" or ");
        }
        let types = types(schema);
        if types.iter().any(|t| t == "array") {
            let items = schema.get("items").cloned().unwrap_or(Value::Bool(true));
            return format!("list of {}", self.type_of(&format!("{path}[]"), &items));
        }
        if types.iter().any(|t| t == "object") {
            if properties(schema).is_some() {
                return self.link(path, &anchor_of(path), schema.clone());
            }
            if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
                return format!(
                    "map of string to {}",
                    self.type_of(&format!("{path}.*"), values)
                );
            }
            return "object".to_string();
        }
        if types.is_empty() {
            return "any".to_string();
        }
        let format = schema.get("format").and_then(Value::as_str);
        let shown: Vec<String> = types
            .iter()
            .map(|t| match format {
                Some(f) if types.len() == 1 => format!("{t} ({f})"),
                _ => t.clone(),
            })
            .collect();
        shown.join(" or ")
    }

    /// A link to the section `anchor`, queued when it is new.
    fn link(&mut self, heading: &str, anchor: &str, schema: Value) -> String {
        if self.queued.insert(anchor.to_string()) {
            self.queue.push_back(Section {
                heading: heading.to_string(),
                anchor: anchor.to_string(),
                schema,
            });
        }
        format!(
            "[{}](#{anchor})",
            heading.rsplit('.').next().unwrap_or(heading)
        )
    }

    /// `schema` with a `$ref` followed (its own keywords winning), and an
    /// optional value's only alternative (`anyOf: [T, null]`) taken as `T`.
    fn resolve(&self, schema: &Value) -> Value {
        let schema = &collapse_optional(schema);
        let Some(name) = reference_name(schema) else {
            return schema.clone();
        };
        let mut target = self
            .defs
            .and_then(|d| d.get(&name))
            .cloned()
            .unwrap_or(Value::Bool(true));
        if let (Value::Object(t), Value::Object(own)) = (&mut target, schema) {
            for (k, v) in own {
                if k != "$ref" {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
        target
    }

    /// One alternative with its `$ref` and `allOf` parts merged into one
    /// object (an internally tagged variant: the tag beside the fields).
    fn merged(&self, alt: &Value) -> Value {
        let mut merged = self.resolve(alt);
        let parts: Vec<Value> = merged
            .get("allOf")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for part in parts {
            let part = self.resolve(&part);
            merge_object(&mut merged, &part);
        }
        if let Value::Object(m) = &mut merged {
            m.remove("allOf");
        }
        merged
    }
}

/// `{anyOf: [T, {type: null}], ...}` as `T` with the outer keywords
/// (description, default) beside it: "may be left out" is already said by
/// the required column.
fn collapse_optional(schema: &Value) -> Value {
    let Value::Object(outer) = schema else {
        return schema.clone();
    };
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(alts)) = outer.get(key) else {
            continue;
        };
        let kept: Vec<&Value> = alts.iter().filter(|a| types(a) != ["null"]).collect();
        if kept.len() == 1 && alts.len() == 2 {
            let mut inner = kept[0].clone();
            if let Value::Object(m) = &mut inner {
                for (k, v) in outer {
                    if k != key {
                        m.insert(k.clone(), v.clone());
                    }
                }
            }
            return inner;
        }
    }
    schema.clone()
}

fn merge_object(into: &mut Value, from: &Value) {
    let (Value::Object(into), Value::Object(from)) = (into, from) else {
        return;
    };
    for (k, v) in from {
        match (into.get_mut(k), v) {
            (Some(Value::Object(a)), Value::Object(b)) if k == "properties" => {
                for (pk, pv) in b {
                    a.entry(pk.clone()).or_insert_with(|| pv.clone());
                }
            }
            (Some(Value::Array(a)), Value::Array(b)) if k == "required" => {
                for r in b {
                    if !a.contains(r) {
                        a.push(r.clone());
                    }
                }
            }
            (None, v) => {
                into.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
}

fn reference_name(schema: &Value) -> Option<String> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .map(str::to_string)
}

fn properties(schema: &Value) -> Option<&Map<String, Value>> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .filter(|p| !p.is_empty())
}

fn alternatives(schema: &Value) -> Vec<Value> {
    ["oneOf", "anyOf"]
        .iter()
        .filter_map(|k| schema.get(*k).and_then(Value::as_array))
        .flatten()
        // `null` as an alternative only says the field may be left out.
        .filter(|a| types(a) != ["null"])
        .cloned()
        .collect()
}

/// An object with fields, or alternatives: worth a section of its own.
fn is_structured(schema: &Value) -> bool {
    properties(schema).is_some() || !alternatives(schema).is_empty()
}

fn types(schema: &Value) -> Vec<String> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// How an alternative is told apart: its tag (`type: kafka`), its only
/// key (`jaroWinkler`), or its constant (`exact`).
fn alternative_label(alt: &Value) -> Option<String> {
    if let Some(c) = alt.get("const") {
        return Some(format!("`{}`", compact(c)));
    }
    if let Some(values) = alt.get("enum").and_then(Value::as_array) {
        let shown: Vec<String> = values.iter().map(|v| format!("`{}`", compact(v))).collect();
        return Some(shown.join(", "));
    }
    let props = properties(alt)?;
    let tag = props.iter().find_map(|(name, p)| {
        let value = p.get("const").or_else(|| {
            p.get("enum")
                .and_then(Value::as_array)
                .filter(|e| e.len() == 1)?
                .first()
        })?;
        Some(format!("`{name}: {}`", compact(value)))
    });
    if tag.is_some() {
        return tag;
    }
    let required: Vec<&str> = alt
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if props.len() == 1 {
        return props.keys().next().map(|k| format!("`{k}`"));
    }
    (!required.is_empty()).then(|| {
        required
            .iter()
            .map(|r| format!("`{r}`"))
            .collect::<Vec<_>>()
            .join(" + ")
    })
}

fn description(schema: &Value) -> Option<String> {
    schema
        .get("description")
        .and_then(Value::as_str)
        .filter(|d| !d.trim().is_empty())
        .map(without_code_links)
}

/// Doc comments' links to Rust items (``[`HouseholdSpec`]``) mean nothing
/// to a reader of the page: the name stays, as code.
fn without_code_links(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("[`") {
        let Some(len) = rest[start + 2..].find("`]") else {
            break;
        };
        let end = start + 2 + len + 2;
        if rest[end..].starts_with('(') {
            // a Markdown link with a target: kept as written
            out.push_str(&rest[..end]);
        } else {
            out.push_str(&rest[..start]);
            out.push_str(&rest[start + 1..end - 1]);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// What the schema accepts beyond its type, in words.
fn constraints(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let n = |k: &str| schema.get(k).map(compact);
    let unsigned = schema
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| f.starts_with("uint"));
    if let Some(v) = n("minimum").filter(|v| !(unsigned && v == "0")) {
        out.push(format!("at least {v}"));
    }
    if let Some(v) = n("maximum") {
        out.push(format!("at most {v}"));
    }
    if let Some(v) = n("minLength") {
        out.push(format!("at least {v} {}", plural(&v, "character")));
    }
    if let Some(v) = n("maxLength") {
        out.push(format!("at most {v} {}", plural(&v, "character")));
    }
    if let Some(v) = n("minItems") {
        out.push(format!("at least {v} {}", plural(&v, "item")));
    }
    if let Some(v) = n("maxItems") {
        out.push(format!("at most {v} {}", plural(&v, "item")));
    }
    if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
        out.push(format!("matches `{p}`"));
    }
    if let Some(rules) = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        for rule in rules {
            if let Some(m) = rule.get("message").and_then(Value::as_str) {
                out.push(m.trim_end_matches('.').to_string());
            }
        }
    }
    out
}

fn plural(count: &str, word: &str) -> String {
    if count == "1" {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

fn anchor_of(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            '.' | '-' | '_' => out.push('-'),
            _ => {}
        }
    }
    out
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        // Kubernetes' schema types hold bounds as floats: 1.0 is 1 to a reader.
        Value::Number(n)
            if n.as_f64()
                .is_some_and(|f| f.fract() == 0.0 && f.abs() < 1e15) =>
        {
            format!("{}", n.as_f64().unwrap_or_default() as i64)
        }
        other => other.to_string(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A table cell: pipes would end it.
fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests;
