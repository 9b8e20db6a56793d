//! `sigbatch::verify` (Ed25519 batch verification with per-key sharing) against RFC 8032's
//! test vectors and against ed25519-dalek's `verify_strict`, one signature at a time.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use ledger_core::sigbatch::{verify, verify_one, Item};
use proptest::prelude::*;

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn hex64(s: &str) -> [u8; 64] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// RFC 8032 §7.1, TEST 1, 2 and 3: (public key, message, signature).
fn rfc8032() -> Vec<(VerifyingKey, Vec<u8>, [u8; 64])> {
    [
        (
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ]
    .into_iter()
    .map(|(k, m, s)| (VerifyingKey::from_bytes(&hex32(k)).unwrap(), hex::decode(m).unwrap(), hex64(s)))
    .collect()
}

fn item((k, m, s): &(VerifyingKey, Vec<u8>, [u8; 64])) -> Item<'_> {
    Item { signature: s, key: k, prefix: b"", body: m }
}

#[test]
fn rfc8032_vectors_pass_alone_and_together_and_fail_when_mixed_up() {
    let v = rfc8032();
    for t in &v {
        t.0.verify_strict(&t.1, &Signature::from_bytes(&t.2)).unwrap();
        assert!(verify(&[item(t)]));
        assert!(verify_one(&item(t)));
        let mut bad = t.2;
        bad[63] ^= 0x10; // s no longer canonical or no longer right
        assert!(!verify_one(&Item { signature: &bad, ..item(t) }));
        bad = t.2;
        bad[0] ^= 1; // another R
        assert!(!verify_one(&Item { signature: &bad, ..item(t) }));
    }
    let all: Vec<_> = v.iter().map(item).collect();
    assert!(verify(&all));
    // The prefix/body split does not matter, only the message they make.
    let split = Item { signature: &v[2].2, key: &v[2].0, prefix: &v[2].1[..1], body: &v[2].1[1..] };
    assert!(verify(&[split]));
    // TEST 2's signature over TEST 3's message, and TEST 1's key for TEST 2.
    assert!(!verify(&[Item { body: &v[2].1, ..item(&v[1]) }]));
    assert!(!verify(&[item(&v[0]), Item { key: &v[0].0, ..item(&v[1]) }]));
}

/// One signature of a generated batch: which of 3 keys signs, the message, and an optional
/// corruption (byte index into signature ‖ message, xor mask).
type Case = (u8, Vec<u8>, Option<(usize, u8)>);

fn batches() -> impl Strategy<Value = Vec<Case>> {
    prop::collection::vec(
        (0u8..3, prop::collection::vec(any::<u8>(), 0..64), prop::option::weighted(0.1, (0usize..128, 1u8..=255))),
        1..24,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The batch passes exactly when every signature passes `verify_strict` alone.
    #[test]
    fn batch_agrees_with_verify_strict(batch in batches()) {
        let keys: Vec<SigningKey> = (1u8..=3).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
        let publics: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();
        let mut sigs = Vec::new();
        let mut msgs = Vec::new();
        for (k, msg, corrupt) in &batch {
            let mut full = b"ledger:".to_vec();
            full.extend_from_slice(msg);
            let mut sig = keys[usize::from(*k)].sign(&full).to_bytes();
            let mut body = msg.clone();
            if let Some((at, mask)) = corrupt {
                let at = at % (64 + body.len());
                if at < 64 { sig[at] ^= mask } else { body[at - 64] ^= mask }
            }
            sigs.push(sig);
            msgs.push(body);
        }
        let items: Vec<Item<'_>> = batch.iter().zip(&sigs).zip(&msgs)
            .map(|(((k, _, _), s), m)| Item { signature: s, key: &publics[usize::from(*k)], prefix: b"ledger:", body: m })
            .collect();
        let strict = items.iter().all(|i| {
            let mut full = i.prefix.to_vec();
            full.extend_from_slice(i.body);
            i.key.verify_strict(&full, &Signature::from_bytes(i.signature)).is_ok()
        });
        prop_assert_eq!(verify(&items), strict);
        // And one by one, the single check is `verify_strict`'s answer.
        for i in &items {
            let mut full = i.prefix.to_vec();
            full.extend_from_slice(i.body);
            prop_assert_eq!(verify_one(i), i.key.verify_strict(&full, &Signature::from_bytes(i.signature)).is_ok());
        }
    }
}
