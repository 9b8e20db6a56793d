//! Governance end to end through the `ledger` binary: the connected chain of issue 4 gated at
//! merge and deploy (recorded, re-checked, waived by an exception, shown by `why`), the policy
//! lifecycle, exceptions and model approvals, the SLSA Source VSA read back as an attestation,
//! and the GitHub Actions snippet of docs/CI.md run as written.

use std::path::Path;

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
    rules
        .iter()
        .map(|r| format!("{}={}", r["rule"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect::<Vec<_>>()
        .join(" ")
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
            "exception",
            "grant",
            "--rule",
            rule,
            "--scope",
            &pr,
            "--reason",
            "accepted risk: see the incident review",
            "--approver",
            approver,
            "--not-after",
            "2099-01-01",
            "--json",
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
    assert_eq!(
        (last["decision"].as_str(), last["stage"].as_str(), last["tier"].as_str()),
        (Some("allow"), Some("merge"), Some("T1"))
    );
    assert_eq!(last["policy_version"], 1);
    assert!(
        last["rules"].as_array().unwrap().iter().any(|r| r["result"] == "waived" && r["exception"] == x),
        "{last:#}"
    );
    let text = l.stdout(["why", &pr]);
    assert!(text.contains("gate") && text.contains("waived"), "why text lacks the gate:\n{text}");
}

/// A git repository with one commit by Ann touching `files`, ingested into `l` as `acme/shop`
/// (a direct landing: its change is `git:acme/shop@<sha>`). Returns the commit id.
fn landed_commit(l: &Ledger, dir: &Path, files: &[(&str, &str)]) -> String {
    let repo_dir = dir.join("repo");
    let repo = git2::Repository::init(&repo_dir).unwrap();
    let mut index = repo.index().unwrap();
    for (path, text) in files {
        let full = repo_dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, text).unwrap();
        index.add_path(Path::new(path)).unwrap();
    }
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let ann = git2::Signature::new("Ann", "ann@example.com", &git2::Time::new(1_767_225_600, 0)).unwrap();
    let sha = repo.commit(Some("HEAD"), &ann, &ann, "Add the cart", &tree, &[]).unwrap().to_string();
    l.ingest_git(&repo_dir, "acme/shop");
    sha
}

/// A file in `dir` with `text`.
fn file(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

const SHOP_POLICY: &str = r#"name = "shop"
version = VERSION
default_tier = "T1"

[tiers.T1]
checks = ["unit"]
test_delta = true
test_delta_over = 0
release = ["canary"]

[tiers.T2]
approvals = 1
checks = ["unit", "sast"]
"#;

fn evidence(dir: &Path, sha: &str, result: &str) -> String {
    let body = serde_json::json!({
        "actor": "ci:test", "repo": "acme/shop", "commit": sha, "check": "unit-tests", "check_kind": "unit",
        "result": result,
    });
    file(dir, &format!("evidence-{result}.json"), &body.to_string())
}

#[test]
fn policy_lifecycle_and_a_recorded_decision_rechecked_as_of_its_tree_size() {
    let l = Ledger::init();
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let sha =
        landed_commit(&l, dir, &[("src/cart.rs", "pub fn cart() {}\n"), ("tests/cart_test.rs", "#[test] fn t() {}\n")]);
    let subject = format!("git:acme/shop@{sha}");

    // A file with errors: every one with its line and column, exit 2, nothing published.
    let bad = file(
        dir,
        "bad.toml",
        "name = \"shop\"\nversion = -3\ndefault_tier = \"T1\"\n[tiers.T1]\napprovals = \"one\"\nchecks = \"unit\"\n",
    );
    let out = l.command(["policy", "check", &bad]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for at in [":2:11:", ":5:13:", ":6:10:"] {
        assert!(err.contains(&format!("bad.toml{at}")), "no error at {at}:\n{err}");
    }
    let (code, v) = json_code(&l, &["policy", "check", &bad]);
    assert_eq!((code, v["ok"].as_bool()), (2, Some(false)));
    assert_eq!(v["errors"].as_array().unwrap().len(), 3, "{v:#}");
    assert_eq!(l.command(["policy", "publish", &bad]).output().unwrap().status.code(), Some(2));
    assert_eq!(l.json(["policy", "show", "--json"])["published"], false);

    // Versions must increase on publish: equal and lower are refused by the ledger.
    let v2 = file(dir, "v2.toml", &SHOP_POLICY.replace("VERSION", "2"));
    let v1 = file(dir, "v1.toml", &SHOP_POLICY.replace("VERSION", "1"));
    let v3 = file(dir, "v3.toml", &SHOP_POLICY.replace("VERSION", "3"));
    assert_eq!(l.command(["policy", "check", &v2]).output().unwrap().status.code(), Some(0));
    l.json(["policy", "publish", &v2, "--json"]);
    for (again, what) in [(&v2, "equal"), (&v1, "lower")] {
        let out = l.command(["policy", "publish", again]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "an {what} version was published");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("must increase"), "{what}: {err}");
    }
    l.json(["policy", "publish", &v3, "--json"]);
    let shown = l.json(["policy", "show", "--json"]);
    assert_eq!((shown["name"].as_str(), shown["version"].as_u64()), (Some("shop"), Some(3)), "{shown}");

    // No unit check yet: deny, naming the rule. A passing check: allow.
    let (code, v) = gate(&l, &[&subject, "--stage", "merge"]);
    assert_eq!((code, results(&v).as_str()), (1, "checks=fail models=pass test_delta=pass"), "{v:#}");
    assert_eq!(v["policy"]["version"], 3);
    l.json(["append", "--kind", "evidence", "--body", &evidence(dir, &sha, "pass"), "--json"]);
    let (code, v) = gate(&l, &[&subject, "--stage", "merge", "--record"]);
    assert_eq!((code, results(&v).as_str()), (0, "checks=pass models=pass test_delta=pass"), "{v:#}");
    let recorded = format!("#{}", v["recorded_at"]);

    // A later failing run changes today's answer, not the recorded one: the re-check reads the
    // log as of the decision's tree size.
    l.json(["append", "--kind", "evidence", "--body", &evidence(dir, &sha, "fail"), "--json"]);
    let (code, now) = gate(&l, &[&subject, "--stage", "merge"]);
    assert_eq!((code, results(&now).as_str()), (1, "checks=fail models=pass test_delta=pass"), "{now:#}");
    let (code, re) = json_code(&l, &["gate", "--recheck", &recorded]);
    assert_eq!((code, re["reproduced"].as_bool()), (0, Some(true)), "{re:#}");
    let text = l.stdout(["gate", "--recheck", &recorded]);
    assert!(text.contains("reproduced: allow at merge"), "{text}");
    // Only a gate record can be re-checked.
    let out = l.command(["gate", "--recheck", "#1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a gate decision"));
    // Recording under a policy that is not published is refused.
    let unpublished = file(dir, "v9.toml", &SHOP_POLICY.replace("VERSION", "9"));
    let out = l.command(["gate", &subject, "--stage", "merge", "--policy", &unpublished, "--record"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("publish it first"));
    // …but evaluating under it is fine.
    let (_, v) = gate(&l, &[&subject, "--stage", "merge", "--policy", &unpublished]);
    assert_eq!(v["policy"]["version"], 9);

    // Deploy stage: the release rule reads the deployment's strategy.
    let deployment = |id: &str, strategy: &str| {
        let body = serde_json::json!({
            "actor": "github:ops", "service": "shop", "environment": "production", "deployment_id": id,
            "repo": "acme/shop", "commits": [sha], "deployer": "github:ops", "status": "pending", "strategy": strategy,
        });
        l.json([
            "append",
            "--kind",
            "deployment",
            "--body",
            &file(dir, &format!("d{id}.json"), &body.to_string()),
            "--json",
        ]);
        format!("deploy:shop/production/{id}")
    };
    let big_bang = deployment("1", "big-bang");
    let (_, v) = gate(&l, &[&big_bang, "--stage", "deploy"]);
    assert_eq!(rule(&v, "release")["result"], "fail", "{v:#}");
    let canary = deployment("2", "canary");
    let (_, v) = gate(&l, &[&canary, "--stage", "deploy"]);
    assert_eq!(rule(&v, "release")["result"], "pass", "{v:#}");

    // Exceptions: refused when already expired; listed with their state; an expired one
    // (appended directly) is "review due".
    let grant = |not_after: &str| {
        l.command([
            "exception",
            "grant",
            "--rule",
            "checks",
            "--scope",
            &subject,
            "--reason",
            "flaky runner, rerun tracked in OPS-7",
            "--approver",
            "github:lead",
            "--not-after",
            not_after,
            "--json",
        ])
        .output()
        .unwrap()
    };
    assert_eq!(grant("2001-01-01").status.code(), Some(2), "an already expired exception was granted");
    let out = grant("2099-01-01");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let unknown_rule = l
        .command([
            "exception",
            "grant",
            "--rule",
            "vibes",
            "--scope",
            &subject,
            "--reason",
            "x",
            "--approver",
            "github:lead",
            "--not-after",
            "2099-01-01",
        ])
        .output()
        .unwrap();
    assert_eq!(unknown_rule.status.code(), Some(2));
    let old = serde_json::json!({
        "actor": "github:lead", "approver": "github:lead", "reason": "freeze week", "scope": subject,
        "rule": "release", "not_after": "2020-01-01T00:00:00Z",
    });
    l.json(["append", "--kind", "exception", "--body", &file(dir, "old.json", &old.to_string()), "--json"]);
    let all = l.json(["exception", "list", "--json"]);
    assert_eq!(all.as_array().unwrap().len(), 2, "{all:#}");
    let expired = l.json(["exception", "list", "--expired", "--json"]);
    let expired = expired.as_array().unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(
        (expired[0]["rule"].as_str(), expired[0]["status"].as_str()),
        (Some("release"), Some("expired, review due"))
    );
    let (code, v) = gate(&l, &[&subject, "--stage", "merge"]);
    assert_eq!((code, rule(&v, "checks")["result"].as_str()), (0, Some("waived")), "{v:#}");

    // Model approvals: bad tiers refused; the latest approval per tool and model listed.
    assert_eq!(
        l.command(["model", "approve", "--tool", "codex", "--model", "gpt-5", "--tiers", "T9"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
    l.json(["model", "approve", "--tool", "codex", "--model", "gpt-5", "--tiers", "T0,T1,T2", "--json"]);
    l.json([
        "model",
        "approve",
        "--tool",
        "codex",
        "--model",
        "gpt-5",
        "--tiers",
        "T0",
        "--not-after",
        "2099-06-30",
        "--json",
    ]);
    let models = l.json(["model", "list", "--json"]);
    assert_eq!(models.as_array().unwrap().len(), 1, "{models:#}");
    assert_eq!(models[0]["tiers"], serde_json::json!(["T0"]));

    // CODEOWNERS: a bad pattern is refused with its line; a good file is recorded.
    let bad_owners = file(dir, "BAD_OWNERS", "* @all\nsrc/[ @x\n");
    let out = l.command(["policy", "codeowners", &bad_owners, "--repo", "acme/shop"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BAD_OWNERS:2:"), "{}", String::from_utf8_lossy(&out.stderr));
    let owners = file(dir, "CODEOWNERS", "* @octo\n");
    assert_eq!(l.json(["policy", "codeowners", &owners, "--repo", "acme/shop", "--json"])["duplicate"], false);
    assert!(l.verify() > 0);
}

#[test]
fn a_source_vsa_is_signed_and_reads_back_as_a_verified_attestation() {
    let l = Ledger::init();
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let sha =
        landed_commit(&l, dir, &[("src/cart.rs", "pub fn cart() {}\n"), ("tests/cart_test.rs", "#[test] fn t() {}\n")]);
    let subject = format!("git:acme/shop@{sha}");
    let review = serde_json::json!({
        "actor": "github:frank", "links": [{"rel": "change", "target": subject}], "repo": "acme/shop",
        "reviewer": "github:frank", "verdict": "approved", "commit": sha, "time": "2026-01-01T00:00:00Z",
    });
    l.json(["append", "--kind", "review", "--body", &file(dir, "review.json", &review.to_string()), "--json"]);
    let key = dir.join("vsa.pem");
    l.json(["keygen", "--out", key.to_str().unwrap(), "--json"]);
    let out = dir.join("vsa.json");
    l.stdout(["vsa", &subject, "--key", key.to_str().unwrap(), "--out", out.to_str().unwrap()]);

    let env: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
    let st: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(st["predicateType"], "https://slsa.dev/verification_summary/v1");
    assert_eq!(st["subject"][0]["digest"]["gitCommit"], sha.as_str());
    assert_eq!(st["predicate"]["resourceUri"], "git+https://github.com/acme/shop");
    let levels: Vec<&str> =
        st["predicate"]["verifiedLevels"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    // From git history (continuity), reviewed by someone who wrote no commit of it, T1 under
    // the default policy, which denies (no checks recorded): FAILED.
    for want in
        ["SLSA_SOURCE_LEVEL_2", "SLSA_SOURCE_TWO_PARTY_REVIEWED", "ORG_SOURCE_TIER_T1", "ORG_SOURCE_POLICY_DENY"]
    {
        assert!(levels.contains(&want), "{want} missing from {levels:?}");
    }
    assert_eq!(st["predicate"]["verificationResult"], "FAILED");
    assert!(st["predicate"]["policy"]["digest"]["sha256"].as_str().unwrap().len() == 64);
    assert!(!st["predicate"]["inputAttestations"].as_array().unwrap().is_empty());

    // Read back, its signature checked with the public key.
    let pubkey = format!("{}.pub", key.display());
    let v = l.json(["ingest", "attestation", out.to_str().unwrap(), "--key", &pubkey, "--json"]);
    assert_eq!(v["appended"], 1, "{v:#}");
    let change = l.why_one_change(&subject);
    let e = change["evidence"].as_array().unwrap().iter().find(|e| e["verification"] == "verified");
    let e = e.unwrap_or_else(|| panic!("the VSA is not verified evidence: {change:#}"));
    assert_eq!((e["commit"].as_str(), e["result"].as_str()), (Some(sha.as_str()), Some("fail")));
    assert!(e["check"].as_str().unwrap().starts_with("slsa-vsa v1"), "{e}");

    // A tampered payload does not verify.
    let mut forged = env.clone();
    let mut st2 = st.clone();
    st2["predicate"]["verificationResult"] = "PASSED".into();
    forged["payload"] = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&st2).unwrap()).into();
    let forged_path = file(dir, "forged.json", &forged.to_string());
    let out = l.command(["ingest", "attestation", &forged_path, "--key", &pubkey]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a forged VSA was accepted");
}

/// The `run:` blocks of the steps named `names`, from the YAML snippet of docs/CI.md.
fn ci_steps(names: &[&str]) -> Vec<String> {
    let doc = std::fs::read_to_string(crate::support::manifest_dir().join("../docs/CI.md")).unwrap();
    let yaml = doc.split("```yaml\n").nth(1).and_then(|s| s.split("```").next()).expect("docs/CI.md has a yaml block");
    let lines: Vec<&str> = yaml.lines().collect();
    names
        .iter()
        .map(|name| {
            let at = lines
                .iter()
                .position(|l| l.trim() == format!("- name: {name}"))
                .unwrap_or_else(|| panic!("no step {name}"));
            let run = (at..lines.len())
                .find(|&i| lines[i].trim().starts_with("run:"))
                .unwrap_or_else(|| panic!("step {name} has no run"));
            if let Some(inline) = lines[run].trim().strip_prefix("run:").map(str::trim).filter(|r| *r != "|") {
                return inline.to_string();
            }
            let indent = lines[run].len() - lines[run].trim_start().len();
            lines[run + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .map(|l| l.get(indent + 2..).unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

#[test]
fn the_github_actions_snippet_of_docs_ci_runs_as_written() {
    let l = Ledger::init();
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let sha =
        landed_commit(&l, dir, &[("src/cart.rs", "pub fn cart() {}\n"), ("tests/cart_test.rs", "#[test] fn t() {}\n")]);
    l.json(["policy", "publish", &file(dir, "p.toml", &SHOP_POLICY.replace("VERSION", "1")), "--json"]);
    let steps = ci_steps(&["Record the test result", "Record the deployment", "Gate (required check)"]);
    let bin = crate::support::ledger_bin();
    let path = format!("{}:{}", bin.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let run = |run_id: &str, result: &str| -> Vec<i32> {
        steps
            .iter()
            .map(|script| {
                let out = std::process::Command::new("bash")
                    .args(["-eo", "pipefail", "-c", script])
                    .env("PATH", &path)
                    .env("LEDGER_DB", l.db())
                    .env("LEDGER_KEY", l.db().join("keys").join("local.key"))
                    .env_remove("LEDGER_SERVER")
                    .env("GITHUB_REPOSITORY", "acme/shop")
                    .env("GITHUB_SHA", &sha)
                    .env("GITHUB_RUN_ID", run_id)
                    .env("GITHUB_ACTOR", "octocat")
                    .env("GITHUB_SERVER_URL", "https://github.com")
                    .env("SERVICE", "shop")
                    .env("RESULT", result)
                    .output()
                    .expect("run bash");
                let code = out.status.code().unwrap_or(-1);
                assert!(code <= 1, "step failed ({code}):\n{script}\n{}", String::from_utf8_lossy(&out.stderr));
                code
            })
            .collect()
    };
    // Passing tests: every step exits 0, the gate allows and records its decision.
    assert_eq!(run("4242", "pass"), vec![0, 0, 0]);
    let gates = l.json_lines(["log", "--kind", "gate", "--json"]);
    assert_eq!(gates.len(), 1, "{gates:#?}");
    let recorded = format!("#{}", gates[0]["seq"]);
    assert_eq!(l.json(["gate", "--recheck", &recorded, "--json"])["reproduced"], true);
    // A later run whose tests fail: the gate step fails the job (exit 1), and that decision is
    // recorded too.
    assert_eq!(run("4243", "fail"), vec![0, 0, 1]);
    assert_eq!(l.json_lines(["log", "--kind", "gate", "--json"]).len(), 2);
    let report = l.json(["why", &format!("git:acme/shop@{sha}"), "--json"]);
    let g = report["changes"][0]["gates"].as_array().unwrap().clone();
    assert_eq!(g.iter().map(|x| x["decision"].as_str().unwrap()).collect::<Vec<_>>(), ["allow", "deny"]);
}

/// Bad gate requests through `ledgerd` are refused with a clear error and change nothing:
/// a policy with errors (every one with its line), a subject that names nothing, an unknown
/// stage, a re-check of an entry that is no gate decision or does not exist.
#[test]
fn bad_gate_requests_through_ledgerd_are_refused_clearly() {
    let l = Ledger::init();
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let sha = landed_commit(&l, dir, &[("src/cart.rs", "pub fn cart() {}\n")]);
    let before = l.verify();
    let d = crate::server_parity::Daemon::start(l.db(), &[]);
    let url = format!("http://{}", d.addr);
    let run = |args: &[&str]| {
        let out = l.command(args).arg("--server").arg(&url).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let bad = file(
        dir,
        "bad.toml",
        "name = \"p\"\nversion = 1\ndefault_tier = \"T1\"\n[tiers.T1]\napprovals = true\nchecks = [1]\n",
    );
    let subject = format!("git:acme/shop@{sha}");
    let (code, err) = run(&["gate", &subject, "--stage", "merge", "--policy", &bad]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("line 5, column 13") && err.contains("line 6, column 11"), "{err}");
    let (code, err) = run(&["gate", "pr:nobody/nothing", "--stage", "merge"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["gate", &subject, "--stage", "lunch"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("merge or deploy"), "{err}");
    let (code, err) = run(&["gate", "--recheck", "#1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a gate decision"), "{err}");
    let (code, err) = run(&["gate", "--recheck", "#999999"]);
    assert_eq!(code, Some(2), "{err}");
    let deep = file(dir, "deep.toml", &format!("x = {}{}\n", "[".repeat(100_000), "]".repeat(100_000)));
    let (code, err) = run(&["gate", &subject, "--stage", "merge", "--policy", &deep]);
    assert_eq!(code, Some(2), "{err}");
    drop(d);
    assert_eq!(l.verify(), before, "a refused gate request changed the ledger");
}
