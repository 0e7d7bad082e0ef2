use super::*;

fn load(yaml: &str) -> Result<Pipeline, ConfigError> {
    Pipeline::from_yaml(yaml, "pipeline.yaml", &|name| {
        (name == "TOPIC").then(|| "events".to_string())
    })
}

#[test]
fn a_missing_variable_is_named() {
    let err = load("name: ${NOPE}\nidentifiers: [{type: email}]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`NOPE`"), "{err}");
}

#[test]
fn kafka_sources_and_checkpoints_are_validated_by_field() {
    let base = "name: x\nidentifiers: [{type: email}]\n";
    let cases = [
        (
            "sources: [{type: kafka, bootstrapServers: 'h:1', topics: []}]\n",
            "sources[0].topics",
        ),
        (
            "sources: [{type: kafka, bootstrapServers: ' ', topics: [t]}]\n",
            "sources[0].bootstrapServers",
        ),
        (
            "sources: [{type: kafka, bootstrapServers: 'h:1', topics: [t], properties: {enable.auto.commit: 'true'}}]\n",
            "properties.enable.auto.commit",
        ),
        ("checkpoints: {interval: soon}\n", "checkpoints.interval"),
        ("checkpoints: {retain: 0}\n", "checkpoints.retain"),
    ];
    for (extra, field) in cases {
        let err = load(&format!("{base}{extra}")).unwrap_err().to_string();
        assert!(err.contains(field), "{extra}: {err}");
    }
    let ok = load(&format!(
        "{base}sources: [{{type: kafka, bootstrapServers: 'h:1', topics: [a, b], startFrom: latest}}]\ncheckpoints: {{url: 's3://b/p', interval: 500ms}}\n"
    ))
    .unwrap();
    assert_eq!(
        ok.checkpoints.interval,
        std::time::Duration::from_millis(500)
    );
    assert_eq!(ok.checkpoints.url.as_deref(), Some("s3://b/p"));
}

#[test]
fn errors_name_the_field_and_what_is_accepted() {
    let cases = [
        ("name: x\nidentifiers: []\n", "identifiers", "at least one"),
        (
            "name: x\ndefaultRegion: XX\nidentifiers: [{type: email}]\n",
            "defaultRegion",
            "US",
        ),
        (
            "name: x\nidentifiers: [{type: email}, {type: email}]\n",
            "identifiers[1].type",
            "twice",
        ),
        (
            "name: x\nidentifiers: [{type: 'e mail'}]\n",
            "identifiers[0].type",
            "letters",
        ),
        (
            "name: x\nidentifiers: [{type: a, exclusiveLimit: 0}]\n",
            "identifiers[0].exclusiveLimit",
            "at least 1",
        ),
        (
            "name: x\nidentifiers: [{type: a, blocklist: ['^ok$', '(']}]\n",
            "identifiers[0].blocklist[1]",
            "regular expression",
        ),
        (
            "name: x\nidentifiers: [{type: a}]\nsurvivorship: {default: sourcePriority}\n",
            "survivorship.default",
            "sourcePriority",
        ),
        (
            "name: x\nidentifiers: [{type: a}]\nsources: [{type: stdin, format: template}]\n",
            "sources[0].format",
            "template",
        ),
        (
            "name: x\nidentifiers: [{type: a, normalize: emial}]\n",
            "identifiers[0].normalize",
            "email",
        ),
        (
            "name: x\nidentifiers: [{type: a}]\nkeyGroups: 0\n",
            "keyGroups",
            "between",
        ),
    ];
    for (yaml, field, hint) in cases {
        let err = load(yaml).unwrap_err().to_string();
        assert!(
            err.contains(field) && err.contains(hint),
            "{yaml}\n=> {err}"
        );
    }
}

#[test]
fn canonical_example_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/canonical/pipeline.yaml");
    let p = Pipeline::load(&path).unwrap();
    let account = p.identifiers.id("account_id").unwrap();
    assert_eq!(p.identifiers.get(account).exclusive_limit, Some(1));
    let email = p.identifiers.get(p.identifiers.id("email").unwrap());
    assert!(email.is_blocked("test@test.com"));
    assert!(!email.is_blocked("ann.lee@example.org"));
    let phone = p.identifiers.get(p.identifiers.id("phone").unwrap());
    assert!(phone.is_blocked("+10000000000") && phone.is_blocked("+15555555555"));
    assert!(!phone.is_blocked("+14155550100"));
}

#[test]
fn sinks_are_validated_with_the_field_named() {
    let base = "name: t\nidentifiers: [{type: email}]\nsinks:\n";
    let ok = load(&format!(
        "{base}  - type: dynamodb\n    profilesTable: profiles\n    identifiersTable: ids\n    writeMode: batch\n    delivery: {{flushInterval: 100ms, maxPending: 5000}}\n"
    ))
    .unwrap();
    assert_eq!(ok.sinks.len(), 1);
    assert_eq!(ok.sinks[0].name, "dynamodb");
    assert_eq!(
        ok.sinks[0].delivery.flush_interval,
        std::time::Duration::from_millis(100)
    );
    assert_eq!(ok.sinks[0].delivery.max_pending, 5000);
    let cases = [
        (
            "  - type: dynamodb\n    profilesTable: a\n    identifiersTable: ids\n",
            "sinks[0].profilesTable",
        ),
        (
            "  - type: dynamodb\n    profilesTable: same\n    identifiersTable: same\n",
            "sinks[0].identifiersTable",
        ),
        (
            "  - type: dynamodb\n    profilesTable: pro1\n    identifiersTable: ids1\n    delivery: {flushInterval: soon}\n",
            "sinks[0].delivery.flushInterval",
        ),
        (
            "  - type: dynamodb\n    profilesTable: pro1\n    identifiersTable: ids1\n    endpoint: localhost:8000\n",
            "sinks[0].endpoint",
        ),
        (
            "  - type: dynamodb\n    profilesTable: pro1\n    identifiersTable: ids1\n  - type: dynamodb\n    profilesTable: pro2\n    identifiersTable: ids2\n",
            "sinks[1].name",
        ),
        (
            "  - type: dynamodb\n    profilesTable: pro1\n    identifiersTable: ids1\n    writeMode: sometimes\n",
            "unknown variant, expected `conditional` or `batch`",
        ),
        ("  - type: dynamo\n", "sinks[0]"),
    ];
    for (yaml, field) in cases {
        let err = load(&format!("{base}{yaml}")).unwrap_err().to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
}

#[test]
fn the_aws_example_validates() {
    let text = include_str!("../../../examples/aws/pipeline.yaml");
    let env = |name: &str| match name {
        "KAFKA_BOOTSTRAP" => Some("127.0.0.1:9092".to_string()),
        "KITH_INPUT_TOPIC" => Some("observations".to_string()),
        "KITH_CHECKPOINTS" => Some("file:///tmp/kith-checkpoints".to_string()),
        "KITH_PROFILES_TABLE" => Some("kith-profiles".to_string()),
        "KITH_IDENTIFIERS_TABLE" => Some("kith-identifiers".to_string()),
        "KITH_CHANGES_TOPIC" => Some("profile-changes".to_string()),
        "NEPTUNE_ENDPOINT" => Some("https://graph.example:8182".to_string()),
        _ => None,
    };
    let p = Pipeline::from_yaml(text, "examples/aws/pipeline.yaml", &env).unwrap();
    assert_eq!(p.sinks.len(), 3);
    let crate::sinks::StoreConfig::Dynamodb(d) = &p.sinks[0].store else {
        panic!("a DynamoDB sink first")
    };
    assert_eq!(
        d.endpoint, None,
        "an unset DYNAMODB_ENDPOINT means AWS's endpoint"
    );
    assert!(d.create_tables);
}

#[test]
fn resolution_reads_identifier_types_as_fields_and_names_bad_ones() {
    let base = |keys: &str, comparisons: &str, extra: &str| {
        format!(
            "name: x\nidentifiers: [{{type: ssn, link: false}}, {{type: phone, link: false}}]\n\
             resolution:\n  prior: 0.01\n  keys: [{keys}]\n  blocking: {{rules: [[k]]}}\n  comparisons: [{comparisons}]\n{extra}"
        )
    };
    let ssn = "{identifier: ssn, method: {damerauLevenshtein: {maxDistances: [1]}}, m: [0.9, 0.05, 0.05], u: [0.001, 0.01, 0.989]}";
    let p = load(&base(
        "{name: k, identifier: phone, transform: {suffix: 4}}",
        ssn,
        "",
    ))
    .unwrap();
    let r = p.resolution.as_ref().unwrap();
    assert_eq!(r.config.comparisons[0].name, "ssn");
    assert_eq!(r.config.fields.len(), 2, "phone for the key, ssn compared");

    let cases = [
        (
            base("{name: k, identifier: passport}", ssn, ""),
            "resolution.keys[0].identifier",
            "`passport` is not an identifier type",
        ),
        (
            base("{name: k, attribute: a, identifier: ssn}", ssn, ""),
            "resolution.keys[0]",
            "exactly one of `attribute`",
        ),
        (
            base(
                "{name: k, attribute: a}",
                "{method: exact, m: [0.9, 0.1], u: [0.1, 0.9]}",
                "",
            ),
            "resolution.comparisons[0]",
            "exactly one of `attribute`",
        ),
        (
            base(
                "{name: k, attribute: a}",
                ssn,
                "  households: {comparisons: [surname]}\n",
            ),
            "resolution.households.comparisons[0]",
            "surname",
        ),
        (
            base(
                "{name: k, attribute: a}",
                ssn,
                "  households: {comparisons: [ssn], address: [street]}\n",
            ),
            "resolution.households.address[0]",
            "`street` is not one of `households.comparisons` (ssn)",
        ),
        (
            base("{name: k, attribute: a}", ssn, "  maxDisagreement: 0\n"),
            "resolution.maxDisagreement",
            "above 0",
        ),
        (
            base(
                "{name: k, attribute: a}",
                ssn,
                "  training: {rules: [[nope]]}\n",
            ),
            "resolution.training.rules[0]",
            "nope",
        ),
    ];
    for (yaml, field, says) in cases {
        let err = load(&yaml).unwrap_err().to_string();
        assert!(err.contains(field) && err.contains(says), "{field}: {err}");
    }
}
