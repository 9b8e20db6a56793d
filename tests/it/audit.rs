//! The auditor's period through the `ledger` binary: the population of a period (with its
//! completeness findings, as JSON and CSV) and a seeded sample that re-draws the same locally,
//! through `ledgerd`, and by hand from the documented algorithm.

use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::support::Ledger;

fn write(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p.to_str().unwrap().to_string()
}

/// `n` changes landed as squash merges of pull requests, each deployed to production (the
/// last `undeployed` not), plus one direct push and one deployment of an unknown commit.
fn history(l: &Ledger, dir: &Path, n: usize, undeployed: usize) {
    let sha = |i: usize, c: char| format!("{i:0>8}{}", c.to_string().repeat(32));
    for i in 0..n {
        let day = 1 + (i % 28);
        let pr = format!("pr:acme/shop#{}", 100 + i);
        let change = json!({
            "actor": "github:dev", "time": format!("2026-02-{day:02}T09:00:00Z"),
            "repo": "acme/shop", "number": 100 + i, "title": format!("change {i}"), "author": "github:dev",
            "head_commit": sha(i, 'a'), "commits_total": 1,
        });
        l.json(["append", "--kind", "change", "--body", &write(dir, "c.json", &change), "--json"]);
        let merge = json!({
            "actor": "github:lead", "time": format!("2026-02-{day:02}T10:00:00Z"), "links": [{"rel": "change", "target": pr}],
            "repo": "acme/shop", "merge_commit": sha(i, 'b'), "head_commit": sha(i, 'a'), "method": "squash",
        });
        l.json(["append", "--kind", "merge", "--body", &write(dir, "m.json", &merge), "--json"]);
        if i + undeployed >= n {
            continue;
        }
        for status in ["pending", "success"] {
            let dep = json!({
                "actor": "github:ops", "time": format!("2026-02-{day:02}T11:00:00Z"),
                "service": "shop", "environment": "production", "deployment_id": format!("{i}"), "repo": "acme/shop",
                "commits": [sha(i, 'b')], "deployer": "github:ops", "status": status,
            });
            l.json(["append", "--kind", "deployment", "--body", &write(dir, "d.json", &dep), "--json"]);
        }
    }
    let direct = json!({
        "actor": "github:dev", "time": "2026-03-01T09:00:00Z", "repo": "acme/shop", "title": "hotfix",
        "author": "github:dev", "head_commit": sha(999, 'c'), "commits_total": 1,
    });
    l.json(["append", "--kind", "change", "--body", &write(dir, "c.json", &direct), "--json"]);
    let merge = json!({
        "actor": "github:dev", "time": "2026-03-01T09:00:00Z",
        "links": [{"rel": "change", "target": format!("git:acme/shop@{}", sha(999, 'c'))}],
        "repo": "acme/shop", "merge_commit": sha(999, 'c'), "head_commit": sha(999, 'c'), "method": "direct",
    });
    l.json(["append", "--kind", "merge", "--body", &write(dir, "m.json", &merge), "--json"]);
    let stray = json!({
        "actor": "github:ops", "time": "2026-03-02T11:00:00Z", "service": "shop", "environment": "production",
        "deployment_id": "stray", "repo": "acme/shop", "commits": [sha(777, 'e')], "deployer": "github:ops", "status": "success",
    });
    l.json(["append", "--kind", "deployment", "--body", &write(dir, "d.json", &stray), "--json"]);
    // Outside the period, and to staging: not in the population.
    for (id, env, time) in
        [("late", "production", "2026-08-01T00:00:00Z"), ("stage", "staging", "2026-02-02T00:00:00Z")]
    {
        let d = json!({
            "actor": "github:ops", "time": time, "service": "shop", "environment": env, "deployment_id": id,
            "repo": "acme/shop", "commits": [sha(0, 'b')], "deployer": "github:ops", "status": "success",
        });
        l.json(["append", "--kind", "deployment", "--body", &write(dir, "d.json", &d), "--json"]);
    }
}

#[test]
fn the_population_lists_every_successful_deployment_with_its_changes_and_gaps() {
    let l = Ledger::init();
    let tmp = TempDir::new().unwrap();
    history(&l, tmp.path(), 30, 3);
    let pop = l.json(["population", "--period", "2026-01-01..2026-06-30", "--json"]);
    let deployments = pop["deployments"].as_array().unwrap();
    // 27 deployed changes and the stray deployment.
    assert_eq!(deployments.len(), 28, "{pop:#}");
    let d0 = deployments.iter().find(|d| d["subject"] == "deploy:shop/production/0").expect("deployment 0");
    assert_eq!(d0["changes"], json!(["pr:acme/shop#100"]));
    assert_eq!(d0["deployer"], "github:ops");
    let times: Vec<&str> = deployments.iter().map(|d| d["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "not in time order: {times:?}");
    let findings: Vec<(String, String)> = pop["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["code"].as_str().unwrap().to_string(), f["subject"].as_str().unwrap().to_string()))
        .collect();
    let count = |code: &str| findings.iter().filter(|(c, _)| c == code).count();
    assert_eq!(count("deployment_without_change"), 1, "{findings:?}");
    assert!(findings.contains(&("deployment_without_change".into(), "deploy:shop/production/stray".into())));
    assert_eq!(count("landing_without_pull_request"), 1, "{findings:?}");
    // Three undeployed pull requests and the direct push.
    assert_eq!(count("change_not_deployed"), 4, "{findings:?}");

    // A narrower period and another environment.
    let feb1 = l.json(["population", "--period", "2026-02-01..2026-02-01", "--json"]);
    // Changes 0 and 28 land on 1 February; 28 was never deployed.
    assert_eq!(feb1["deployments"].as_array().unwrap().len(), 1, "{feb1:#}");
    let staging = l.json(["population", "--period", "2026-01-01..2026-06-30", "--environment", "staging", "--json"]);
    assert_eq!(staging["deployments"].as_array().unwrap().len(), 1);
    let other = l.json(["population", "--period", "2026-01-01..2026-06-30", "--repo", "acme/other", "--json"]);
    assert_eq!(other["deployments"].as_array().unwrap().len(), 0);

    // CSV: a header and one row per deployment.
    let csv = l.stdout(["population", "--period", "2026-01-01..2026-06-30", "--csv"]);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "subject,seq,time,deployer,commits,changes");
    assert_eq!(rows.len(), 29);
    // A bad period is an error that names it.
    let out = l.command(["population", "--period", "2026-06-30..2026-01-01"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ends before it starts"));
}

#[test]
fn a_seeded_sample_redraws_the_same_locally_through_ledgerd_and_by_hand() {
    let l = Ledger::init();
    let tmp = TempDir::new().unwrap();
    history(&l, tmp.path(), 40, 0);
    let args = ["sample", "--period", "2026-01-01..2026-06-30", "--n", "25", "--seed", "SOC2-H1", "--json"];
    let local = l.json(args);
    assert_eq!(local["population"], 41);
    assert_eq!(local["n"], 25);
    assert_eq!(local["seed"], "SOC2-H1");
    assert!(
        local["checkpoint"].as_str().unwrap().contains('\u{2014}'),
        "no signed checkpoint: {}",
        local["checkpoint"]
    );
    let items = local["items"].as_array().unwrap();
    let subjects: Vec<&str> = items.iter().map(|i| i["subject"].as_str().unwrap()).collect();
    // By hand: every population member's key, the 25 smallest.
    let pop = l.json(["population", "--period", "2026-01-01..2026-06-30", "--json"]);
    let mut keyed: Vec<(String, String)> = pop["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let s = d["subject"].as_str().unwrap();
            (hex::encode(Sha256::digest(format!("ledger-sample-v1\nSOC2-H1\n{s}"))), s.to_string())
        })
        .collect();
    keyed.sort();
    let by_hand: Vec<&str> = keyed.iter().take(25).map(|(_, s)| s.as_str()).collect();
    assert_eq!(subjects, by_hand);
    for i in items {
        assert_eq!(i["why"]["subject"], i["subject"]);
        assert!(i["key"].as_str().unwrap().len() == 64);
    }
    // One offline-verifiable bundle of every entry the sample relies on.
    let bundle = tmp.path().join("sample.jsonl");
    let with_bundle = l.json([
        "sample",
        "--period",
        "2026-01-01..2026-06-30",
        "--n",
        "5",
        "--seed",
        "SOC2-H1",
        "--bundle",
        bundle.to_str().unwrap(),
        "--json",
    ]);
    let selected = with_bundle["bundle"]["selected"].as_u64().unwrap();
    // Each sampled deployment's two records, its change and merge, and the policy-free rest.
    assert!(selected >= 5 * 4, "{with_bundle:#}");
    let vkey = l.stdout(["log-key"]).trim().to_string();
    let verified = l.json(["verify-bundle", bundle.to_str().unwrap(), "--log-key", &vkey, "--json"]);
    assert_eq!(verified["ok"], true, "{verified:#}");
    assert_eq!(verified["selected"], selected, "{verified:#}");
    let text = std::fs::read_to_string(&bundle).unwrap();
    for item in with_bundle["items"].as_array().unwrap() {
        assert!(
            text.lines().next().unwrap().contains(item["subject"].as_str().unwrap()),
            "the selection names each item"
        );
    }

    // Another seed draws another sample.
    let other = l.json(["sample", "--period", "2026-01-01..2026-06-30", "--n", "25", "--seed", "other", "--json"]);
    let other_subjects: Vec<&str> =
        other["items"].as_array().unwrap().iter().map(|i| i["subject"].as_str().unwrap()).collect();
    assert_ne!(other_subjects, subjects);

    // Through ledgerd: the same sample and the same population.
    let log_key = l.db().join("keys").join("log.key");
    let d = crate::server_parity::Daemon::start(l.db(), &["--checkpoint-key", log_key.to_str().unwrap()]);
    let url = format!("http://{}", d.addr);
    let remote = |a: &[&str]| -> Value {
        let out = l.command(a).arg("--server").arg(&url).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let through = remote(&args);
    let through_subjects: Vec<&str> =
        through["items"].as_array().unwrap().iter().map(|i| i["subject"].as_str().unwrap()).collect();
    assert_eq!(through_subjects, subjects);
    assert_eq!(through["checkpoint"], local["checkpoint"], "the same tree, the same log key: the same checkpoint");
    assert_eq!(remote(&["population", "--period", "2026-01-01..2026-06-30", "--json"]), pop);
}

/// One pull request for the controls test: merged (squash) at 10:00 on `day`, deployed at 11:00.
#[derive(Clone, Copy)]
struct Pr<'a> {
    title: &'a str,
    labels: &'a [&'a str],
    /// Reviewers approving the head at 09:30 (before the merge).
    approvers: &'a [&'a str],
    /// A reviewer approving at 12:00 (after the deployment).
    after: Option<&'a str>,
    check: Option<&'a str>,
    ai: bool,
}

/// Seven April pull requests, one per control outcome (`deploy:shop/production/<i>`):
/// 0 every control passes; 1 unapproved; 2 self-approved with a failing check; 3 emergency,
/// reviewed after the deployment; 4 emergency, never reviewed after; 5 AI-assisted with a human
/// approval; 6 AI-assisted, only a bot approved.
pub(crate) fn seven_pull_requests(l: &Ledger, dir: &Path) {
    let base =
        Pr { title: "change", labels: &[], approvers: &["github:rev"], after: None, check: Some("pass"), ai: false };
    let prs = [
        base,
        Pr { approvers: &[], ..base },
        Pr { approvers: &["github:dev"], check: Some("fail"), ..base },
        Pr { labels: &["hotfix"], after: Some("github:rev2"), ..base },
        Pr { title: "Hotfix: stop the bleeding", ..base },
        Pr { ai: true, ..base },
        Pr { ai: true, approvers: &["renovate[bot]"], ..base },
    ];
    for (i, pr) in prs.iter().enumerate() {
        pull_request(l, dir, i, pr);
    }
}

pub(crate) fn append(l: &Ledger, dir: &Path, kind: &str, v: Value) {
    l.json(["append", "--kind", kind, "--body", &write(dir, "body.json", &v), "--json"]);
}

/// Pull request `i` of April 2026 (day `i + 1`): change, session, reviews, check, merge,
/// production deployment `deploy:shop/production/<i>`, and any after-the-fact review.
fn pull_request(l: &Ledger, dir: &Path, i: usize, pr: &Pr<'_>) {
    let head = format!("{i:0>8}{}", "a".repeat(32));
    let landed = format!("{i:0>8}{}", "b".repeat(32));
    let subject = format!("pr:acme/shop#{i}");
    let at = |hm: &str| format!("2026-04-{:02}T{hm}:00Z", 1 + i);
    let link = json!([{"rel": "change", "target": subject}]);
    append(
        l,
        dir,
        "change",
        json!({
            "actor": "github:dev", "time": at("09:00"), "repo": "acme/shop", "number": i, "title": pr.title,
            "author": "github:dev", "head_commit": head, "commits_total": 1, "labels": pr.labels,
        }),
    );
    if pr.ai {
        append(
            l,
            dir,
            "session",
            json!({
                "actor": "github:dev", "time": at("09:05"), "links": link, "tool": "codex", "model": "gpt-5",
                "session_id": format!("s{i}"),
            }),
        );
    }
    for who in pr.approvers {
        append(
            l,
            dir,
            "review",
            json!({
                "actor": who, "time": at("09:30"), "links": link, "repo": "acme/shop", "reviewer": who,
                "verdict": "approved", "commit": head,
            }),
        );
    }
    if let Some(result) = pr.check {
        append(
            l,
            dir,
            "evidence",
            json!({
                "actor": "ci:test", "time": at("09:40"), "repo": "acme/shop", "commit": head, "check": "unit-tests",
                "check_kind": "unit", "result": result,
            }),
        );
    }
    append(
        l,
        dir,
        "merge",
        json!({
            "actor": "github:lead", "time": at("10:00"), "links": link, "repo": "acme/shop", "merge_commit": landed,
            "head_commit": head, "method": "squash",
        }),
    );
    append(
        l,
        dir,
        "deployment",
        json!({
            "actor": "github:ops", "time": at("11:00"), "service": "shop", "environment": "production",
            "deployment_id": format!("{i}"), "repo": "acme/shop", "commits": [landed], "deployer": "github:ops",
            "status": "success",
        }),
    );
    if let Some(who) = pr.after {
        append(
            l,
            dir,
            "review",
            json!({
                "actor": who, "time": at("12:00"), "links": link, "repo": "acme/shop", "reviewer": who,
                "verdict": "approved", "commit": head,
            }),
        );
    }
}

#[test]
fn controls_are_counted_per_deployment_with_each_failure_named() {
    let l = Ledger::init();
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    seven_pull_requests(&l, dir);
    append(
        &l,
        dir,
        "deployment",
        json!({
            "actor": "github:ops", "time": "2026-04-20T11:00:00Z", "service": "shop", "environment": "production",
            "deployment_id": "stray", "repo": "acme/shop", "commits": ["f".repeat(40)], "deployer": "github:ops", "status": "success",
        }),
    );
    let out = l.command(["controls", "test", "--period", "2026-04-01..2026-04-30", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "controls fail: exit 1");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["population"], 8);
    let counts = |name: &str| {
        let c = v["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["control"] == name)
            .unwrap_or_else(|| panic!("no {name}"));
        let failing: Vec<String> =
            c["failing"].as_array().unwrap().iter().map(|f| f["subject"].as_str().unwrap().to_string()).collect();
        (c["passed"].as_u64().unwrap(), c["failed"].as_u64().unwrap(), c["not_applicable"].as_u64().unwrap(), failing)
    };
    let d = |ids: &[&str]| ids.iter().map(|i| format!("deploy:shop/production/{i}")).collect::<Vec<_>>();
    assert_eq!(counts("authorized"), (4, 4, 0, d(&["1", "2", "6", "stray"])), "{v:#}");
    assert_eq!(counts("tested"), (6, 2, 0, d(&["2", "stray"])), "{v:#}");
    assert_eq!(counts("linked"), (6, 2, 0, d(&["1", "stray"])), "{v:#}");
    assert_eq!(counts("emergency_reviewed"), (1, 1, 6, d(&["4"])), "{v:#}");
    assert_eq!(counts("ai_human_approved"), (1, 1, 6, d(&["6"])), "{v:#}");
    assert!(v["controls"].as_array().unwrap().iter().all(|c| c["control"] != "policy_gate"));
    let reason = &v["controls"][0]["failing"][0]["reason"];
    assert!(reason.as_str().unwrap().contains("no approval of the final commit"), "{reason}");

    // With a policy: the deploy gate of each deployment is a control too.
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "name = \"p\"\nversion = 1\ndefault_tier = \"T1\"\n[tiers.T1]\nchecks = [\"unit\"]\nmodels = false\n",
    )
    .unwrap();
    let policy = policy.to_str().unwrap();
    let v = l.json_code_any(["controls", "test", "--period", "2026-04-01..2026-04-30", "--policy", policy, "--json"]);
    let gate = v["controls"].as_array().unwrap().iter().find(|c| c["control"] == "policy_gate").expect("policy_gate");
    let failing: Vec<&str> =
        gate["failing"].as_array().unwrap().iter().map(|f| f["subject"].as_str().unwrap()).collect();
    assert_eq!(failing, ["deploy:shop/production/2", "deploy:shop/production/stray"], "{gate:#}");
    // Locally the gates are evaluated over the snapshot, on every core: each one decides as
    // `ledger gate` does over the store's indexes.
    let pop = l.json(["population", "--period", "2026-04-01..2026-04-30", "--json"]);
    for dep in pop["deployments"].as_array().unwrap() {
        let s = dep["subject"].as_str().unwrap();
        let g = l.json_code_any(["gate", s, "--stage", "deploy", "--policy", policy, "--json"]);
        assert_eq!(g["decision"] == "deny", failing.contains(&s), "{s}: {g:#}");
    }

    // Only the passing deployment's period: exit 0.
    let out = l.command(["controls", "test", "--period", "2026-04-01..2026-04-01"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn an_incident_without_an_explicit_cause_gets_an_inferred_one_with_its_reason() {
    let Some(pd) = crate::support::shared_data("realdata/incidents/pagerduty/triggered_v3.json") else { return };
    let l = Ledger::init();
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    // The PagerDuty service `pig208` opened PFQZPSY at 2021-06-04T13:35:29.781Z.
    let deployment = |id: &str, service: &str, env: &str, time: &str| {
        append(
            &l,
            dir,
            "deployment",
            json!({
                "actor": "github:ops", "time": time, "service": service, "environment": env, "deployment_id": id,
                "commits": ["a".repeat(40)], "deployer": "github:ops", "status": "success",
            }),
        );
    };
    deployment("old", "pig208", "production", "2021-06-03T10:00:00Z"); // more than 24 h before
    deployment("cause", "pig208", "production", "2021-06-04T10:20:00Z"); // 3 h 15 m before
    deployment("staging", "pig208", "staging", "2021-06-04T12:00:00Z"); // another environment
    deployment("after", "pig208", "production", "2021-06-04T14:00:00Z"); // after it opened
    deployment("other", "billing", "production", "2021-06-04T13:00:00Z"); // another service
    let v = l.json(["ingest", "incident", "--system", "pagerduty", pd.to_str().unwrap(), "--json"]);
    assert_eq!(v["appended"], 1, "{v}");
    // No change is recorded here: read the incident record itself.
    let rec = l.json_lines(["log", "--kind", "incident", "--json"]).pop().expect("the incident");
    let links = rec["record"]["links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{rec:#}");
    assert_eq!(links[0]["rel"], "caused_by_inferred");
    assert_eq!(links[0]["target"], "deploy:pig208/production/cause");
    let reason = rec["record"]["body"]["incident"]["inference"].as_str().unwrap();
    assert!(reason.contains("3h15m before the incident opened") && reason.contains("window 24 h"), "{reason}");

    // A narrower window finds nothing; --no-infer infers nothing; an explicit cause is kept
    // alone. Each on a fresh ledger holding only the deployment 3 h 15 m before (service and
    // environment compare without case).
    let incident_links = |extra: &[&str]| -> Vec<Value> {
        let fresh = Ledger::init();
        let body = json!({
            "actor": "github:ops", "time": "2021-06-04T10:20:00Z", "service": "PIG208", "environment": "Production",
            "deployment_id": "cause", "commits": ["a".repeat(40)], "deployer": "github:ops", "status": "success",
        });
        fresh.json(["append", "--kind", "deployment", "--body", &write(dir, "d.json", &body), "--json"]);
        let mut args = vec!["ingest", "incident", "--system", "pagerduty", pd.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        fresh.json(&args);
        let rec = fresh.json_lines(["log", "--kind", "incident", "--json"]).pop().unwrap();
        rec["record"]["links"].as_array().unwrap().clone()
    };
    assert_eq!(incident_links(&[]).len(), 1, "case-insensitive match");
    assert!(incident_links(&["--infer-window", "2h"]).is_empty());
    assert!(incident_links(&["--no-infer"]).is_empty());
    let explicit = incident_links(&["--caused-by", "deploy:api/production/9"]);
    assert_eq!(explicit.len(), 1);
    assert_eq!(
        (explicit[0]["rel"].as_str(), explicit[0]["target"].as_str()),
        (Some("caused_by"), Some("deploy:api/production/9"))
    );
}

#[test]
fn metrics_are_distributions_and_rates_with_their_parts() {
    let l = Ledger::init();
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    seven_pull_requests(&l, dir);
    // Deployment 6 is rolled back by a later one; an incident names deployment 2 explicitly
    // (restored in 3 h), another deployment 4 only by inference (restored in 1.5 h).
    append(
        &l,
        dir,
        "deployment",
        json!({
            "actor": "github:ops", "time": "2026-04-08T12:00:00Z", "service": "shop", "environment": "production",
            "deployment_id": "rollback", "repo": "acme/shop", "commits": [format!("{:0>8}{}", 5, "b".repeat(32))],
            "deployer": "github:ops", "status": "success", "rollback_of": "deploy:shop/production/6",
        }),
    );
    for (id, rel, cause, opened, resolved) in [
        ("P1", "caused_by", "deploy:shop/production/2", "2026-04-03T12:00:00Z", "2026-04-03T15:00:00Z"),
        ("P2", "caused_by_inferred", "deploy:shop/production/4", "2026-04-05T13:00:00Z", "2026-04-05T14:30:00Z"),
    ] {
        append(
            &l,
            dir,
            "incident",
            json!({
                "actor": "pagerduty:bot", "time": opened, "links": [{"rel": rel, "target": cause}], "system": "pagerduty",
                "incident_id": id, "title": "checkout errors", "opened": opened, "resolved": resolved,
            }),
        );
    }
    let m = l.json(["metrics", "--since", "2026-04-01", "--until", "2026-04-30", "--by", "service", "--json"]);
    let a = &m["all"];
    assert_eq!(a["deployments"], 8, "{m:#}");
    assert_eq!(a["deployments_per_day"], 0.27);
    assert_eq!(a["change_failure_rate"], json!({"numerator": 2, "denominator": 8, "rate": 0.25}));
    assert_eq!(a["change_failure_rate_with_inferred"], json!({"numerator": 3, "denominator": 8, "rate": 0.375}));
    assert_eq!(a["lead_time_merge_hours"], json!({"count": 7, "median": 1.0, "p90": 1.0}));
    assert_eq!(a["lead_time_first_commit_hours"]["count"], 0, "no commit lists recorded");
    assert_eq!(a["time_to_restore_hours"], json!({"count": 2, "median": 1.5, "p90": 3.0}));
    assert_eq!(a["with_test_evidence"], json!({"numerator": 6, "denominator": 7, "rate": 0.8571}));
    assert_eq!(a["with_test_delta"], json!({"numerator": 0, "denominator": 0, "rate": null}));
    assert_eq!(a["approved_at_final_commit"], json!({"numerator": 4, "denominator": 7, "rate": 0.5714}));
    assert_eq!(a["ai_assisted"], json!({"numerator": 2, "denominator": 7, "rate": 0.2857}));
    assert_eq!(a["review_time_hours"], json!({"count": 6, "median": 0.5, "p90": 0.5}));
    assert_eq!(m["groups"]["shop"], m["all"], "one service: its group is everything");
    assert_eq!(m["exceptions"], json!({"open": 0, "expired": 0}));
    assert!(m["ai_spend_per_engineer_month"].is_null());
    assert!(m["findings"].as_array().unwrap().is_empty(), "{m:#}");
    let text = l.stdout(["metrics", "--since", "2026-04-01", "--until", "2026-04-30"]);
    assert!(text.contains("change failure rate") && text.contains("25.0% (2/8)"), "{text}");
    let out =
        l.command(["metrics", "--since", "2026-04-01", "--until", "2026-04-30", "--by", "team"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));

    // AI tooling spend, from sessions that record a cost (provenance files), per currency.
    for (i, (id, amount, currency)) in
        [("c1", json!(30), "USD"), ("c2", json!("12.5"), "usd"), ("c3", json!(10.0), "EUR")].into_iter().enumerate()
    {
        let file = dir.join(format!("prov-{id}.json"));
        let prov = json!({"tool": "claude-code", "session_id": id, "time": "2026-04-02T09:00:00Z",
                          "cost": {"amount": amount, "currency": currency}});
        std::fs::write(&file, prov.to_string()).unwrap();
        let change = format!("pr:acme/shop#{i}");
        l.json(["ingest", "provenance", file.to_str().unwrap(), "--change", &change, "--json"]);
    }
    let m = l.json(["metrics", "--since", "2026-04-01", "--until", "2026-04-30", "--json"]);
    let months = 30.0 / 30.44;
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    assert_eq!(
        m["ai_spend"],
        json!([
            {"currency": "EUR", "total": 10.0, "sessions": 1, "engineers": 1, "months": round2(months),
             "per_engineer_month": round2(10.0 / months)},
            {"currency": "USD", "total": 42.5, "sessions": 2, "engineers": 1, "months": round2(months),
             "per_engineer_month": round2(42.5 / months)},
        ]),
        "{m:#}"
    );
    assert!(m["ai_spend_per_engineer_month"].is_null(), "two currencies: no single figure");
    let bad = dir.join("prov-bad.json");
    std::fs::write(
        &bad,
        json!({"tool": "codex", "session_id": "x", "cost": {"amount": -1, "currency": "USD"}}).to_string(),
    )
    .unwrap();
    let out =
        l.command(["ingest", "provenance", bad.to_str().unwrap(), "--change", "pr:acme/shop#0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a negative cost is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cost"), "the error names the field");
}
