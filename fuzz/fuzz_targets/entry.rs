//! Entry decoding (the stored, hash-chained form) and the record inside it.
#![no_main]

use ledger_core::entry::Entry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = Entry::decode(data) {
        let again = e.encode().expect("a decoded entry encodes");
        assert_eq!(again, data, "an entry decoded from non-canonical bytes");
        let _ = e.decode_record();
        let _ = e.signed_record();
    }
});
