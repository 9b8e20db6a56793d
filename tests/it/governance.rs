//! Governance end to end through the `ledger` binary: the connected chain of issue 4 gated at
//! merge and deploy (recorded, re-checked, waived by an exception, shown by `why`), the policy
//! lifecycle, exceptions and model approvals, the SLSA Source VSA read back as an attestation,
//! and the GitHub Actions snippet of docs/CI.md run as written.

use serde_json::Value;
use tempfile::TempDir;

use crate::github::{webhooks_dir, Chain};
use crate::support::Ledger;

/// `ledger ARGS --json` that may exit non-zero: the exit code and the JSON it printed.
fn json_code(l: &Ledger, args: &[&str]) -> (i32, Value) {
    let out = l.command(args.iter().chain(&["--json"])).output().expect("run ledger");
    let code = out.status.code().unwrap_or(-1);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{args:?} printed no JSON ({e}); exit {code}; stderr: {}", String::from_utf8_lossy(&out.stderr))
    });
    (code, v)
}

/// `ledger gate ARGS --json`.
fn gate(l: &Ledger, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["gate"];
    all.extend_from_slice(args);
    json_code(l, &all)
}

/// Each rule's result as `rule=result`, in report order, space-separated.
fn results(v: &Value) -> String {
    let rules = v["rules"].as_array().unwrap_or_else(|| panic!("no rules: {v:#}"));
    rules.iter().map(|r| format!("{}={}", r["rule"].as_str().unwrap(), r["result"].as_str().unwrap())).collect::<Vec<_>>().join(" ")
}

fn rule<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["rules"].as_array().unwrap().iter().find(|r| r["rule"] == id).unwrap_or_else(|| panic!("no rule {id}: {v:#}"))
}

fn reason(v: &Value, id: &str) -> String {
    rule(v, id)["reason"].as_str().unwrap().to_string()
}

fn has_finding(v: &Value, code: &str) -> bool {
    v["findings"].as_array().unwrap().iter().any(|f| f["code"] == code)
}

/// Publishes the built-in default policy and returns its digest.
fn publish_default(l: &Ledger, dir: &std::path::Path) -> String {
    let shown = l.json(["policy", "show", "--json"]);
    assert_eq!(shown["published"], false, "{shown}");
    let file = dir.join("default.toml");
    std::fs::write(&file, shown["document"].as_str().unwrap()).unwrap();
    l.json(["policy", "publish", file.to_str().unwrap(), "--json"]);
    let shown = l.json(["policy", "show", "--json"]);
    assert_eq!(shown["published"], true, "{shown}");
    shown["digest"].as_str().unwrap().to_string()
}

#[test]
fn the_connected_chain_is_gated_at_merge_and_deploy() {
    let Some(dir) = webhooks_dir() else { return };
    let tmp = TempDir::new().expect("temporary directory");
    let chain = Chain::ingest(&dir, tmp.path());
    let l = &chain.ledger;
    let pr = chain.subject();

    // Under the built-in default policy: a T1 change (no paths recorded, so no path rule
    // applies, and the report says so). The approval of the final head, the passing check and
    // the approved model pass; what needs the commits or the paths is unknown, so it fails.
    let (code, merge) = gate(l, &[&pr, "--stage", "merge"]);
    assert_eq!((code, merge["decision"].as_str()), (1, Some("deny")), "{merge:#}");
    assert_eq!(merge["tier"], "T1", "{merge:#}");
    assert_eq!(
        results(&merge),
        "approvals=pass independent=fail checks=pass codeowners=fail ai_requires_human_approval=pass models=pass \
         test_delta=fail diff_cap=pass"
    );
    for id in ["independent", "codeowners", "test_delta"] {
        assert!(reason(&merge, id).starts_with("unknown:"), "{id}: {}", reason(&merge, id));
    }
    assert!(reason(&merge, "approvals").contains(&chain.new[..12]), "{}", reason(&merge, "approvals"));
    assert!(has_finding(&merge, "tier_paths_unknown"), "{merge:#}");
    // Evidence names real entries: the approval of the new head among them.
    let approvals_evidence = rule(&merge, "approvals")["evidence"].as_array().unwrap().clone();
    let valid = l.why_one_change(&pr)["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "valid")
        .map(|r| r["seq"].clone())
        .expect("a valid review");
    assert!(approvals_evidence.contains(&valid), "{approvals_evidence:?} lacks {valid}");

    let (code, deploy) = gate(l, &[&pr, "--stage", "deploy"]);
    assert_eq!(code, 1, "{deploy:#}");
    assert_eq!(deploy["deployment"], chain.deployment_subject().as_str(), "{deploy:#}");
    assert_eq!(
        results(&deploy),
        "approvals=pass independent=fail checks=pass codeowners=fail ai_requires_human_approval=pass models=pass \
         release=fail test_delta=fail diff_cap=pass"
    );
    assert!(reason(&deploy, "release").starts_with("unknown:"), "{}", reason(&deploy, "release"));
    let (_, by_deployment) = gate(l, &[&chain.deployment_subject(), "--stage", "deploy"]);
    assert_eq!(results(&by_deployment), results(&deploy), "gating the deployment itself differs");

    // Recorded with the published policy, re-checked from the log.
    let digest = publish_default(l, tmp.path());
    let (_, recorded_merge) = gate(l, &[&pr, "--stage", "merge", "--record"]);
    let (_, recorded_deploy) = gate(l, &[&chain.deployment_subject(), "--stage", "deploy", "--record"]);
    assert_eq!(recorded_merge["policy"]["digest"], digest.as_str());
    assert_eq!(recorded_merge["policy"]["version"], 1);
    for r in [&recorded_merge, &recorded_deploy] {
        let entry = format!("#{}", r["recorded_at"].as_u64().expect("recorded_at"));
        let (code, re) = json_code(l, &["gate", "--recheck", &entry]);
        assert_eq!((code, &re["reproduced"]), (0, &Value::Bool(true)), "{re:#}");
        assert_eq!(results(&re["report"]), results(r));
    }

    // An exception for every rule, approved by someone else: every failure is waived.
    let author = chain.ledger.why_one_change(&pr)["author"].as_str().unwrap().to_string();
    let grant = |approver: &str, rule: &str| {
        l.json([
            "exception", "grant", "--rule", rule, "--scope", &pr, "--reason", "accepted risk: see the incident review",
            "--approver", approver, "--not-after", "2099-01-01", "--json",
        ])["seq"]
            .as_u64()
            .unwrap()
    };
    let by_author = grant(&author, "all");
    let (code, refused) = gate(l, &[&pr, "--stage", "merge"]);
    assert_eq!(code, 1, "{refused:#}");
    assert!(has_finding(&refused, "exception_by_author"), "{refused:#}");
    assert!(!results(&refused).contains("waived"), "an author's exception waived a rule: {refused:#}");
    let x = grant("github:security-lead", "all");
    assert!(x > by_author);
    let (code, waived) = gate(l, &[&pr, "--stage", "merge", "--record"]);
    assert_eq!((code, waived["decision"].as_str()), (0, Some("allow")), "{waived:#}");
    for id in ["independent", "codeowners", "test_delta"] {
        assert_eq!(rule(&waived, id)["result"], "waived", "{id}");
        assert_eq!(rule(&waived, id)["exception"], x, "{id}");
    }
    assert_eq!(rule(&waived, "approvals")["result"], "pass");

    // `why` shows the recorded decisions, with the waived rules and their exception.
    let change = l.why_one_change(&pr);
    let gates = change["gates"].as_array().unwrap_or_else(|| panic!("why shows no gates: {change:#}"));
    assert_eq!(gates.len(), 3, "{gates:#?}");
    let last = &gates[2];
    assert_eq!((last["decision"].as_str(), last["stage"].as_str(), last["tier"].as_str()), (Some("allow"), Some("merge"), Some("T1")));
    assert_eq!(last["policy_version"], 1);
    assert!(last["rules"].as_array().unwrap().iter().any(|r| r["result"] == "waived" && r["exception"] == x), "{last:#}");
    let text = l.stdout(["why", &pr]);
    assert!(text.contains("gate") && text.contains("waived"), "why text lacks the gate:\n{text}");
}
