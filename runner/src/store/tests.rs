use super::*;
use crate::observation::parse_line;
use crate::source::Positions;

const PIPELINE: &str = "name: t\nidentifiers:\n  - type: email\n    normalize: email\n  - type: phone\n    normalize: phone\nkeyGroups: 8\n";

fn pipeline(yaml: &str) -> Pipeline {
    Pipeline::from_yaml(yaml, "test", &|_| None).unwrap()
}

fn open(dir: &Path, p: &Pipeline) -> (Store, Vec<Observation>) {
    let o = Store::open(dir, p, "{}").unwrap();
    (o.store, o.versions.collect_all().unwrap())
}

/// A segment's frames without its header: what a format 2 runner wrote.
fn without_header(path: &Path) -> Vec<u8> {
    let bytes = fs::read(path).unwrap();
    match segment::read_start(&mut &bytes[..]).unwrap() {
        segment::Start::Header(_, size) => bytes[size as usize..].to_vec(),
        _ => panic!("a segment of this runner has a header"),
    }
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
    let (mut store, found) = open(dir.path(), &p);
    assert!(found.is_empty());
    let all: Vec<Observation> = (0..50).map(|i| version(&p, i)).collect();
    for v in &all[..30] {
        store.append(v).unwrap();
    }
    store.sync().unwrap();
    drop(store);

    let (mut store, found) = open(dir.path(), &p);
    assert_eq!(found, all[..30].to_vec());
    store
        .snapshot(found.into_iter(), &Positions::default())
        .unwrap();
    for v in &all[30..] {
        store.append(v).unwrap();
    }
    store.sync().unwrap();
    drop(store);

    let (_, mut found) = open(dir.path(), &p);
    found.sort_by_key(|v| v.id.parse::<u32>().unwrap());
    assert_eq!(found, all);
    assert!(
        dir.path().join("snapshot-1/kg-7.bin").exists(),
        "one file per key group"
    );
    assert!(
        !dir.path().join(segment_name(1)).exists(),
        "the folded log is removed"
    );
}

#[test]
fn a_torn_log_tail_is_cut_and_appending_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(PIPELINE);
    let (mut store, _) = open(dir.path(), &p);
    for i in 0..3 {
        store.append(&version(&p, i)).unwrap();
    }
    store.sync().unwrap();
    drop(store);
    // A crash in the middle of a frame leaves half of it behind.
    let log = dir.path().join(segment_name(1));
    let mut f = OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(&[42, 0, 0, 0, 1, 2]).unwrap();
    drop(f);

    let (mut store, found) = open(dir.path(), &p);
    assert_eq!(found.len(), 3);
    store.append(&version(&p, 3)).unwrap();
    store.sync().unwrap();
    drop(store);
    let (_, found) = open(dir.path(), &p);
    assert_eq!(
        found.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
}

#[test]
fn identifier_types_are_stored_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(PIPELINE);
    let (mut store, _) = open(dir.path(), &p);
    store.append(&version(&p, 1)).unwrap();
    store.sync().unwrap();
    drop(store);
    // The same types in another order, plus a new one.
    let reordered = pipeline("name: t\nidentifiers:\n  - type: cookie\n  - type: phone\n    normalize: phone\n  - type: email\n    normalize: email\nkeyGroups: 8\n");
    let (_, found) = open(dir.path(), &reordered);
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
    drop(open(dir.path(), &p));
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

#[test]
fn sealed_segments_commit_with_their_positions_and_unlisted_ones_are_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(PIPELINE);
    let (mut store, _) = open(dir.path(), &p);
    let all: Vec<Observation> = (0..20).map(|i| version(&p, i)).collect();
    for v in &all[..10] {
        store.append(v).unwrap();
    }
    let sealed = store.seal().unwrap();
    assert_eq!(sealed, vec![1]);
    let mut positions = Positions::default();
    positions.advance("obs", 0, 10);
    let committed = store.committer().commit(&sealed, &positions, 7).unwrap();
    assert_eq!(committed.segments, vec![1]);
    assert_eq!(committed.files(), vec![segment_name(1)]);
    // Appended after the checkpoint and never committed (a crash now).
    for v in &all[10..] {
        store.append(v).unwrap();
    }
    store.sync().unwrap();
    drop(store);

    let opened = Store::open(dir.path(), &p, "{}").unwrap();
    assert_eq!(opened.positions.get("obs", 0), Some(10));
    let mut store = opened.store;
    assert_eq!(
        opened.versions.collect_all().unwrap(),
        all,
        "committed and adopted segments are read"
    );
    // The adopted segment is committed with the next checkpoint.
    assert_eq!(
        store.seal().unwrap(),
        vec![2],
        "the empty open segment is not sealed"
    );
    assert_eq!(Manifest::read(dir.path()).unwrap().unwrap().checkpoint, 7);
}

#[test]
fn a_damaged_committed_segment_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(PIPELINE);
    let (mut store, _) = open(dir.path(), &p);
    store.append(&version(&p, 1)).unwrap();
    let sealed = store.seal().unwrap();
    store
        .committer()
        .commit(&sealed, &Positions::default(), 1)
        .unwrap();
    drop(store);
    let seg = dir.path().join(segment_name(1));
    let mut bytes = fs::read(&seg).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&seg, bytes).unwrap();
    let err = Store::open(dir.path(), &p, "{}")
        .unwrap()
        .versions
        .collect_all()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("wal-0000000001.bin") && err.contains("damaged"),
        "{err}"
    );
}

#[test]
fn repartition_rewrites_every_version_into_the_new_key_groups() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(PIPELINE);
    let (mut store, _) = open(dir.path(), &p);
    let all: Vec<Observation> = (0..40).map(|i| version(&p, i)).collect();
    for v in &all {
        store.append(v).unwrap();
    }
    store.sync().unwrap();
    drop(store);
    repartition(dir.path(), 3).unwrap();
    let three = pipeline(&PIPELINE.replace("keyGroups: 8", "keyGroups: 3"));
    let (_, mut found) = open(dir.path(), &three);
    found.sort_by_key(|v| v.id.parse::<u32>().unwrap());
    assert_eq!(found, all);
    assert!(dir.path().join("snapshot-1/kg-2.bin").exists());
    assert!(!dir.path().join("snapshot-1/kg-3.bin").exists());
}

#[test]
fn an_uncommitted_segment_of_an_older_runner_is_still_adopted_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(PIPELINE);
    let (mut store, _) = open(dir.path(), &p);
    store.append(&version(&p, 7)).unwrap();
    store.sync().unwrap();
    drop(store);
    // A format 2 runner's state: a segment with no header, not committed.
    let segment = dir.path().join(segment_name(1));
    fs::write(&segment, without_header(&segment)).unwrap();
    let _ = fs::remove_file(dir.path().join(segment_name(2)));
    fs::write(
        dir.path().join("MANIFEST"),
        r#"{"format":2,"key_groups":8,"snapshot":null,"identifier_types":["email","phone"],"state_id":"0123456789abcdef"}"#,
    )
    .unwrap();
    let (store, found) = open(dir.path(), &p);
    assert_eq!(found, vec![version(&p, 7)]);
    drop(store);
    // Upgraded, and stopped again before any checkpoint committed it.
    let (_, found) = open(dir.path(), &p);
    assert_eq!(found, vec![version(&p, 7)]);
    // A header-less file under a later number is still refused.
    fs::copy(&segment, dir.path().join(segment_name(9))).unwrap();
    assert!(Store::open(dir.path(), &p, "{}").is_err());
}

#[test]
fn a_format_1_state_is_read_and_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(PIPELINE);
    let (mut store, _) = open(dir.path(), &p);
    store.append(&version(&p, 5)).unwrap();
    store.sync().unwrap();
    drop(store);
    // What a format-1 runner left: its manifest and `log-<generation>.bin`,
    // frames with no segment header.
    fs::write(
        dir.path().join("log-0.bin"),
        without_header(&dir.path().join(segment_name(1))),
    )
    .unwrap();
    fs::remove_file(dir.path().join(segment_name(1))).unwrap();
    let _ = fs::remove_file(dir.path().join(segment_name(2)));
    fs::write(
        dir.path().join("MANIFEST"),
        r#"{"format":1,"key_groups":8,"snapshot":null,"identifier_types":["email","phone"]}"#,
    )
    .unwrap();
    let (_, found) = open(dir.path(), &p);
    assert_eq!(found, vec![version(&p, 5)]);
    let m = Manifest::read(dir.path()).unwrap().unwrap();
    assert_eq!(m.format, manifest::FORMAT);
    assert!(!m.state_id.is_empty());
    assert_eq!(
        m.sums.len(),
        m.files().len(),
        "the upgrade records the sums of the files it found"
    );
}

#[test]
fn compaction_folds_committed_segments_into_a_snapshot_of_the_latest_versions() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(PIPELINE);
    let (mut store, _) = open(dir.path(), &p);
    let committer = store.committer().with_compaction_threshold(1);
    // Three versions of each key over three segments; the last wins.
    let mut latest = Vec::new();
    for round in 0..3u32 {
        for id in 0..30u32 {
            let line = format!(
                r#"{{"source":"crm","id":"{id}","ts":"2026-01-0{}T00:00:00Z","kind":"person","identifiers":[{{"type":"email","value":"r{round}-{id}@x.io"}}]}}"#,
                round + 1
            );
            let v = parse_line(line.as_bytes(), &p).unwrap();
            store.append(&v).unwrap();
            if round == 2 {
                latest.push(v);
            }
        }
        let sealed = store.seal().unwrap();
        committer
            .commit(&sealed, &Positions::default(), round as u64 + 1)
            .unwrap();
    }
    let done = committer.compact_if_due(&p).unwrap().expect("due");
    assert_eq!(done.segments_folded, 3);
    assert_eq!((done.versions_kept, done.versions_dropped), (30, 60));
    // Appended after the compaction started: still there.
    let later = version(&p, 99);
    store.append(&later).unwrap();
    store.sync().unwrap();
    drop(store);
    let m = Manifest::read(dir.path()).unwrap().unwrap();
    assert_eq!((m.snapshot, m.segments.len()), (Some(1), 0));
    assert!(!dir.path().join(segment_name(1)).exists());
    let (_, mut found) = open(dir.path(), &p);
    found.sort_by_key(|v| v.id.parse::<u32>().unwrap());
    latest.push(later);
    assert_eq!(found, latest);
    assert!(
        committer.compact_if_due(&p).unwrap().is_none(),
        "nothing left to fold"
    );

    // A crash between the manifest and the removal leaves a folded segment
    // behind: it is removed on open, not adopted again.
    fs::write(dir.path().join(segment_name(2)), b"stale").unwrap();
    let opened = Store::open(dir.path(), &p, "{}").unwrap();
    assert_eq!(opened.versions.collect_all().unwrap().len(), 31);
    assert!(!dir.path().join(segment_name(2)).exists());
}
