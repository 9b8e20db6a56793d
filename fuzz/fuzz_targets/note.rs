//! Signed notes, checkpoints and verifier keys (C2SP signed-note, tlog-checkpoint): parsing
//! text from anywhere, with a fixed test key (not secret).
#![no_main]

use ed25519_dalek::SigningKey;
use ledger_core::note::{self, Checkpoint};
use libfuzzer_sys::fuzz_target;

const NAME: &str = "fuzz.example/log";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
    let _ = note::parse_verifier_key(text);
    if let Ok(body) = note::open(text, NAME, &key) {
        let _ = Checkpoint::parse(body);
    }
    if let Ok(c) = Checkpoint::parse(text) {
        // What parses prints back as text that parses to the same checkpoint.
        let again = Checkpoint::parse(&c.to_text()).expect("a printed checkpoint parses");
        assert_eq!(again.size, c.size);
        assert_eq!(again.root, c.root);
    }
});
