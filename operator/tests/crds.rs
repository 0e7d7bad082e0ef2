//! `crds/` holds exactly what the types in `kith-api` generate: a change to
//! the types without `make crds` fails here, with the command to run.

use std::path::Path;

#[test]
fn checked_in_crds_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let manifests = kith_operator::crdgen::manifests();
    let mut expected: Vec<String> = manifests.iter().map(|(f, _)| f.clone()).collect();
    expected.sort();
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .expect("crds/ exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".yaml"))
        .collect();
    present.sort();
    assert_eq!(
        present, expected,
        "crds/ holds other files than the generated ones; run `make crds`"
    );
    for (file, yaml) in manifests {
        let checked_in = std::fs::read_to_string(dir.join(&file)).unwrap();
        assert!(
            checked_in == yaml,
            "crds/{file} is stale: run `make crds` and commit the result"
        );
    }
}
