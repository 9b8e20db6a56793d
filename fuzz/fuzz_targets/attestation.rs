//! Attestation parsing: DSSE envelopes, in-toto statements (JSON and JSON Lines), Sigstore
//! bundles; with and without a verification key (a fixed test key, not secret).
#![no_main]

use ledger_core::types::Timestamp;
use ledger_ingest::attestation::{self, AttestationKey};
use libfuzzer_sys::fuzz_target;

use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePublicKey};

fuzz_target!(|data: &[u8]| {
    let _ = attestation::map(data, None, None, Timestamp(1_764_000_000_000));
    // A fixed test key (not secret): signatures will not verify, but the parsing up to the
    // check runs with a key in hand.
    let pem = ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key().to_public_key_pem(LineEnding::LF);
    if let Ok(key) = pem.map_err(|_| ()).and_then(|p| AttestationKey::from_pem(&p).map_err(|_| ())) {
        let _ = attestation::map(data, Some(&key), None, Timestamp(1_764_000_000_000));
    }
});
