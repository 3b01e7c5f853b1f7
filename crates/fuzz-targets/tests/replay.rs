//! Replays every seed (`fuzz/corpus/<target>/`) and every kept crash
//! (`fuzz/artifacts/<target>/`) through the function its fuzz target
//! calls, so that stable `cargo test` checks them without nightly or
//! libFuzzer. A kept crash is a regression test: it panicked once.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `dir`, sorted; none if it does not exist (a target with
/// no crash kept has no artifacts directory).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_and_kept_crash_passes_its_target() {
    let root = fuzz_dir();
    let mut replayed = Vec::new();
    for (name, target) in l5d_fuzz::TARGETS {
        let seeds = files(&root.join("corpus").join(name));
        assert!(!seeds.is_empty(), "fuzz/corpus/{name}/ has no seeds");
        let crashes = files(&root.join("artifacts").join(name));
        for file in seeds.iter().chain(&crashes) {
            let data = std::fs::read(file).expect("a readable file");
            // A panic names the target and the file, through the hook.
            eprintln!("{name}: {}", file.display());
            target(&data);
        }
        replayed.push(format!(
            "{name}: {} seeds, {} crashes",
            seeds.len(),
            crashes.len()
        ));
    }
    println!("{}", replayed.join("\n"));
}

/// Every target of the fuzz crate is in `TARGETS` and back, so that none
/// goes unreplayed.
#[test]
fn the_fuzz_crate_declares_every_target() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let mut declared: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "l5d-fuzz-targets")
        .collect();
    declared.sort_unstable();
    let mut known: Vec<&str> = l5d_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    known.sort_unstable();
    assert_eq!(declared, known);
    for name in known {
        let source = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&source).expect("a target source");
        assert!(
            text.contains(&format!("l5d_fuzz::{name}(")),
            "{}",
            source.display()
        );
    }
}
