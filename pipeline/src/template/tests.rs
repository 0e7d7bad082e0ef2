use super::path::{JsonPath, PathError};
use super::*;
use crate::config::Pipeline;
use kith_api::pipeline::IdentifierTypeSpec;
use serde_json::json;

const TYPES: &str = r#"
- {type: user_id, exclusiveLimit: 1}
- {type: email, normalize: email}
- {type: phone, normalize: phone}
- {type: device_id, normalize: lowercase}
- {type: account_id, exclusiveLimit: 1}
"#;

/// YAML goes through JSON values first, as the pipeline loader does.
fn from_yaml<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    let value: Value = serde_yaml::from_str(yaml).expect("valid YAML");
    serde_json::from_value(value).expect("valid spec")
}

fn types() -> IdentifierTypes {
    IdentifierTypes::from_spec(&from_yaml::<Vec<IdentifierTypeSpec>>(TYPES)).expect("valid types")
}

fn compile(yaml: &str) -> Result<Template, ConfigError> {
    Template::compile(&from_yaml::<TemplateSpec>(yaml), &types())
}

fn template(yaml: &str) -> Template {
    compile(yaml).expect("template compiles")
}

/// The field and message of a compile error.
fn compile_error(yaml: &str) -> (String, String) {
    match compile(yaml) {
        Err(ConfigError::Invalid { field, message }) => (field, message),
        Err(other) => panic!("expected an invalid field, got {other}"),
        Ok(_) => panic!("expected a compile error"),
    }
}

fn observation(t: &Template, event: Value) -> WireObservation<'static> {
    match t.map_with_skip_reason(&event) {
        Ok(Mapped::Observation(wire)) => wire,
        other => panic!("expected an observation, got {other:?}"),
    }
}

fn rejection(t: &Template, event: Value) -> String {
    match t.map(&event) {
        Err(Rejection::Template(message)) => message,
        other => panic!("expected a template rejection, got {other:?}"),
    }
}

fn ids(wire: &WireObservation<'_>) -> Vec<(String, String)> {
    wire.identifiers
        .iter()
        .map(|i| (i.type_name.to_string(), i.value.to_string()))
        .collect()
}

fn pair(t: &str, v: &str) -> (String, String) {
    (t.to_string(), v.to_string())
}

/// A one-event template (type `signup`) around a mapping body indented by 4.
fn single(body: &str) -> String {
    format!("eventType: $.type\nevents:\n  signup:\n{body}")
}

const SIGNUP: &str = r#"
eventType: $.type
events:
  signup:
    source: web
    id: $.user.id
    ts: $.occurred_at
    kind: person
    identifiers:
      - {type: email, value: $.user.email}
      - {type: phone, value: $.user.phone}
      - {type: email, value: $.user.emails}
    attributes:
      given_name: $.user.first_name
      plan: {path: $.user.plan, default: free}
      full_name: {concat: [$.user.first_name, $.user.last_name], separator: " "}
      channel: {firstOf: [$.utm.source, $.referrer, {const: direct}]}
      profile: $.user.profile
    relationships:
      - type: uses
        kind: device
        identifiers: [{type: device_id, value: $.device.id}]
"#;

// ---------------------------------------------------------------- paths

#[test]
fn paths_parse_into_steps() {
    let event = json!({"user": {"emails": ["a", "b"], "first name": "Ann", "it's": 1, "q\"": 2}, "0": "zero"});
    let get = |p: &str| JsonPath::parse(p).unwrap().get(&event).cloned();
    assert_eq!(get("$"), Some(event.clone()));
    assert_eq!(get("$.user.emails[1]"), Some(json!("b")));
    assert_eq!(get(r#"$.user["first name"]"#), Some(json!("Ann")));
    assert_eq!(get(r#"$["user"]['it\'s']"#), Some(json!(1)));
    assert_eq!(get(r#"$.user["q\""]"#), Some(json!(2)));
    assert_eq!(
        get("$.0"),
        Some(json!("zero")),
        "a dotted name is always a key"
    );
    assert_eq!(get("$.user.emails[2]"), None, "past the end");
    assert_eq!(get("$.user.emails.first"), None, "a key on an array");
    assert_eq!(get("$.user[0]"), None, "an index on an object");
    assert_eq!(get("$.nobody.here"), None);
}

#[test]
fn bad_paths_say_where() {
    let err = |p: &str| JsonPath::parse(p).unwrap_err();
    assert_eq!(err("user.email"), PathError::NoRoot);
    assert_eq!(err(""), PathError::NoRoot);
    assert_eq!(err("$."), PathError::EmptyName(2));
    assert_eq!(err("$..a"), PathError::EmptyName(2));
    assert_eq!(err("$user"), PathError::Unexpected { at: 2, found: 'u' });
    assert_eq!(
        err("$.first name"),
        PathError::Unexpected { at: 8, found: ' ' }
    );
    assert_eq!(err("$.a]"), PathError::Unexpected { at: 4, found: ']' });
    assert_eq!(
        err("$.é]"),
        PathError::Unexpected { at: 4, found: ']' },
        "positions count characters"
    );
    assert_eq!(err("$[x]"), PathError::BadBracket(2));
    assert_eq!(err("$[]"), PathError::BadBracket(2));
    assert_eq!(err("$[-1]"), PathError::BadBracket(2));
    assert_eq!(err("$[1x]"), PathError::BadBracket(2));
    assert_eq!(err("$[99999999999999999999999]"), PathError::BadBracket(2));
    assert_eq!(err("$[0"), PathError::Unclosed(2));
    assert_eq!(err("$["), PathError::Unclosed(2));
    assert_eq!(err(r#"$["a"#), PathError::Unclosed(2));
    assert_eq!(err(r#"$["a"x"#), PathError::Unclosed(2));
    assert_eq!(
        err(r#"$["a\n"]"#),
        PathError::BadEscape { at: 5, found: 'n' }
    );
}

// ---------------------------------------------------------------- compile errors

#[test]
fn a_bad_path_names_the_field_and_the_syntax() {
    let (field, message) = compile_error(&SIGNUP.replace("$.user.email}", "$.user..email}"));
    assert_eq!(field, "template.events.signup.identifiers[0].value");
    assert!(
        message.contains("$.user..email") && message.contains("[index]"),
        "{message}"
    );
}

#[test]
fn an_unknown_identifier_type_lists_the_accepted_ones() {
    let (field, message) = compile_error(&SIGNUP.replace("{type: phone", "{type: mobile"));
    assert_eq!(field, "template.events.signup.identifiers[1].type");
    assert!(
        message.contains("mobile") && message.contains("user_id, email, phone"),
        "{message}"
    );
    let (field, _) = compile_error(&SIGNUP.replace("{type: device_id", "{type: device"));
    assert_eq!(
        field,
        "template.events.signup.relationships[0].identifiers[0].type"
    );
}

#[test]
fn kinds_are_checked() {
    let (field, message) = compile_error(&SIGNUP.replace("kind: person", "kind: human"));
    assert_eq!(field, "template.events.signup.kind");
    assert!(
        message.contains("person, organization, device, account"),
        "{message}"
    );
    let (field, message) = compile_error(&SIGNUP.replace("kind: device", "kind: gadget"));
    assert_eq!(field, "template.events.signup.relationships[0].kind");
    assert!(
        message.contains("gadget") && message.contains("account"),
        "{message}"
    );
    // A kind read from the event is checked by the observation validation.
    compile(&SIGNUP.replace("kind: person", "kind: $.kind")).unwrap();
}

#[test]
fn regexes_compile_at_load() {
    let yaml = SIGNUP.replace(
        "    source: web",
        "    when: {all: [{exists: $.user}, {not: {matches: {value: $.user.email, regex: '(unclosed'}}}]}\n    source: web",
    );
    let (field, message) = compile_error(&yaml);
    assert_eq!(
        field,
        "template.events.signup.when.all[1].not.matches.regex"
    );
    assert!(message.contains("regular expression"), "{message}");
}

#[test]
fn conditions_that_can_never_hold_are_refused() {
    let with_when = |when: &str| {
        SIGNUP.replace(
            "    source: web",
            &format!("    when: {when}\n    source: web"),
        )
    };
    let (field, message) = compile_error(&with_when("{equals: {value: $.plan, to: null}}"));
    assert_eq!(field, "template.events.signup.when.equals.to");
    assert!(message.contains("absent"), "{message}");
    let (field, _) = compile_error(&with_when("{in: {value: $.plan, of: [a, null]}}"));
    assert_eq!(field, "template.events.signup.when.in.of[1]");
    let (field, _) = compile_error(&with_when("{in: {value: $.plan, of: []}}"));
    assert_eq!(field, "template.events.signup.when.in.of");
    let (field, _) = compile_error(&with_when("{any: []}"));
    assert_eq!(field, "template.events.signup.when.any");
}

#[test]
fn constants_must_fit_their_field() {
    let (field, _) = compile_error(&SIGNUP.replace("source: web", "source: {const: {a: 1}}"));
    assert_eq!(field, "template.events.signup.source");
    let (field, _) = compile_error(&SIGNUP.replace("source: web", "source: {const: '  '}"));
    assert_eq!(field, "template.events.signup.source");
    let (field, _) = compile_error(&SIGNUP.replace("ts: $.occurred_at", "ts: {const: [2026]}"));
    assert_eq!(field, "template.events.signup.ts");
    let (field, message) = compile_error(&SIGNUP.replace(
        "$.user.first_name, $.user.last_name",
        "$.user.first_name, {const: [1]}",
    ));
    assert_eq!(
        field,
        "template.events.signup.attributes.full_name.concat[1]"
    );
    assert!(message.contains("an array"), "{message}");
    let (field, _) = compile_error(&SIGNUP.replace(
        "{type: phone, value: $.user.phone}",
        "{type: phone, value: {const: {}}}",
    ));
    assert_eq!(field, "template.events.signup.identifiers[1].value");
    let (field, _) = compile_error(&SIGNUP.replace(
        "{path: $.user.plan, default: free}",
        "{firstOf: [$.x, '$.y[z]']}",
    ));
    assert_eq!(field, "template.events.signup.attributes.plan.firstOf[1]");
}

#[test]
fn the_template_needs_events_and_a_usable_event_type() {
    let (field, _) = compile_error("eventType: $.type\nevents: {}\n");
    assert_eq!(field, "template.events");
    let (field, message) = compile_error(&SIGNUP.replace("eventType: $.type", "eventType: login"));
    assert_eq!(field, "template.eventType");
    assert!(message.contains("signup"), "{message}");
    let (field, _) = compile_error(&SIGNUP.replace("eventType: $.type", "eventType: $type"));
    assert_eq!(field, "template.eventType");
    // A constant event type naming a mapping suits a single-type stream.
    let t = template(&SIGNUP.replace("eventType: $.type", "eventType: signup"));
    let wire = observation(&t, json!({"user": {"id": "u-1"}}));
    assert_eq!(wire.id.as_deref(), Some("u-1"));
}

#[test]
fn relationships_need_a_type_and_identifiers() {
    let (field, _) = compile_error(&SIGNUP.replace("type: uses", "type: ' '"));
    assert_eq!(field, "template.events.signup.relationships[0].type");
    let (field, _) = compile_error(&SIGNUP.replace(
        "identifiers: [{type: device_id, value: $.device.id}]",
        "identifiers: []",
    ));
    assert_eq!(field, "template.events.signup.relationships[0].identifiers");
}

#[test]
fn event_names_with_dots_appear_as_written() {
    let yaml = SIGNUP
        .replace("  signup:", "  user.signed_up:")
        .replace("kind: person", "kind: people");
    let (field, _) = compile_error(&yaml);
    assert_eq!(field, "template.events.user.signed_up.kind");
}

// ---------------------------------------------------------------- mapping

fn signup_event() -> Value {
    json!({
        "type": "signup",
        "occurred_at": "2026-03-01T09:12:00Z",
        "user": {"id": "u-1001", "email": " Ann.Lee@Example.com", "phone": "(415) 555-0100",
                 "first_name": "Ann", "last_name": "Lee", "profile": {"newsletter": true}},
        "device": {"id": "D-9F2A"},
        "referrer": "blog"
    })
}

#[test]
fn a_full_event_maps_every_field() {
    let t = template(SIGNUP);
    let wire = observation(&t, signup_event());
    assert_eq!(wire.source.as_deref(), Some("web"));
    assert_eq!(wire.id.as_deref(), Some("u-1001"));
    assert_eq!(wire.ts.as_deref(), Some("2026-03-01T09:12:00Z"));
    assert_eq!(wire.kind.as_deref(), Some("person"));
    assert!(!wire.retract);
    // Raw values: normalization is the validation's job.
    assert_eq!(
        ids(&wire),
        vec![
            pair("email", " Ann.Lee@Example.com"),
            pair("phone", "(415) 555-0100")
        ]
    );
    let attributes = wire.attributes.as_ref().unwrap();
    assert_eq!(attributes["given_name"], json!("Ann"));
    assert_eq!(attributes["plan"], json!("free"), "the path's default");
    assert_eq!(attributes["full_name"], json!("Ann Lee"));
    assert_eq!(
        attributes["channel"],
        json!("blog"),
        "the first present of firstOf"
    );
    assert_eq!(
        attributes["profile"],
        json!({"newsletter": true}),
        "attributes keep any JSON value"
    );
    assert_eq!(wire.relationships.len(), 1);
    let rel = &wire.relationships[0];
    assert_eq!((&*rel.rel_type, &*rel.kind), ("uses", "device"));
    assert_eq!(rel.identifiers[0].value, "D-9F2A");
}

#[test]
fn scalars_become_text() {
    let t = template(SIGNUP);
    let mut event = signup_event();
    event["user"]["id"] = json!(17);
    event["user"]["phone"] = json!(4155550100u64);
    event["occurred_at"] = json!(true);
    event["user"]["last_name"] = json!(2.5);
    let wire = observation(&t, event);
    assert_eq!(wire.id.as_deref(), Some("17"));
    assert_eq!(
        wire.ts.as_deref(),
        Some("true"),
        "the validation refuses it as a timestamp"
    );
    assert_eq!(ids(&wire)[1], pair("phone", "4155550100"));
    assert_eq!(wire.attributes.unwrap()["full_name"], json!("Ann 2.5"));
}

#[test]
fn absent_and_null_values_are_left_out() {
    let t = template(SIGNUP);
    let event = json!({"type": "signup", "user": {"email": null, "phone": "4155550100", "plan": null}, "device": {}});
    let wire = observation(&t, event);
    assert_eq!(
        wire.id, None,
        "missing: the validation says `missing field id`"
    );
    assert_eq!(wire.ts, None);
    assert_eq!(ids(&wire), vec![pair("phone", "4155550100")]);
    let attributes = wire.attributes.unwrap();
    assert_eq!(attributes.get("given_name"), None);
    assert_eq!(
        attributes.get("full_name"),
        None,
        "a concat with an absent part is absent"
    );
    assert_eq!(attributes["plan"], json!("free"), "null takes the default");
    assert_eq!(attributes["channel"], json!("direct"));
    assert!(
        wire.relationships.is_empty(),
        "a relationship without identifiers is left out"
    );
}

#[test]
fn arrays_are_several_identifiers() {
    let t = template(SIGNUP);
    let mut event = signup_event();
    event["user"]["email"] = Value::Null;
    event["user"]["emails"] = json!(["ann@example.com", null, "ann.lee@work.example"]);
    let wire = observation(&t, event);
    assert_eq!(
        ids(&wire),
        vec![
            pair("phone", "(415) 555-0100"),
            pair("email", "ann@example.com"),
            pair("email", "ann.lee@work.example")
        ]
    );
}

#[test]
fn non_scalar_values_are_errors_that_never_quote_the_event() {
    let t = template(SIGNUP);
    let mut event = signup_event();
    event["user"]["emails"] = json!(["secret@example.com", {"address": "secret@example.com"}]);
    let message = rejection(&t, event);
    assert_eq!(
        message,
        "event \"signup\": field identifiers[2].value: path $.user.emails, element 1, holds an object; \
         expected a string, number or boolean"
    );

    let mut event = signup_event();
    event["user"]["phone"] = json!({"number": "secret"});
    let message = rejection(&t, event);
    assert!(
        message.starts_with(
            "event \"signup\": field identifiers[1].value: path $.user.phone holds an object"
        ),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");

    let mut event = signup_event();
    event["occurred_at"] = json!(["2026-03-01"]);
    assert!(rejection(&t, event)
        .starts_with("event \"signup\": field ts: path $.occurred_at holds an array"));

    let mut event = signup_event();
    event["user"]["last_name"] = json!({"secret": 1});
    let message = rejection(&t, event);
    assert!(
        message.starts_with(
            "event \"signup\": field attributes.full_name: path $.user.last_name holds an object"
        ),
        "{message}"
    );

    let mut event = signup_event();
    event["device"]["id"] = json!([["nested"]]);
    let message = rejection(&t, event);
    assert!(message.starts_with("event \"signup\": field relationships[0].identifiers[0].value: path $.device.id, element 0, holds an array"), "{message}");
}

#[test]
fn retract_makes_a_retraction_and_maps_nothing_else() {
    let yaml = SIGNUP.replace(
        "    kind: person",
        "    kind: person\n    retract: {equals: {value: $.action, to: delete}}",
    );
    let t = template(&yaml);
    let mut event = signup_event();
    event["action"] = json!("delete");
    let wire = observation(&t, event);
    assert!(wire.retract);
    assert_eq!(
        (wire.source.as_deref(), wire.id.as_deref()),
        (Some("web"), Some("u-1001"))
    );
    assert!(wire.ts.is_some());
    assert!(wire.kind.is_none() && wire.identifiers.is_empty() && wire.attributes.is_none());
    let wire = observation(&t, signup_event());
    assert!(!wire.retract);
}

#[test]
fn when_false_skips_the_event_and_identifier_conditions_filter() {
    let yaml = single(
        r#"    when: {not: {equals: {value: $.outcome, to: failure}}}
    source: app
    id: $.id
    ts: $.ts
    kind: person
    identifiers:
      - {type: email, value: $.email, when: {matches: {value: $.email, regex: '@'}}}
      - {type: phone, value: $.phone, when: {in: {value: $.country, of: [US, CA]}}}
"#,
    );
    let t = template(&yaml);
    let skipped = t
        .map_with_skip_reason(&json!({"type": "signup", "outcome": "failure"}))
        .unwrap();
    assert!(
        matches!(skipped, Mapped::Skipped(SkipReason::NotSelected)),
        "{skipped:?}"
    );
    assert_eq!(
        t.map(&json!({"type": "signup", "outcome": "failure"}))
            .unwrap()
            .map(|_| ()),
        None
    );
    assert_eq!(SkipReason::NotSelected.as_str(), "when_false");

    let wire = observation(
        &t,
        json!({"type": "signup", "email": "a@b.c", "phone": "1", "country": "US"}),
    );
    assert_eq!(ids(&wire), vec![pair("email", "a@b.c"), pair("phone", "1")]);
    let wire = observation(
        &t,
        json!({"type": "signup", "email": "no-at-sign", "phone": "1", "country": "FR"}),
    );
    assert!(wire.identifiers.is_empty());
}

#[test]
fn condition_semantics() {
    let check = |condition: &str, event: Value| -> bool {
        let yaml = single(&format!(
            "    when: {condition}\n    source: s\n    id: i\n    ts: t\n    kind: person\n"
        ));
        match template(&yaml).map_with_skip_reason(&event).unwrap() {
            Mapped::Observation(_) => true,
            Mapped::Skipped(_) => false,
        }
    };
    let ev = json!({"type": "signup", "n": 5, "s": "5", "f": 5.0, "z": null, "b": false, "o": {"a": 1, "b": [1, 2]}, "e": ""});
    assert!(check("{exists: $.n}", ev.clone()));
    assert!(check("{exists: $.b}", ev.clone()), "false is present");
    assert!(
        check("{exists: $.e}", ev.clone()),
        "an empty string is present"
    );
    assert!(!check("{exists: $.z}", ev.clone()), "null is absent");
    assert!(!check("{exists: $.missing}", ev.clone()));
    assert!(check("{equals: {value: $.n, to: 5}}", ev.clone()));
    assert!(
        !check("{equals: {value: $.n, to: '5'}}", ev.clone()),
        "a number is not its string form"
    );
    assert!(
        !check("{equals: {value: $.s, to: 5}}", ev.clone()),
        "a string is not the number"
    );
    assert!(
        check("{equals: {value: $.f, to: 5}}", ev.clone()),
        "5.0 equals 5"
    );
    assert!(
        check("{equals: {value: $.o, to: {b: [1, 2], a: 1}}}", ev.clone()),
        "key order does not matter"
    );
    assert!(!check("{equals: {value: $.missing, to: 5}}", ev.clone()));
    assert!(check("{in: {value: $.s, of: [4, '5']}}", ev.clone()));
    assert!(!check("{in: {value: $.s, of: [4, 5]}}", ev.clone()));
    assert!(check(
        "{matches: {value: $.s, regex: '^[0-9]$'}}",
        ev.clone()
    ));
    assert!(
        !check("{matches: {value: $.n, regex: '^[0-9]$'}}", ev.clone()),
        "regexes match strings only"
    );
    assert!(!check(
        "{matches: {value: $.missing, regex: '.*'}}",
        ev.clone()
    ));
    assert!(check("{all: [{exists: $.n}, {exists: $.s}]}", ev.clone()));
    assert!(!check("{all: [{exists: $.n}, {exists: $.z}]}", ev.clone()));
    assert!(check("{any: [{exists: $.z}, {exists: $.s}]}", ev.clone()));
    assert!(!check(
        "{any: [{exists: $.z}, {exists: $.missing}]}",
        ev.clone()
    ));
    assert!(check("{not: {exists: $.z}}", ev.clone()));
    assert!(check(
        "{equals: {value: {concat: [$.n, $.s], separator: '-'}, to: '5-5'}}",
        ev.clone()
    ));
    assert!(check(
        "{equals: {value: {firstOf: [$.z, $.missing, $.b]}, to: false}}",
        ev
    ));
}

#[test]
fn a_condition_on_an_object_in_concat_is_an_error() {
    let yaml =
        single("    when: {exists: {concat: [$.a, $.b]}}\n    source: s\n    id: i\n    ts: t\n    kind: person\n");
    let message = rejection(
        &template(&yaml),
        json!({"type": "signup", "a": "x", "b": {"k": "secret"}}),
    );
    assert_eq!(message, "event \"signup\": field when: path $.b holds an object; expected a string, number or boolean");
}

#[test]
fn unknown_event_types_are_dead_lettered_or_skipped() {
    let t = template(SIGNUP);
    let message = rejection(&t, json!({"type": "cart.viewed"}));
    assert!(
        message.contains("\"cart.viewed\"") && message.contains("mapped types: signup"),
        "{message}"
    );
    assert!(message.contains("skipUnknownEvents"), "{message}");

    let skipping = template(&format!("skipUnknownEvents: true\n{SIGNUP}"));
    let outcome = skipping
        .map_with_skip_reason(&json!({"type": "cart.viewed"}))
        .unwrap();
    assert!(
        matches!(outcome, Mapped::Skipped(SkipReason::UnknownEventType)),
        "{outcome:?}"
    );
    assert!(skipping
        .map(&json!({"type": "cart.viewed"}))
        .unwrap()
        .is_none());
    assert_eq!(SkipReason::UnknownEventType.as_str(), "unknown_event_type");

    // A type that does not look like a type name may be personal data: not quoted.
    let message = rejection(&t, json!({"type": "ann.lee@example.com"}));
    assert!(!message.contains("ann.lee"), "{message}");
    assert!(message.contains("not shown"), "{message}");
    let message = rejection(&t, json!({"type": 4155550100u64}));
    assert!(
        !message.contains("4155550100") && message.contains("not shown"),
        "{message}"
    );
    // Numeric event types are read as text.
    let numeric = template(&SIGNUP.replace("  signup:", "  \"42\":"));
    assert!(numeric.map(&json!({"type": 42})).unwrap().is_some());
}

#[test]
fn an_event_without_a_readable_type_is_an_error_even_when_skipping_unknown_types() {
    let skipping = template(&format!("skipUnknownEvents: true\n{SIGNUP}"));
    for (event, expected) in [
        (
            json!({"user": {}}),
            "the event type (path $.type) is absent",
        ),
        (
            json!({"type": null}),
            "the event type (path $.type) is absent",
        ),
        (
            json!("just a string"),
            "the event type (path $.type) is absent",
        ),
        (
            json!({"type": {"name": "signup"}}),
            "the event type: path $.type holds an object; expected a string, number or boolean",
        ),
    ] {
        assert_eq!(rejection(&skipping, event), expected);
    }
}

#[test]
fn a_rejection_is_a_template_rejection() {
    let t = template(SIGNUP);
    let err = t.map(&json!({"type": "other"})).unwrap_err();
    assert_eq!(err.category(), "template");
    assert!(
        err.to_string()
            .starts_with("template: event type \"other\" has no mapping"),
        "{err}"
    );
}

// ---------------------------------------------------------------- with validation

const PIPELINE: &str = r#"
name: t
sources: [{type: stdin, format: template}]
identifiers:
  - {type: email, normalize: email}
  - {type: phone, normalize: phone}
  - {type: device_id, normalize: lowercase}
template:
  eventType: $.type
  events:
    signup:
      source: web
      id: $.user.id
      ts: $.at
      kind: person
      identifiers:
        - {type: email, value: $.user.email}
        - {type: phone, value: $.user.phone}
      relationships:
        - {type: uses, kind: device, identifiers: [{type: device_id, value: $.device}]}
"#;

fn pipeline() -> Pipeline {
    Pipeline::from_yaml(PIPELINE, "test.yaml", &|_| None).expect("valid pipeline")
}

#[test]
fn mapped_observations_validate_and_normalize() {
    let p = pipeline();
    let t = p.template.as_ref().unwrap();
    let event = json!({"type": "signup", "at": "2026-03-01T09:12:00Z", "device": "D-9F2A",
                       "user": {"id": 17, "email": " Ann.Lee@Example.com", "phone": "(415) 555-0100"}});
    let obs = t.map(&event).unwrap().unwrap().validate(&p).unwrap();
    assert_eq!((obs.source.as_str(), obs.id.as_str()), ("web", "17"));
    let body = obs.body.unwrap();
    let values: Vec<&str> = body.identifiers.iter().map(|i| i.value.as_str()).collect();
    assert!(
        values.contains(&"ann.lee@example.com") && values.contains(&"+14155550100"),
        "{values:?}"
    );
    assert_eq!(body.relationships[0].identifiers[0].value, "d-9f2a");
}

#[test]
fn a_missing_timestamp_is_dead_lettered_by_the_validation() {
    let p = pipeline();
    let t = p.template.as_ref().unwrap();
    let wire = t
        .map(&json!({"type": "signup", "user": {"id": "u-1"}}))
        .unwrap()
        .unwrap();
    assert_eq!(wire.validate(&p).unwrap_err(), Rejection::Missing("ts"));
}

// ---------------------------------------------------------------- quickstart

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    lines: usize,
    bad_json: usize,
    skipped_unknown: usize,
    skipped_when: usize,
    template_errors: usize,
    observations: usize,
    retractions: usize,
    invalid: usize,
}

#[test]
fn the_quickstart_example_loads_and_maps_every_line() {
    let root = repo_root();
    let pipeline = Pipeline::load(&root.join("examples/quickstart/pipeline.yaml"))
        .expect("quickstart pipeline");
    let template = pipeline
        .template
        .as_ref()
        .expect("quickstart has a template");
    let events = std::fs::read_to_string(root.join("examples/quickstart/events.jsonl")).unwrap();
    let mut counts = Counts::default();
    let mut valid = Vec::new();
    for (n, line) in events.lines().enumerate() {
        counts.lines += 1;
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            counts.bad_json += 1;
            continue;
        };
        match template.map_with_skip_reason(&event) {
            Ok(Mapped::Observation(wire)) => {
                counts.observations += 1;
                counts.retractions += usize::from(wire.retract);
                match wire.validate(&pipeline) {
                    Ok(obs) => valid.push(obs),
                    Err(e) => {
                        assert_eq!(e, Rejection::Missing("ts"), "line {}", n + 1);
                        counts.invalid += 1;
                    }
                }
            }
            Ok(Mapped::Skipped(SkipReason::UnknownEventType)) => counts.skipped_unknown += 1,
            Ok(Mapped::Skipped(SkipReason::NotSelected)) => counts.skipped_when += 1,
            Err(e) => {
                assert!(
                    e.to_string().contains("event type (path $.type) is absent"),
                    "line {}: {e}",
                    n + 1
                );
                counts.template_errors += 1;
            }
        }
    }
    assert_eq!(
        counts,
        Counts {
            lines: 66,
            bad_json: 1,
            skipped_unknown: 7,
            skipped_when: 2,
            template_errors: 1,
            observations: 55,
            retractions: 1,
            invalid: 1,
        }
    );

    // The story the README tells: Ann's support ticket, written with another
    // email casing and another phone format, carries her sign-up identifiers.
    let email = pipeline.identifiers.id("email").unwrap();
    let phone = pipeline.identifiers.id("phone").unwrap();
    let identifiers_of = |source: &str, id: &str| {
        let obs = valid
            .iter()
            .find(|o| o.source == source && o.id == id)
            .expect("record exists");
        obs.body
            .as_ref()
            .expect("not a retraction")
            .identifiers
            .clone()
    };
    let signup = identifiers_of("web", "u-1001");
    let ticket = identifiers_of("support", "T-301");
    for type_id in [email, phone] {
        let of = |ids: &[crate::observation::Identifier]| {
            ids.iter()
                .find(|i| i.type_id == type_id)
                .map(|i| i.value.clone())
        };
        assert!(of(&signup).is_some());
        assert_eq!(of(&signup), of(&ticket));
    }
    // The user.deleted event retracts Emma's sign-up record.
    let retraction = valid.iter().find(|o| o.is_retraction()).unwrap();
    assert_eq!(
        (retraction.source.as_str(), retraction.id.as_str()),
        ("web", "u-1005")
    );
}
