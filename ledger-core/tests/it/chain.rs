//! Key register and chain rules, end to end in memory: sign → verify → sequence → replay.

use ed25519_dalek::SigningKey;
use ledger_core::chain::{ChainState, SequencedEntry};
use ledger_core::entry::{key_id, SignedRecord};
use ledger_core::record::*;
use ledger_core::types::*;
use ledger_core::Error;

/// Test keys from fixed seeds. Not secret: never use them outside tests.
pub fn test_key(label: &str) -> SigningKey {
    SigningKey::from_bytes(&blake3::derive_key("provenance-ledger test key (not secret)", label.as_bytes()))
}

pub const T0: Timestamp = Timestamp(1_764_000_000_000);

pub fn record(time: Timestamp, body: Body) -> Record {
    Record { v: 1, time, actor: Identity::new("github:octocat").unwrap(), links: vec![], body }
}

pub fn key_body(action: KeyAction, name: &str, k: &SigningKey, kinds: Vec<Kind>) -> Body {
    Body::Key(KeyBody {
        action,
        name: Token::new(name).unwrap(),
        public_key: PublicKeyBytes(k.verifying_key().to_bytes()),
        kinds,
        not_before: T0,
        not_after: None,
        replaces: None,
        role: None,
        handover: None,
    })
}

pub fn review(commit_byte: char) -> Body {
    Body::Review(Review {
        repo: RepoName::new("o/r").unwrap(),
        reviewer: Identity::new("Bo <bo@example.com>").unwrap(),
        verdict: Verdict::Approved,
        commit: CommitId::new(commit_byte.to_string().repeat(40)).unwrap(),
        source: None,
    })
}

/// A chain with an admin (genesis) and a `ci` key allowed `review` records.
pub struct Fixture {
    pub chain: ChainState,
    pub admin: SigningKey,
    pub ci: SigningKey,
    pub entries: Vec<SequencedEntry>,
}

impl Fixture {
    pub fn new() -> Self {
        let admin = test_key("admin");
        let ci = test_key("ci");
        let mut f = Fixture { chain: ChainState::new(), admin: admin.clone(), ci: ci.clone(), entries: vec![] };
        f.append(&admin, key_body(KeyAction::Genesis, "admin", &admin, vec![Kind::Key]), T0).unwrap();
        f.append(&admin, key_body(KeyAction::Register, "ci", &ci, vec![Kind::Review]), T0).unwrap();
        f
    }

    pub fn append(&mut self, key: &SigningKey, body: Body, at: Timestamp) -> Result<&SequencedEntry, Error> {
        let signed = SignedRecord::sign(&record(at, body), key)?;
        let v = self.chain.verify(&signed, at)?;
        let e = self.chain.sequence(&v)?;
        self.entries.push(e);
        Ok(self.entries.last().unwrap())
    }

    pub fn replay_all(&self) -> Result<ChainState, Error> {
        let mut c = ChainState::new();
        for e in &self.entries {
            c.replay(&e.bytes)?;
        }
        Ok(c)
    }
}

#[test]
fn an_allowed_key_appends_and_the_chain_replays() {
    let mut f = Fixture::new();
    let ci = f.ci.clone();
    let e = f.append(&ci, review('a'), T0).unwrap();
    assert_eq!(e.seq(), Seq(2));
    let replayed = f.replay_all().unwrap();
    assert_eq!(replayed.head(), f.chain.head());
    assert_eq!(replayed.next_seq(), Seq(3));
}

#[test]
fn unknown_keys_are_refused() {
    let mut f = Fixture::new();
    let stranger = test_key("stranger");
    let err = f.append(&stranger, review('a'), T0).unwrap_err();
    assert!(matches!(err, Error::UnknownKey { key } if key == key_id(&stranger.verifying_key())), "{err}");
}

#[test]
fn a_key_may_append_only_its_kinds_and_only_admin_appends_keys() {
    let mut f = Fixture::new();
    let ci = f.ci.clone();
    let other = test_key("other");
    let err = f.append(&ci, key_body(KeyAction::Register, "x", &other, vec![Kind::Review]), T0).unwrap_err();
    assert!(matches!(err, Error::KindNotAllowed { kind: Kind::Key, .. }), "{err}");
    let policy =
        Body::Policy(Policy { name: Token::new("p").unwrap(), version: 1, document: "x".into(), digest: None });
    let err = f.append(&ci, policy, T0).unwrap_err();
    assert!(matches!(err, Error::KindNotAllowed { kind: Kind::Policy, .. }), "{err}");
}

#[test]
fn revoked_keys_are_refused_and_their_history_still_verifies() {
    let mut f = Fixture::new();
    let (admin, ci) = (f.admin.clone(), f.ci.clone());
    f.append(&ci, review('a'), T0).unwrap();
    f.append(&admin, key_body(KeyAction::Revoke, "ci", &ci, vec![]), T0).unwrap();
    let err = f.append(&ci, review('b'), T0).unwrap_err();
    assert!(matches!(err, Error::RevokedKey { revoked_at: Seq(3), .. }), "{err}");
    f.replay_all().unwrap();
}

#[test]
fn expired_and_not_yet_valid_keys_are_refused() {
    let mut f = Fixture::new();
    let admin = f.admin.clone();
    let temp = test_key("temp");
    let mut body = key_body(KeyAction::Register, "temp", &temp, vec![Kind::Review]);
    if let Body::Key(k) = &mut body {
        k.not_before = Timestamp(T0.0 + 1000);
        k.not_after = Some(Timestamp(T0.0 + 2000));
    }
    f.append(&admin, body, T0).unwrap();
    let err = f.append(&temp, review('a'), T0).unwrap_err();
    assert!(matches!(err, Error::KeyNotValid { reason: "not yet valid", .. }), "{err}");
    f.append(&temp, review('a'), Timestamp(T0.0 + 1500)).unwrap();
    let err = f.append(&temp, review('b'), Timestamp(T0.0 + 2000)).unwrap_err();
    assert!(matches!(err, Error::KeyNotValid { reason: "expired", .. }), "{err}");
}

#[test]
fn rotation_retires_the_old_key_and_keeps_history_verifying() {
    let mut f = Fixture::new();
    let (admin, ci) = (f.admin.clone(), f.ci.clone());
    f.append(&ci, review('a'), T0).unwrap();
    let ci2 = test_key("ci-2");
    let mut body = key_body(KeyAction::Rotate, "ci", &ci2, vec![Kind::Review]);
    if let Body::Key(k) = &mut body {
        k.replaces = Some(key_id(&ci.verifying_key()));
    }
    let t1 = Timestamp(T0.0 + 10);
    f.append(&admin, body, t1).unwrap();
    let err = f.append(&ci, review('b'), t1).unwrap_err();
    assert!(matches!(err, Error::KeyNotValid { reason: "rotated out", .. }), "{err}");
    f.append(&ci2, review('b'), t1).unwrap();
    let replayed = f.replay_all().unwrap();
    assert_eq!(replayed.head(), f.chain.head());
}

#[test]
fn invalid_key_records_are_refused() {
    let mut f = Fixture::new();
    let admin = f.admin.clone();
    let ci = f.ci.clone();
    // Re-registering a registered key; a second genesis; revoking the admin; no kinds.
    let cases = [
        key_body(KeyAction::Register, "again", &ci, vec![Kind::Review]),
        key_body(KeyAction::Genesis, "root2", &test_key("root2"), vec![Kind::Key]),
        key_body(KeyAction::Revoke, "admin", &admin, vec![]),
        key_body(KeyAction::Register, "empty", &test_key("empty"), vec![]),
        key_body(KeyAction::Register, "ci", &test_key("dup-name"), vec![Kind::Review]),
    ];
    for body in cases {
        let err = f.append(&admin, body, T0).unwrap_err();
        assert!(matches!(err, Error::KeyRecord { .. }), "{err}");
    }
    assert_eq!(f.chain.next_seq(), Seq(2), "nothing was sequenced");
}

#[test]
fn genesis_must_be_a_self_signed_key_record() {
    let admin = test_key("admin");
    let other = test_key("other");
    let chain = ChainState::new();
    let not_self =
        SignedRecord::sign(&record(T0, key_body(KeyAction::Genesis, "admin", &admin, vec![Kind::Key])), &other)
            .unwrap();
    assert!(matches!(chain.verify(&not_self, T0), Err(Error::KeyRecord { .. })));
    let not_key = SignedRecord::sign(&record(T0, review('a')), &admin).unwrap();
    assert!(matches!(chain.verify(&not_key, T0), Err(Error::KeyRecord { .. })));
    assert_eq!(chain.next_seq(), Seq(0));
}

#[test]
fn a_forged_signature_is_refused() {
    let f = Fixture::new();
    let mut signed = SignedRecord::sign(&record(T0, review('a')), &f.ci).unwrap();
    signed.sig.0[10] ^= 1;
    assert!(matches!(f.chain.verify(&signed, T0), Err(Error::BadSignature { .. })));
    // A valid signature over different bytes is refused too.
    let other = SignedRecord::sign(&record(T0, review('b')), &f.ci).unwrap();
    signed.sig = other.sig;
    assert!(matches!(f.chain.verify(&signed, T0), Err(Error::BadSignature { .. })));
}

#[test]
fn oversized_records_and_secrets_are_refused_at_signing() {
    let f = Fixture::new();
    let big =
        Body::Policy(Policy { name: Token::new("p").unwrap(), version: 1, document: "x".repeat(70_000), digest: None });
    assert!(matches!(SignedRecord::sign(&record(T0, big), &f.admin), Err(Error::TooLarge { .. })));
    let token = format!("ghp_{}", "Zz09".repeat(9));
    let leaky = Body::Policy(Policy {
        name: Token::new("p").unwrap(),
        version: 1,
        document: format!("token = {token}"),
        digest: None,
    });
    let err = SignedRecord::sign(&record(T0, leaky), &f.admin).unwrap_err();
    assert!(matches!(&err, Error::SecretInField { field, .. } if field == "body.document"), "{err}");
    assert!(!err.to_string().contains(&token), "the error must not echo the secret");
}

#[test]
fn every_single_bit_flip_of_a_stored_entry_is_detected() {
    // Signed fields fail at the altered entry itself. The integration time is the ledger's,
    // not the signer's: altering it is caught by the next entry's previous-hash link (and,
    // for the last entry, by the recorded head; the store's hash index names the entry).
    let mut f = Fixture::new();
    let ci = f.ci.clone();
    f.append(&ci, review('a'), T0).unwrap();
    f.append(&ci, review('b'), T0).unwrap();
    let target = 2;
    let len = f.entries[target].bytes.len();
    for i in 0..len {
        for bit in [0u8, 3, 7] {
            let mut c = ChainState::new();
            let mut detected = None;
            for (j, e) in f.entries.iter().enumerate() {
                let mut bytes = e.bytes.clone();
                if j == target {
                    bytes[i] ^= 1 << bit;
                }
                if let Err(err) = c.replay(&bytes) {
                    detected = Some(err);
                    break;
                }
            }
            match detected {
                Some(Error::ChainBroken { seq, .. }) if seq == Seq(target as u64) => {}
                Some(Error::ChainBroken { seq, reason }) if seq == Seq(target as u64 + 1) => {
                    assert!(reason.contains("previous hash"), "byte {i} bit {bit}: {reason}")
                }
                other => panic!("byte {i} bit {bit}: flip not detected at seq {target} or by its successor: {other:?}"),
            }
        }
    }
}

#[test]
fn batch_verification_agrees_with_one_by_one_and_names_the_bad_record() {
    let f = Fixture::new();
    let signed: Vec<SignedRecord> =
        "abcdef01".chars().map(|c| SignedRecord::sign(&record(T0, review(c)), &f.ci).unwrap()).collect();
    let public = f.ci.verifying_key();
    let items: Vec<_> = signed.iter().map(|s| (s, &public)).collect();
    let all = ledger_core::entry::verify_batch(&items);
    for (r, s) in all.iter().zip(&signed) {
        assert_eq!(r.as_ref().unwrap().id(), s.verify_with(&public).unwrap().id());
    }
    // One flipped signature bit fails the batch; each record is then checked alone, and only
    // that one is refused, with the error `verify_with` gives.
    let mut bad = signed.clone();
    bad[5].sig.0[3] ^= 0x40;
    let items: Vec<_> = bad.iter().map(|s| (s, &public)).collect();
    let res = ledger_core::entry::verify_batch(&items);
    for (i, r) in res.iter().enumerate() {
        assert_eq!(r.is_ok(), i != 5, "record {i}");
    }
    assert!(matches!(res[5], Err(Error::BadSignature { .. })));
    // The wrong key for one record: refused, the others pass.
    let other = f.admin.verifying_key();
    let mut items: Vec<_> = signed.iter().map(|s| (s, &public)).collect();
    items[2].1 = &other;
    let res = ledger_core::entry::verify_batch(&items);
    assert!(res[2].is_err() && res.iter().enumerate().all(|(i, r)| i == 2 || r.is_ok()));
    assert!(ledger_core::entry::verify_batch(&[]).is_empty());
}

#[test]
fn a_small_order_key_cannot_be_registered() {
    let mut f = Fixture::new();
    let admin = f.admin.clone();
    // The identity point (y = 1) is a valid encoding of a small-order point.
    let mut weak = [0u8; 32];
    weak[0] = 1;
    let mut body = key_body(KeyAction::Register, "weak", &test_key("weak"), vec![Kind::Review]);
    if let Body::Key(k) = &mut body {
        k.public_key = PublicKeyBytes(weak);
    }
    let err = f.append(&admin, body, T0).unwrap_err();
    assert!(matches!(&err, Error::KeyRecord { .. }) && err.to_string().contains("small-order"), "{err}");
}

#[test]
fn an_authorization_holds_for_its_position_only() {
    // A revocation and a record by the revoked key, both authorized against the same state:
    // once the revocation is sequenced, the other authorization is stale and cannot be
    // sequenced (it would bypass the revocation).
    let mut f = Fixture::new();
    let revoke = SignedRecord::sign(&record(T0, key_body(KeyAction::Revoke, "ci", &f.ci, vec![])), &f.admin).unwrap();
    let by_ci = SignedRecord::sign(&record(T0, review('a')), &f.ci).unwrap();
    let a = f.chain.verify(&revoke, T0).unwrap();
    let b = f.chain.verify(&by_ci, T0).unwrap();
    f.chain.sequence(&a).unwrap();
    assert!(matches!(f.chain.sequence(&b), Err(Error::StaleAuthorization { .. })));
    // Authorized again against the new state, the record is refused: the key is revoked.
    let again = f.chain.verify_signature(&by_ci).unwrap();
    assert!(matches!(f.chain.authorize(again, T0), Err(Error::RevokedKey { .. })));
    assert_eq!(f.chain.next_seq(), Seq(3));
}

fn log_key_body(action: KeyAction, k: &SigningKey) -> Body {
    let mut body = key_body(action, "log", k, vec![]);
    if let Body::Key(b) = &mut body {
        b.role = Some(KeyRole::Log);
    }
    body
}

fn rotate_log(old: &SigningKey, new: &SigningKey, handover: Option<SignatureBytes>) -> Body {
    let mut body = log_key_body(KeyAction::Rotate, new);
    if let Body::Key(b) = &mut body {
        b.replaces = Some(key_id(&old.verifying_key()));
        b.handover = handover;
    }
    body
}

#[test]
fn the_log_key_signs_checkpoints_only_and_hands_over_on_rotation() {
    use ledger_core::keys::sign_handover;
    let mut f = Fixture::new();
    let admin = f.admin.clone();
    let admin_id = key_id(&admin.verifying_key());
    // Before any log key, the admin key signs checkpoints.
    assert_eq!(f.chain.keys().checkpoint_key().map(|k| k.id), Some(admin_id));
    let (log1, log2, log3) = (test_key("log-1"), test_key("log-2"), test_key("log-3"));
    let (id1, id2, id3) = (key_id(&log1.verifying_key()), key_id(&log2.verifying_key()), key_id(&log3.verifying_key()));
    // A log key appends nothing but names no kinds; one with kinds is refused.
    let mut with_kinds = log_key_body(KeyAction::Register, &log1);
    if let Body::Key(b) = &mut with_kinds {
        b.kinds = vec![Kind::Review];
    }
    assert!(matches!(f.append(&admin, with_kinds, T0).unwrap_err(), Error::KeyRecord { .. }));
    f.append(&admin, log_key_body(KeyAction::Register, &log1), T0).unwrap();
    assert_eq!(f.chain.keys().checkpoint_key().map(|k| k.id), Some(id1));
    let err = f.append(&log1, review('a'), T0).unwrap_err();
    assert!(matches!(err, Error::KindNotAllowed { .. }), "the log key signs no records: {err}");
    // A second active log key: refused (rotate instead).
    let err = f.append(&admin, log_key_body(KeyAction::Register, &log2), T0).unwrap_err();
    assert!(err.to_string().contains("already active"), "{err}");
    // Rotation without a hand-over, with one signed by another key, or over another new key:
    // refused.
    for handover in
        [None, Some(sign_handover(&admin, &log2.verifying_key())), Some(sign_handover(&log1, &log3.verifying_key()))]
    {
        let err = f.append(&admin, rotate_log(&log1, &log2, handover), T0).unwrap_err();
        assert!(matches!(err, Error::KeyRecord { .. }), "{err}");
    }
    // A hand-over on a signer key's rotation or on a registration: refused.
    let ci2 = test_key("ci-2");
    let mut bad = key_body(KeyAction::Rotate, "ci", &ci2, vec![Kind::Review]);
    if let Body::Key(b) = &mut bad {
        b.replaces = Some(key_id(&f.ci.verifying_key()));
        b.handover = Some(sign_handover(&f.ci, &ci2.verifying_key()));
    }
    assert!(matches!(f.append(&admin, bad, T0).unwrap_err(), Error::KeyRecord { .. }));
    // The real hand-over: log1 → log2 → log3.
    f.append(&admin, rotate_log(&log1, &log2, Some(sign_handover(&log1, &log2.verifying_key()))), T0).unwrap();
    f.append(&admin, rotate_log(&log2, &log3, Some(sign_handover(&log2, &log3.verifying_key()))), T0).unwrap();
    let keys = f.chain.keys();
    assert_eq!(keys.checkpoint_key().map(|k| k.id), Some(id3));
    assert!(keys.hands_over(&id1, &id3) && keys.hands_over(&id2, &id3) && keys.hands_over(&admin_id, &id3));
    assert!(!keys.hands_over(&id3, &id1), "hand-overs run forward only");
    assert!(!keys.hands_over(&key_id(&f.ci.verifying_key()), &id3), "a signer key hands over nothing");
    // The register rebuilt from the key entries alone agrees.
    let key_entries: Vec<&[u8]> =
        f.entries.iter().filter(|e| e.record.kind() == Kind::Key).map(|e| e.bytes.as_slice()).collect();
    let rebuilt = ledger_core::keys::KeyRegister::from_key_entries(key_entries.iter().copied()).unwrap();
    assert_eq!(rebuilt.checkpoint_key().map(|k| k.id), Some(id3));
    assert!(rebuilt.hands_over(&id1, &id3));
    // Without the genesis entry there is no register.
    assert!(ledger_core::keys::KeyRegister::from_key_entries(key_entries[1..].iter().copied()).is_err());
    // Revoking the log key leaves the admin key signing checkpoints.
    f.append(&admin, log_key_body(KeyAction::Revoke, &log3), T0).unwrap();
    assert_eq!(f.chain.keys().checkpoint_key().map(|k| k.id), Some(admin_id));
    assert_eq!(f.replay_all().unwrap().head(), f.chain.head());
}
