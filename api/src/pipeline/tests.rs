use super::*;

fn parse(yaml: &str) -> Result<PipelineSpec, SpecError> {
    PipelineSpec::from_value(serde_yaml::from_str(yaml).expect("valid YAML"))
}

const FULL: &str = r#"
name: quickstart
sources:
  - type: file
    path: events.jsonl
    format: template
defaultRegion: GB
identifiers:
  - type: email
    normalize: email
    blocklist: ['^test@test\.com$']
  - type: phone
    normalize: phone
  - type: account_id
    exclusiveLimit: 1
  - type: loyalty
    normalize: none
    rules: [trim, {stripPrefix: "L-"}, {regexReplace: {pattern: "\\s+", replacement: ""}}]
    link: false
survivorship:
  default: mostRecent
  sourcePriority: [crm, web]
  attributes:
    given_name: {policy: sourcePriority}
template:
  eventType: $.type
  events:
    signup:
      source: web
      id: {concat: [signup, $.id], separator: "-"}
      ts: $.at
      kind: person
      retract: {equals: {value: $.action, to: delete}}
      identifiers:
        - {type: email, value: $.email, when: {exists: $.email}}
      attributes:
        given_name: {firstOf: [$.first_name, {const: unknown}]}
      relationships:
        - type: uses
          kind: device
          identifiers: [{type: device_id, value: $.device}]
"#;

#[test]
fn full_pipeline_round_trips_through_json_and_yaml() {
    let spec = parse(FULL).unwrap();
    assert_eq!(spec.default_region, "GB");
    assert_eq!(spec.identifiers[2].exclusive_limit, Some(1));
    assert!(!spec.identifiers[3].link);
    let signup = &spec.template.as_ref().unwrap().events["signup"];
    assert_eq!(signup.source, ValueSpec::Const("web".into()));
    assert_eq!(signup.ts, ValueSpec::path("$.at"));
    // Kubernetes stores objects as JSON; the runner reads YAML (a superset).
    let json = serde_json::to_string(&spec).unwrap();
    let again = parse(&json).unwrap();
    assert_eq!(spec, again);
}

#[test]
fn unknown_field_is_rejected_with_its_name() {
    let err = parse("name: x\nidentifiers: []\nidentifers: []\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("identifers"), "{err}");
}

#[test]
fn unknown_normalization_lists_the_accepted_ones() {
    let err = parse("name: x\nidentifiers:\n  - type: email\n    normalize: emial\n").unwrap_err();
    assert_eq!(err.path, "identifiers[0].normalize");
    // The accepted ones, never the value given (it may come from a secret).
    assert!(
        !err.message.contains("emial") && err.message.contains("phone"),
        "{err}"
    );
}

#[test]
fn bad_value_expression_says_what_is_accepted() {
    let value: serde_json::Value = serde_yaml::from_str("{pth: $.x}").unwrap();
    let err = serde_json::from_value::<ValueSpec>(value)
        .unwrap_err()
        .to_string();
    assert!(err.contains("pth"), "{err}");
}

#[test]
fn a_mistyped_value_is_described_never_shown() {
    // A digits-only password expanded from `${VAR}` reads as an integer.
    let err = parse(
        "name: x\nidentifiers: [{type: email}]\nsinks: [{name: s, type: dynamodb, profilesTable: 12345678, identifiersTable: t}]\n",
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("12345678"), "{text}");
    assert!(
        text.contains("an integer") && text.contains("expected"),
        "{text}"
    );
    assert!(text.contains("sinks"), "{text}");
    let err = parse("name: x\nidentifiers: []\nkeyGroups: \"s3cret, expected x\"\n").unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
    // An unknown variant is not shown either: it may come from a `${VAR}`.
    let err = parse(
        "name: x\nidentifiers: [{type: email}]\nsources: [{type: kafka s3cret, topics: [t]}]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(!err.contains("s3cret"), "{err}");
    assert!(
        err.contains("sources[0].type") && err.contains("`kafka`"),
        "{err}"
    );
}

#[test]
fn client_properties_take_any_scalar_as_text() {
    let spec = parse(
        "name: x\nidentifiers: [{type: email}]\nsources: [{type: kafka, bootstrapServers: 'h:1', topics: [t], properties: {linger.ms: 5, enable.idempotence: true, sasl.password: '007'}}]\n",
    )
    .unwrap();
    let SourceSpec::Kafka(kafka) = &spec.sources[0] else {
        panic!("a kafka source: {:?}", spec.sources[0]);
    };
    assert_eq!(kafka.properties["linger.ms"], "5");
    assert_eq!(kafka.properties["enable.idempotence"], "true");
    assert_eq!(kafka.properties["sasl.password"], "007");
    let err = parse(
        "name: x\nidentifiers: [{type: email}]\nsources: [{type: kafka, bootstrapServers: 'h:1', topics: [t], properties: {sasl.password: [hunter2]}}]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("sasl.password") && !err.contains("hunter2"),
        "{err}"
    );
}
