//! A generated half-year through the real ingest paths: 1,040 pull requests over two services,
//! each delivered as GitHub webhook payloads built from the recorded deliveries in
//! `../shared/realdata` (opened, review, check run, closed and merged, deployment, deployment
//! status) and read by `ledger ingest github`; direct pushes; PagerDuty incidents read by
//! `ledger ingest incident`, explicitly linked or only inferable; rollbacks. The history has a
//! known set of control failures, emergency changes, incidents and rollbacks, and a model of it
//! here says what every control count, every metric and the sample must be: each is asserted
//! exactly, and the sample is drawn again through `ledgerd`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::support::Ledger;

mod deliveries;
use deliveries::{write_delivery, Templates};

/// Pull requests in the half-year.
const N: usize = 1040;
/// 2026-01-01T00:00:00Z, in seconds.
const BASE: i64 = 1_767_225_600;
const HOUR: i64 = 3600;
const PERIOD: &str = "2026-01-01..2026-06-30";

// The history's classes, by pull request number `i` (0-based).
fn unapproved(i: usize) -> bool {
    i % 50 == 7
}
fn self_approved(i: usize) -> bool {
    i % 50 == 17
}
fn failing_check(i: usize) -> bool {
    i % 50 == 27
}
fn no_check(i: usize) -> bool {
    i % 50 == 37
}
/// Labelled `hotfix`.
fn emergency(i: usize) -> bool {
    i % 40 == 3
}
/// An emergency change reviewed within 48 h after its deployment (the others are not).
fn reviewed_after(i: usize) -> bool {
    i % 80 == 3
}
fn ai(i: usize) -> bool {
    i % 4 == 1
}
fn undeployed(i: usize) -> bool {
    i % 100 == 99
}
/// Rolled back 30 min after its deployment (redeploying change `i - 2`), with an explicit
/// incident opened 10 min after the deployment and never resolved.
fn rolled_back(i: usize) -> bool {
    i % 60 == 23
}
/// An incident naming the deployment explicitly, opened 2 h after it, resolved 3 h later.
fn explicit_incident(i: usize) -> bool {
    i % 60 == 11
}
/// An incident of the service 1 h after the deployment, without a cause: inferred; resolved
/// 1.5 h later.
fn inferred_incident(i: usize) -> bool {
    i % 60 == 41
}
/// Deployed 4 h after the merge instead of 1 h.
fn slow(i: usize) -> bool {
    i.is_multiple_of(10)
}

fn service(i: usize) -> &'static str {
    if i.is_multiple_of(2) {
        "shop"
    } else {
        "payments"
    }
}
fn author(i: usize) -> String {
    format!("dev{}", i % 7)
}
fn reviewer(i: usize) -> String {
    format!("rev{}", i % 5)
}
fn opened_at(i: usize) -> i64 {
    BASE + i as i64 * 4 * HOUR
}
fn merged_at(i: usize) -> i64 {
    opened_at(i) + HOUR
}
fn deployed_at(i: usize) -> i64 {
    merged_at(i) + if slow(i) { 4 * HOUR } else { HOUR }
}
fn head(i: usize) -> String {
    format!("a1{i:038x}")
}
fn landed(i: usize) -> String {
    format!("b2{i:038x}")
}
fn pr_subject(i: usize) -> String {
    format!("pr:acme/{}#{}", service(i), 1000 + i)
}
fn deploy_subject(svc: &str, id: usize) -> String {
    format!("deploy:{svc}/production/{id}")
}
fn lines(i: usize) -> u64 {
    (10 + i % 50 + i % 7) as u64
}

fn time(sec: i64) -> String {
    jiff::Timestamp::from_second(sec).expect("a time").to_string()
}

/// A direct push that is deployed, and one that is not.
const PUSHED: [(&str, i64); 2] = [("e5", 175 * 24 * HOUR), ("e6", 176 * 24 * HOUR)];
fn pushed_sha(tag: &str) -> String {
    format!("{tag}{}", "7".repeat(38))
}
const STRAYS: [usize; 3] = [300_001, 300_002, 300_003];
const PUSH_DEPLOYMENT: usize = 300_010;

/// Builds the ledger: every delivery through `ledger ingest github`, incidents through
/// `ledger ingest incident`.
fn build(l: &Ledger, t: &Templates, dir: &Path) {
    let gh = dir.join("github");
    std::fs::create_dir_all(&gh).unwrap();
    let mut files: Vec<PathBuf> = vec![];
    for i in 0..N {
        let name = |what: &str| format!("{i:05}-{what}");
        files.push(write_delivery(&gh, &name("1-opened"), "pull_request", &t.pull_request(i, false)));
        if !unapproved(i) {
            let who = if self_approved(i) { author(i) } else { reviewer(i) };
            files.push(write_delivery(
                &gh,
                &name("2-review"),
                "pull_request_review",
                &t.review(i, &who, opened_at(i) + 30 * 60, 10 * i as u64 + 1),
            ));
        }
        if !no_check(i) {
            files.push(write_delivery(&gh, &name("3-check"), "check_run", &t.check(i)));
        }
        files.push(write_delivery(&gh, &name("4-closed"), "pull_request", &t.pull_request(i, true)));
        if undeployed(i) {
            continue;
        }
        let [d, s] = t.deployment(service(i), 100_000 + i, &landed(i), deployed_at(i), None);
        files.push(write_delivery(&gh, &name("5-deployment"), "deployment", &d));
        files.push(write_delivery(&gh, &name("6-status"), "deployment_status", &s));
        if emergency(i) && reviewed_after(i) {
            let late = t.review(i, "rev-oncall", deployed_at(i) + 2 * HOUR, 10 * i as u64 + 2);
            files.push(write_delivery(&gh, &name("7-review-after"), "pull_request_review", &late));
        }
        if rolled_back(i) {
            let [d, s] =
                t.deployment(service(i), 200_000 + i, &landed(i - 2), deployed_at(i) + 30 * 60, Some(100_000 + i));
            files.push(write_delivery(&gh, &name("8-rollback"), "deployment", &d));
            files.push(write_delivery(&gh, &name("9-rollback-status"), "deployment_status", &s));
        }
    }
    for (k, id) in STRAYS.iter().enumerate() {
        let at = BASE + (177 + k as i64) * 24 * HOUR;
        let [d, s] = t.deployment("shop", *id, &format!("f0{:038x}", k), at, None);
        files.push(write_delivery(&gh, &format!("stray-{k}-a"), "deployment", &d));
        files.push(write_delivery(&gh, &format!("stray-{k}-b"), "deployment_status", &s));
    }
    for (tag, at) in PUSHED {
        files.push(write_delivery(&gh, &format!("push-{tag}"), "push", &t.push(&pushed_sha(tag), BASE + at)));
    }
    let [d, s] = t.deployment("shop", PUSH_DEPLOYMENT, &pushed_sha(PUSHED[0].0), BASE + PUSHED[0].1 + HOUR, None);
    files.push(write_delivery(&gh, "push-deploy-a", "deployment", &d));
    files.push(write_delivery(&gh, "push-deploy-b", "deployment_status", &s));

    let mut args: Vec<String> = vec!["ingest".into(), "github".into(), "--json".into()];
    args.extend(files.iter().map(|f| f.to_str().unwrap().to_string()));
    let summary = l.json(&args);
    assert_eq!(summary["files"].as_array().map(Vec::len), Some(files.len()), "every delivery read");
    let skipped: Vec<&Value> =
        summary["files"].as_array().unwrap().iter().filter(|f| !f["skipped"].is_null()).collect();
    assert!(skipped.is_empty(), "no delivery skipped: {skipped:#?}");

    // Incidents: explicit ones one by one (each names its cause), the rest together.
    let pd = dir.join("pagerduty");
    std::fs::create_dir_all(&pd).unwrap();
    let write_pd = |name: &str, v: &Value| -> String {
        let p = pd.join(format!("{name}.json"));
        std::fs::write(&p, serde_json::to_vec(v).unwrap()).unwrap();
        p.to_str().unwrap().to_string()
    };
    let mut inferable = vec![];
    for i in (0..N).filter(|i| !undeployed(*i)) {
        let cause = deploy_subject(service(i), 100_000 + i);
        let explicit = if explicit_incident(i) {
            Some(t.incident(&format!("QX{i}"), service(i), deployed_at(i) + 2 * HOUR, Some(deployed_at(i) + 5 * HOUR)))
        } else if rolled_back(i) {
            Some(t.incident(&format!("QR{i}"), service(i), deployed_at(i) + 10 * 60, None))
        } else {
            None
        };
        if let Some(events) = explicit {
            let mut args = vec!["ingest".to_string(), "incident".into(), "--system".into(), "pagerduty".into()];
            for (k, e) in events.iter().enumerate() {
                args.push(write_pd(&format!("x{i}-{k}"), e));
            }
            args.extend(["--caused-by".into(), cause, "--json".into()]);
            l.json(&args);
        }
        if inferred_incident(i) {
            let events =
                t.incident(&format!("QI{i}"), service(i), deployed_at(i) + HOUR, Some(deployed_at(i) + HOUR * 5 / 2));
            for (k, e) in events.iter().enumerate() {
                inferable.push(write_pd(&format!("i{i}-{k}"), e));
            }
        }
    }
    let mut args = vec!["ingest".to_string(), "incident".into(), "--system".into(), "pagerduty".into()];
    args.extend(inferable);
    args.push("--json".into());
    l.json(&args);
}

/// One deployment of the population, as the model has it.
struct Dep {
    subject: String,
    /// Pull request numbers it ships (or a direct push's change subject).
    prs: Vec<usize>,
    direct: Option<String>,
    at: i64,
}

fn model_population() -> Vec<Dep> {
    let mut out = vec![];
    for i in (0..N).filter(|i| !undeployed(*i)) {
        out.push(Dep {
            subject: deploy_subject(service(i), 100_000 + i),
            prs: vec![i],
            direct: None,
            at: deployed_at(i),
        });
        if rolled_back(i) {
            out.push(Dep {
                subject: deploy_subject(service(i), 200_000 + i),
                prs: vec![i - 2],
                direct: None,
                at: deployed_at(i) + 30 * 60,
            });
        }
    }
    for (k, id) in STRAYS.iter().enumerate() {
        out.push(Dep {
            subject: deploy_subject("shop", *id),
            prs: vec![],
            direct: None,
            at: BASE + (177 + k as i64) * 24 * HOUR,
        });
    }
    out.push(Dep {
        subject: deploy_subject("shop", PUSH_DEPLOYMENT),
        prs: vec![],
        direct: Some(format!("git:acme/shop@{}", pushed_sha(PUSHED[0].0))),
        at: BASE + PUSHED[0].1 + HOUR,
    });
    out
}

/// `Some(true)` pass, `Some(false)` fail, `None` not applicable.
fn model_control(control: &str, d: &Dep) -> Option<bool> {
    let any_change = !d.prs.is_empty() || d.direct.is_some();
    let authorized = |i: &usize| !unapproved(*i) && !self_approved(*i);
    match control {
        "authorized" => Some(any_change && d.direct.is_none() && d.prs.iter().all(authorized)),
        "tested" => Some(any_change && d.direct.is_none() && d.prs.iter().all(|i| !failing_check(*i) && !no_check(*i))),
        "linked" => Some(any_change && d.direct.is_none() && d.prs.iter().all(|i| !unapproved(*i))),
        "emergency_reviewed" => {
            let em: Vec<&usize> = d.prs.iter().filter(|i| emergency(**i)).collect();
            (!em.is_empty()).then(|| em.iter().all(|i| reviewed_after(**i)))
        }
        "ai_human_approved" => {
            let a: Vec<&usize> = d.prs.iter().filter(|i| ai(**i)).collect();
            (!a.is_empty()).then(|| a.iter().all(|i| authorized(i)))
        }
        other => panic!("no model of {other}"),
    }
}

/// Nearest rank, as docs/METRICS.md defines it, rounded to 0.01.
fn nearest_rank(mut v: Vec<f64>) -> Value {
    v.sort_by(f64::total_cmp);
    let at = |p: f64| -> Value {
        if v.is_empty() {
            return Value::Null;
        }
        let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        json!((v[i] * 100.0).round() / 100.0)
    };
    json!({"count": v.len(), "median": at(0.5), "p90": at(0.9)})
}

fn rate(n: usize, d: usize) -> Value {
    let r = if d == 0 { Value::Null } else { json!(((n as f64 / d as f64) * 10_000.0).round() / 10_000.0) };
    json!({"numerator": n, "denominator": d, "rate": r})
}

#[test]
fn a_generated_half_year_gives_exact_controls_metrics_and_sample() {
    let Some(t) = Templates::load() else { return };
    let tmp = TempDir::new().unwrap();
    let l = Ledger::init();
    build(&l, &t, tmp.path());
    let deployed: Vec<usize> = (0..N).filter(|i| !undeployed(*i)).collect();
    let model = model_population();

    // The population and its completeness findings.
    let pop = l.json(["population", "--period", PERIOD, "--json"]);
    let got: BTreeMap<String, (i64, Vec<String>)> = pop["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let changes = d["changes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
            let at: jiff::Timestamp = d["time"].as_str().unwrap().parse().unwrap();
            (d["subject"].as_str().unwrap().to_string(), (at.as_second(), changes))
        })
        .collect();
    let want: BTreeMap<String, (i64, Vec<String>)> = model
        .iter()
        .map(|d| (d.subject.clone(), (d.at, d.prs.iter().map(|i| pr_subject(*i)).chain(d.direct.clone()).collect())))
        .collect();
    assert_eq!(got.len(), want.len(), "population size");
    assert_eq!(got, want, "every deployment, when it succeeded, and the changes it shipped");
    let findings: BTreeSet<(String, String)> = pop["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["code"].as_str().unwrap().to_string(), f["subject"].as_str().unwrap().to_string()))
        .collect();
    let mut want_findings: BTreeSet<(String, String)> = BTreeSet::new();
    for id in STRAYS {
        want_findings.insert(("deployment_without_change".into(), deploy_subject("shop", id)));
    }
    for (tag, _) in PUSHED {
        want_findings.insert(("landing_without_pull_request".into(), format!("git:acme/shop@{}", pushed_sha(tag))));
    }
    want_findings.insert(("change_not_deployed".into(), format!("git:acme/shop@{}", pushed_sha(PUSHED[1].0))));
    for i in (0..N).filter(|i| undeployed(*i)) {
        want_findings.insert(("change_not_deployed".into(), pr_subject(i)));
    }
    assert_eq!(findings, want_findings);

    // Every control: counts and the failing deployments, exactly.
    let controls = l.json_code_any(["controls", "test", "--period", PERIOD, "--json"]);
    assert_eq!(controls["population"], model.len());
    for c in controls["controls"].as_array().unwrap() {
        let name = c["control"].as_str().unwrap();
        let outcomes: Vec<(&Dep, Option<bool>)> = model.iter().map(|d| (d, model_control(name, d))).collect();
        let count = |o: Option<bool>| outcomes.iter().filter(|(_, x)| *x == o).count();
        assert_eq!(
            (c["passed"].as_u64(), c["failed"].as_u64(), c["not_applicable"].as_u64()),
            (Some(count(Some(true)) as u64), Some(count(Some(false)) as u64), Some(count(None) as u64)),
            "{name}"
        );
        let failing: BTreeSet<&str> =
            c["failing"].as_array().unwrap().iter().map(|f| f["subject"].as_str().unwrap()).collect();
        let want: BTreeSet<&str> =
            outcomes.iter().filter(|(_, x)| *x == Some(false)).map(|(d, _)| d.subject.as_str()).collect();
        assert_eq!(failing, want, "{name}: the failing deployments");
    }
    for name in ["emergency_reviewed", "ai_human_approved", "authorized", "tested", "linked"] {
        let c = controls["controls"].as_array().unwrap().iter().find(|c| c["control"] == name);
        assert!(c.is_some_and(|c| c["failed"].as_u64() > Some(0)), "{name}: the history has failures of it");
    }

    // The metrics of the half-year.
    let m = l.json(["metrics", "--since", "2026-01-01", "--until", "2026-06-30", "--json"]);
    let a = &m["all"];
    let days = 181.0;
    assert_eq!(a["deployments"], model.len());
    assert_eq!(a["deployments_per_day"], json!((model.len() as f64 / days * 100.0).round() / 100.0));
    let explicit_failed = deployed.iter().filter(|i| explicit_incident(**i) || rolled_back(**i)).count();
    let inferred_failed = deployed.iter().filter(|i| inferred_incident(**i)).count();
    assert!(explicit_failed > 0 && inferred_failed > 0);
    assert_eq!(a["change_failure_rate"], rate(explicit_failed, model.len()), "{m:#}");
    assert_eq!(a["change_failure_rate_with_inferred"], rate(explicit_failed + inferred_failed, model.len()));
    let mut lead: Vec<f64> = deployed.iter().map(|i| (deployed_at(*i) - merged_at(*i)) as f64 / HOUR as f64).collect();
    lead.push(1.0); // the deployed direct push, an hour after it landed
    assert_eq!(a["lead_time_merge_hours"], nearest_rank(lead), "{m:#}");
    assert_eq!(a["lead_time_first_commit_hours"], nearest_rank(vec![1.0]), "only the push lists its commit");
    let mut restore = vec![];
    for i in &deployed {
        if explicit_incident(*i) {
            restore.push(3.0);
        }
        if rolled_back(*i) {
            restore.push(20.0 / 60.0); // opened 10 min after the deployment, rolled back at 30 min
        }
        if inferred_incident(*i) {
            restore.push(1.5);
        }
    }
    assert_eq!(a["time_to_restore_hours"], nearest_rank(restore), "{m:#}");
    let merged = N + PUSHED.len();
    let tested = (0..N).filter(|i| !failing_check(*i) && !no_check(*i)).count();
    assert_eq!(a["with_test_evidence"], rate(tested, merged));
    assert_eq!(a["with_test_delta"], rate(0, PUSHED.len()), "only pushes list their paths");
    let approved = (0..N).filter(|i| !unapproved(*i) && !self_approved(*i)).count();
    assert_eq!(a["approved_at_final_commit"], rate(approved, merged));
    let ai_changes: Vec<usize> = (0..N).filter(|i| ai(*i)).collect();
    assert_eq!(a["ai_assisted"], rate(ai_changes.len(), merged));
    assert_eq!(a["ai_diff_lines"], nearest_rank(ai_changes.iter().map(|i| lines(*i) as f64).collect()));
    let reviewed = (0..N).filter(|i| !unapproved(*i)).count();
    assert_eq!(a["review_time_hours"], nearest_rank(vec![0.5; reviewed]));
    assert_eq!(m["exceptions"], json!({"open": 0, "expired": 0}));
    assert_eq!(m["findings"], json!([]), "steady lead time and failure rate: no integrity finding");

    // Inferred causes are shown as inferred; explicit ones as explicit.
    let i = deployed.iter().copied().find(|i| inferred_incident(*i)).unwrap();
    let why = l.why_one_change(&format!("incident:pagerduty/QI{i}"));
    let inc = &why["incidents"][0];
    assert_eq!(
        (inc["cause"].as_str(), inc["inferred"].as_bool()),
        (Some(deploy_subject(service(i), 100_000 + i).as_str()), Some(true))
    );
    let i = deployed.iter().copied().find(|i| explicit_incident(*i)).unwrap();
    let why = l.why_one_change(&format!("incident:pagerduty/QX{i}"));
    assert_eq!(why["incidents"][0]["inferred"], false);

    // The sample: by hand from the model's population, locally, and through ledgerd.
    let sample_args = ["sample", "--period", PERIOD, "--n", "25", "--seed", "SOX-2026-H1", "--json"];
    let local = l.json(sample_args);
    let subjects: Vec<String> =
        local["items"].as_array().unwrap().iter().map(|i| i["subject"].as_str().unwrap().to_string()).collect();
    let mut keyed: Vec<(String, &str)> = model
        .iter()
        .map(|d| {
            (hex::encode(Sha256::digest(format!("ledger-sample-v1\nSOX-2026-H1\n{}", d.subject))), d.subject.as_str())
        })
        .collect();
    keyed.sort();
    let by_hand: Vec<&str> = keyed.iter().take(25).map(|(_, s)| *s).collect();
    assert_eq!(subjects, by_hand, "the sample is the documented draw over the population");
    assert_eq!(local["population"], model.len());
    let log_key = l.db().join("keys").join("log.key");
    let d = crate::server_parity::Daemon::start(l.db(), &["--checkpoint-key", log_key.to_str().unwrap()]);
    let out = l.command(sample_args).arg("--server").arg(format!("http://{}", d.addr)).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let remote: Value = serde_json::from_slice(&out.stdout).unwrap();
    let remote_subjects: Vec<String> =
        remote["items"].as_array().unwrap().iter().map(|i| i["subject"].as_str().unwrap().to_string()).collect();
    assert_eq!(remote_subjects, subjects, "the same seed draws the same sample through ledgerd");
    assert_eq!(remote["checkpoint"], local["checkpoint"]);

    // The workpaper: the same page from the local snapshot and through ledgerd.
    let page = |name: &str, server: Option<&str>| -> Vec<u8> {
        let path = tmp.path().join(name);
        let mut cmd = l.command(["report", "workpaper", "--period", PERIOD, "--seed", "SOX-2026-H1", "--n", "25"]);
        cmd.arg("--html").arg(&path);
        if let Some(url) = server {
            cmd.arg("--server").arg(url);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read(&path).unwrap()
    };
    let through = page("remote.html", Some(&format!("http://{}", d.addr)));
    drop(d);
    let here = page("local.html", None);
    assert!(here == through, "the workpaper differs between the local store and ledgerd");
    let html = String::from_utf8(here).unwrap();
    for s in &subjects {
        assert!(html.contains(&format!("data-subject=\"{s}\"")), "{s} has its section in the workpaper");
    }
}
