//! Property tests: the canonical encoding round-trips, is deterministic, and has exactly one
//! accepted byte string per value.

use ciborium::value::Value;
use ledger_core::encoding::{from_canonical, from_cbor_unchecked_form, reference, to_canonical};
use ledger_core::record::{Body, Record};
use proptest::prelude::*;

use crate::strategies::{body, record};

/// Checks that every map in `v` has its keys in canonical (bytewise-encoded) order.
fn assert_sorted(v: &Value) {
    match v {
        Value::Map(entries) => {
            let keys: Vec<Vec<u8>> = entries
                .iter()
                .map(|(k, _)| {
                    let mut b = vec![];
                    ciborium::into_writer(k, &mut b).unwrap();
                    b
                })
                .collect();
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "map keys out of order: {keys:?}");
            entries.iter().for_each(|(_, v)| assert_sorted(v));
        }
        Value::Array(items) => items.iter().for_each(assert_sorted),
        Value::Float(_) | Value::Tag(..) => panic!("float or tag in canonical output"),
        _ => {}
    }
}

/// Any CBOR value the ledger's encoding allows (no floats, no tags), maps with keys of any
/// type and possibly repeated.
fn cbor_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<u64>().prop_map(|n| Value::Integer(n.into())),
        any::<i64>().prop_map(|n| Value::Integer(n.into())),
        (0u64..300).prop_map(|n| Value::Integer(n.into())),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        "[a-c]{0,3}|.{0,30}".prop_map(Value::Text),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((inner.clone(), inner), 0..8).prop_map(Value::Map),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_direct_encoder_writes_what_the_reference_writes(r in record(), v in cbor_value()) {
        prop_assert_eq!(to_canonical(&r, "record").unwrap(), reference::to_canonical(&r, "record").unwrap());
        // Any shape: both give the same bytes, or both refuse it (a repeated map key).
        match (to_canonical(&v, "value"), reference::to_canonical(&v, "value")) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "the encoders disagree on {:?}: {:?} against {:?}", v, a, b),
        }
    }

    #[test]
    fn decode_of_encode_is_identity(r in record()) {
        let bytes = to_canonical(&r, "record").unwrap();
        let back: Record = from_canonical(&bytes, "record").unwrap();
        prop_assert_eq!(&back, &r);
    }

    #[test]
    fn encoding_is_deterministic_and_canonical(r in record()) {
        let a = to_canonical(&r, "record").unwrap();
        let b = to_canonical(&r.clone(), "record").unwrap();
        prop_assert_eq!(&a, &b);
        let v: Value = ciborium::from_reader(a.as_slice()).unwrap();
        assert_sorted(&v);
    }

    #[test]
    fn json_round_trips_through_body_from_json(b in body()) {
        // What `ledger append` reads is the same body in JSON form.
        let (Body::Change(_) | Body::Review(_) | Body::Evidence(_) | Body::Merge(_)) = &b else { return Ok(()) };
        let v = serde_json::to_value(&b).unwrap();
        let (kind, inner) = v.as_object().unwrap().iter().next().unwrap();
        let back = Body::from_json(kind.parse().unwrap(), inner.clone()).unwrap();
        prop_assert_eq!(back, b);
    }

    #[test]
    fn the_bulk_decoder_agrees_with_the_checked_one(r in record(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        // The audit snapshot decodes stored records with `from_cbor_unchecked_form` (another
        // CBOR library); it must read every record as the checked path does, and on damaged
        // bytes either refuse or read what ciborium reads.
        let bytes = to_canonical(&r, "record").unwrap();
        let fast: Record = from_cbor_unchecked_form(&bytes, "record").unwrap();
        prop_assert_eq!(&fast, &r);
        let mut bad = bytes.clone();
        let i = pos.index(bad.len());
        bad[i] ^= 1 << bit;
        if let (Ok(a), Ok(b)) = (from_cbor_unchecked_form::<Record>(&bad, "record"), ciborium::from_reader::<Record, _>(bad.as_slice())) {
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn any_single_byte_change_is_refused_or_decodes_differently(r in record(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let bytes = to_canonical(&r, "record").unwrap();
        let mut bad = bytes.clone();
        let i = pos.index(bad.len());
        bad[i] ^= 1 << bit;
        match from_canonical::<Record>(&bad, "record") {
            Err(_) => {}
            Ok(other) => prop_assert_ne!(other, r),
        }
    }
}
