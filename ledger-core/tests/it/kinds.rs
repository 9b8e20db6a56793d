//! `Kind` codes are part of the on-disk format (the `k` index key): pinned here, and the table
//! in docs/FORMAT.md must list exactly these.

use std::collections::BTreeMap;

use ledger_core::record::Kind;

/// The codes every existing ledger was written with. Never edit a row; append new kinds.
const PINNED: &[(&str, u8)] = &[
    ("session", 0),
    ("model", 1),
    ("change", 2),
    ("review", 3),
    ("evidence", 4),
    ("exception", 5),
    ("merge", 6),
    ("deployment", 7),
    ("incident", 8),
    ("policy", 9),
    ("gate", 10),
    ("key", 11),
    ("codeowners", 12),
];

#[test]
fn kind_codes_are_pinned() {
    assert_eq!(Kind::ALL.len(), PINNED.len(), "a new kind needs a pinned code here and in docs/FORMAT.md");
    for (name, code) in PINNED {
        let kind: Kind = name.parse().unwrap();
        assert_eq!(kind.code(), *code, "{name}");
        assert_eq!(Kind::from_code(*code), Some(kind), "{name}");
    }
    let codes: std::collections::BTreeSet<u8> = Kind::ALL.iter().map(|k| k.code()).collect();
    assert_eq!(codes.len(), Kind::ALL.len(), "codes are distinct");
    assert_eq!(Kind::from_code(200), None);
}

#[test]
fn format_md_lists_the_kind_codes() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/FORMAT.md")).unwrap();
    let section = doc.split("### Kind codes").nth(1).expect("docs/FORMAT.md has a `### Kind codes` section");
    // Rows `| code | `kind` |` up to the end of the table.
    let listed: BTreeMap<u8, String> = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let code = cells.get(1)?.parse::<u8>().ok()?;
            Some((code, cells.get(2)?.trim_matches('`').to_string()))
        })
        .collect();
    let pinned: BTreeMap<u8, String> = PINNED.iter().map(|(n, c)| (*c, n.to_string())).collect();
    assert_eq!(listed, pinned, "docs/FORMAT.md's kind code table");
}
