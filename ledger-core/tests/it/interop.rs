//! Interoperability with independent published implementations (dev-dependencies only):
//!
//! - `ct-merkle`: the ledger's RFC 6962 roots and proofs give the same roots, byte-identical
//!   proofs, and each side verifies the other's proofs.
//! - `signed_note` (a port of Go's `golang.org/x/mod/sumdb/note`, C2SP signed-note): our
//!   checkpoints signed by `note::sign` verify with its verifier built from our verifier key
//!   string, and a note altered by one byte or signed by another key is refused; a note it signs
//!   with the same key is byte-identical to ours (Ed25519 is deterministic) and opens with
//!   `note::open`; both compute the same key ids and verifier keys; and `note::open` accepts and
//!   refuses the same notes as it does (unknown keys, missing or malformed signature blocks,
//!   altered text or signature).
//! - `tlog_tiles` (a port of Go's `golang.org/x/mod/sumdb/tlog`, C2SP tlog-checkpoint and
//!   tlog-tiles): it parses our checkpoint bodies to our origin, size, root and extension lines
//!   and formats the same bytes, and `Checkpoint::parse` accepts and refuses the same bodies
//!   (malformed origin, size, root, lines); its `check_record` / `check_tree` (Go's
//!   `CheckRecord` / `CheckTree`) accept our inclusion and consistency proofs for every leaf and
//!   size pair of trees up to 300 leaves and refuse mutated ones; its `prove_record` /
//!   `prove_tree` (Go's `ProveRecord` / `ProveTree`) over its own stored hashes produce our
//!   proofs byte for byte; our `TileBuilder` hands out exactly the tiles `Tile::new_tiles` names,
//!   with the bytes `Tile::read_data` reads from its stored hashes; and its `TileHashReader`,
//!   reading our tiles, authenticates them against our root, proves the same proofs again, and
//!   refuses a corrupted tile.
//!
//! These tests found that `Checkpoint::parse` and `note::open` accepted inputs the specs,
//! `tlog_tiles` and `signed_note` refuse (a `+` size, CR LF lines, control characters, a
//! malformed or failing signature line next to a valid one); both are fixed and the tests that
//! found them run. One `#[ignore]`d test records an upstream disagreement (run it with
//! `--ignored`): `tlog_tiles`' `TileHashReader` (like Go's) does not check every tile it reads
//! against its parent, so the ledger checks tiles itself (`verify` recomputes every one).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use ed25519_dalek::SigningKey;
use ledger_core::note::{self, Checkpoint};
use ledger_core::{merkle, tiles};
use sha2_011::Sha256;
use signed_note::{Note, NoteError, Signer as _, StandardSigner, StandardVerifier, VerifierList};
use tlog_tiles as tlog;

fn items(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("entry bytes #{i} {}", "x".repeat(i % 7)).into_bytes()).collect()
}

fn concat(hs: &[merkle::Hash]) -> Vec<u8> {
    hs.iter().flatten().copied().collect()
}

fn root_of(tree: &MemoryBackedTree<Sha256, Vec<u8>>) -> [u8; 32] {
    tree.root().as_bytes().as_slice().try_into().unwrap()
}

#[test]
fn roots_and_proofs_agree_with_ct_merkle() {
    let data = items(96);
    let leaves: Vec<merkle::Hash> = data.iter().map(|d| merkle::leaf_hash(d)).collect();
    let mut ct = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    let mut ct_roots = vec![];
    for d in &data {
        ct.push(d.clone());
        ct_roots.push(root_of(&ct));
    }
    for n in 1..=data.len() {
        let ours = merkle::root(&leaves[..n]);
        assert_eq!(ours, ct_roots[n - 1], "root of {n} leaves");
        let ct_root = RootHash::<Sha256>::new(ours.into(), n as u64);
        for (i, d) in data.iter().enumerate().take(n) {
            let p = merkle::inclusion_proof(&leaves[..n], i).unwrap();
            let theirs = InclusionProof::<Sha256>::try_from_bytes(concat(&p)).unwrap();
            ct_root
                .verify_inclusion(d, i as u64, &theirs)
                .unwrap_or_else(|e| panic!("ct-merkle rejects our proof {i}/{n}: {e:?}"));
        }
        for m in 1..=n {
            let p = merkle::consistency_proof(&leaves[..n], m).unwrap();
            let old = RootHash::<Sha256>::new(merkle::root(&leaves[..m]).into(), m as u64);
            let theirs = ConsistencyProof::<Sha256>::try_from_bytes(concat(&p)).unwrap();
            ct_root
                .verify_consistency(&old, &theirs)
                .unwrap_or_else(|e| panic!("ct-merkle rejects our consistency proof {m}→{n}: {e:?}"));
        }
    }
    // Proofs ct-merkle generates verify with ours, and are the same bytes.
    let n = data.len();
    let root = merkle::root(&leaves);
    for i in 0..n {
        let theirs = ct.prove_inclusion(i);
        let hashes: Vec<merkle::Hash> = theirs.as_bytes().chunks(32).map(|c| c.try_into().unwrap()).collect();
        assert_eq!(hashes, merkle::inclusion_proof(&leaves, i).unwrap(), "inclusion proof bytes for {i}");
        merkle::verify_inclusion(&leaves[i], i as u64, n as u64, &hashes, &root).unwrap();
    }
    for additions in 0..n {
        let m = n - additions;
        let theirs = ct.prove_consistency(additions);
        let hashes: Vec<merkle::Hash> = theirs.as_bytes().chunks(32).map(|c| c.try_into().unwrap()).collect();
        merkle::verify_consistency(m as u64, n as u64, &hashes, &merkle::root(&leaves[..m]), &root)
            .unwrap_or_else(|e| panic!("our verifier rejects ct-merkle's proof {m}→{n}: {e}"));
    }
}

// ---------------------------------------------------------------------------------------------
// signed_note and tlog_tiles (C2SP signed-note, tlog-checkpoint, tlog-tiles).

/// Leaf `i` of the trees below: `leaf_hash(i as 8 big-endian bytes)`.
fn leaves(n: u64) -> Vec<merkle::Hash> {
    (0..n).map(|i| merkle::leaf_hash(&i.to_be_bytes())).collect()
}

fn th(h: &merkle::Hash) -> tlog::Hash {
    tlog::Hash(*h)
}

fn to_tlog(p: &[merkle::Hash]) -> Vec<tlog::Hash> {
    p.iter().map(th).collect()
}

/// A TEST key from a fixed, public seed: never a real log key.
fn test_signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// Verifiers for exactly one key, built by `signed_note` from our verifier key string.
fn verifiers_for(vkey: &str) -> VerifierList {
    let v = StandardVerifier::new(vkey).unwrap_or_else(|e| panic!("signed_note refuses our verifier key {vkey}: {e}"));
    VerifierList::new(vec![Box::new(v)])
}

/// Our checkpoint for the first `n` leaves, with a `blake3-head` extension line.
fn checkpoint(origin: &str, all: &[merkle::Hash], n: usize) -> Checkpoint {
    let head = blake3::hash(format!("entry #{}", n.saturating_sub(1)).as_bytes());
    Checkpoint {
        origin: origin.to_string(),
        size: n as u64,
        root: merkle::root(&all[..n]),
        extensions: vec![format!("blake3-head {} {}", n.saturating_sub(1), head.to_hex())],
    }
}

#[test]
fn checkpoints_verify_and_parse_with_signed_note_and_tlog_tiles() {
    const ORIGIN: &str = "ledger.example/interop-test";
    let key = test_signing_key(7);
    let other = test_signing_key(8);
    let vk = key.verifying_key();
    let vkey = note::verifier_key(ORIGIN, &vk).unwrap();
    let verifiers = verifiers_for(&vkey);
    let our_id = u32::from_be_bytes(note::key_id(ORIGIN, &vk));

    // Both compute the same key id and verifier key string.
    assert_eq!(signed_note::new_ed25519_verifier_key(ORIGIN, &vk), vkey);
    let mut material = vec![0x01];
    material.extend_from_slice(vk.as_bytes());
    assert_eq!(signed_note::key_id(ORIGIN, &material), our_id);

    // signed_note's signer with the same (test) key, from its PRIVATE+KEY encoding.
    let skey = format!("PRIVATE+KEY+{ORIGIN}+{our_id:08x}+{}", B64.encode([&[0x01][..], key.as_bytes()].concat()));
    let signer = StandardSigner::new(&skey).unwrap();
    assert_eq!(signer.key_id(), our_id);

    let all = leaves(1000);
    for n in [1usize, 7, 256, 1000] {
        let cp = checkpoint(ORIGIN, &all, n);
        let text = cp.to_text();
        let signed = note::sign(&text, ORIGIN, &key).unwrap();

        // signed_note verifies our note with the key from our verifier key string.
        let parsed = Note::from_bytes(signed.as_bytes()).unwrap_or_else(|e| panic!("size {n}: {e}"));
        let (ok, unknown) = parsed.verify(&verifiers).unwrap_or_else(|e| panic!("size {n}: {e}"));
        assert_eq!((ok.len(), unknown.len()), (1, 0), "size {n}");
        assert_eq!((ok[0].name(), ok[0].id()), (ORIGIN, our_id), "size {n}");
        assert_eq!(parsed.text(), text.as_bytes(), "size {n}");

        // tlog_tiles parses the verified text to our origin, size, root and extension lines.
        let tc = tlog::Checkpoint::from_bytes(parsed.text()).unwrap_or_else(|e| panic!("size {n}: {e}"));
        assert_eq!(tc.origin(), cp.origin, "size {n}");
        assert_eq!(tc.size(), cp.size, "size {n}");
        assert_eq!(tc.hash().0, cp.root, "size {n}");
        assert_eq!(tc.extension(), format!("{}\n", cp.extensions.join("\n")), "size {n}");
        // ... and formats the same checkpoint to the same bytes.
        let theirs = tlog::Checkpoint::new(ORIGIN, n as u64, th(&cp.root), tc.extension()).unwrap();
        assert_eq!(theirs.to_bytes(), text.as_bytes(), "size {n}");

        // One byte of the text altered (in the root line, then in the extension): refused.
        let root_line = text.match_indices('\n').nth(1).unwrap().0 + 1;
        for pos in [root_line + 1, text.len() - 2] {
            let mut bytes = signed.clone().into_bytes();
            bytes[pos] = if bytes[pos] == b'A' { b'B' } else { b'A' };
            let tampered = Note::from_bytes(&bytes).unwrap();
            let err = tampered.verify(&verifiers).expect_err("a tampered note verifies");
            assert!(matches!(err, NoteError::InvalidSignature { .. }), "size {n}, byte {pos}: {err}");
            assert!(note::open(std::str::from_utf8(&bytes).unwrap(), ORIGIN, &vk).is_err());
        }
        // Signed by another key under the same name: not a signature by the known key.
        let forged = note::sign(&text, ORIGIN, &other).unwrap();
        let err = Note::from_bytes(forged.as_bytes()).unwrap().verify(&verifiers).expect_err("wrong key verifies");
        assert!(matches!(err, NoteError::UnverifiedNote), "size {n}: {err}");
        assert!(note::open(&forged, ORIGIN, &vk).is_err(), "size {n}: another key's note opens");
        // The other key's id forced onto the signature line: refused as an invalid signature.
        let (_, sig_b64) = forged.trim_end().rsplit_once(' ').unwrap();
        let mut blob = B64.decode(sig_b64).unwrap();
        blob[..4].copy_from_slice(&our_id.to_be_bytes());
        let relabelled = format!("{text}\n\u{2014} {ORIGIN} {}\n", B64.encode(&blob));
        let err = Note::from_bytes(relabelled.as_bytes()).unwrap().verify(&verifiers).expect_err("forgery verifies");
        assert!(matches!(err, NoteError::InvalidSignature { .. }), "size {n}: {err}");
        assert!(note::open(&relabelled, ORIGIN, &vk).is_err());

        // The reverse direction: signed_note signs with the same key; Ed25519 is deterministic,
        // so its note is our note byte for byte, and it opens with ours.
        let mut theirs = Note::new(text.as_bytes(), &[]).unwrap();
        theirs.add_sigs(&[&signer]).unwrap();
        let theirs = String::from_utf8(theirs.to_bytes()).unwrap();
        assert_eq!(theirs, signed, "size {n}");
        assert_eq!(note::open(&theirs, ORIGIN, &vk).unwrap(), text);
        assert_eq!(Checkpoint::parse(note::open(&theirs, ORIGIN, &vk).unwrap()).unwrap(), cp);
    }
}

const NOTE_TEXT: &str = "ledger.example/interop-test\n7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";

/// The signature line (with its newline) that `note::sign` makes for `text`.
fn sig_line(text: &str, name: &str, key: &SigningKey) -> String {
    note::sign(text, name, key).unwrap()[text.len() + 1..].to_string()
}

/// `text` signed by (`name`, `key`) alone.
fn signed_alone(text: &str, name: &str, key: &SigningKey) -> String {
    format!("{text}\n{}", sig_line(text, name, key))
}

/// A signature line with one bit of the Ed25519 signature (after the key id) flipped.
fn flip_sig(line: &str) -> String {
    let (prefix, b64) = line.trim_end().rsplit_once(' ').unwrap();
    let mut blob = B64.decode(b64).unwrap();
    blob[10] ^= 1;
    format!("{prefix} {}\n", B64.encode(blob))
}

/// Notes that C2SP signed-note has a verifier of (`name`, `key`) accept (`true`) or refuse.
fn note_cases(name: &str, key: &SigningKey, other: &SigningKey) -> Vec<(&'static str, String, bool)> {
    let text = NOTE_TEXT;
    let good = sig_line(text, name, key);
    let unknown_key = sig_line(text, name, other);
    let unknown_name = sig_line(text, "other.example/log", key);
    vec![
        ("signed by the key", format!("{text}\n{good}"), true),
        ("an unknown key's signature first", format!("{text}\n{unknown_key}{good}"), true),
        ("an unknown name's signature first", format!("{text}\n{unknown_name}{good}"), true),
        ("only unknown keys", format!("{text}\n{unknown_key}{unknown_name}"), false),
        ("no signature", format!("{text}\n"), false),
        ("no blank line", format!("{text}{good}"), false),
        ("no final newline", format!("{text}\n{}", good.trim_end()), false),
        ("signature line without em dash", format!("{text}\n{}", good.replacen('\u{2014}', "-", 1)), false),
        ("text altered", format!("{}\n{good}", text.replacen('7', "8", 1)), false),
        ("signature altered", format!("{text}\n{}", flip_sig(&good)), false),
    ]
}

/// Notes C2SP signed-note refuses that `signed_note`, like Go, refuses and `note::open` once
/// accepted: control characters other than newline ("Signed notes MUST NOT contain any ASCII control
/// characters (those below U+0020) other than newline") in the signed text or in a signature
/// line, a signature line that is not base64, and a signature by the known key that does not
/// verify (the whole note SHOULD then be refused) ahead of a valid one.
fn spec_refused_notes(name: &str, key: &SigningKey) -> Vec<(&'static str, String)> {
    let text = NOTE_TEXT;
    let good = sig_line(text, name, key);
    // The key's name and id on a signature of other bytes: a bad signature by the known key.
    let bad = sig_line("some other text\n", name, key);
    let crlf = text.replace('\n', "\r\n");
    let tab = text.replacen('\n', "\t\n", 1);
    vec![
        ("CR LF lines in the signed text", signed_alone(&crlf, name, key)),
        ("a tab in the signed text", signed_alone(&tab, name, key)),
        ("a CR LF signature line", format!("{text}\n{}\r\n", good.trim_end())),
        ("a signature line that is not base64", format!("{text}\n\u{2014} {name} !!!\n{good}")),
        ("a bad signature by the key, then a valid one", format!("{text}\n{bad}{good}")),
    ]
}

#[test]
fn note_acceptance_agrees_with_signed_note() {
    const NAME: &str = "ledger.example/interop-test";
    let (key, other) = (test_signing_key(7), test_signing_key(8));
    let verifiers = verifiers_for(&note::verifier_key(NAME, &key.verifying_key()).unwrap());
    for (what, n, valid) in note_cases(NAME, &key, &other) {
        let theirs = Note::from_bytes(n.as_bytes()).and_then(|n| n.verify(&verifiers).map(|_| ()));
        assert_eq!(theirs.is_ok(), valid, "signed_note on {what}: {theirs:?}");
        let ours = note::open(&n, NAME, &key.verifying_key());
        assert_eq!(ours.is_ok(), valid, "note::open on {what}: {ours:?}");
        if valid {
            assert_eq!(ours.unwrap(), NOTE_TEXT, "{what}");
        }
    }
    // signed_note refuses the notes `note::open` once accepted (see the test after this one).
    for (what, n) in spec_refused_notes(NAME, &key) {
        let theirs = Note::from_bytes(n.as_bytes()).and_then(|n| n.verify(&verifiers).map(|_| ()));
        assert!(theirs.is_err(), "signed_note accepts {what}");
    }
}

#[test]
fn note_open_refuses_what_signed_note_refuses() {
    const NAME: &str = "ledger.example/interop-test";
    let key = test_signing_key(7);
    let accepted: Vec<&str> = spec_refused_notes(NAME, &key)
        .into_iter()
        .filter(|(_, n)| note::open(n, NAME, &key.verifying_key()).is_ok())
        .map(|(what, _)| what)
        .collect();
    assert!(accepted.is_empty(), "note::open accepts notes signed-note refuses: {accepted:?}");
}

/// Checkpoint bodies that the two parsers must agree on: `true` if C2SP tlog-checkpoint allows
/// the body.
const CHECKPOINT_BODIES: &[(&str, bool)] = &[
    ("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", true),
    ("ledger.example/log\n1000\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n", true),
    ("o\n7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\nblake3-head 6 ab\nmore\n", true),
    ("o\n18446744073709551615\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n", true),
    // empty origin
    ("\n7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n", false),
    // size: leading zero, sign, hex, spaces, overflow, empty
    ("o\n07\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n", false),
    ("o\n00\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n", false),
    ("o\n0x7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n", false),
    ("o\n-0\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n", false),
    ("o\n 7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n", false),
    ("o\n18446744073709551616\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n", false),
    ("o\n\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n", false),
    // root: unpadded, 31 bytes, 33 bytes, not base64
    ("o\n7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0\n", false),
    ("o\n7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBQ==\n", false),
    ("o\n7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0A\n", false),
    ("o\n7\nnot base64\n", false),
    // missing lines, empty extension line, no final newline
    ("o\n7\n", false),
    ("o\n7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n\n", false),
    ("o\n7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\next\n\nmore\n", false),
    ("o\n7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=", false),
    ("o\n7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\next", false),
];

#[test]
fn checkpoint_parsers_agree_with_tlog_tiles() {
    for &(body, valid) in CHECKPOINT_BODIES {
        let ours = Checkpoint::parse(body);
        let theirs = tlog::Checkpoint::from_bytes(body.as_bytes());
        assert_eq!(theirs.is_ok(), valid, "tlog_tiles on {body:?}");
        assert_eq!(ours.is_ok(), valid, "ours on {body:?}: {ours:?}");
        if let (Ok(o), Ok(t)) = (ours, theirs) {
            assert_eq!((o.origin.as_str(), o.size, o.root), (t.origin(), t.size(), t.hash().0), "{body:?}");
            assert_eq!(o.to_text().as_bytes(), t.to_bytes(), "{body:?}");
        }
    }
}

/// Bodies C2SP tlog-checkpoint does not allow (the size is plain ASCII decimal; lines end in
/// U+000A alone) that `tlog_tiles`, like Go, refuses, and `Checkpoint::parse` once accepted (it
/// parsed the size with `u64::from_str`, which takes a leading `+`, and split lines with
/// `str::lines`, which also strips a `\r` before each `\n`): each would parse to the same
/// checkpoint as a different, canonical body.
const NON_CANONICAL_BODIES: &[&str] = &[
    "o\n+7\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",
    "o\r\n7\r\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\r\n",
    "o\n7\r\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",
];

#[test]
fn checkpoint_parser_refuses_what_tlog_tiles_refuses() {
    for body in NON_CANONICAL_BODIES {
        assert!(tlog::Checkpoint::from_bytes(body.as_bytes()).is_err(), "tlog_tiles accepts {body:?}");
    }
    let accepted: Vec<_> = NON_CANONICAL_BODIES.iter().filter(|b| Checkpoint::parse(b).is_ok()).collect();
    assert!(accepted.is_empty(), "Checkpoint::parse accepts bodies tlog_tiles refuses: {accepted:?}");
}

/// `tlog_tiles`' stored hashes (Go's `StoredHashes`), in their storage order.
struct StoredHashes(Vec<tlog::Hash>);

impl StoredHashes {
    fn of(leaves: &[merkle::Hash]) -> Self {
        let mut s = StoredHashes(vec![]);
        for (n, leaf) in leaves.iter().enumerate() {
            assert_eq!(s.0.len() as u64, tlog::stored_hash_index(0, n as u64));
            let new = tlog::stored_hashes_for_record_hash(n as u64, th(leaf), &s).unwrap();
            s.0.extend(new);
        }
        assert_eq!(s.0.len() as u64, tlog::stored_hash_count(leaves.len() as u64));
        s
    }
}

impl tlog::HashReader for StoredHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, tlog::Error> {
        indexes
            .iter()
            .map(|&i| usize::try_from(i).ok().and_then(|i| self.0.get(i)).copied().ok_or(tlog::Error::IndexesNotInTree))
            .collect()
    }
}

/// Flips one bit of hash `which` of a proof.
fn flip(p: &[tlog::Hash], which: usize, bit: usize) -> Vec<tlog::Hash> {
    let mut q = p.to_vec();
    q[which].0[bit / 8 % 32] ^= 1 << (bit % 8);
    q
}

#[test]
fn inclusion_proofs_agree_with_tlog_tiles() {
    const N: u64 = 300;
    let all = leaves(N);
    let stored = StoredHashes::of(&all);
    for t in 1..=N {
        let leaves = &all[..t as usize];
        let root = merkle::root(leaves);
        assert_eq!(tlog::tree_hash(t, &stored).unwrap().0, root, "root of {t}");
        for n in 0..t {
            let ours = merkle::inclusion_proof(leaves, n as usize).unwrap();
            let proof = to_tlog(&ours);
            let leaf = th(&leaves[n as usize]);
            tlog::check_record(&proof, t, th(&root), n, leaf)
                .unwrap_or_else(|e| panic!("tlog_tiles refuses our inclusion proof {n}/{t}: {e}"));
            // Go's ProveRecord over its own stored hashes: the same proof, byte for byte.
            let theirs = tlog::prove_record(t, n, &stored).unwrap();
            assert_eq!(theirs, proof, "inclusion proof {n}/{t}");

            // Mutations are refused: a flipped bit, a hash dropped or added, another leaf,
            // index or root.
            let refused = |p: &Vec<tlog::Hash>, t: u64, root: tlog::Hash, n: u64, leaf: tlog::Hash, what: &str| {
                assert!(tlog::check_record(p, t, root, n, leaf).is_err(), "{what}: accepted for {n}/{t}");
            };
            if !proof.is_empty() {
                let which = (n as usize) % proof.len();
                refused(&flip(&proof, which, n as usize * 7 + 3), t, th(&root), n, leaf, "flipped bit");
                refused(&proof[..proof.len() - 1].to_vec(), t, th(&root), n, leaf, "hash dropped");
            }
            let mut longer = proof.clone();
            longer.push(th(&root));
            refused(&longer, t, th(&root), n, leaf, "hash added");
            refused(&proof, t, th(&root), n, th(&merkle::leaf_hash(b"not a leaf")), "other leaf");
            refused(&proof, t, th(&merkle::leaf_hash(b"not a root")), n, leaf, "other root");
            if t > 1 {
                refused(&proof, t, th(&root), (n + 1) % t, leaf, "other index");
            }
        }
    }
}

#[test]
fn consistency_proofs_agree_with_tlog_tiles() {
    const N: u64 = 300;
    let all = leaves(N);
    let stored = StoredHashes::of(&all);
    let roots: Vec<merkle::Hash> = (0..=N as usize).map(|n| merkle::root(&all[..n])).collect();
    for t in 1..=N {
        let new_root = th(&roots[t as usize]);
        for n in 1..=t {
            let old_root = th(&roots[n as usize]);
            let ours = merkle::consistency_proof(&all[..t as usize], n as usize).unwrap();
            let proof = to_tlog(&ours);
            tlog::check_tree(&proof, t, new_root, n, old_root)
                .unwrap_or_else(|e| panic!("tlog_tiles refuses our consistency proof {n}→{t}: {e}"));
            // Go's ProveTree over its own stored hashes: the same proof, byte for byte.
            let theirs = tlog::prove_tree(t, n, &stored).unwrap();
            assert_eq!(theirs, proof, "consistency proof {n}→{t}");

            let refused = |p: &Vec<tlog::Hash>, old: tlog::Hash, new: tlog::Hash, what: &str| {
                assert!(tlog::check_tree(p, t, new, n, old).is_err(), "{what}: accepted for {n}→{t}");
            };
            if !proof.is_empty() {
                let which = (n as usize + t as usize) % proof.len();
                refused(&flip(&proof, which, (n * 5 + t) as usize), old_root, new_root, "flipped bit");
                refused(&proof[..proof.len() - 1].to_vec(), old_root, new_root, "hash dropped");
            }
            let mut longer = proof.clone();
            longer.push(new_root);
            refused(&longer, old_root, new_root, "hash added");
            if n < t {
                // The old root of another size, and the new root of another size.
                refused(&proof, th(&roots[n as usize + 1]), new_root, "other old root");
                refused(&proof, old_root, th(&roots[t as usize - 1]), "other new root");
            } else {
                refused(&proof, th(&roots[n as usize - 1]), new_root, "other root");
            }
        }
    }
}

/// Our stored tiles, keyed by (tile level, tile index), as `tlog_tiles` reads tiles: a tile of
/// width `w` is the first `w` hashes of the stored tile (a partial tile is a prefix).
struct OurTiles(BTreeMap<(u8, u64), Vec<merkle::Hash>>);

impl tlog::TileReader for OurTiles {
    fn height(&self) -> u8 {
        tiles::TILE_HEIGHT as u8
    }

    fn read_tiles(&self, want: &[tlog::Tile]) -> Result<Vec<Vec<u8>>, tlog::Error> {
        want.iter()
            .map(|t| {
                assert!(t.height() == 8 && !t.is_data(), "unexpected tile {}", t.path());
                let stored = self.0.get(&(t.level(), t.level_index())).ok_or(tlog::Error::InvalidTile)?;
                let w = t.width() as usize;
                stored.get(..w).map(<[merkle::Hash]>::concat).ok_or(tlog::Error::InvalidTile)
            })
            .collect()
    }

    fn save_tiles(&self, _: &[tlog::Tile], _: &[Vec<u8>]) {}
}

/// Builds our tiles for `all` in uneven batches, as group commits append them, calling
/// `check(old size, new size, changed tiles)` for each batch; the store keeps the latest
/// version of each tile.
fn build_tiles(all: &[merkle::Hash], mut check: impl FnMut(u64, u64, &[tiles::Tile])) -> OurTiles {
    let mut builder = tiles::TileBuilder::new();
    let mut store = BTreeMap::new();
    let (mut old, mut batch) = (0usize, 1usize);
    while old < all.len() {
        let new = (old + batch).min(all.len());
        let changed = builder.extend(&all[old..new]);
        check(old as u64, new as u64, &changed);
        for t in changed {
            store.insert((t.level, t.index), t.hashes);
        }
        old = new;
        batch = batch * 3 % 1009 + 1;
    }
    OurTiles(store)
}

/// Tree size of the tile tests: three tile levels (the level-2 tile holds one hash), and a
/// partial tile at each level.
const TILED: u64 = 70_000;

#[test]
fn tiles_agree_with_tlog_tiles() {
    let all = leaves(TILED);
    let stored = StoredHashes::of(&all);
    let ours = build_tiles(&all, |old, new, changed| {
        // The tiles a batch changed are the ones Go's NewTiles says to publish.
        let mut got: Vec<(u8, u64, u32)> = changed.iter().map(|t| (t.level, t.index, t.hashes.len() as u32)).collect();
        let mut want: Vec<(u8, u64, u32)> =
            tlog::Tile::new_tiles(8, old, new).iter().map(|t| (t.level(), t.level_index(), t.width())).collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "tiles changed from {old} to {new}");
        // Each has the bytes Go's Tile.ReadData reads from the stored hashes: level-0 tiles
        // hold leaf hashes, level-k tiles the stored hashes of tree level 8k.
        for t in changed {
            let theirs = tlog::Tile::new(8, t.level, t.index, t.hashes.len() as u32, false);
            assert_eq!(t.to_bytes(), theirs.read_data(&stored).unwrap(), "tile {} at size {new}", theirs.path());
        }
    });
    assert_eq!(ours.0.len(), 273 + 1 + 1 + 1 + 1, "tiles stored"); // 273 + partial; 1 + partial; 1

    // Go's TileHashReader reads our tiles, authenticates them against our root, and proves
    // our proofs from them.
    for t in [1u64, 2, 255, 256, 257, 511, 512, 513, 65_535, 65_536, 65_537, 65_792, TILED] {
        let leaves = &all[..t as usize];
        let root = merkle::root(leaves);
        let reader = tlog::TileHashReader::new(t, th(&root), &ours);
        assert_eq!(tlog::tree_hash(t, &reader).unwrap().0, root, "root at {t}");
        for n in [0, t / 3, t / 2, t - 1] {
            let ours = to_tlog(&merkle::inclusion_proof(leaves, n as usize).unwrap());
            assert_eq!(tlog::prove_record(t, n, &reader).unwrap(), ours, "inclusion proof {n}/{t} from tiles");
        }
        for n in [1, t / 3, t / 2, t - 1, t].into_iter().filter(|&n| n >= 1) {
            let ours = to_tlog(&merkle::consistency_proof(leaves, n as usize).unwrap());
            assert_eq!(tlog::prove_tree(t, n, &reader).unwrap(), ours, "consistency proof {n}→{t} from tiles");
        }
        // Tiles claimed for another root are refused.
        let wrong = tlog::TileHashReader::new(t, th(&merkle::leaf_hash(b"not a root")), &ours);
        assert!(matches!(tlog::tree_hash(t, &wrong), Err(tlog::Error::InconsistentTile)), "size {t}");
    }

    // One bit flipped in a full level-0 tile: the reader refuses it when it checks it against
    // its parent. (At 65,792 leaves the tree's two perfect subtrees have their roots in two
    // different tiles; see the ignored test below for sizes where tlog_tiles skips the check.)
    let mut corrupt = OurTiles(ours.0.clone());
    corrupt.0.get_mut(&(0, 3)).unwrap()[4][0] ^= 1;
    let size = 65_792;
    let reader = tlog::TileHashReader::new(size, th(&merkle::root(&all[..size as usize])), &corrupt);
    let err = tlog::prove_record(size, 3 * 256 + 5, &reader).expect_err("corrupt tile accepted");
    assert!(matches!(err, tlog::Error::InconsistentTile), "{err}");
}

/// A bug in `tlog_tiles` 0.2.0's `TileHashReader::read_hashes`, inherited from Go's
/// `sumdb/tlog` `tileHashReader.ReadHashes`: the loop that checks each fetched full tile
/// against its parent starts at `stx.len()` (the number of subtree roots of the tree) instead of
/// at the number of distinct tiles holding them. When several of those roots share a tile (at
/// 70,000 leaves: 6 roots in 3 tiles), the first tiles fetched for the requested hashes are
/// returned without any check, so a corrupt tile yields a wrong proof instead of an error.
#[test]
#[ignore = "upstream bug: tlog_tiles 0.2.0 TileHashReader leaves some fetched tiles unauthenticated"]
fn tlog_tiles_tile_hash_reader_authenticates_every_tile() {
    let all = leaves(TILED);
    let mut corrupt = build_tiles(&all, |_, _, _| {});
    // Leaf 3 × 256 + 4, the sibling of leaf 3 × 256 + 5 and so the first hash of its proof.
    corrupt.0.get_mut(&(0, 3)).unwrap()[4][0] ^= 1;
    let root = merkle::root(&all);
    let reader = tlog::TileHashReader::new(TILED, th(&root), &corrupt);
    let n = 3 * 256 + 5;
    if let Ok(proof) = tlog::prove_record(TILED, n, &reader) {
        let ours = to_tlog(&merkle::inclusion_proof(&all, n as usize).unwrap());
        assert_eq!(proof, ours, "tlog_tiles proves from a corrupt tile without refusing it");
    }
}
