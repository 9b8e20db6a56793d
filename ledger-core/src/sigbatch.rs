//! Ed25519 batch verification that shares the work of signatures made by the same key.
//!
//! A ledger's entries come from a handful of signers, so a batch of thousands of signatures
//! names only a few keys. The batch equation of Bernstein et al., "High-speed high-security
//! signatures" (2011), §5, as ed25519-dalek's `verify_batch` computes it, is
//!
//! ```text
//! [-Σ zᵢsᵢ] B  +  Σ [zᵢ] Rᵢ  +  Σ [zᵢkᵢ] Aᵢ  =  0        kᵢ = SHA-512(Rᵢ ‖ Aᵢ ‖ Mᵢ) mod ℓ
//! ```
//!
//! with random 128-bit `zᵢ`. Grouping the last sum by key, `Σ_A [Σ_{i∈A} zᵢkᵢ] A`, leaves one
//! point per key instead of one per signature, so the multi-scalar multiplication (most of the
//! cost) has `n + keys + 1` points instead of `2n + 1`. The equation is the same one, so what
//! it accepts is what ed25519-dalek's batch accepts; on top of that, like `verify_strict`, it
//! refuses a non-canonical `s`, a non-canonical or small-order `R`, and a small-order key.
//!
//! What no batch check can promise (this one included): a signature whose `R` carries a
//! deliberate small-order component, which only the key's holder can build, passes with
//! probability 1/8 where `verify_strict` always refuses it. See `entry::verify_batch`.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha512};

/// One signature to check: the 64-byte Ed25519 signature `R ‖ s`, the signer's key, and the
/// signed message, given as a prefix and a body so callers need not concatenate them.
#[derive(Clone, Copy, Debug)]
pub struct Item<'a> {
    /// The signature, `R ‖ s` (RFC 8032 §5.1.6).
    pub signature: &'a [u8; 64],
    /// The signer's public key.
    pub key: &'a VerifyingKey,
    /// The first part of the signed message.
    pub prefix: &'a [u8],
    /// The rest of the signed message.
    pub body: &'a [u8],
}

/// Whether every signature in `items` is valid, checked as one batch (see the module docs).
/// An empty batch is valid. `false` says only that at least one is not: check them one by one
/// with [`verify_one`] to find which.
///
/// Randomness for the `zᵢ` comes from the operating system; if it cannot be had, the answer
/// is `false`, so a caller falling back to one-by-one checks stays correct.
#[must_use]
pub fn verify(items: &[Item<'_>]) -> bool {
    let mut seed = [0u8; 32];
    if getrandom::getrandom(&mut seed).is_err() {
        return false;
    }
    // The zᵢ come from a keyed XOF: unpredictable to whoever made the signatures.
    let mut zs = blake3::Hasher::new_keyed(&seed).finalize_xof();

    let mut b_coefficient = Scalar::ZERO;
    let mut scalars: Vec<Scalar> = Vec::with_capacity(items.len() + 8);
    let mut points: Vec<EdwardsPoint> = Vec::with_capacity(items.len() + 8);
    // Per distinct key: its bytes, point and summed coefficient. Few keys, so a linear scan
    // finds one quickest.
    let mut key_terms: Vec<(&[u8; 32], EdwardsPoint, Scalar)> = Vec::new();

    for item in items {
        let (r_bytes, s_bytes) = split(item.signature);
        let Some(s) = canonical_scalar(s_bytes) else {
            return false;
        };
        if !canonical_y(r_bytes) {
            return false;
        }
        if small_order_encoding(r_bytes) {
            return false;
        }
        let Some(r) = CompressedEdwardsY(*r_bytes).decompress() else {
            return false;
        };
        let key_bytes = item.key.as_bytes();
        let k = challenge(r_bytes, item);
        let mut z_bytes = [0u8; 16];
        zs.fill(&mut z_bytes);
        let z = Scalar::from(u128::from_le_bytes(z_bytes));

        b_coefficient += z * s;
        scalars.push(z);
        points.push(r);
        let zk = z * k;
        match key_terms.iter_mut().find(|(b, _, _)| *b == key_bytes) {
            Some((_, _, c)) => *c += zk,
            None => {
                let a = item.key.to_edwards();
                if a.is_small_order() {
                    return false;
                }
                key_terms.push((key_bytes, a, zk));
            }
        }
    }
    for (_, a, c) in key_terms {
        scalars.push(c);
        points.push(a);
    }
    scalars.push(-b_coefficient);
    points.push(curve25519_dalek::constants::ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(&scalars, &points).is_identity()
}

/// Whether one signature is valid under exactly the rules of ed25519-dalek's `verify_strict`
/// (canonical `s`; `R` the canonical encoding of a point that is not of small order; a key
/// not of small order; `R = [s]B − [k]A`), computed with one field inversion instead of two.
///
/// `verify_strict` decompresses `R` (a square root) and then compresses `[s]B − [k]A` (an
/// inversion) to compare bytes. Comparing the compressed `R' = [s]B − [k]A` with `R`'s bytes
/// alone is the same test: if they are equal, `R`'s bytes are canonical and decompress to
/// `R'`, so "`R` is not of small order" is "`R'` is not of small order", which its bytes
/// tell (`small_order_encoding`). Checked against `verify_strict` by property test.
#[must_use]
pub fn verify_one(item: &Item<'_>) -> bool {
    let (r_bytes, s_bytes) = split(item.signature);
    let Some(s) = canonical_scalar(s_bytes) else {
        return false;
    };
    let a = item.key.to_edwards();
    if a.is_small_order() {
        return false;
    }
    let k = challenge(r_bytes, item);
    let r = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &(-a), &s);
    // Equal bytes make `R` canonical, so its listed encodings are exactly its small-order ones.
    r.compress().as_bytes() == r_bytes && !small_order_encoding(r_bytes)
}

/// `s` if it is below ℓ (RFC 8032 §5.1.7 refuses the rest).
fn canonical_scalar(bytes: &[u8; 32]) -> Option<Scalar> {
    Scalar::from_canonical_bytes(*bytes).into()
}

/// The challenge `k = SHA-512(R ‖ A ‖ M) mod ℓ` (RFC 8032 §5.1.7, step 2).
fn challenge(r_bytes: &[u8; 32], item: &Item<'_>) -> Scalar {
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(item.key.as_bytes());
    h.update(item.prefix);
    h.update(item.body);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

fn split(sig: &[u8; 64]) -> (&[u8; 32], &[u8; 32]) {
    let (r, s) = sig.split_at(32);
    // Both halves are exactly 32 bytes by construction.
    match (r.try_into(), s.try_into()) {
        (Ok(r), Ok(s)) => (r, s),
        _ => unreachable!("a 64-byte array splits into two 32-byte halves"),
    }
}

/// The `y` coordinates (little-endian, sign bit clear) of the eight points of small order on
/// edwards25519: the identity (`y = 1`), the point of order 2 (`y = −1`), the two of order 4
/// (`y = 0`) and the four of order 8 (two values of `y`, each with both signs of `x`).
const SMALL_ORDER_Y: [[u8; 32]; 5] = [
    hex32("0100000000000000000000000000000000000000000000000000000000000000"),
    hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex32("0000000000000000000000000000000000000000000000000000000000000000"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
];

/// Whether a canonical encoding decompresses (if at all) to a point of small order:
/// `EdwardsPoint::is_small_order` on the decompressed point, without its three doublings.
/// Points sharing `y` differ only in the sign of `x`, and the negation of a point of small
/// order is one too, so comparing `y` with the eight points' values decides it (the `tests`
/// check the list against `is_small_order`).
fn small_order_encoding(bytes: &[u8; 32]) -> bool {
    let mut y = *bytes;
    y[31] &= 0x7f;
    SMALL_ORDER_Y.contains(&y)
}

/// 32 bytes from 64 hex digits, at compile time.
const fn hex32(hex: &str) -> [u8; 32] {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lowercase hex digit"),
        }
    }
    let h = hex.as_bytes();
    assert!(h.len() == 64, "64 hex digits");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = digit(h[2 * i]) << 4 | digit(h[2 * i + 1]);
        i += 1;
    }
    out
}

/// Whether a compressed point's `y` (the low 255 bits, little-endian) is below p = 2²⁵⁵ − 19.
/// `verify_strict` refuses the other encodings by comparing `R` byte for byte.
fn canonical_y(bytes: &[u8; 32]) -> bool {
    // y ≥ p only when bytes 1..31 are all 0xff, the top byte is 0x7f (sign bit aside),
    // and the lowest byte is ≥ 0xed.
    !(bytes[31] & 0x7f == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn signed(seed: u8, msg: &[u8]) -> (VerifyingKey, [u8; 64]) {
        let sk = SigningKey::from_bytes(&[seed; 32]);
        let mut m = b"p:".to_vec();
        m.extend_from_slice(msg);
        (sk.verifying_key(), sk.sign(&m).to_bytes())
    }

    #[test]
    fn the_small_order_list_is_exactly_the_eight_torsion_points() {
        // Each listed y, with both signs, decompresses to a point of small order...
        let mut points = vec![];
        for y in SMALL_ORDER_Y {
            for sign in [0u8, 0x80] {
                let mut bytes = y;
                bytes[31] |= sign;
                assert!(small_order_encoding(&bytes));
                let p = CompressedEdwardsY(bytes).decompress().expect("a point on the curve");
                assert!(p.is_small_order());
                assert!(p.mul_by_cofactor().is_identity());
                if !points.contains(&p) {
                    points.push(p);
                }
            }
        }
        // ...eight distinct ones: all the curve has (its group is Z/8 × Z/ℓ).
        assert_eq!(points.len(), 8);
        // Points of large order, and the same plus a torsion point, are not listed.
        for seed in 1..=64u8 {
            let a = SigningKey::from_bytes(&[seed; 32]).verifying_key().to_edwards();
            for t in std::iter::once(EdwardsPoint::default()).chain(points.iter().copied()) {
                let q = a + t;
                assert!(!q.is_small_order());
                assert!(!small_order_encoding(q.compress().as_bytes()));
            }
        }
    }

    /// A key holder can sign with `R` = the identity (`s = k·a` makes `[s]B − [k]A` the
    /// identity): ed25519-dalek's lenient `verify` accepts it, `verify_strict` refuses it, and so
    /// must both checks here, with either sign bit on `R`.
    #[test]
    fn a_signature_built_with_a_small_order_r_is_refused() {
        let sk = SigningKey::from_bytes(&[7; 32]);
        let key = sk.verifying_key();
        for sign in [0u8, 0x80] {
            let mut r = SMALL_ORDER_Y[0];
            r[31] |= sign;
            let probe = Item { signature: &[0; 64], key: &key, prefix: b"p:", body: b"m" };
            let s = challenge(&r, &probe) * sk.to_scalar();
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r);
            sig[32..].copy_from_slice(s.as_bytes());
            let signature = ed25519_dalek::Signature::from_bytes(&sig);
            if sign == 0 {
                assert!(
                    ed25519_dalek::Verifier::verify(&key, b"p:m", &signature).is_ok(),
                    "the lenient check takes it"
                );
            }
            assert!(key.verify_strict(b"p:m", &signature).is_err());
            let item = Item { signature: &sig, ..probe };
            assert!(!verify_one(&item));
            assert!(!verify(&[item]));
        }
    }

    #[test]
    fn canonical_y_is_exactly_below_p() {
        let mut p = [0xffu8; 32];
        p[31] = 0x7f;
        p[0] = 0xed;
        assert!(!canonical_y(&p));
        p[0] = 0xec;
        assert!(canonical_y(&p));
        p[31] = 0xff; // the sign bit does not count
        assert!(canonical_y(&p));
        p[0] = 0xee;
        assert!(!canonical_y(&p));
    }

    #[test]
    fn empty_batch_is_valid_and_one_bad_signature_fails_it() {
        assert!(verify(&[]));
        let msgs: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let sigs: Vec<_> = msgs.iter().enumerate().map(|(i, m)| signed((i % 3) as u8 + 1, m)).collect();
        let items: Vec<Item<'_>> =
            sigs.iter().zip(&msgs).map(|((k, s), m)| Item { signature: s, key: k, prefix: b"p:", body: m }).collect();
        assert!(verify(&items));
        for i in [0, 17, 39] {
            let mut bad = items.clone();
            let mut sig = *items[i].signature;
            sig[40] ^= 1;
            bad[i].signature = &sig;
            assert!(!verify(&bad), "flipped s of {i}");
            let mut bad = items.clone();
            bad[i].body = b"other";
            assert!(!verify(&bad), "other message at {i}");
            let mut bad = items.clone();
            bad[i].key = items[(i + 1) % items.len()].key;
            if bad[i].key != items[i].key {
                assert!(!verify(&bad), "other key at {i}");
            }
        }
    }

    #[test]
    fn non_canonical_s_and_small_order_r_are_refused() {
        let (k, sig) = signed(9, b"m");
        // s + ℓ: the same scalar, non-canonical (verify_strict refuses it too).
        let mut s = [0u8; 32];
        s.copy_from_slice(&sig[32..]);
        let sum = Scalar::from_bytes_mod_order(s).to_bytes();
        // ℓ = 2²⁵² + 27742317777372353535851937790883648493, little-endian (RFC 8032 §5.1).
        let l: [u8; 32] = {
            let mut l = [0u8; 32];
            let low = 0x14def9dea2f79cd65812631a5cf5d3ed_u128.to_le_bytes();
            l[..16].copy_from_slice(&low);
            l[31] = 0x10;
            l
        };
        let mut carry = 0u16;
        let mut big = [0u8; 32];
        for i in 0..32 {
            let v = u16::from(sum[i]) + u16::from(l[i]) + carry;
            big[i] = v as u8;
            carry = v >> 8;
        }
        let mut bad = sig;
        bad[32..].copy_from_slice(&big);
        assert!(!verify(&[Item { signature: &bad, key: &k, prefix: b"p:", body: b"m" }]));
        // R = the identity, a small-order point.
        let mut bad = sig;
        bad[..32].copy_from_slice(&EdwardsPoint::default().compress().to_bytes());
        assert!(!verify(&[Item { signature: &bad, key: &k, prefix: b"p:", body: b"m" }]));
        assert!(verify(&[Item { signature: &sig, key: &k, prefix: b"p:", body: b"m" }]));
    }
}
