//! `why` over an in-memory snapshot answers exactly as `why` over the store's indexes, for
//! every subject a varied history mentions (and for one it does not).

use std::sync::Arc;

use ledger_audit::why::Trust;
use ledger_core::entry::SignedRecord;
use ledger_core::record::KeyAction;
use ledger_core::record::{Body, Kind, Record, Stage};
use ledger_core::subject::Subject;
use ledger_store::clock::SystemClock;
use ledger_store::ledger::{GatePolicy, Ledger};
use ledger_store::store::DiskStore;
use ledger_store::testkit::{key, key_rec, signed};
use serde_json::{json, Value};

fn record(kind: Kind, time: &str, actor: &str, links: Value, body: Value) -> Record {
    Record {
        v: ledger_core::domain::FORMAT_VERSION,
        time: time.parse().unwrap(),
        actor: ledger_core::types::Identity::new(actor).unwrap(),
        links: serde_json::from_value(links).unwrap(),
        body: Body::from_json(kind, body).unwrap(),
    }
}

#[test]
fn why_over_a_snapshot_is_why_over_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let admin = key("admin");
    let genesis = signed(&key_rec(KeyAction::Genesis, "admin", &admin, Kind::ALL.to_vec()), &admin);
    let ledger = Ledger::create(DiskStore::create(dir.path()).unwrap(), &genesis, Arc::new(SystemClock)).unwrap();
    let mut records = vec![];
    for i in 0..12u64 {
        let repo = if i % 2 == 0 { "acme/shop" } else { "acme/api" };
        let head = format!("{i:040x}");
        let landed = format!("f{i:039x}");
        let pr = json!([{"rel": "change", "target": format!("pr:{repo}#{i}")}]);
        let t = |h: u64| format!("2026-03-{:02}T{h:02}:00:00Z", 1 + i);
        records.push(record(
            Kind::Change,
            &t(9),
            "github:dev",
            json!([]),
            json!({"repo": repo, "number": i,
            "title": if i == 3 { "Hotfix" } else { "change" }, "author": "github:dev", "head_commit": head,
            "commits_total": 1}),
        ));
        if i % 3 != 0 {
            records.push(record(
                Kind::Review,
                &t(10),
                "github:rev",
                pr.clone(),
                json!({"repo": repo,
                "reviewer": if i == 4 { "github:dev" } else { "github:rev" }, "verdict": "approved", "commit": head}),
            ));
        }
        if i % 4 == 1 {
            records.push(record(
                Kind::Session,
                &t(9),
                "github:dev",
                pr.clone(),
                json!({"tool": "codex", "model": "gpt-5", "session_id": format!("s{i}")}),
            ));
        }
        records.push(record(
            Kind::Evidence,
            &t(10),
            "ci:gha",
            json!([]),
            json!({"repo": repo, "commit": head,
            "check": "unit", "check_kind": "unit", "result": if i == 5 { "fail" } else { "pass" }}),
        ));
        records.push(record(
            Kind::Merge,
            &t(11),
            "github:lead",
            pr.clone(),
            json!({"repo": repo,
            "merge_commit": landed, "head_commit": head, "method": "squash"}),
        ));
        let service = repo.rsplit('/').next().unwrap();
        let deploy = format!("deploy:{service}/production/{i}");
        records.push(record(
            Kind::Deployment,
            &t(12),
            "github:ops",
            json!([]),
            json!({"service": service,
            "environment": "production", "deployment_id": i.to_string(), "repo": repo, "commits": [landed],
            "deployer": "github:ops", "status": "success"}),
        ));
        if i % 5 == 2 {
            records.push(record(
                Kind::Incident,
                &t(13),
                "pagerduty:bot",
                json!([{"rel": if i == 7 { "caused_by_inferred" } else { "caused_by" }, "target": deploy}]),
                json!({"system": "pagerduty", "incident_id": format!("P{i}"), "title": "errors",
                       "opened": t(13), "resolved": t(15)}),
            ));
        }
        if i == 6 {
            records.push(record(
                Kind::Exception,
                &t(10),
                "github:cto",
                pr.clone(),
                json!({"approver": "github:cto",
                "reason": "release freeze", "scope": format!("pr:{repo}#{i}"), "not_after": "2026-04-01T00:00:00Z"}),
            ));
        }
    }
    let signed: Vec<SignedRecord> = records.iter().map(|r| signed(r, &admin)).collect();
    ledger.append(&signed).unwrap();

    let snapshot = ledger.snapshot(None, None, |_| {}).unwrap();
    assert!(snapshot.is_complete());
    assert_eq!(snapshot.records().len() as u64, ledger.len());
    let mut subjects: Vec<Subject> = records.iter().flat_map(|r| r.subjects()).collect();
    subjects.push("pr:acme/none#1".parse().unwrap());
    subjects.sort();
    subjects.dedup();
    assert!(subjects.len() > 50, "a varied history: {} subjects", subjects.len());
    let trust = Trust::default();
    for s in &subjects {
        let store = serde_json::to_value(ledger.why(s, &trust).unwrap()).unwrap();
        let memory = serde_json::to_value(snapshot.why(s, &trust).unwrap()).unwrap();
        assert_eq!(store, memory, "why {s}");
        // The gate over the snapshot decides, rule by rule, as the gate over the store.
        let policy = GatePolicy::builtin();
        for stage in [Stage::Merge, Stage::Deploy] {
            let store = ledger.gate(s, stage, &policy, snapshot.now()).unwrap();
            let (_, memory) = snapshot.why_and_gate(s, &trust, stage, &policy.policy, &policy.digest).unwrap();
            assert_eq!(serde_json::to_value(store).unwrap(), serde_json::to_value(memory).unwrap(), "gate {s}");
        }
    }

    // A snapshot of some kinds only refuses `why`, and holds only those kinds.
    let partial = ledger.snapshot(None, Some(&[Kind::Deployment]), |_| {}).unwrap();
    assert!(!partial.is_complete());
    assert!(partial.records().iter().all(|g| g.record.kind() == Kind::Deployment));
    assert_eq!(partial.records().len(), 12);
    assert!(partial.why(&subjects[0], &trust).is_err());
}
