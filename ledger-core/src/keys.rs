//! The key register: which signer keys may append which record kinds, when.
//!
//! It is rebuilt from the `key` records in the log itself, so every verifier derives the same
//! register from the same entries. The admin key is fixed by the genesis entry (seq 0, a
//! self-signed `key` record with action `genesis`); only it may append `key` records.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;

use crate::chain::Authorized;
use crate::entry::{key_id, SignedRecord, VerifiedRecord};
use crate::error::{Error, Result};
use crate::record::{Body, KeyAction, KeyBody, Kind};
use crate::types::{KeyId, Seq, Timestamp, Token};

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
        let public = parse_public(body)?;
        if key_id(&public) != signed.signer {
            return Err(key_err("the genesis record must be signed by the key it registers"));
        }
        signed.verify_with(&public)
    }

    fn check_key_body(&self, body: &KeyBody) -> Result<()> {
        let public = parse_public(body)?;
        let id = key_id(&public);
        match body.action {
            KeyAction::Genesis => Err(key_err("`genesis` is only allowed as the first entry")),
            KeyAction::Register | KeyAction::Rotate => {
                if self.keys.contains_key(&id) {
                    return Err(key_err(format!("key {id} is already registered")));
                }
                if body.kinds.is_empty() {
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
                } else if body.replaces.is_some() {
                    return Err(key_err("`replaces` is only for `rotate`"));
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
