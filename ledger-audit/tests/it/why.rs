//! `why` from hand-built records: one realistic change pinned byte for byte (`golden_report`),
//! and a table with a row per finding code (`finding_codes`) whose messages are pinned too.
//!
//! The goldens are the files `why_golden.json` and `why_findings.txt` next to this one. The JSON
//! form is documented in docs/WHY.md and read by the CLI and the gRPC parity test, so a diff
//! there is a format change. After an intended one, rewrite them with
//! `UPDATE_GOLDEN=1 cargo test -p ledger-audit --test it` and review the diff.

use std::path::Path;

use ledger_audit::why::{analyze, Finding, Gathered, Trust, WhyReport};
use ledger_core::domain::FORMAT_VERSION;
use ledger_core::record::{
    Body, Change, Channel, CheckKind, CheckResult, CommitInfo, CommitSignature, DeployStatus, Deployment, Evidence,
    Exception, Incident, Link, Merge, MergeMethod, Model, Record, Rel, Review, Session, SignatureCheck, Source,
    Trailer, Verdict,
};
use ledger_core::subject::Subject;
use ledger_core::types::{CommitId, Digest, EntryHash, KeyId, RepoName, Seq, Tier, Timestamp, Token};

// Record number `n` happens `n` minutes after T0.
use crate::fixtures::{id, sha, ALICE, BOB, BOT, DAY, FRANK, GRACE, MINUTE, OPS, T0};

const CAROL: &str = "Carol <carol@example.com>";
const DAVE: &str = "Dave <dave@example.com>";
const ERIN: &str = "Erin <erin@example.com>";
const CI: &str = "github-actions[bot]";

/// Every code `why` can report; the table must show each at least once.
const ALL_CODES: &[&str] = &[
    "no_change",
    "no_approval",
    "stale_approval",
    "no_approval_at_final_commit",
    "dismissed_approval",
    "self_approval",
    "no_independent_approval",
    "ai_without_human_approval",
    "changes_requested",
    "not_merged",
    "no_pull_request",
    "merger_unknown",
    "no_evidence",
    "failing_check",
    "deployed_without_passing_checks",
    "deployer_sole_approver",
    "incident",
    "exception_expired",
    "approval_after_merge",
    "deployed_before_merge",
    "cause_precedes_deployment",
    "unverified_evidence",
    "untrusted_builder",
];

fn token(s: &str) -> Token {
    Token::new(s).unwrap()
}
fn repo() -> RepoName {
    RepoName::new("acme/shop").unwrap()
}
/// The change's first commit: approvals of it are stale.
fn old() -> CommitId {
    sha('1')
}
/// The change's head at merge: the final commit.
fn head() -> CommitId {
    sha('2')
}
/// The merge commit that landed (and was deployed).
fn landed() -> CommitId {
    sha('a')
}
fn pr() -> Subject {
    "pr:acme/shop#42".parse().unwrap()
}
fn at(minutes: i64) -> Timestamp {
    Timestamp(T0 + minutes * MINUTE)
}
/// The time of the report: exceptions ending before it have expired.
fn now() -> Timestamp {
    Timestamp(T0 + 30 * DAY)
}
fn link(rel: Rel, target: Subject) -> Link {
    Link { rel, target }
}
fn of_change() -> Vec<Link> {
    vec![link(Rel::Change, pr())]
}

/// Records as `why` receives them, numbered in the order they are added.
#[derive(Default)]
struct Log(Vec<Gathered>);

impl Log {
    fn add(&mut self, actor: &str, links: Vec<Link>, body: Body) {
        let time = at(self.0.len() as i64);
        self.add_at(time, actor, links, body);
    }

    /// [`Log::add`] with the record's own time given.
    fn add_at(&mut self, time: Timestamp, actor: &str, links: Vec<Link>, body: Body) {
        let n = self.0.len();
        let record = Record { v: FORMAT_VERSION, time, actor: id(actor), links, body };
        // Every record is signed by the `ci` key, whose id is all 0xC1 bytes.
        let gathered = Gathered {
            seq: Seq(n as u64),
            hash: EntryHash([n as u8; 32]),
            integrated: Timestamp(time.0 + 1000),
            record,
            signer: KeyId([0xC1; 32]),
            signer_name: Some("ci".into()),
        };
        self.0.push(gathered);
    }
}

fn commit(
    sha: CommitId,
    author: &str,
    title: &str,
    signature: CommitSignature,
    trailers: &[(&str, &str)],
) -> CommitInfo {
    CommitInfo {
        sha,
        author: id(author),
        authored_at: at(0),
        committer: id(author),
        committed_at: at(0),
        title: title.into(),
        signature,
        trailers: trailers.iter().map(|(k, v)| Trailer { key: (*k).into(), value: (*v).into() }).collect(),
    }
}

fn change(title: &str, commits: Vec<CommitInfo>) -> Body {
    let head_commit = commits.last().unwrap().sha.clone();
    Body::Change(Change {
        repo: repo(),
        number: Some(42),
        title: title.into(),
        description: None,
        author: id(ALICE),
        head_commit,
        base_commit: None,
        commits_total: commits.len() as u64,
        commits,
        risk_tier: None,
        intent: None,
        source: None,
        paths: None,
        lines_added: None,
        lines_removed: None,
        labels: vec![],
    })
}

fn review(reviewer: &str, verdict: Verdict, commit: CommitId, source: Option<Source>) -> Body {
    Body::Review(Review { repo: repo(), reviewer: id(reviewer), verdict, commit, source })
}

fn evidence(check: &str, result: CheckResult, commit: CommitId) -> Body {
    Body::Evidence(Evidence {
        repo: repo(),
        commit,
        check: check.into(),
        check_kind: CheckKind::Other,
        result,
        artifact: None,
        predicate_type: None,
        url: None,
        signature: None,
        source: None,
        builder: None,
    })
}

fn session() -> Body {
    Body::Session(Session {
        tool: token("codex"),
        model: Some("Codex 5.3".into()),
        session_id: token("s-1"),
        prompt_digest: None,
        summary: Some("draft the cart totals".into()),
        context: vec![],
        declared_reviewer: None,
        risk_area: None,
        verification: vec![],
        source: Some(Source::GitCommit { commit: head(), trailer: Some("Assisted-by".into()) }),
        cost: None,
    })
}

fn merge(method: MergeMethod, merged_by: Option<&str>) -> Body {
    Body::Merge(Merge {
        repo: repo(),
        merge_commit: landed(),
        head_commit: head(),
        base_commit: None,
        merged_by: merged_by.map(id),
        method,
        source: None,
    })
}

fn exception(not_after: Timestamp) -> Body {
    Body::Exception(Exception {
        approver: id(GRACE),
        reason: "release freeze waiver".into(),
        scope: pr(),
        rule: None,
        not_after,
    })
}

fn deployment(service: &str, deployer: &str, status: DeployStatus, commit: CommitId) -> Body {
    Body::Deployment(Deployment {
        service: token(service),
        environment: token("production"),
        deployment_id: token("7"),
        repo: Some(repo()),
        commits: vec![commit],
        version: None,
        deployer: id(deployer),
        status,
        rollback_of: None,
        source: None,
        strategy: None,
    })
}

fn incident(incident_id: &str, title: &str, severity: Option<&str>, resolved: Option<Timestamp>) -> Body {
    Body::Incident(Incident {
        system: token("pagerduty"),
        incident_id: token(incident_id),
        title: title.into(),
        service: None,
        severity: severity.map(Into::into),
        opened: at(60),
        resolved,
        source: None,
        inference: None,
    })
}

fn deploy_subject(service: &str) -> Subject {
    format!("deploy:{service}/production/7").parse().unwrap()
}

/// A change with everything `why` links: a draft change record then the final one (two commits
/// by two authors, the second AI-assisted), an AI session and the `model` record naming its model,
/// approvals at an older and at the final commit, a dismissed approval, changes requested and
/// never withdrawn, passing and failing checks, an expired exception, a merge, a deployment that
/// ends in success (deployed by the only valid approver) and two incidents caused by what shipped.
/// Unrelated evidence, deployments and incidents are mixed in and must stay out of the report.
fn realistic() -> Vec<Gathered> {
    let first = || commit(old(), ALICE, "Add cart model", CommitSignature::Ssh, &[]);
    let second = commit(
        head(),
        BOB,
        "Compute totals",
        CommitSignature::None,
        &[("Assisted-by", "codex"), ("Signed-off-by", BOB)],
    );
    let payload = Source::payload("github-review", Digest::blake3_of(b"review"));
    let trailer = Source::GitCommit { commit: landed(), trailer: Some("Reviewed-by".into()) };

    let mut log = Log::default();
    log.add(ALICE, vec![], change("Add cart totals (draft)", vec![first()])); // 0
    log.add(ALICE, of_change(), session()); // 1
    let model = Model {
        tool: token("codex"),
        model: "Codex 5.3".into(),
        approved_tiers: vec![Tier::T0, Tier::T1],
        not_after: None,
    };
    log.add(GRACE, vec![], Body::Model(model)); // 2
    log.add(CAROL, of_change(), review(CAROL, Verdict::Approved, old(), Some(payload))); // 3
    log.add(CI, of_change(), evidence("unit-tests", CheckResult::Pass, old())); // 4
    log.add(ALICE, vec![], change("Add cart totals", vec![first(), second])); // 5
    log.add(ERIN, of_change(), review(ERIN, Verdict::ChangesRequested, head(), None)); // 6
    log.add(DAVE, of_change(), review(DAVE, Verdict::Approved, head(), None)); // 7
    log.add(DAVE, of_change(), review(DAVE, Verdict::Dismissed, head(), None)); // 8
    log.add(FRANK, of_change(), review(FRANK, Verdict::Approved, head(), Some(trailer))); // 9
    log.add(CI, of_change(), evidence("unit-tests", CheckResult::Pass, head())); // 10
                                                                                 // Not linked to the change: found through the final commit.
    log.add(CI, vec![], evidence("lint", CheckResult::Fail, head())); // 11
    log.add(CI, vec![], evidence("unit-tests", CheckResult::Pass, sha('9'))); // 12, unrelated
    log.add(GRACE, vec![], exception(at(DAY / MINUTE))); // 13
    log.add(ALICE, of_change(), merge(MergeMethod::Merge, Some(ALICE))); // 14
    log.add(FRANK, vec![], deployment("shop", FRANK, DeployStatus::InProgress, landed())); // 15
                                                                                           // The deployer stays the one of the first record; status and time are the latest.
    log.add(OPS, vec![], deployment("shop", OPS, DeployStatus::Success, landed())); // 16
    log.add(OPS, vec![], deployment("other", OPS, DeployStatus::Success, sha('9'))); // 17, unrelated
    let caused_by_deploy = vec![link(Rel::CausedBy, deploy_subject("shop"))];
    log.add(OPS, caused_by_deploy, incident("P1", "Checkout errors", Some("SEV2"), None)); // 18
    let inferred = vec![link(Rel::CausedByInferred, Subject::Commit { repo: None, sha: landed() })];
    log.add(OPS, inferred, incident("P2", "Slow cart", None, Some(at(3 * 60)))); // 19
    let unrelated = vec![link(Rel::CausedBy, deploy_subject("other"))];
    log.add(OPS, unrelated, incident("P3", "Unrelated outage", None, None)); // 20, unrelated
    log.0
}

/// Compares `actual` with the golden file `name`, or rewrites it when `UPDATE_GOLDEN` is set.
fn check_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    assert!(expected == actual, "{name} differs from the report:\n--- expected\n{expected}\n--- actual\n{actual}");
}

#[test]
fn golden_report() {
    let records = realistic();
    // Any order, duplicates allowed: the analysis orders records by seq and keeps one of each.
    let mut gathered: Vec<Gathered> = records.iter().rev().cloned().collect();
    gathered.extend(records.iter().step_by(3).cloned());

    let report = analyze(&pr(), &gathered, now(), &Trust::default());
    let json = serde_json::to_string_pretty(&report).unwrap() + "\n";
    check_golden("why_golden.json", &json);

    // The CLI reads a remote daemon's report back from this JSON: it must round-trip.
    let back: WhyReport = serde_json::from_str(&json).unwrap();
    assert_eq!(serde_json::to_string_pretty(&back).unwrap() + "\n", json);
}

/// A change to vary one field at a time. The default (`clean`) has no finding.
struct Scenario {
    /// Whether the change record exists (the other records link to it either way).
    change: bool,
    /// Authors of the change's two commits (the change's author is Alice).
    commit_authors: [&'static str; 2],
    /// How the change landed, and who merged it.
    merge: Option<(MergeMethod, Option<&'static str>)>,
    /// Reviews, oldest first.
    reviews: Vec<(&'static str, Verdict, CommitId)>,
    /// Check results at the final commit, oldest first.
    checks: Vec<(&'static str, CheckResult)>,
    /// Whether an AI session contributed.
    ai_session: bool,
    /// A deployment of the landed commit: deployer and status.
    deployment: Option<(&'static str, DeployStatus)>,
    /// An incident explicitly caused by that deployment.
    incident: bool,
    /// An exception for the change, ending this many days after T0 (the report is at day 30).
    exception_days: Option<i64>,
}

fn clean() -> Scenario {
    Scenario {
        change: true,
        commit_authors: [ALICE, ALICE],
        merge: Some((MergeMethod::Merge, Some(ALICE))),
        reviews: vec![(FRANK, Verdict::Approved, head())],
        checks: vec![("unit-tests", CheckResult::Pass)],
        ai_session: false,
        deployment: None,
        incident: false,
        exception_days: None,
    }
}

impl Scenario {
    fn records(&self) -> Vec<Gathered> {
        let mut log = Log::default();
        if self.change {
            let [a, b] = self.commit_authors;
            let commits = vec![
                commit(old(), a, "first", CommitSignature::None, &[]),
                commit(head(), b, "second", CommitSignature::None, &[]),
            ];
            log.add(ALICE, vec![], change("Add cart totals", commits));
        }
        if self.ai_session {
            log.add(ALICE, of_change(), session());
        }
        for (who, verdict, commit) in &self.reviews {
            log.add(who, of_change(), review(who, *verdict, commit.clone(), None));
        }
        for (check, result) in &self.checks {
            log.add(CI, of_change(), evidence(check, *result, head()));
        }
        if let Some((method, merged_by)) = self.merge {
            log.add(ALICE, of_change(), merge(method, merged_by));
        }
        if let Some(days) = self.exception_days {
            log.add(GRACE, vec![], exception(Timestamp(T0 + days * DAY)));
        }
        if let Some((deployer, status)) = self.deployment {
            log.add(deployer, vec![], deployment("shop", deployer, status, landed()));
        }
        if self.incident {
            let links = vec![link(Rel::CausedBy, deploy_subject("shop"))];
            log.add(OPS, links, incident("P1", "Checkout errors", Some("SEV2"), None));
        }
        log.0
    }
}

fn all_findings(report: &WhyReport) -> Vec<&Finding> {
    report.findings.iter().chain(report.changes.iter().flat_map(|c| &c.findings)).collect()
}

#[test]
fn finding_codes() {
    use CheckResult::{Error, Fail, Neutral, Pass};
    use Verdict::{Approved, ChangesRequested, Dismissed};
    let nothing = || Scenario { change: false, merge: None, reviews: vec![], checks: vec![], ..clean() };
    let cases: Vec<(&str, Scenario, &[&str])> = vec![
        ("clean", clean(), &[]),
        ("no_change: nothing recorded", nothing(), &["no_change"]),
        ("no_change: records but no change record", Scenario { change: false, ..clean() }, &["no_change"]),
        ("no_approval", Scenario { reviews: vec![], ..clean() }, &["no_approval"]),
        (
            "stale_approval",
            Scenario { reviews: vec![(CAROL, Approved, old())], ..clean() },
            &["stale_approval", "no_approval_at_final_commit"],
        ),
        (
            "no_approval_at_final_commit: dismissed and stale",
            Scenario {
                reviews: vec![(DAVE, Approved, head()), (CAROL, Approved, old()), (DAVE, Dismissed, head())],
                ..clean()
            },
            &["dismissed_approval", "stale_approval", "no_approval_at_final_commit"],
        ),
        (
            "dismissed_approval",
            Scenario { reviews: vec![(FRANK, Approved, head()), (FRANK, Dismissed, head())], ..clean() },
            &["dismissed_approval", "no_approval_at_final_commit"],
        ),
        (
            "dismissal before the approval cancels nothing",
            Scenario { reviews: vec![(FRANK, Dismissed, head()), (FRANK, Approved, head())], ..clean() },
            &[],
        ),
        ("self_approval", Scenario { reviews: vec![(ALICE, Approved, head())], ..clean() }, &["self_approval"]),
        (
            "no_independent_approval",
            Scenario { commit_authors: [ALICE, BOB], reviews: vec![(BOB, Approved, head())], ..clean() },
            &["no_independent_approval"],
        ),
        (
            "ai_without_human_approval",
            Scenario { ai_session: true, reviews: vec![(BOT, Approved, head())], ..clean() },
            &["ai_without_human_approval"],
        ),
        ("AI session with a human approval", Scenario { ai_session: true, ..clean() }, &[]),
        (
            "changes_requested",
            Scenario { reviews: vec![(ERIN, ChangesRequested, head()), (FRANK, Approved, head())], ..clean() },
            &["changes_requested"],
        ),
        (
            "changes requested, approved later",
            Scenario { reviews: vec![(ERIN, ChangesRequested, old()), (ERIN, Approved, head())], ..clean() },
            &[],
        ),
        ("not_merged", Scenario { merge: None, ..clean() }, &["not_merged"]),
        (
            "no_pull_request",
            Scenario { merge: Some((MergeMethod::Direct, Some(ALICE))), ..clean() },
            &["no_pull_request"],
        ),
        ("merger_unknown", Scenario { merge: Some((MergeMethod::Squash, None)), ..clean() }, &["merger_unknown"]),
        ("no_evidence", Scenario { checks: vec![], ..clean() }, &["no_evidence"]),
        (
            "failing_check",
            Scenario { checks: vec![("unit-tests", Pass), ("lint", Fail)], ..clean() },
            &["failing_check"],
        ),
        ("failing_check: errored", Scenario { checks: vec![("lint", Error)], ..clean() }, &["failing_check"]),
        ("failing check re-run and passed", Scenario { checks: vec![("lint", Fail), ("lint", Pass)], ..clean() }, &[]),
        (
            "deployed_without_passing_checks",
            Scenario { checks: vec![("lint", Neutral)], deployment: Some((OPS, DeployStatus::Success)), ..clean() },
            &["deployed_without_passing_checks"],
        ),
        (
            "deployment not (yet) successful",
            Scenario { checks: vec![], deployment: Some((FRANK, DeployStatus::InProgress)), ..clean() },
            &["no_evidence"],
        ),
        (
            "deployer_sole_approver",
            Scenario { deployment: Some((FRANK, DeployStatus::Success)), ..clean() },
            &["deployer_sole_approver"],
        ),
        (
            "incident",
            Scenario { deployment: Some((OPS, DeployStatus::Success)), incident: true, ..clean() },
            &["incident"],
        ),
        ("exception_expired", Scenario { exception_days: Some(1), ..clean() }, &["exception_expired"]),
        ("exception in force", Scenario { exception_days: Some(60), ..clean() }, &[]),
    ];

    let mut messages = String::new();
    let mut seen: Vec<&str> = vec![];
    for (name, scenario, expected) in &cases {
        let report = analyze(&pr(), &scenario.records(), now(), &Trust::default());
        let findings = all_findings(&report);
        let codes: Vec<&str> = findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(&codes, expected, "{name}");
        seen.extend(expected.iter());
        messages += &format!("{name}\n");
        if findings.is_empty() {
            messages += "  (none)\n";
        }
        for f in findings {
            messages += &format!("  {}: {}\n", f.code, f.message);
        }
    }
    // The codes about time need times the table's scenarios do not vary: they have their own
    // test, `times_are_checked_with_a_tolerated_skew`.
    let timed = [
        "approval_after_merge",
        "deployed_before_merge",
        "cause_precedes_deployment",
        // And those about attestations: `only_verified_evidence_from_trusted_builders_counts`.
        "unverified_evidence",
        "untrusted_builder",
    ];
    for code in ALL_CODES.iter().filter(|c| !timed.contains(c)) {
        assert!(seen.contains(code), "no row of the table shows `{code}`");
    }
    check_golden("why_findings.txt", &messages);
}

/// A merged change (merge at minute 30) with one approval at the final commit, given at
/// `approved_at` minutes, plus `extra` records.
fn merged_change(approved_at: i64, extra: impl FnOnce(&mut Log)) -> WhyReport {
    let mut log = Log::default();
    let commits = vec![commit(head(), ALICE, "only", CommitSignature::None, &[])];
    log.add_at(at(0), ALICE, vec![], change("Add cart totals", commits));
    log.add_at(at(1), CI, of_change(), evidence("unit-tests", CheckResult::Pass, head()));
    log.add_at(at(approved_at), FRANK, of_change(), review(FRANK, Verdict::Approved, head(), None));
    log.add_at(at(30), ALICE, of_change(), merge(MergeMethod::Merge, Some(ALICE)));
    extra(&mut log);
    analyze(&pr(), &log.0, now(), &Trust::default())
}

fn codes(r: &WhyReport) -> Vec<&str> {
    all_findings(r).iter().map(|f| f.code.as_str()).collect()
}

#[test]
fn times_are_checked_with_a_tolerated_skew() {
    // Within the skew (5 minutes): on time.
    let r = merged_change(34, |_| {});
    assert_eq!(codes(&r), Vec::<&str>::new(), "{:#?}", r.changes[0].reviews);
    assert_eq!(r.changes[0].reviews[0].status.as_str(), "valid");
    // An approval given after the merge approved nothing: late, and it does not count.
    let r = merged_change(40, |_| {});
    assert_eq!(r.changes[0].reviews[0].status.as_str(), "late");
    assert_eq!(codes(&r), ["no_approval_at_final_commit", "approval_after_merge"]);
    // A deployment dated before the merge of what it ships.
    let r = merged_change(10, |log| {
        log.add_at(at(-60), OPS, vec![], deployment("shop", OPS, DeployStatus::Success, landed()));
    });
    assert_eq!(codes(&r), ["deployed_before_merge"]);
    // An incident opened before the deployment it is blamed on.
    let r = merged_change(10, |log| {
        log.add_at(at(120), OPS, vec![], deployment("shop", OPS, DeployStatus::Success, landed()));
        let links = vec![link(Rel::CausedBy, deploy_subject("shop"))];
        log.add_at(at(121), OPS, links, incident("P1", "Checkout errors", None, None));
        // opened at minute 60
    });
    assert_eq!(codes(&r), ["incident", "cause_precedes_deployment"]);
}

#[test]
fn a_review_without_a_link_is_attached_by_its_commit() {
    let r = merged_change(10, |log| {
        // The same reviewer's approval, recorded again without a link to the change.
        log.add_at(at(11), CAROL, vec![], review(CAROL, Verdict::Approved, head(), None));
        // Another repository's review of a commit with the same id is not this change's.
        let other = Body::Review(Review {
            repo: RepoName::new("acme/other").unwrap(),
            reviewer: id(DAVE),
            verdict: Verdict::Approved,
            commit: head(),
            source: None,
        });
        log.add_at(at(12), DAVE, vec![], other);
    });
    let reviewers: Vec<String> = r.changes[0].reviews.iter().map(|x| x.reviewer.to_string()).collect();
    assert_eq!(reviewers, [FRANK, CAROL]);
}

#[test]
fn the_same_approval_and_the_same_session_show_once_with_every_entry() {
    let r = merged_change(10, |log| {
        for minute in [11, 12] {
            log.add_at(at(minute), FRANK, of_change(), review(FRANK, Verdict::Approved, head(), None));
        }
        for minute in [13, 14, 15] {
            log.add_at(at(minute), ALICE, of_change(), session());
        }
    });
    let c = &r.changes[0];
    assert_eq!(c.reviews.len(), 1, "{:#?}", c.reviews);
    assert_eq!(c.reviews[0].also.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
    assert_eq!(c.sessions.len(), 1);
    assert_eq!(c.sessions[0].also.iter().map(|e| e.seq).collect::<Vec<_>>(), [7, 8]);
    // A different verdict, or a dismissal in between, is another review.
    let r = merged_change(10, |log| {
        log.add_at(at(11), FRANK, of_change(), review(FRANK, Verdict::Dismissed, head(), None));
        log.add_at(at(12), FRANK, of_change(), review(FRANK, Verdict::Approved, head(), None));
    });
    let statuses: Vec<&str> = r.changes[0].reviews.iter().map(|x| x.status.as_str()).collect();
    assert_eq!(statuses, ["dismissed", "valid", "valid"], "{:#?}", r.changes[0].reviews);
}

/// An attestation at the final commit: its signature state and builder.
fn attestation(signature: Option<SignatureCheck>, builder: Option<&str>) -> Body {
    Body::Evidence(Evidence {
        repo: repo(),
        commit: head(),
        check: "slsa-provenance".into(),
        check_kind: CheckKind::Provenance,
        result: CheckResult::Pass,
        artifact: None,
        predicate_type: Some("https://slsa.dev/provenance/v0.2".into()),
        url: None,
        signature,
        source: Some(Source::payload("intoto-jsonl", Digest::blake3_of(b"envelope"))),
        builder: builder.map(Into::into),
    })
}

/// A merged, approved change whose only evidence is `evidence`.
fn with_only(evidence: Body, trust: &Trust) -> WhyReport {
    let mut log = Log::default();
    let commits = vec![commit(head(), ALICE, "only", CommitSignature::None, &[])];
    log.add(ALICE, vec![], change("Add cart totals", commits));
    log.add(FRANK, of_change(), review(FRANK, Verdict::Approved, head(), None));
    log.add(CI, vec![], evidence);
    log.add(ALICE, of_change(), merge(MergeMethod::Merge, Some(ALICE)));
    analyze(&pr(), &log.0, now(), trust)
}

#[test]
fn only_verified_evidence_from_trusted_builders_counts() {
    const TRUSTED: &str = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/builder_go_slsa3.yml@refs/tags/v1.4.0";
    const FORK: &str =
        "https://github.com/asraa/slsa-github-generator/.github/workflows/builder_go_slsa3.yml@refs/tags/v1.4.0";
    let default = Trust::default();
    let cases: Vec<(&str, Body, &Trust, &[&str], &str)> = vec![
        (
            "verified, trusted builder",
            attestation(Some(SignatureCheck::Verified), Some(TRUSTED)),
            &default,
            &[],
            "verified",
        ),
        (
            "signature not checked",
            attestation(Some(SignatureCheck::NotVerified), Some(TRUSTED)),
            &default,
            &["no_evidence", "unverified_evidence"],
            "not_verified",
        ),
        (
            "a fork of the trusted builder",
            attestation(Some(SignatureCheck::Verified), Some(FORK)),
            &default,
            &["no_evidence", "untrusted_builder"],
            "verified",
        ),
        (
            "neither",
            attestation(Some(SignatureCheck::NotVerified), Some(FORK)),
            &default,
            &["no_evidence", "unverified_evidence", "untrusted_builder"],
            "not_verified",
        ),
        (
            "a CI check result, vouched for by its signer",
            evidence("unit-tests", CheckResult::Pass, head()),
            &default,
            &[],
            "unsigned",
        ),
    ];
    for (name, body, trust, want, verification) in cases {
        let r = with_only(body, trust);
        assert_eq!(codes(&r), want, "{name}");
        let e = &r.changes[0].evidence[0];
        assert_eq!(e.verification.as_str(), verification, "{name}");
        assert_eq!(e.counts, want.is_empty(), "{name}");
    }
    // The list is configurable: trusting the fork by its id (with any ref) makes it count.
    let fork = Trust { builders: vec![FORK.split('@').next().unwrap().to_string()] };
    let r = with_only(attestation(Some(SignatureCheck::Verified), Some(FORK)), &fork);
    assert_eq!(codes(&r), Vec::<&str>::new());
    // A prefix must end in `/`: `…/slsa-github-generator` does not trust `…/slsa-github-generator-evil/…`.
    let prefix = Trust { builders: vec!["https://github.com/slsa-framework/slsa-github-generator/".into()] };
    assert!(!prefix.trusts("https://github.com/slsa-framework/slsa-github-generator-evil/x.yml@v1"));
    assert!(prefix.trusts(TRUSTED));
}

#[test]
fn every_item_names_who_vouched_and_how_it_entered() {
    let mut log = Log::default();
    let commits = vec![commit(head(), ALICE, "only", CommitSignature::None, &[])];
    log.add(ALICE, vec![], change("Add cart totals", commits));
    let hook = Source::Payload {
        format: "github-webhook:pull_request_review".into(),
        digest: Digest::blake3_of(b"delivery"),
        channel: Some(Channel::WebhookHmac),
    };
    log.add(FRANK, of_change(), review(FRANK, Verdict::Approved, head(), Some(hook)));
    log.add(CAROL, of_change(), review(CAROL, Verdict::Approved, head(), None));
    let trailer = Source::GitCommit { commit: head(), trailer: Some("Reviewed-by".into()) };
    log.add(DAVE, of_change(), review(DAVE, Verdict::Approved, head(), Some(trailer)));
    let file = Source::payload("github-webhook:pull_request_review", Digest::blake3_of(b"file"));
    log.add(ERIN, of_change(), review(ERIN, Verdict::Approved, head(), Some(file)));
    let r = analyze(&pr(), &log.0, now(), &Trust::default());
    let entered: Vec<(&str, &str)> =
        r.changes[0].reviews.iter().map(|x| (x.vouched.signer.as_str(), x.vouched.entered.describe())).collect();
    assert_eq!(
        entered,
        [
            ("ci", "webhook delivery, HMAC verified"),
            ("ci", "appended by hand"),
            ("ci", "git history"),
            ("ci", "payload given to the signer")
        ]
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["changes"][0]["reviews"][0]["vouched"]["entered"], "webhook_hmac");
    assert_eq!(json["changes"][0]["reviews"][0]["vouched"]["key_id"], "c1".repeat(32));
}
