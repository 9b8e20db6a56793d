//! Governance reads: the published policies, exceptions and model approvals, and the gate
//! ([`ledger_audit::gate`]) over what the ledger held at a tree size, including the re-check
//! of a recorded decision from the log alone.

use ledger_audit::gate::{self, GateInput, GateReport};
use ledger_audit::policy::{Policy, DEFAULT_POLICY};
use ledger_audit::why::{Gathered, Trust};
use ledger_core::record::{document_digest, Body, Exception, Gate, Kind, Model, Stage};
use ledger_core::subject::Subject;
use ledger_core::types::{Digest, Seq, Timestamp};

use super::{EntryView, Ledger};
use crate::error::{Error, Result};
use crate::store::Store;

/// A `policy` record.
#[derive(Clone, Debug)]
pub struct PublishedPolicy {
    /// Its entry.
    pub seq: Seq,
    /// When it was published (the record's time).
    pub time: Timestamp,
    /// The policy.
    pub body: ledger_core::record::Policy,
    /// The document's digest (recomputed, so records without a stored digest have one too).
    pub digest: Digest,
}

/// A policy to gate with: parsed, with its digest, and where it comes from.
#[derive(Clone, Debug)]
pub struct GatePolicy {
    /// The parsed policy.
    pub policy: Policy,
    /// SHA-256 of its document.
    pub digest: Digest,
    /// The `policy` entry that published it, when it is in the ledger.
    pub published: Option<Seq>,
}

impl GatePolicy {
    /// The built-in default policy (docs/POLICY.md), not published.
    pub fn builtin() -> GatePolicy {
        GatePolicy { policy: Policy::default_policy(), digest: document_digest(DEFAULT_POLICY), published: None }
    }
}

/// A recorded gate decision evaluated again.
#[derive(Clone, Debug)]
pub struct Recheck {
    /// The `gate` entry.
    pub seq: Seq,
    /// The recorded decision.
    pub recorded: Gate,
    /// The decision the log gives now, as of the recorded tree size and time.
    pub fresh: GateReport,
    /// Every difference (empty: reproduced exactly).
    pub differences: Vec<String>,
}

fn invalid(msg: String) -> Error {
    Error::InvalidArgument(msg)
}

impl<S: Store> Ledger<S> {
    /// Every `policy` record, in ledger order.
    ///
    /// # Errors
    /// [`Error::Tampered`] if one does not decode; [`Error::Storage`].
    pub fn policies(&self) -> Result<Vec<PublishedPolicy>> {
        let mut out = vec![];
        for seq in self.kind_seqs(Kind::Policy)? {
            let v = self.must_get(seq)?;
            if let Body::Policy(p) = v.record.body {
                out.push(PublishedPolicy { seq, time: v.record.time, digest: document_digest(&p.document), body: p });
            }
        }
        Ok(out)
    }

    /// The policy in force: the latest published one, if any.
    ///
    /// # Errors
    /// As [`Ledger::policies`].
    pub fn policy_in_force(&self) -> Result<Option<PublishedPolicy>> {
        Ok(self.policies()?.pop())
    }

    /// The policy to gate with: the one in force, parsed; the built-in default when none is
    /// published.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the published document does not parse; as
    /// [`Ledger::policies`].
    pub fn gate_policy(&self) -> Result<GatePolicy> {
        let Some(p) = self.policy_in_force()? else { return Ok(GatePolicy::builtin()) };
        let policy = Policy::parse(&p.body.document).map_err(|errs| {
            let first = errs.first().map(|e| e.to_string()).unwrap_or_default();
            invalid(format!("the policy in force (entry #{}) does not parse: {first}", p.seq.0))
        })?;
        Ok(GatePolicy { policy, digest: p.digest, published: Some(p.seq) })
    }

    /// Every `exception` record, in ledger order, with its entry and time.
    ///
    /// # Errors
    /// [`Error::Tampered`] if one does not decode; [`Error::Storage`].
    pub fn exceptions(&self) -> Result<Vec<(EntryView, Exception)>> {
        self.bodies(Kind::Exception, |b| match b {
            Body::Exception(x) => Some(x.clone()),
            _ => None,
        })
    }

    /// Every `model` record, in ledger order.
    ///
    /// # Errors
    /// As [`Ledger::exceptions`].
    pub fn models(&self) -> Result<Vec<(EntryView, Model)>> {
        self.bodies(Kind::Model, |b| match b {
            Body::Model(m) => Some(m.clone()),
            _ => None,
        })
    }

    /// Every record of `kind`, as gathered for analysis, in ledger order.
    ///
    /// # Errors
    /// As [`Ledger::exceptions`].
    pub fn gathered_of_kind(&self, kind: Kind) -> Result<Vec<Gathered>> {
        self.kind_seqs(kind)?.into_iter().map(|seq| Ok(self.must_get(seq)?.gathered())).collect()
    }

    fn bodies<T>(&self, kind: Kind, pick: impl Fn(&Body) -> Option<T>) -> Result<Vec<(EntryView, T)>> {
        let mut out = vec![];
        for seq in self.kind_seqs(kind)? {
            let v = self.must_get(seq)?;
            if let Some(t) = pick(&v.record.body) {
                out.push((v, t));
            }
        }
        Ok(out)
    }

    /// Evaluates `policy` for `subject` at `stage`, over the ledger as it is now, at `now`.
    /// Gates use the default trusted-builder list, so that a recorded decision re-checks the
    /// same way anywhere.
    ///
    /// # Errors
    /// [`Error::Tampered`] if a gathered entry does not decode; [`Error::Storage`].
    pub fn gate(&self, subject: &Subject, stage: Stage, policy: &GatePolicy, now: Timestamp) -> Result<GateReport> {
        let tree_size = self.len();
        let gathered = self.gate_inputs(subject, tree_size)?;
        Ok(gate::evaluate(&GateInput {
            subject,
            stage,
            policy: &policy.policy,
            policy_digest: &policy.digest,
            gathered: &gathered,
            now,
            trust: &Trust::default(),
            tree_size,
        }))
    }

    /// The gate for what a user typed: `input` resolved as by `why` ([`Ledger::resolve`]),
    /// under `policy_document` (TOML) when given, else the policy in force (the built-in
    /// default when none is published), evaluated now.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a policy document with errors (all of them, with line
    /// and column) or input that names no subject; as [`Ledger::gate`].
    pub fn gate_input(
        &self,
        input: &str,
        stage: Stage,
        policy_document: Option<&str>,
    ) -> Result<(GateReport, GatePolicy)> {
        let policy = match policy_document {
            None => self.gate_policy()?,
            Some(doc) => {
                let policy = Policy::parse(doc).map_err(|errs| {
                    let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
                    invalid(format!("the policy has {} error(s): {}", all.len(), all.join("; ")))
                })?;
                let digest = document_digest(doc);
                let published = self.policies()?.into_iter().rev().find(|p| p.digest == digest).map(|p| p.seq);
                GatePolicy { policy, digest, published }
            }
        };
        let subject = self.resolve(input)?;
        let report = self.gate(&subject, stage, &policy, self.clock.now())?;
        Ok((report, policy))
    }

    /// What a gate reads for `subject` as of `tree_size`: what `why` gathers, and every
    /// `codeowners` record.
    fn gate_inputs(&self, subject: &Subject, tree_size: u64) -> Result<Vec<Gathered>> {
        let (mut gathered, _) = self.gather_at(subject, tree_size)?;
        for seq in self.kind_seqs(Kind::Codeowners)? {
            if seq.0 < tree_size && !gathered.iter().any(|g| g.seq == seq) {
                gathered.push(self.must_get(seq)?.gathered());
            }
        }
        Ok(gathered)
    }

    /// Re-evaluates the gate decision recorded at `entry` from the log alone: its policy (found
    /// by digest), the records as of its tree size, its time, and compares.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the entry is not a recorded gate decision, or its policy
    /// is not in the log or does not parse; as [`Ledger::find_entry`].
    pub fn recheck_gate(&self, entry: &str) -> Result<Recheck> {
        let v = self.find_entry(entry)?;
        let Body::Gate(recorded) = v.record.body.clone() else {
            return Err(invalid(format!("entry #{} is a `{}` record, not a gate decision", v.seq.0, v.record.kind())));
        };
        let (Some(stage), Some(tree_size)) = (recorded.stage, recorded.tree_size) else {
            return Err(invalid(format!(
                "the gate decision at entry #{} records no stage or tree size: it cannot be re-evaluated",
                v.seq.0
            )));
        };
        let published = self
            .policies()?
            .into_iter()
            .filter(|p| p.seq.0 < v.seq.0)
            .find(|p| p.digest == recorded.policy)
            .ok_or_else(|| {
                invalid(format!("policy {} of the decision at entry #{} is not in the log", recorded.policy, v.seq.0))
            })?;
        let policy = Policy::parse(&published.body.document).map_err(|errs| {
            invalid(format!(
                "policy entry #{} does not parse: {}",
                published.seq.0,
                errs.first().map(|e| e.to_string()).unwrap_or_default()
            ))
        })?;
        let gathered = self.gate_inputs(&recorded.subject, tree_size)?;
        let fresh = gate::evaluate(&GateInput {
            subject: &recorded.subject,
            stage,
            policy: &policy,
            policy_digest: &published.digest,
            gathered: &gathered,
            now: v.record.time,
            trust: &Trust::default(),
            tree_size,
        });
        let differences = gate::recheck(&recorded, &fresh);
        Ok(Recheck { seq: v.seq, recorded, fresh, differences })
    }
}
