//! One function per fuzz target: it takes any bytes, runs one parser of
//! Kith on them and checks the invariants every input must keep. A panic
//! (an `assert!` here included) is a finding.
//!
//! libFuzzer calls these from `fuzz/fuzz_targets` (`make fuzz`, nightly);
//! `tests/corpus.rs` replays the checked-in corpus through them on stable
//! (`make test`), so that every input once found stays a regression test.
//!
//! They depend on `kith-pipeline` only, so the nightly, instrumented build
//! stays small. The admin port's request targets and the operator's
//! CRD-to-objects path are checked by property tests instead, beside their
//! code (`runner/src/admin/tests.rs`, `operator/src/build/tests.rs`).

use kith_pipeline::config::Pipeline;
use kith_pipeline::normalize::{to_e164, Region};
use std::sync::OnceLock;

/// A target: any bytes in, a panic when an invariant breaks.
pub type Target = fn(&[u8]);

/// The targets by name, as their corpus folders are named.
pub const TARGETS: &[(&str, Target)] = &[
    ("observation", observation),
    ("template", template),
    ("phone", phone),
    ("pipeline_file", pipeline_file),
];

fn example_pipeline(cell: &'static OnceLock<Pipeline>, yaml: &str) -> &'static Pipeline {
    cell.get_or_init(|| {
        Pipeline::from_yaml(yaml, "example.yaml", &|_| None).expect("the example pipeline loads")
    })
}

/// A canonical observation line, against the canonical example's pipeline:
/// accepted, or refused with a reason that names what is wrong.
pub fn observation(data: &[u8]) {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    let pipeline = example_pipeline(
        &PIPELINE,
        include_str!("../../../examples/canonical/pipeline.yaml"),
    );
    match kith_pipeline::observation::parse_line(data, pipeline) {
        Ok(observation) => {
            assert!(!observation.source.is_empty() && !observation.id.is_empty());
        }
        Err(rejection) => {
            assert!(!rejection.to_string().is_empty());
            assert!(!rejection.category().is_empty());
        }
    }
}

/// A raw event through the quickstart's mapping template.
pub fn template(data: &[u8]) {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    let pipeline = example_pipeline(
        &PIPELINE,
        include_str!("../../../examples/quickstart/pipeline.yaml"),
    );
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let template = pipeline
        .template
        .as_ref()
        .expect("the quickstart has a template");
    if let Err(rejection) = template.map(&event) {
        assert!(!rejection.to_string().is_empty());
    }
}

/// Phone numbers: an E.164 answer is `+` and 2 to 15 digits, and a
/// normalized number normalizes to itself.
pub fn phone(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for region in ["US", "GB", "DE", "IN", "BR", "JP"] {
        let Some(region) = Region::parse(region) else {
            continue;
        };
        if let Some(e164) = to_e164(text, region) {
            let digits = e164.strip_prefix('+').expect("E.164 starts with +");
            assert!(
                (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()),
                "{e164:?}"
            );
            assert_eq!(to_e164(&e164, region).as_deref(), Some(e164.as_str()));
        }
    }
}

/// A pipeline file with `${VAR}` references: loads, or an error that names
/// something; a variable's value never appears in an error.
pub fn pipeline_file(data: &[u8]) {
    const SECRET: &str = "s3cret-sentinel-7f1c";
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| (name == "SECRET").then(|| SECRET.to_string());
    if let Err(e) = Pipeline::from_yaml(text, "fuzz.yaml", &env) {
        let message = e.to_string();
        assert!(!message.is_empty());
        assert!(!message.contains(SECRET), "{message}");
    }
}
