//! Every input of the checked-in corpus (`fuzz/corpus/TARGET/`), through
//! its target: what a fuzzer once found stays fixed.

use std::path::Path;

#[test]
fn every_corpus_input_keeps_its_targets_invariants() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (name, target) in kith_fuzz_targets::TARGETS {
        let dir = corpus.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("no corpus for {name} in {}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "the corpus of {name} is empty");
        for input in &inputs {
            let data = std::fs::read(input).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(
                outcome.is_ok(),
                "{name}: {} breaks an invariant",
                input.display()
            );
        }
    }
}
