//! Ingesting this project's own repository: whatever its history (shallow, a single commit,
//! merges), its committed HEAD is a landing the ledger can explain.

use crate::support::{manifest_dir, Ledger};

#[test]
fn own_repository_head_is_explained() {
    let root = manifest_dir().join("..");
    let repo =
        git2::Repository::open(&root).unwrap_or_else(|e| panic!("{} is not a git repository: {e}", root.display()));
    // Only committed history counts; the work tree may have uncommitted changes.
    let head = repo.head().and_then(|h| h.peel_to_commit()).expect("HEAD names a commit").id().to_string();

    let ledger = Ledger::init();
    let summary = ledger.ingest_git(&root, "provenance-ledger/ledger");
    assert!(summary["landings"].as_u64() >= Some(1), "HEAD must be at least one landing: {summary}");
    assert!(summary["appended"].as_u64() >= Some(2), "each landing appends a change and a merge: {summary}");

    let change = ledger.why_one_change(&head);
    let merge_commit = change["merge"]["commit"].as_str();
    let head_commit = change["head_commit"].as_str();
    assert!(
        merge_commit == Some(head.as_str()) || head_commit == Some(head.as_str()),
        "why {head}: neither merge.commit ({merge_commit:?}) nor head_commit ({head_commit:?}) is HEAD:\n{change:#}"
    );
    assert_eq!(change["repo"], "provenance-ledger/ledger", "why {head}: change of another repository");

    let entries = ledger.verify();
    assert_eq!(Some(entries), summary["entries"].as_u64(), "verify counts another number of entries than ingest left");
}
