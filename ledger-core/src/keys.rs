//! The key register: which signer keys may append which record kinds, when.
//!
//! It is rebuilt from the `key` records in the log itself, so every verifier derives the same
//! register from the same entries. The admin key is fixed by the genesis entry (seq 0, a
//! self-signed `key` record with action `genesis`); only it may append `key` records.
//!
//! One registered key may have the `log` role: the log key, which signs checkpoints and
//! appends nothing. The admin key signs checkpoints while no log key is active. Rotating the
//! log key takes a hand-over signed by the old log key ([`handover_message`]), so trust in
//! checkpoints passes from the admin key, or from any log key, to its successors
//! ([`KeyRegister::hands_over`]).

use std::collections::BTreeMap;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::chain::Authorized;
use crate::entry::{key_id, SignedRecord, VerifiedRecord};
use crate::error::{Error, Result};
use crate::record::{Body, KeyAction, KeyBody, KeyRole, Kind};
use crate::types::{KeyId, Seq, SignatureBytes, Timestamp, Token};

/// What the register knows about one signer key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// Key id.
    pub id: KeyId,
    /// Registered name.
    pub name: Token,
    /// Public key.
    pub public: VerifyingKey,
    /// Kinds it may append.
    pub kinds: Vec<Kind>,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity (exclusive); set on rotation to the rotation's integration time.
    pub not_after: Option<Timestamp>,
    /// Whether this is the ledger's admin key (registered by the genesis entry).
    pub admin: bool,
    /// `Some(Log)` for a log key (signs checkpoints, appends nothing); `None` for a signer.
    pub role: Option<KeyRole>,
    /// Seq of the entry that registered it.
    pub registered_at: Seq,
    /// Seq of the entry that revoked it.
    pub revoked_at: Option<Seq>,
    /// The key that replaced it in a rotation.
    pub rotated_to: Option<KeyId>,
}

impl KeyInfo {
    /// `active`, `revoked`, `rotated`, `expired` or `not yet valid`, at time `at`.
    pub fn status(&self, at: Timestamp) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.rotated_to.is_some() {
            "rotated"
        } else if self.not_after.is_some_and(|t| at >= t) {
            "expired"
        } else if at < self.not_before {
            "not yet valid"
        } else {
            "active"
        }
    }
}

/// The domain separation prefix of a log-key hand-over signature.
pub const HANDOVER_CONTEXT: &[u8] = b"provenance-ledger/log-key-handover/v1\n";

/// The message a log key signs to hand over to its successor: [`HANDOVER_CONTEXT`] ‖ the old
/// key's id (32 bytes) ‖ the new Ed25519 public key (32 bytes), 102 bytes in all.
pub fn handover_message(old: &KeyId, new: &VerifyingKey) -> Vec<u8> {
    let mut m = Vec::with_capacity(HANDOVER_CONTEXT.len() + 64);
    m.extend_from_slice(HANDOVER_CONTEXT);
    m.extend_from_slice(&old.0);
    m.extend_from_slice(new.as_bytes());
    m
}

/// The hand-over from the log key `old` to `new`: `old`'s Ed25519 signature over
/// [`handover_message`], for the `handover` field of the `rotate` record.
pub fn sign_handover(old: &SigningKey, new: &VerifyingKey) -> SignatureBytes {
    SignatureBytes(old.sign(&handover_message(&key_id(&old.verifying_key()), new)).to_bytes())
}

fn key_err(reason: impl Into<String>) -> Error {
    Error::KeyRecord { reason: reason.into() }
}

fn parse_public(body: &KeyBody) -> Result<VerifyingKey> {
    let key =
        VerifyingKey::from_bytes(&body.public_key.0).map_err(|_| key_err("public_key is not a valid Ed25519 point"))?;
    // A small-order key can sign nothing `verify_strict` accepts; refusing it at registration
    // also keeps batch verification (see `entry::verify_batch`) from meeting one.
    if key.is_weak() {
        return Err(key_err("public_key is a small-order point (a weak key)"));
    }
    Ok(key)
}

/// The set of signer keys, as of some position in the log.
#[derive(Clone, Debug, Default)]
pub struct KeyRegister {
    keys: BTreeMap<KeyId, KeyInfo>,
}

impl KeyRegister {
    /// An empty register (before the genesis entry).
    pub fn new() -> Self {
        Self::default()
    }

    /// A key by id.
    pub fn get(&self, id: &KeyId) -> Option<&KeyInfo> {
        self.keys.get(id)
    }

    /// All keys ever registered, by id.
    pub fn keys(&self) -> impl Iterator<Item = &KeyInfo> {
        self.keys.values()
    }

    /// The register the `key` entries `entries` (stored entry bytes, ascending by seq, the
    /// genesis entry first) build: each decoded, its signature and rights checked, and applied.
    /// This is how an auditor who holds only some entries (a bundle's, or those a server
    /// serves) learns the register; the caller proves each entry is in the tree.
    ///
    /// # Errors
    /// The seq of the first bad entry (`u64::MAX` when there is none at all), and why: not a
    /// `key` record, out of order, no genesis first, or any error of [`KeyRegister::verify`].
    pub fn from_key_entries<'a>(
        entries: impl IntoIterator<Item = &'a [u8]>,
    ) -> std::result::Result<Self, (u64, Error)> {
        let mut register = KeyRegister::new();
        let mut last: Option<u64> = None;
        for bytes in entries {
            let entry = crate::entry::Entry::decode(bytes).map_err(|e| (u64::MAX, e))?;
            let seq = entry.seq;
            if last.is_some_and(|l| seq.0 <= l) || (last.is_none() && seq.0 != 0) {
                return Err((seq.0, key_err("key entries must start at the genesis entry and ascend")));
            }
            last = Some(seq.0);
            let v = register.verify(&entry.signed_record(), seq, entry.time).map_err(|e| (seq.0, e))?;
            if v.kind() != Kind::Key {
                return Err((seq.0, key_err("not a `key` record")));
            }
            register.apply(&v, seq, entry.time);
        }
        if last.is_none() {
            return Err((u64::MAX, key_err("no key entries: the genesis entry is missing")));
        }
        Ok(register)
    }

    /// The key that signs checkpoints now: the active log key, or the admin key when no log
    /// key is active. `None` before the genesis entry.
    pub fn checkpoint_key(&self) -> Option<&KeyInfo> {
        let active_log = self
            .keys
            .values()
            .find(|k| k.role == Some(KeyRole::Log) && k.revoked_at.is_none() && k.rotated_to.is_none());
        active_log.or_else(|| self.keys.values().find(|k| k.admin))
    }

    /// Whether an auditor who trusts checkpoints signed by `from` may trust those signed by
    /// `to`: the same key; `from` is the admin key and `to` a log key (the admin registered
    /// it); or `to` follows `from` through log-key rotations, each with a verified hand-over.
    pub fn hands_over(&self, from: &KeyId, to: &KeyId) -> bool {
        if from == to {
            return true;
        }
        let (Some(f), Some(t)) = (self.keys.get(from), self.keys.get(to)) else { return false };
        if f.admin {
            return t.role == Some(KeyRole::Log);
        }
        let mut cur = f;
        // Each step moves to a key registered later, so the walk ends.
        while let Some(next) = cur.rotated_to {
            if next == *to {
                return true;
            }
            match self.keys.get(&next) {
                Some(n) if n.registered_at > cur.registered_at => cur = n,
                _ => return false,
            }
        }
        false
    }

    /// The seqs of the `key` entries this register was built from, ascending: every key's
    /// registration (genesis, register, rotate) and revocation. Each applied `key` record
    /// adds exactly one, so two registers built from different key entries differ here.
    pub fn entry_seqs(&self) -> Vec<Seq> {
        let mut out: Vec<Seq> =
            self.keys.values().flat_map(|k| std::iter::once(k.registered_at).chain(k.revoked_at)).collect();
        out.sort();
        out
    }

    /// Checks that `signed` may be appended at `seq` and time `at`: the signer is registered,
    /// not revoked, within its validity window, its signature verifies (strict Ed25519), and it
    /// may append the record's kind. `key` records are further checked against the register.
    /// Equivalent to [`KeyRegister::verify_signature`] followed by [`KeyRegister::authorize`].
    ///
    /// At seq 0 the only acceptable record is a self-signed `genesis` key record.
    ///
    /// # Errors
    /// [`Error::UnknownKey`], [`Error::RevokedKey`], [`Error::KeyNotValid`],
    /// [`Error::BadSignature`], [`Error::KindNotAllowed`], [`Error::KeyRecord`], or any record
    /// error from [`SignedRecord::verify_with`].
    pub fn verify(&self, signed: &SignedRecord, seq: Seq, at: Timestamp) -> Result<VerifiedRecord> {
        let verified = self.verify_signature(signed, seq)?;
        self.check_rights(&verified, seq, at)?;
        Ok(verified)
    }

    /// The signature half of [`KeyRegister::verify`]: finds the signer among all keys ever
    /// registered (revoked ones included) and checks the signature and record rules. This is
    /// the expensive part (about 35 µs), so a server runs it concurrently, before sequencing.
    ///
    /// # Errors
    /// [`Error::UnknownKey`], [`Error::BadSignature`], or a record error.
    pub fn verify_signature(&self, signed: &SignedRecord, seq: Seq) -> Result<VerifiedRecord> {
        if seq == Seq(0) {
            return self.verify_genesis(signed);
        }
        let info = self.keys.get(&signed.signer).ok_or(Error::UnknownKey { key: signed.signer })?;
        signed.verify_with(&info.public)
    }

    /// The authorization half of [`KeyRegister::verify`], cheap enough to run in the
    /// sequencer for every entry: the signer is registered, not revoked, valid at `at`, and may
    /// append this kind; a `key` record is consistent with the register. The result is the
    /// only way to an [`Authorized`] record, which is what
    /// [`ChainState::sequence`](crate::chain::ChainState::sequence) takes.
    ///
    /// # Errors
    /// [`Error::UnknownKey`], [`Error::RevokedKey`], [`Error::KeyNotValid`],
    /// [`Error::KindNotAllowed`] or [`Error::KeyRecord`].
    pub fn authorize(&self, verified: VerifiedRecord, seq: Seq, at: Timestamp) -> Result<Authorized> {
        self.check_rights(&verified, seq, at)?;
        Ok(Authorized::new(verified, seq, at))
    }

    /// The checks of [`KeyRegister::authorize`], for replays that only advance.
    pub(crate) fn check_rights(&self, verified: &VerifiedRecord, seq: Seq, at: Timestamp) -> Result<()> {
        let signer = verified.signed().signer;
        if seq == Seq(0) {
            // verify_genesis checked the record is a self-signed genesis key record.
            return match &verified.record().body {
                Body::Key(KeyBody { action: KeyAction::Genesis, .. }) => Ok(()),
                _ => Err(key_err("the first entry must be a `key` record with action `genesis`")),
            };
        }
        let info = self.keys.get(&signer).ok_or(Error::UnknownKey { key: signer })?;
        if let Some(revoked_at) = info.revoked_at {
            return Err(Error::RevokedKey { key: info.id, name: info.name.to_string(), revoked_at });
        }
        if at < info.not_before {
            return Err(Error::KeyNotValid { key: info.id, name: info.name.to_string(), at, reason: "not yet valid" });
        }
        if info.not_after.is_some_and(|t| at >= t) {
            let reason = if info.rotated_to.is_some() { "rotated out" } else { "expired" };
            return Err(Error::KeyNotValid { key: info.id, name: info.name.to_string(), at, reason });
        }
        let kind = verified.kind();
        let allowed = if kind == Kind::Key { info.admin } else { info.kinds.contains(&kind) };
        if !allowed {
            return Err(Error::KindNotAllowed { key: info.id, name: info.name.to_string(), kind });
        }
        match &verified.record().body {
            Body::Key(body) => self.check_key_body(body),
            _ => Ok(()),
        }
    }

    fn verify_genesis(&self, signed: &SignedRecord) -> Result<VerifiedRecord> {
        let record: crate::record::Record = crate::encoding::from_canonical(&signed.record.0, "record")?;
        let Body::Key(body) = &record.body else {
            return Err(key_err("the first entry must be a `key` record with action `genesis`"));
        };
        if body.action != KeyAction::Genesis {
            return Err(key_err("the first entry must be a `key` record with action `genesis`"));
        }
        if body.role.is_some() || body.handover.is_some() || body.replaces.is_some() {
            return Err(key_err("the genesis record registers the admin key: no `role`, `handover` or `replaces`"));
        }
        let public = parse_public(body)?;
        if key_id(&public) != signed.signer {
            return Err(key_err("the genesis record must be signed by the key it registers"));
        }
        signed.verify_with(&public)
    }

    fn check_key_body(&self, body: &KeyBody) -> Result<()> {
        let public = parse_public(body)?;
        let id = key_id(&public);
        if body.handover.is_some() && body.action != KeyAction::Rotate {
            return Err(key_err("`handover` is only for `rotate` of the log key"));
        }
        match body.action {
            KeyAction::Genesis => Err(key_err("`genesis` is only allowed as the first entry")),
            KeyAction::Register | KeyAction::Rotate => {
                if self.keys.contains_key(&id) {
                    return Err(key_err(format!("key {id} is already registered")));
                }
                if body.role == Some(KeyRole::Log) {
                    if !body.kinds.is_empty() {
                        return Err(key_err("the log key signs checkpoints only: its `kinds` must be empty"));
                    }
                } else if body.kinds.is_empty() {
                    return Err(key_err("`kinds` must name at least one record kind"));
                }
                if body.kinds.contains(&Kind::Key) {
                    return Err(key_err("only the admin key may append `key` records"));
                }
                if body.not_after.is_some_and(|t| t <= body.not_before) {
                    return Err(key_err("`not_after` must be later than `not_before`"));
                }
                if body.action == KeyAction::Rotate {
                    let old = body
                        .replaces
                        .and_then(|r| self.keys.get(&r))
                        .ok_or_else(|| key_err("`rotate` must name a registered key in `replaces`"))?;
                    if old.revoked_at.is_some() || old.rotated_to.is_some() || old.admin {
                        return Err(key_err(format!(
                            "key {} ({}) cannot be rotated: it is revoked, already rotated, or the admin key",
                            old.id, old.name
                        )));
                    }
                    if old.name != body.name {
                        return Err(key_err("a rotated key keeps its name"));
                    }
                    if old.role != body.role {
                        return Err(key_err("a rotated key keeps its role"));
                    }
                    if old.role == Some(KeyRole::Log) {
                        let sig = body.handover.ok_or_else(|| {
                            key_err("rotating the log key needs `handover`, signed by the old log key")
                        })?;
                        old.public
                            .verify_strict(
                                &handover_message(&old.id, &public),
                                &ed25519_dalek::Signature::from_bytes(&sig.0),
                            )
                            .map_err(|_| key_err("`handover` is not the old log key's signature of the new key"))?;
                    } else if body.handover.is_some() {
                        return Err(key_err("`handover` is only for `rotate` of the log key"));
                    }
                } else if body.replaces.is_some() {
                    return Err(key_err("`replaces` is only for `rotate`"));
                }
                if body.role == Some(KeyRole::Log) && body.action == KeyAction::Register {
                    if let Some(active) = self
                        .keys
                        .values()
                        .find(|k| k.role == Some(KeyRole::Log) && k.revoked_at.is_none() && k.rotated_to.is_none())
                    {
                        return Err(key_err(format!(
                            "a log key ({}) is already active: rotate it, with a hand-over, instead",
                            active.id
                        )));
                    }
                }
                let name_taken =
                    self.keys.values().any(|k| k.name == body.name && k.revoked_at.is_none() && k.rotated_to.is_none());
                if name_taken && body.action == KeyAction::Register {
                    return Err(key_err(format!("a key named `{}` is already active", body.name)));
                }
                Ok(())
            }
            KeyAction::Revoke => {
                let k = self.keys.get(&id).ok_or_else(|| key_err(format!("key {id} is not registered")))?;
                if k.admin {
                    return Err(key_err("the admin key cannot be revoked"));
                }
                if k.revoked_at.is_some() {
                    return Err(key_err(format!("key {id} is already revoked")));
                }
                Ok(())
            }
        }
    }

    /// Applies a verified `key` record sequenced at `seq`, integrated at `at`.
    /// Records of other kinds are ignored.
    pub fn apply(&mut self, record: &VerifiedRecord, seq: Seq, at: Timestamp) {
        let Body::Key(body) = &record.record().body else { return };
        let Ok(public) = VerifyingKey::from_bytes(&body.public_key.0) else { return };
        let id = key_id(&public);
        match body.action {
            KeyAction::Genesis | KeyAction::Register | KeyAction::Rotate => {
                if let (KeyAction::Rotate, Some(old)) = (body.action, body.replaces.and_then(|r| self.keys.get_mut(&r)))
                {
                    old.rotated_to = Some(id);
                    old.not_after = Some(old.not_after.map_or(at, |t| t.min(at)));
                }
                self.keys.insert(
                    id,
                    KeyInfo {
                        id,
                        name: body.name.clone(),
                        public,
                        kinds: body.kinds.clone(),
                        not_before: body.not_before,
                        not_after: body.not_after,
                        admin: body.action == KeyAction::Genesis,
                        role: body.role,
                        registered_at: seq,
                        revoked_at: None,
                        rotated_to: None,
                    },
                );
            }
            KeyAction::Revoke => {
                if let Some(k) = self.keys.get_mut(&id) {
                    k.revoked_at = Some(seq);
                }
            }
        }
    }
}
