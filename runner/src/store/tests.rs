use super::*;
use crate::observation::parse_line;

const PIPELINE: &str = "name: t\nidentifiers:\n  - type: email\n    normalize: email\n  - type: phone\n    normalize: phone\nkeyGroups: 8\n";

fn pipeline(yaml: &str) -> Pipeline {
    Pipeline::from_yaml(yaml, "test", &|_| None).unwrap()
}

fn version(p: &Pipeline, id: u32) -> Observation {
    let line = format!(
        r#"{{"source":"crm","id":"{id}","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{{"type":"email","value":"p{id}@x.io"}},{{"type":"phone","value":"41555501{:02}"}}]}}"#,
        id % 100
    );
    parse_line(line.as_bytes(), p).unwrap()
}

#[test]
fn versions_survive_reopen_through_log_and_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(PIPELINE);
    let (mut store, found) = Store::open(dir.path(), &p, "{}").unwrap();
    assert!(found.is_empty());
    let all: Vec<Observation> = (0..50).map(|i| version(&p, i)).collect();
    for v in &all[..30] {
        store.append(v).unwrap();
    }
    store.sync().unwrap();
    drop(store);

    let (mut store, found) = Store::open(dir.path(), &p, "{}").unwrap();
    assert_eq!(found, all[..30].to_vec());
    store.snapshot(found.into_iter()).unwrap();
    for v in &all[30..] {
        store.append(v).unwrap();
    }
    store.sync().unwrap();
    drop(store);

    let (_, mut found) = Store::open(dir.path(), &p, "{}").unwrap();
    found.sort_by_key(|v| v.id.parse::<u32>().unwrap());
    assert_eq!(found, all);
    assert!(
        dir.path().join("snapshot-1/kg-7.bin").exists(),
        "one file per key group"
    );
    assert!(
        !dir.path().join("log-0.bin").exists(),
        "the folded log is removed"
    );
}

#[test]
fn a_torn_log_tail_is_cut_and_appending_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(PIPELINE);
    let (mut store, _) = Store::open(dir.path(), &p, "{}").unwrap();
    for i in 0..3 {
        store.append(&version(&p, i)).unwrap();
    }
    store.sync().unwrap();
    drop(store);
    // A crash in the middle of a frame leaves half of it behind.
    let log = dir.path().join("log-0.bin");
    let mut f = OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(&[42, 0, 0, 0, 1, 2]).unwrap();
    drop(f);

    let (mut store, found) = Store::open(dir.path(), &p, "{}").unwrap();
    assert_eq!(found.len(), 3);
    store.append(&version(&p, 3)).unwrap();
    store.sync().unwrap();
    drop(store);
    let (_, found) = Store::open(dir.path(), &p, "{}").unwrap();
    assert_eq!(
        found.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
}

#[test]
fn identifier_types_are_stored_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(PIPELINE);
    let (mut store, _) = Store::open(dir.path(), &p, "{}").unwrap();
    store.append(&version(&p, 1)).unwrap();
    store.sync().unwrap();
    drop(store);
    // The same types in another order, plus a new one.
    let reordered = pipeline("name: t\nidentifiers:\n  - type: cookie\n  - type: phone\n    normalize: phone\n  - type: email\n    normalize: email\nkeyGroups: 8\n");
    let (_, found) = Store::open(dir.path(), &reordered, "{}").unwrap();
    let body = found[0].body.as_ref().unwrap();
    let names: Vec<&str> = body
        .identifiers
        .iter()
        .map(|i| reordered.identifiers.name(i.type_id))
        .collect();
    assert_eq!(names, ["phone", "email"]);
    assert_eq!(body.identifiers[1].value, "p1@x.io");
}

#[test]
fn key_groups_and_removed_types_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(PIPELINE);
    drop(Store::open(dir.path(), &p, "{}").unwrap());
    let other_groups = pipeline(&PIPELINE.replace("keyGroups: 8", "keyGroups: 16"));
    let err = Store::open(dir.path(), &other_groups, "{}")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("8 key groups") && err.contains("16"), "{err}");
    let fewer = pipeline("name: t\nidentifiers:\n  - type: email\nkeyGroups: 8\n");
    let err = Store::open(dir.path(), &fewer, "{}")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("`phone`"), "{err}");
}

#[test]
fn key_groups_are_stable_and_spread() {
    assert_eq!(key_group("crm", "c-17", 128), key_group("crm", "c-17", 128));
    let mut seen = [0u32; 16];
    for i in 0..16_000 {
        seen[key_group("crm", &i.to_string(), 16) as usize] += 1;
    }
    assert!(seen.iter().all(|n| (800..1200).contains(n)), "{seen:?}");
}
