//! Canonical CBOR record decoding: any bytes either decode to a record whose canonical
//! encoding is exactly those bytes, or are refused with an error. Never a panic.
#![no_main]

use ledger_core::encoding::{from_canonical, to_canonical};
use ledger_core::record::Record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = from_canonical::<Record>(data, "record") {
        let again = to_canonical(&r, "record").expect("a decoded record encodes");
        assert_eq!(again, data, "a record decoded from non-canonical bytes");
        let _ = r.subjects();
        let _ = r.text_fields();
        let _ = r.kind();
    }
});
