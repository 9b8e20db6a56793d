//! What the API mapping tests share: the real deliveries, and the records a mapping made.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use ledger_core::record::Record;
use ledger_ingest::Mapped;
use serde_json::Value;

/// A real delivery from `../shared/realdata/<relative>`, its bytes and JSON; `None` (a
/// notice) when the data is missing, an error when `CI` is set.
pub fn realdata(relative: &str) -> Option<(Vec<u8>, Value)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/realdata").join(relative);
    let Ok(bytes) = std::fs::read(&path) else {
        assert!(std::env::var_os("CI").is_none(), "test data {} is missing (CI is set)", path.display());
        eprintln!("notice: test data {} is missing; skipping", path.display());
        return None;
    };
    let v = serde_json::from_slice(&bytes).unwrap();
    Some((bytes, v))
}

/// The records of a mapping that must not be skipped.
pub fn records(m: Mapped) -> Vec<Record> {
    match m {
        Mapped::Records(r) => r,
        Mapped::Skipped(why) => panic!("skipped: {why}"),
    }
}
