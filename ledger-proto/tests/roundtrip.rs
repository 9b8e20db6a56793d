//! Every wire ↔ core conversion round-trips, through encoded protobuf bytes: what a server
//! sends is what a client gets. Malformed messages are refused naming the field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ed25519_dalek::SigningKey;
use ledger_audit::gate::{GateReport, PolicyRef, RuleLine};
use ledger_audit::why::{Finding, GateLine, GateRuleLine, WhyReport};
use ledger_core::chain::Receipt;
use ledger_core::entry::{Bytes, SignedRecord};
use ledger_core::keys::KeyInfo;
use ledger_core::record::Kind;
use ledger_core::record::{Decision, RuleResult, Stage};
use ledger_core::types::{EntryHash, KeyId, RecordId, Seq, SignatureBytes, Timestamp, Token};
use ledger_proto::v1 as pb;
use proptest::prelude::*;
use prost::Message;

/// Encodes `m` and decodes it again, as the wire does.
fn wire<M: Message + Default>(m: &M) -> M {
    M::decode(m.encode_to_vec().as_slice()).unwrap()
}

proptest! {
    #[test]
    fn signed_records_round_trip(record in proptest::collection::vec(any::<u8>(), 0..300), signer in any::<[u8; 32]>(), sig in proptest::collection::vec(any::<u8>(), 64)) {
        let r = SignedRecord { record: Bytes(record), signer: KeyId(signer), sig: SignatureBytes(sig.try_into().unwrap()) };
        let back = SignedRecord::try_from(wire(&pb::SignedRecord::from(&r))).unwrap();
        prop_assert_eq!(back, r);
    }

    #[test]
    fn receipts_round_trip(seq in any::<u64>(), hash in any::<[u8; 32]>(), id in any::<[u8; 32]>(), duplicate in any::<bool>()) {
        let r = Receipt { seq: Seq(seq), hash: EntryHash(hash), record_id: RecordId(id), duplicate };
        prop_assert_eq!(Receipt::try_from(&wire(&pb::Receipt::from(&r))).unwrap(), r);
    }
}

#[test]
fn key_infos_round_trip() {
    let public = SigningKey::from_bytes(&[3; 32]).verifying_key();
    let full = KeyInfo {
        id: ledger_core::entry::key_id(&public),
        name: Token::new("ci").unwrap(),
        public,
        kinds: vec![Kind::Review, Kind::Evidence],
        not_before: Timestamp(1_700_000_000_000),
        not_after: Some(Timestamp(1_800_000_000_000)),
        admin: false,
        registered_at: Seq(4),
        revoked_at: Some(Seq(9)),
        rotated_to: Some(KeyId([7; 32])),
        role: Some(ledger_core::record::KeyRole::Log),
    };
    let bare = KeyInfo { not_after: None, revoked_at: None, rotated_to: None, admin: true, role: None, ..full.clone() };
    for k in [full, bare] {
        assert_eq!(KeyInfo::try_from(&wire(&pb::KeyInfo::from(&k))).unwrap(), k);
    }
}

#[test]
fn malformed_messages_name_the_field() {
    let bad = pb::SignedRecord { record: vec![], signer: vec![0; 31], signature: vec![0; 64] };
    assert_eq!(SignedRecord::try_from(bad).unwrap_err().field, "record.signer");
    let bad = pb::Receipt { entry_hash: vec![1; 33], record_id: vec![0; 32], ..Default::default() };
    assert_eq!(Receipt::try_from(&bad).unwrap_err().field, "entry_hash");
    let public = SigningKey::from_bytes(&[3; 32]).verifying_key();
    let mut k = pb::KeyInfo::from(&KeyInfo {
        id: KeyId([1; 32]),
        name: Token::new("ci").unwrap(),
        public,
        kinds: vec![],
        not_before: Timestamp(0),
        not_after: None,
        admin: false,
        registered_at: Seq(1),
        revoked_at: None,
        rotated_to: None,
        role: None,
    });
    k.kinds = vec!["nonsense".into()];
    assert_eq!(KeyInfo::try_from(&k).unwrap_err().field, "kinds");
    k.kinds = vec![];
    k.role = Some("auditor".into());
    assert_eq!(KeyInfo::try_from(&k).unwrap_err().field, "role");
}

/// The realistic report of `ledger-audit`'s golden test: every field of every line filled.
fn golden() -> WhyReport {
    serde_json::from_str(include_str!("../../ledger-audit/tests/it/why_golden.json")).unwrap()
}

/// The JSON `ledger why --json` prints for a report.
fn json(r: &WhyReport) -> String {
    serde_json::to_string_pretty(r).unwrap()
}

#[test]
fn why_reports_round_trip_byte_for_byte_as_json() {
    let full = golden();
    assert!(!full.changes.is_empty() && full.changes[0].merge.is_some(), "the golden report has a merged change");
    // The same report with every optional part absent.
    // The golden report was built by `analyze` alone: give it a walk, as the store does.
    let mut full = full;
    full.walked = vec![
        ledger_audit::why::WalkStep {
            subject: full.subject.clone(),
            entries: vec![ledger_audit::why::EntryRef { seq: 5, entry: "05".repeat(32) }],
        },
        ledger_audit::why::WalkStep { subject: "git:2222222222222222222222222222222222222222".into(), entries: vec![] },
    ];
    full.changes[0].reviews[0].also = vec![ledger_audit::why::EntryRef { seq: 9, entry: "09".repeat(32) }];
    let vouched = full.changes[0].reviews[0].vouched.clone();
    full.changes[0].gates = vec![
        GateLine {
            at: ledger_audit::why::EntryRef { seq: 12, entry: "0c".repeat(32) },
            subject: full.changes[0].subject.clone(),
            stage: Some(Stage::Deploy),
            decision: Decision::Allow,
            tier: Some(ledger_core::types::Tier::T2),
            policy: format!("sha256:{}", "ab".repeat(32)),
            policy_version: Some(4),
            rules: vec![
                GateRuleLine { rule: "approvals".into(), result: RuleResult::Pass, exception: None },
                GateRuleLine { rule: "release".into(), result: RuleResult::Waived, exception: Some(11) },
            ],
            time: Timestamp(1_767_225_600_000),
            vouched: vouched.clone(),
        },
        GateLine {
            at: ledger_audit::why::EntryRef { seq: 13, entry: "0d".repeat(32) },
            subject: full.changes[0].subject.clone(),
            stage: None,
            decision: Decision::Deny,
            tier: None,
            policy: format!("sha256:{}", "cd".repeat(32)),
            policy_version: None,
            rules: vec![],
            time: Timestamp(1_767_225_660_000),
            vouched,
        },
    ];
    full.changes[0].labels = vec!["hotfix".into(), "risk:T3".into()];
    let mut sparse = full.clone();
    sparse.changes[0].merge = None;
    sparse.changes[0].labels = vec![];
    sparse.changes[0].gates = vec![];
    sparse.changes[0].number = None;
    for s in &mut sparse.changes[0].sessions {
        (s.model, s.summary, s.model_approved_tiers) = (None, None, None);
    }
    for i in &mut sparse.changes[0].incidents {
        (i.severity, i.resolved) = (None, None);
    }
    let empty = WhyReport {
        subject: "git:0000000000000000000000000000000000000000".into(),
        walked: vec![],
        changes: vec![],
        findings: vec![],
    };
    for r in [full, sparse, empty] {
        let back = WhyReport::try_from(&wire(&pb::WhyReport::from(&r))).unwrap();
        assert_eq!(json(&back), json(&r));
    }
}

#[test]
fn a_malformed_why_report_names_the_field() {
    let mut m = pb::WhyReport::from(&golden());
    m.changes[0].reviews[1].commit = "not-a-commit".into();
    assert_eq!(WhyReport::try_from(&m).unwrap_err().field, "changes[0].reviews[1].commit");
    let mut m = pb::WhyReport::from(&golden());
    m.changes[0].reviews[0].verdict = "maybe".into();
    assert_eq!(WhyReport::try_from(&m).unwrap_err().field, "changes[0].reviews[0].verdict");
    let mut m = pb::WhyReport::from(&golden());
    m.changes[0].at = None;
    assert_eq!(WhyReport::try_from(&m).unwrap_err().field, "changes[0].at");
}

#[test]
fn gate_reports_round_trip_byte_for_byte_as_json() {
    let full = GateReport {
        subject: "deploy:shop/production/7".into(),
        stage: Stage::Deploy,
        decision: Decision::Deny,
        tier: ledger_core::types::Tier::T3,
        tier_reason: "pr:acme/shop#42: T3 by [[classify]] #5".into(),
        policy: PolicyRef { name: "default".into(), version: 7, digest: format!("sha256:{}", "ef".repeat(32)) },
        rules: vec![
            RuleLine {
                rule: "approvals".into(),
                result: RuleResult::Fail,
                reason: "1 of 2".into(),
                evidence: vec![3, 9],
                exception: None,
            },
            RuleLine {
                rule: "release".into(),
                result: RuleResult::Waived,
                reason: "waived".into(),
                evidence: vec![],
                exception: Some(12),
            },
        ],
        changes: vec!["pr:acme/shop#42".into(), "pr:acme/shop#43".into()],
        deployment: Some("deploy:shop/production/7".into()),
        findings: vec![Finding { code: "exception_expired".into(), message: "entry 4 expired".into() }],
        evaluated_at: Timestamp(1_767_225_600_123),
        tree_size: 40,
        inputs: vec![1, 3, 9, 12],
        recorded_at: Some(41),
    };
    let sparse = GateReport {
        deployment: None,
        recorded_at: None,
        rules: vec![],
        changes: vec![],
        findings: vec![],
        inputs: vec![],
        stage: Stage::Merge,
        decision: Decision::Allow,
        ..full.clone()
    };
    for r in [full, sparse] {
        let back = GateReport::try_from(&wire(&pb::GateReport::from(&r))).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), serde_json::to_string(&r).unwrap());
        assert_eq!(back, r);
    }
    let mut m = pb::GateReport::from(&sparse_with_rule());
    m.rules[0].result = "maybe".into();
    assert_eq!(GateReport::try_from(&m).unwrap_err().field, "rules[0].result");
    let mut m = pb::GateReport::from(&sparse_with_rule());
    m.tier = "T7".into();
    assert_eq!(GateReport::try_from(&m).unwrap_err().field, "tier");
}

fn sparse_with_rule() -> GateReport {
    GateReport {
        subject: "pr:acme/shop#1".into(),
        stage: Stage::Merge,
        decision: Decision::Allow,
        tier: ledger_core::types::Tier::T0,
        tier_reason: String::new(),
        policy: PolicyRef { name: "p".into(), version: 1, digest: "sha256:00".into() },
        rules: vec![RuleLine {
            rule: "checks".into(),
            result: RuleResult::Pass,
            reason: "ok".into(),
            evidence: vec![],
            exception: None,
        }],
        changes: vec![],
        deployment: None,
        findings: vec![],
        evaluated_at: Timestamp(0),
        tree_size: 0,
        inputs: vec![],
        recorded_at: None,
    }
}
