//! C2SP tlog-proof text: parsing, and opening against a fixed test key (not secret).
#![no_main]

use ed25519_dalek::SigningKey;
use ledger_core::note;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = note::parse_tlog_proof(text);
    let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
    let _ = note::open_tlog_proof(text, &[0; 32], "fuzz.example/log", &key);
});
