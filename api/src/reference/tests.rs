use super::*;
use serde_json::json;

/// Every `(#anchor)` link of a page has its `<a id="anchor">`.
fn dangling_links(page: &str) -> Vec<String> {
    let anchors: BTreeSet<&str> = page
        .match_indices("<a id=\"")
        .filter_map(|(i, m)| page[i + m.len()..].split('"').next())
        .collect();
    page.match_indices("](#")
        .filter_map(|(i, m)| page[i + m.len()..].split(')').next())
        .filter(|a| !anchors.contains(a))
        .map(str::to_string)
        .collect()
}

fn sample() -> Value {
    json!({
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "description": "What it is called."},
            "size": {"type": "integer", "format": "uint32", "default": 128, "maximum": 32768},
            "mode": {"type": "string", "enum": ["fast", "safe"]},
            "sources": {"type": "array", "items": {"$ref": "#/$defs/Source"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "when": {"$ref": "#/$defs/Condition"}
        },
        "$defs": {
            "Source": {
                "description": "Where things come from.",
                "oneOf": [
                    {"type": "object", "description": "A file.",
                     "properties": {"type": {"type": "string", "const": "file"}, "path": {"type": "string"}},
                     "required": ["type", "path"]},
                    {"type": "object", "description": "Kafka.",
                     "properties": {"type": {"type": "string", "const": "kafka"}},
                     "allOf": [{"$ref": "#/$defs/Kafka"}],
                     "required": ["type"]}
                ]
            },
            "Kafka": {"type": "object", "properties": {"topics": {"type": "array", "items": {"type": "string"}}}, "required": ["topics"]},
            "Condition": {
                "oneOf": [
                    {"type": "object", "properties": {"exists": {"type": "string"}}, "required": ["exists"]},
                    {"type": "object", "properties": {"not": {"$ref": "#/$defs/Condition"}}, "required": ["not"]}
                ]
            }
        }
    })
}

#[test]
fn fields_are_rows_with_type_required_default_and_constraints() {
    let page = markdown("Sample", "Intro.", &sample());
    assert!(
        page.starts_with("# Sample\n\nIntro.\n\nGenerated from the schema"),
        "{page}"
    );
    assert!(
        page.contains("| `name` | string | yes |  | What it is called. *at least 1 character.* |"),
        "{page}"
    );
    assert!(
        page.contains("| `size` | integer (uint32) |  | `128` | *at most 32768.* |"),
        "{page}"
    );
    assert!(page.contains("| `mode` | `fast` \\| `safe` |"), "{page}");
    assert!(
        page.contains("| `labels` | map of string to string |"),
        "{page}"
    );
    assert!(
        page.contains("| `sources` | list of [sources[]](#source) |"),
        "{page}"
    );
}

#[test]
fn tagged_alternatives_get_one_section_each_with_the_merged_fields() {
    let page = markdown("Sample", "", &sample());
    let source = &page[page
        .find("## sources[]")
        .expect("a section for the list's items")..];
    assert!(source.contains("Where things come from."), "{source}");
    assert!(source.contains("- `type: file`: A file."), "{source}");
    assert!(source.contains("- `type: kafka`: Kafka."), "{source}");
    let kafka = &source[source.find("### `type: kafka`").expect("the kafka variant")..];
    // the fields of the referenced definition beside the tag
    assert!(
        kafka.contains("| `topics` | list of string | yes |"),
        "{kafka}"
    );
    assert!(kafka.contains("| `type` | `kafka` | yes |"), "{kafka}");
}

#[test]
fn a_recursive_definition_gets_one_section_and_links_to_itself() {
    let page = markdown("Sample", "", &sample());
    assert_eq!(page.matches("<a id=\"condition\">").count(), 1, "{page}");
    assert!(
        page.contains("| `not` | [not](#condition) | yes |"),
        "{page}"
    );
    assert_eq!(dangling_links(&page), Vec::<String>::new());
}

#[test]
fn the_pipeline_reference_covers_every_top_level_field_and_links_resolve() {
    let schema = pipeline_schema();
    let page = markdown("Pipeline file", "", &schema);
    let top = schema["properties"]
        .as_object()
        .expect("the pipeline is an object");
    for field in [
        "name",
        "sources",
        "template",
        "identifiers",
        "resolution",
        "survivorship",
        "sinks",
        "checkpoints",
        "keyGroups",
    ] {
        assert!(top.contains_key(field), "the schema lacks `{field}`");
        assert!(
            page.contains(&format!("| `{field}` |")),
            "no row for `{field}`"
        );
    }
    // fields nested behind alternatives and definitions are reached too
    for nested in [
        "`bootstrapServers`",
        "`jaroWinkler`",
        "`firstOf`",
        "`matchThreshold`",
    ] {
        assert!(page.contains(nested), "{nested} is not on the page");
    }
    assert_eq!(dangling_links(&page), Vec::<String>::new());
}

#[test]
fn an_optional_object_is_the_object_and_code_links_lose_their_brackets() {
    let schema = json!({
        "type": "object",
        "properties": {
            "extra": {
                "description": "Settings, see [`Extra`] and [the docs](x.md).",
                "anyOf": [{"$ref": "#/$defs/Extra"}, {"type": "null"}]
            },
            "count": {"type": "integer", "format": "uint32", "minimum": 0}
        },
        "$defs": {"Extra": {"type": "object", "properties": {"depth": {"type": "integer"}}}}
    });
    let page = markdown("T", "", &schema);
    assert!(
        page.contains(
            "| `extra` | [extra](#extra) |  |  | Settings, see `Extra` and [the docs](x.md). |"
        ),
        "{page}"
    );
    assert!(!page.contains("One of"), "{page}");
    assert!(page.contains("| `depth` | integer |"), "{page}");
    assert!(
        page.contains("| `count` | integer (uint32) |  |  |  |"),
        "{page}"
    );
}
