//! Canonical CBOR: the only encoding of signed and hashed data.
//!
//! Follows the core deterministic encoding of RFC 8949 §4.2.1: shortest-form integers and
//! lengths, definite lengths only, map keys sorted by the bytewise order of their encodings.
//! The ledger's types add: no floats, no tags. Decoding accepts only canonical bytes: after
//! decoding, the value is re-encoded and must give the input back exactly, so one value has
//! exactly one accepted byte string.

use ciborium::value::Value;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// Encodes `value` as canonical CBOR.
///
/// # Errors
/// [`Error::Malformed`] if the value contains a float or tag, or cannot be serialized.
pub fn to_canonical<T: Serialize + ?Sized>(value: &T, what: &'static str) -> Result<Vec<u8>> {
    let v = Value::serialized(value).map_err(|e| Error::Malformed { what, detail: e.to_string() })?;
    let v = canonicalize(v, what)?;
    let mut out = Vec::with_capacity(256);
    ciborium::into_writer(&v, &mut out).map_err(|e| Error::Malformed { what, detail: e.to_string() })?;
    Ok(out)
}

/// Decodes canonical CBOR bytes into `T`.
///
/// # Errors
/// [`Error::Malformed`] if the bytes are not CBOR for `T`; [`Error::NonCanonical`] if they are,
/// but are not the canonical encoding (unsorted keys, long-form integers, trailing bytes...).
pub fn from_canonical<T: DeserializeOwned + Serialize>(bytes: &[u8], what: &'static str) -> Result<T> {
    let value: T = ciborium::from_reader(bytes).map_err(|e| Error::Malformed { what, detail: e.to_string() })?;
    if to_canonical(&value, what)? != bytes {
        return Err(Error::NonCanonical { what });
    }
    Ok(value)
}

fn canonicalize(v: Value, what: &'static str) -> Result<Value> {
    Ok(match v {
        Value::Map(entries) => {
            let mut keyed = Vec::with_capacity(entries.len());
            for (k, val) in entries {
                let k = canonicalize(k, what)?;
                let mut kb = Vec::new();
                ciborium::into_writer(&k, &mut kb).map_err(|e| Error::Malformed { what, detail: e.to_string() })?;
                keyed.push((kb, k, canonicalize(val, what)?));
            }
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            if keyed.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(Error::Malformed { what, detail: "duplicate map key".into() });
            }
            Value::Map(keyed.into_iter().map(|(_, k, v)| (k, v)).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(|i| canonicalize(i, what)).collect::<Result<_>>()?),
        Value::Float(_) => return Err(Error::Malformed { what, detail: "floats are not allowed".into() }),
        Value::Tag(..) => return Err(Error::Malformed { what, detail: "tags are not allowed".into() }),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct T {
        zz: u64,
        a: String,
        bb: Vec<u8>,
    }

    #[test]
    fn keys_sort_shortest_first_then_bytewise() {
        let b = to_canonical(&T { zz: 1, a: "x".into(), bb: vec![] }, "t").unwrap();
        // map(3), "a", "x", "bb", [], "zz", 1
        assert_eq!(hex::encode(&b), "a36161617862626280627a7a01");
    }

    #[test]
    fn non_canonical_bytes_are_refused() {
        let good = to_canonical(&T { zz: 1, a: "x".into(), bb: vec![] }, "t").unwrap();
        let back: T = from_canonical(&good, "t").unwrap();
        assert_eq!(back.zz, 1);
        // Same map, keys in declaration (non-canonical) order.
        let mut unsorted = Vec::new();
        ciborium::into_writer(&T { zz: 1, a: "x".into(), bb: vec![] }, &mut unsorted).unwrap();
        assert_ne!(unsorted, good);
        assert!(matches!(from_canonical::<T>(&unsorted, "t"), Err(Error::NonCanonical { .. })));
        // Trailing bytes.
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(from_canonical::<T>(&trailing, "t").is_err());
        // Long-form integer for zz (0x18 0x01 instead of 0x01).
        let pos = good.len() - 1;
        let mut long = good[..pos].to_vec();
        long.extend([0x18, 0x01]);
        assert!(matches!(from_canonical::<T>(&long, "t"), Err(Error::NonCanonical { .. })));
    }

    #[test]
    fn floats_are_refused() {
        assert!(to_canonical(&1.5f64, "t").is_err());
    }
}
