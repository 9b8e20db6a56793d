//! The architecture invariants of docs/ARCHITECTURE.md that a text check can hold: which crate
//! may depend on which, and which crates do no I/O.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    crate::support::manifest_dir().join("..")
}

/// The workspace crates `crate_dir`'s manifest lists under `[dependencies]` (not dev or build).
fn workspace_deps(crate_dir: &str) -> BTreeSet<String> {
    let manifest = std::fs::read_to_string(workspace().join(crate_dir).join("Cargo.toml")).unwrap();
    let mut deps = BTreeSet::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps {
            if let Some(name) = line.split(['.', ' ', '=']).next().filter(|n| n.starts_with("ledger-")) {
                deps.insert(name.to_string());
            }
        }
    }
    deps
}

#[test]
fn each_crate_depends_only_on_what_its_job_allows() {
    let allowed: &[(&str, &[&str])] = &[
        ("ledger-core", &[]),
        ("ledger-ingest", &["ledger-core"]),
        ("ledger-audit", &["ledger-core"]),
        ("ledger-store", &["ledger-core", "ledger-audit"]),
        ("ledger-proto", &["ledger-core", "ledger-audit"]),
        ("ledger-server", &["ledger-core", "ledger-ingest", "ledger-audit", "ledger-store", "ledger-proto"]),
        ("ledger-cli", &["ledger-core", "ledger-ingest", "ledger-audit", "ledger-store", "ledger-proto"]),
    ];
    for (krate, may) in allowed {
        let may: BTreeSet<String> = may.iter().map(|s| s.to_string()).collect();
        let has = workspace_deps(krate);
        assert!(has.is_subset(&may), "{krate} depends on {:?}, outside what it may ({may:?})", &has - &may);
    }
    assert!(!workspace_deps("ledger-cli").contains("ledger-server"), "the CLI must not depend on the server");
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_pure_crates_do_no_io() {
    let forbidden = ["std::fs", "std::net", "tokio", "tonic", "sled", "fjall", "std::process", "std::env"];
    for krate in ["ledger-core", "ledger-ingest", "ledger-audit"] {
        let manifest = std::fs::read_to_string(workspace().join(krate).join("Cargo.toml")).unwrap();
        let deps = manifest.split("[dependencies]").nth(1).unwrap_or("").split("\n[").next().unwrap_or("");
        for name in ["tokio", "tonic", "sled", "fjall", "axum", "git2"] {
            assert!(!deps.lines().any(|l| l.trim().starts_with(name)), "{krate} depends on {name}");
        }
        let mut files = vec![];
        sources(&workspace().join(krate).join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for word in forbidden {
                    assert!(!code.contains(word), "{}:{}: `{word}` in a crate that does no I/O", f.display(), i + 1);
                }
            }
        }
    }
}
