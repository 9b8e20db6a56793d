//! Bundle verification: v2 JSON Lines fed line by line as `verify-bundle` does, and the v1
//! document form. Keys are fixed test keys (not secret); the golden bundle's log key is one
//! of them, so seeds from it get past the checkpoint.
#![no_main]

use ed25519_dalek::SigningKey;
use ledger_core::bundle::{v1, BundleVerifier};
use libfuzzer_sys::fuzz_target;

/// The golden vectors' test keys (docs/FORMAT.md): not secret.
fn test_key(label: &str) -> SigningKey {
    SigningKey::from_bytes(&blake3::derive_key("provenance-ledger test key (not secret)", label.as_bytes()))
}

fuzz_target!(|data: &[u8]| {
    let key = test_key("log").verifying_key();
    let name = "ledger.example/golden";
    let mut lines = data.split_inclusive(|b| *b == b'\n');
    if let Some(first) = lines.next() {
        if let Ok(mut v) = BundleVerifier::start(first, name, &key) {
            for l in lines {
                if v.line(l).is_err() {
                    break;
                }
            }
            let _ = v.end();
        }
    }
    if let Ok(b) = serde_json::from_slice::<v1::Bundle>(data) {
        let _ = v1::verify(&b, name, &key);
    }
});
