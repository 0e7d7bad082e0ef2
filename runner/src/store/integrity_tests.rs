//! Property tests of the state readers: arbitrary bytes in any reader give
//! an error, never a panic, and a committed state with any one file damaged
//! (a byte flipped, cut, extended, replaced) either loads with every record
//! that was written or fails: never with fewer.

use super::*;
use crate::observation::parse_line;
use proptest::prelude::*;

const PIPELINE: &str = "name: t\nidentifiers:\n  - type: email\n    normalize: email\n  - type: phone\n    normalize: phone\nkeyGroups: 4\n";

fn pipeline() -> Pipeline {
    Pipeline::from_yaml(PIPELINE, "test", &|_| None).unwrap()
}

fn version(p: &Pipeline, id: u32) -> Observation {
    let line = format!(
        r#"{{"source":"crm","id":"{id}","ts":"2026-01-01T00:00:00Z","kind":"person","identifiers":[{{"type":"email","value":"p{id}@x.io"}},{{"type":"phone","value":"41555501{:02}"}}]}}"#,
        id % 100
    );
    parse_line(line.as_bytes(), p).unwrap()
}

const RECORDS: u32 = 40;

/// A committed state: a snapshot of half the records, a committed segment
/// with the rest.
fn committed_state(dir: &Path, p: &Pipeline) {
    let opened = Store::open(dir, p, "{}").unwrap();
    let mut store = opened.store;
    let first: Vec<Observation> = (0..RECORDS / 2).map(|i| version(p, i)).collect();
    store
        .snapshot(first.into_iter(), &Positions::default())
        .unwrap();
    for i in RECORDS / 2..RECORDS {
        store.append(&version(p, i)).unwrap();
    }
    let sealed = store.seal().unwrap();
    store
        .committer()
        .commit(&sealed, &Positions::default(), 1)
        .unwrap();
}

fn ids(versions: &[Observation]) -> Vec<u32> {
    let mut ids: Vec<u32> = versions.iter().map(|v| v.id.parse().unwrap()).collect();
    ids.sort_unstable();
    ids
}

#[derive(Debug, Clone)]
enum Damage {
    Flip { at: usize, mask: u8 },
    Cut { at: usize },
    Extend { bytes: Vec<u8> },
    Replace { bytes: Vec<u8> },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Damage::Flip { at, mask }),
        any::<usize>().prop_map(|at| Damage::Cut { at }),
        prop::collection::vec(any::<u8>(), 1..64).prop_map(|bytes| Damage::Extend { bytes }),
        prop::collection::vec(any::<u8>(), 0..256).prop_map(|bytes| Damage::Replace { bytes }),
    ]
}

fn apply(path: &Path, damage: &Damage) {
    let mut bytes = fs::read(path).unwrap();
    match damage {
        Damage::Flip { at, mask } if !bytes.is_empty() => {
            let i = at % bytes.len();
            bytes[i] ^= mask;
        }
        Damage::Flip { .. } => bytes.push(1),
        Damage::Cut { at } => bytes.truncate(at % bytes.len().max(1)),
        Damage::Extend { bytes: more } => bytes.extend_from_slice(more),
        Damage::Replace { bytes: new } => bytes = new.clone(),
    }
    fs::write(path, bytes).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_damaged_file_never_loads_as_a_smaller_state(file in 0usize..6, how in damage()) {
        let dir = tempfile::tempdir().unwrap();
        let p = pipeline();
        committed_state(dir.path(), &p);
        let m = Manifest::read(dir.path()).unwrap().unwrap();
        let mut names = vec!["MANIFEST".to_string()];
        names.extend(m.files());
        let target = dir.path().join(&names[file % names.len()]);
        apply(&target, &how);
        let all: Vec<u32> = (0..RECORDS).collect();
        if let Ok(found) = Store::read(dir.path(), &p) {
            prop_assert_eq!(ids(&found), all.clone(), "export read {:?} with {:?}", target, how);
        }
        let opened = Store::open(dir.path(), &p, "{}").and_then(|o| o.versions.collect_all());
        if let Ok(found) = opened {
            prop_assert_eq!(ids(&found), all, "run opened {:?} with {:?}", target, how);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_reader(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let dir = Path::new("/nonexistent");
        let _ = Manifest::parse(&bytes, dir);
        let _ = crate::checkpoint::metadata::Metadata::parse(&bytes);
        let _ = segment::read_start(&mut &bytes[..]);
        let mut frames = FrameReader::new(&bytes[..]);
        while let Ok(Some(_)) = frames.next::<Observation>() {}
        let mut with_magic = segment::MAGIC.to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = segment::read_start(&mut &with_magic[..]);
    }

    #[test]
    fn arbitrary_json_shaped_manifests_never_panic(
        key_groups in any::<u32>(),
        snapshot in proptest::option::of(any::<u64>()),
        segments in prop::collection::vec(any::<u64>(), 0..5),
        compacted_through in any::<u64>(),
        types in prop::collection::vec("[a-z]{0,3}", 0..4),
    ) {
        let m = serde_json::json!({
            "format": 3, "key_groups": key_groups, "snapshot": snapshot,
            "identifier_types": types, "segments": segments,
            "compacted_through": compacted_through,
        });
        let _ = Manifest::parse(m.to_string().as_bytes(), Path::new("/x"));
        let mut legacy = m.clone();
        legacy["format"] = serde_json::json!(2);
        let _ = Manifest::parse(legacy.to_string().as_bytes(), Path::new("/x"));
    }
}
