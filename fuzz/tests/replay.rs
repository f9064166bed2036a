//! Replays every saved fuzz input through its target: the corpora that `cargo fuzz`
//! grew (`fuzz/corpus/<target>/`) and the inputs that once crashed a target
//! (`fuzz/regressions/<target>/`), so a fixed crash stays fixed and the suite covers
//! what the fuzzer found interesting.

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_saved_input_replays_without_a_failure() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0usize;
    for (name, target) in settle_fuzz::TARGETS {
        let mut count = 0usize;
        for kind in ["corpus", "regressions"] {
            for file in inputs(&root.join(kind).join(name)) {
                let data = std::fs::read(&file).expect("read a saved input");
                target(&data);
                count += 1;
            }
        }
        // Every target has a seed corpus in the repository: an empty one means the
        // files were lost, and this test would replay nothing for it.
        assert!(count > 0, "no saved inputs for the fuzz target {name}");
        replayed += count;
    }
    println!("replayed {replayed} saved fuzz inputs");
}

#[test]
fn every_target_has_a_binary_and_a_corpus_directory() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in settle_fuzz::TARGETS {
        assert!(
            root.join("fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "{name}"
        );
        assert!(root.join("corpus").join(name).is_dir(), "{name}");
    }
}
