//! The gate, table-driven: each row builds one scenario from hand-made records (a good T2
//! change, then one knob turned) and asserts the tier, the decision, *every* rule's result,
//! the reasons that matter and the findings. Then: every decision re-checks to itself, and a
//! tampered recorded decision is caught, naming the rule.

use ledger_audit::gate::{evaluate, recheck, GateInput, GateReport};
use ledger_audit::policy::Policy;
use ledger_audit::why::{Gathered, Trust};
use ledger_core::domain::FORMAT_VERSION;
use ledger_core::record::{
    document_digest, Body, Change, CheckKind, CheckResult, Codeowners, CommitInfo, CommitSignature, DeployStatus,
    Deployment, Evidence, Exception, Link, Merge, MergeMethod, Model, Record, Rel, Review, RuleResult, Session, Stage,
    Verdict,
};
use ledger_core::subject::Subject;
use ledger_core::types::{EntryHash, KeyId, RepoName, Seq, Tier, Timestamp, Token};

const POLICY: &str = r#"
name = "test"
version = 3
default_tier = "T1"

[tiers.T0]
checks = ["*"]
ai_requires_human_approval = true
models = false

[tiers.T1]
approvals = 1
independent = true
checks = ["unit"]
ai_requires_human_approval = true

[tiers.T2]
approvals = 1
independent = true
checks = ["unit", "sast"]
codeowners = true
ai_requires_human_approval = true
deployer_not_sole_approver = true
release = ["canary", "staged"]
test_delta = true
test_delta_over = 10
diff_cap = 300

[tiers.T3]
approvals = 2
independent = true
checks = ["unit", "sast"]
codeowners = true
ai_requires_human_approval = true
deployer_not_sole_approver = true
release = ["supervised"]
test_delta = true
test_delta_over = 0
diff_cap = 100

[[classify]]
paths = ["docs/**"]
all_paths = true
tier = "T0"

[[classify]]
paths = ["src/auth/**"]
tier = "T2"

[[classify]]
labels = ["hotfix"]
tier = "T3"

[[classify]]
risk_areas = ["billing"]
tier = "T2"

[[classify]]
repo = "acme/infra*"
tier = "T3"

[models]
"gpt-*" = ["T0", "T1"]
"#;

// Record `n` is `n` minutes after T0; the gate runs 30 days later.
use crate::fixtures::{id, sha, ALICE, BOB, BOT, DAY, FRANK, GRACE, MINUTE, OPS, T0};

const OWNERS: &str = "*.md docs@example.com\nsrc/auth/ frank@example.com ops@example.com\n";

fn now() -> Timestamp {
    Timestamp(T0 + 30 * DAY)
}
fn days(d: i64) -> Timestamp {
    Timestamp(T0 + d * DAY)
}

/// The scenario knobs. [`Scenario::good`] is a T2 change that passes every rule at both stages.
#[derive(Clone)]
struct Scenario {
    repo: &'static str,
    number: u64,
    paths: Option<Vec<&'static str>>,
    lines: Option<(u64, u64)>,
    labels: Vec<&'static str>,
    /// (sha, author) of each commit, oldest first; the last is the head.
    commits: Vec<(char, &'static str)>,
    commits_listed: bool,
    /// (reviewer, verdict, commit, minutes after the start).
    reviews: Vec<(&'static str, Verdict, char)>,
    /// (check name, kind, result, commit).
    checks: Vec<(&'static str, CheckKind, CheckResult, char)>,
    /// (tool, model, risk area).
    session: Option<(&'static str, Option<&'static str>, Option<&'static str>)>,
    /// (tool, model, tiers, not-after in days from the start).
    models: Vec<(&'static str, &'static str, Vec<Tier>, Option<i64>)>,
    /// (rule, scope, approver, not-after in days).
    exceptions: Vec<(Option<&'static str>, &'static str, &'static str, i64)>,
    merged: bool,
    /// A review given after the merge.
    late_review: Option<&'static str>,
    /// (deployer, strategy).
    deployment: Option<(&'static str, Option<&'static str>)>,
    codeowners: Option<&'static str>,
    /// Only the CODEOWNERS and model records: what a store gathers for a subject nothing else
    /// mentions.
    only_registry: bool,
}

impl Scenario {
    fn good() -> Self {
        Scenario {
            repo: "acme/shop",
            number: 42,
            paths: Some(vec!["src/auth/login.rs", "tests/auth_test.rs"]),
            lines: Some((40, 10)),
            labels: vec![],
            commits: vec![('1', ALICE), ('2', BOB)],
            commits_listed: true,
            reviews: vec![(FRANK, Verdict::Approved, '2')],
            checks: vec![
                ("unit-tests", CheckKind::Unit, CheckResult::Pass, '2'),
                ("codeql", CheckKind::Sast, CheckResult::Pass, '2'),
            ],
            session: None,
            models: vec![],
            exceptions: vec![],
            merged: true,
            late_review: None,
            deployment: Some((OPS, Some("canary"))),
            codeowners: Some(OWNERS),
            only_registry: false,
        }
    }

    fn pr(&self) -> Subject {
        format!("pr:{}#{}", self.repo, self.number).parse().unwrap()
    }

    fn build(&self) -> Vec<Gathered> {
        let mut log: Vec<Gathered> = vec![];
        let repo = RepoName::new(self.repo).unwrap();
        let head = sha(self.commits.last().unwrap().0);
        let pr = self.pr();
        let of_change = || vec![Link { rel: Rel::Change, target: pr.clone() }];
        let mut add = |actor: &str, links: Vec<Link>, body: Body| {
            let n = log.len() as u64;
            let time = Timestamp(T0 + n as i64 * MINUTE);
            log.push(Gathered {
                seq: Seq(n),
                hash: EntryHash([n as u8; 32]),
                integrated: time,
                record: Record { v: FORMAT_VERSION, time, actor: id(actor), links, body },
                signer: KeyId([0xC1; 32]),
                signer_name: Some("ci".into()),
            });
        };
        if let Some(doc) = self.codeowners {
            let body = Codeowners { repo: repo.clone(), document: doc.into(), digest: document_digest(doc) };
            add("github:admin", vec![], Body::Codeowners(body));
        }
        for (tool, model, tiers, not_after) in &self.models {
            let body = Model {
                tool: Token::new(*tool).unwrap(),
                model: (*model).into(),
                approved_tiers: tiers.clone(),
                not_after: not_after.map(days),
            };
            add("github:governance", vec![], Body::Model(body));
        }
        if self.only_registry {
            return log;
        }
        let commits: Vec<CommitInfo> = self
            .commits
            .iter()
            .map(|(c, who)| CommitInfo {
                sha: sha(*c),
                author: id(who),
                authored_at: Timestamp(T0),
                committer: id(who),
                committed_at: Timestamp(T0),
                title: "work".into(),
                signature: CommitSignature::None,
                trailers: vec![],
            })
            .collect();
        let change = Change {
            repo: repo.clone(),
            number: Some(self.number),
            title: "Tighten login".into(),
            description: None,
            author: id(ALICE),
            head_commit: head.clone(),
            base_commit: None,
            commits_total: commits.len() as u64,
            commits: if self.commits_listed { commits } else { vec![] },
            risk_tier: None,
            intent: None,
            source: None,
            paths: self.paths.as_ref().map(|p| p.iter().map(|s| s.to_string()).collect()),
            lines_added: self.lines.map(|l| l.0),
            lines_removed: self.lines.map(|l| l.1),
            labels: self.labels.iter().map(|s| s.to_string()).collect(),
        };
        add(ALICE, vec![], Body::Change(change));
        if let Some((tool, model, risk_area)) = self.session {
            let body = Session {
                tool: Token::new(tool).unwrap(),
                model: model.map(str::to_string),
                session_id: Token::new("s-1").unwrap(),
                prompt_digest: None,
                summary: None,
                context: vec![],
                declared_reviewer: None,
                risk_area: risk_area.map(str::to_string),
                verification: vec![],
                source: None,
                cost: None,
            };
            add(ALICE, of_change(), Body::Session(body));
        }
        for (who, verdict, c) in &self.reviews {
            let body =
                Review { repo: repo.clone(), reviewer: id(who), verdict: *verdict, commit: sha(*c), source: None };
            add(who, of_change(), Body::Review(body));
        }
        for (name, kind, result, c) in &self.checks {
            let body = Evidence {
                repo: repo.clone(),
                commit: sha(*c),
                check: (*name).into(),
                check_kind: *kind,
                result: *result,
                artifact: None,
                predicate_type: None,
                url: None,
                signature: None,
                source: None,
                builder: None,
            };
            add("github:ci", vec![], Body::Evidence(body));
        }
        for (rule, scope, approver, not_after) in &self.exceptions {
            let body = Exception {
                approver: id(approver),
                reason: "incident follow-up".into(),
                scope: scope.parse().unwrap(),
                rule: rule.map(str::to_string),
                not_after: days(*not_after),
            };
            add(approver, vec![], Body::Exception(body));
        }
        if self.merged {
            let body = Merge {
                repo: repo.clone(),
                merge_commit: sha('a'),
                head_commit: head.clone(),
                base_commit: None,
                merged_by: Some(id(ALICE)),
                method: MergeMethod::Merge,
                source: None,
            };
            add(ALICE, of_change(), Body::Merge(body));
        }
        if let Some(who) = self.late_review {
            // Ten minutes later than the merge and beyond the clock skew allowance.
            for _ in 0..10 {
                add(
                    "github:noise",
                    vec![],
                    Body::Codeowners(Codeowners {
                        repo: RepoName::new("other/repo").unwrap(),
                        document: String::new(),
                        digest: document_digest(""),
                    }),
                );
            }
            let body = Review {
                repo: repo.clone(),
                reviewer: id(who),
                verdict: Verdict::Approved,
                commit: head.clone(),
                source: None,
            };
            add(who, of_change(), Body::Review(body));
        }
        if let Some((deployer, strategy)) = self.deployment {
            let body = Deployment {
                service: Token::new("shop").unwrap(),
                environment: Token::new("production").unwrap(),
                deployment_id: Token::new("7").unwrap(),
                repo: Some(repo.clone()),
                commits: vec![sha('a')],
                version: None,
                deployer: id(deployer),
                status: DeployStatus::Pending,
                rollback_of: None,
                source: None,
                strategy: strategy.map(|s| Token::new(s).unwrap()),
            };
            add(deployer, vec![], Body::Deployment(body));
        }
        log
    }
}

fn run(s: &Scenario, subject: &Subject, stage: Stage) -> (GateReport, Vec<Gathered>) {
    let policy = Policy::parse(POLICY).unwrap();
    let digest = document_digest(POLICY);
    let gathered = s.build();
    let report = evaluate(&GateInput {
        subject,
        stage,
        policy: &policy,
        policy_digest: &digest,
        gathered: &gathered,
        now: now(),
        trust: &Trust::default(),
        tree_size: gathered.len() as u64,
    });
    (report, gathered)
}

struct Case {
    name: &'static str,
    scenario: Scenario,
    subject: Option<Subject>,
    stage: Stage,
    tier: Tier,
    allow: bool,
    /// Every rule evaluated, in order, with its result: `approvals=pass independent=fail ...`.
    rules: &'static str,
    /// (rule, text its reason must contain).
    reasons: Vec<(&'static str, &'static str)>,
    findings: Vec<&'static str>,
}

fn case(
    name: &'static str,
    stage: Stage,
    tier: Tier,
    allow: bool,
    rules: &'static str,
    f: impl FnOnce(&mut Scenario),
) -> Case {
    let mut scenario = Scenario::good();
    f(&mut scenario);
    Case { name, scenario, subject: None, stage, tier, allow, rules, reasons: vec![], findings: vec![] }
}

impl Case {
    fn reason(mut self, rule: &'static str, text: &'static str) -> Self {
        self.reasons.push((rule, text));
        self
    }
    fn finding(mut self, code: &'static str) -> Self {
        self.findings.push(code);
        self
    }
    fn subject(mut self, s: &str) -> Self {
        self.subject = Some(s.parse().unwrap());
        self
    }
}

use Stage::{Deploy, Merge as AtMerge};
use Tier::{T0 as Low, T1 as Product, T2 as Sensitive, T3 as Systemic};

const T2_MERGE_PASS: &str = "approvals=pass independent=pass checks=pass codeowners=pass ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass";
const T2_DEPLOY_PASS: &str = "approvals=pass independent=pass checks=pass codeowners=pass deployer_not_sole_approver=pass ai_requires_human_approval=pass models=pass release=pass test_delta=pass diff_cap=pass";
const T1_PASS: &str = "approvals=pass independent=pass checks=pass ai_requires_human_approval=pass models=pass";

fn cases() -> Vec<Case> {
    let ai = |s: &mut Scenario| s.session = Some(("codex", Some("codex-5"), None));
    let t1 = |s: &mut Scenario| {
        s.paths = Some(vec!["src/ui/button.rs", "tests/ui_test.rs"]);
    };
    vec![
        case("good T2 change at merge", AtMerge, Sensitive, true, T2_MERGE_PASS, |_| {})
            .reason("codeowners", "Frank <frank@example.com> owns src/auth/login.rs"),
        case("good T2 change at deploy", Deploy, Sensitive, true, T2_DEPLOY_PASS, |_| {}).subject("deploy:shop/production/7"),
        case("missing approval", AtMerge, Sensitive, false,
            "approvals=fail independent=fail checks=pass codeowners=fail ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| s.reviews.clear()).reason("approvals", "0 of 1"),
        case("stale approval: only an older commit approved", AtMerge, Sensitive, false,
            "approvals=fail independent=fail checks=pass codeowners=fail ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| s.reviews = vec![(FRANK, Verdict::Approved, '1')]).reason("approvals", "stale"),
        case("dismissed approval", AtMerge, Sensitive, false,
            "approvals=fail independent=fail checks=pass codeowners=fail ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| s.reviews = vec![(FRANK, Verdict::Approved, '2'), (FRANK, Verdict::Dismissed, '2')]).reason("approvals", "dismissed"),
        case("self-approval does not count", AtMerge, Sensitive, false,
            "approvals=fail independent=fail checks=pass codeowners=fail ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| s.reviews = vec![(ALICE, Verdict::Approved, '2')]).reason("approvals", "approved their own change"),
        case("a bot's approval does not count", AtMerge, Sensitive, false,
            "approvals=fail independent=fail checks=pass codeowners=fail ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| s.reviews = vec![(BOT, Verdict::Approved, '2')]).reason("approvals", "automation"),
        case("approval given after the merge is late", AtMerge, Sensitive, false,
            "approvals=fail independent=fail checks=pass codeowners=fail ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| { s.reviews.clear(); s.late_review = Some(FRANK); }).reason("approvals", "late"),
        case("approver wrote a commit: not independent", AtMerge, Sensitive, false,
            "approvals=pass independent=fail checks=pass codeowners=fail ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| s.reviews = vec![(BOB, Verdict::Approved, '2')]).reason("independent", "Bob <bob@example.com> authored or committed"),
        case("commits not recorded: independence unknown", AtMerge, Sensitive, false,
            "approvals=pass independent=fail checks=pass codeowners=pass ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| s.commits_listed = false).reason("independent", "unknown:"),
        case("failing check at the final commit", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=fail codeowners=pass ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| s.checks[1].2 = CheckResult::Fail).reason("checks", "`codeql` fail"),
        case("check passing only at an older commit", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=fail codeowners=pass ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| s.checks[0].3 = '1').reason("checks", "passed only at an older commit"),
        case("a re-run that passes replaces the failure", AtMerge, Sensitive, true, T2_MERGE_PASS, |s| {
            s.checks.insert(0, ("unit-tests", CheckKind::Unit, CheckResult::Fail, '2'));
        }),
        case("a check that failed after passing fails", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=fail codeowners=pass ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| s.checks.push(("unit-tests", CheckKind::Unit, CheckResult::Fail, '2'))),
        case("required check kind missing", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=fail codeowners=pass ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| { s.checks.pop(); }).reason("checks", "`sast`: no check recorded"),
        case("AI change without human approval (T1)", AtMerge, Product, false,
            "approvals=fail independent=fail checks=pass ai_requires_human_approval=fail models=pass",
            |s| { t1(s); s.session = Some(("chatgpt", Some("gpt-5"), None)); s.reviews = vec![(BOT, Verdict::Approved, '2')]; })
            .reason("ai_requires_human_approval", "AI-assisted"),
        case("AI change with a human approval (T1)", AtMerge, Product, true, T1_PASS,
            |s| { t1(s); s.session = Some(("chatgpt", Some("gpt-5"), None)); })
            .reason("models", "gpt-5 (policy [models] \"gpt-*\")"),
        case("unapproved model at T2", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=pass ai_requires_human_approval=pass models=fail test_delta=pass diff_cap=pass",
            ai).reason("models", "codex-5 (codex) is not approved for T2"),
        case("model approved for T2 by a model record", AtMerge, Sensitive, true, T2_MERGE_PASS, |s| {
            ai(s);
            s.models.push(("codex", "codex-5", vec![Tier::T1, Tier::T2], None));
        }),
        case("expired model approval", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=pass ai_requires_human_approval=pass models=fail test_delta=pass diff_cap=pass",
            |s| { ai(s); s.models.push(("codex", "codex-5", vec![Tier::T2], Some(10))); }).reason("models", "expired"),
        case("model approved for lower tiers only", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=pass ai_requires_human_approval=pass models=fail test_delta=pass diff_cap=pass",
            |s| { ai(s); s.models.push(("codex", "codex-5", vec![Tier::T0, Tier::T1], None)); }).reason("models", "approved for T0, T1"),
        case("a later model record narrows the approval", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=pass ai_requires_human_approval=pass models=fail test_delta=pass diff_cap=pass",
            |s| { ai(s); s.models.push(("codex", "codex-5", vec![Tier::T2], None)); s.models.push(("codex", "codex-5", vec![Tier::T1], None)); }),
        case("session without a model", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=pass ai_requires_human_approval=pass models=fail test_delta=pass diff_cap=pass",
            |s| s.session = Some(("codex", None, None))).reason("models", "unknown:"),
        case("valid exception for every rule", AtMerge, Sensitive, true,
            "approvals=waived independent=waived checks=pass codeowners=waived ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| { s.reviews.clear(); s.exceptions.push((None, "pr:acme/shop#42", GRACE, 40)); }).reason("approvals", "waived by Grace"),
        case("exception for one rule waives only it", AtMerge, Sensitive, false,
            "approvals=waived independent=fail checks=pass codeowners=fail ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| { s.reviews.clear(); s.exceptions.push((Some("approvals"), "pr:acme/shop#42", GRACE, 40)); }),
        case("expired exception is ignored", AtMerge, Sensitive, false,
            "approvals=fail independent=fail checks=pass codeowners=fail ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| { s.reviews.clear(); s.exceptions.push((None, "pr:acme/shop#42", GRACE, 20)); }).finding("exception_expired"),
        case("exception approved by the change's author is refused", AtMerge, Sensitive, false,
            "approvals=fail independent=fail checks=pass codeowners=fail ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| { s.reviews.clear(); s.exceptions.push((None, "pr:acme/shop#42", ALICE, 40)); }).finding("exception_by_author"),
        case("exception approved by a commit author is refused", AtMerge, Sensitive, false,
            "approvals=fail independent=fail checks=pass codeowners=fail ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| { s.reviews.clear(); s.exceptions.push((Some("approvals"), "pr:acme/shop#42", BOB, 40)); }).finding("exception_by_author"),
        case("exception for another change does not apply", AtMerge, Sensitive, false,
            "approvals=fail independent=fail checks=pass codeowners=fail ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| { s.reviews.clear(); s.exceptions.push((None, "pr:acme/shop#43", GRACE, 40)); }),
        case("exception scoped to the deployment waives at deploy", Deploy, Sensitive, true,
            "approvals=pass independent=pass checks=pass codeowners=pass deployer_not_sole_approver=pass ai_requires_human_approval=pass models=pass release=waived test_delta=pass diff_cap=pass",
            |s| { s.deployment = Some((OPS, Some("big-bang"))); s.exceptions.push((Some("release"), "deploy:shop/production/7", GRACE, 40)); })
            .subject("deploy:shop/production/7"),
        case("deployer is the only approver at T2", Deploy, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=pass deployer_not_sole_approver=fail ai_requires_human_approval=pass models=pass release=pass test_delta=pass diff_cap=pass",
            |s| s.reviews = vec![(OPS, Verdict::Approved, '2')]).subject("deploy:shop/production/7")
            .reason("deployer_not_sole_approver", "is the only approver"),
        case("deployer is one of two approvers", Deploy, Sensitive, true, T2_DEPLOY_PASS,
            |s| s.reviews.push((OPS, Verdict::Approved, '2'))).subject("deploy:shop/production/7"),
        case("deploy gate for a PR finds its deployment", Deploy, Sensitive, true, T2_DEPLOY_PASS, |_| {}),
        case("deployment without a strategy", Deploy, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=pass deployer_not_sole_approver=pass ai_requires_human_approval=pass models=pass release=fail test_delta=pass diff_cap=pass",
            |s| s.deployment = Some((OPS, None))).subject("deploy:shop/production/7").reason("release", "unknown:"),
        case("deployment with a strategy the tier does not allow", Deploy, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=pass deployer_not_sole_approver=pass ai_requires_human_approval=pass models=pass release=fail test_delta=pass diff_cap=pass",
            |s| s.deployment = Some((OPS, Some("big-bang")))).subject("deploy:shop/production/7"),
        case("no deployment recorded at the deploy stage", Deploy, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=pass deployer_not_sole_approver=fail ai_requires_human_approval=pass models=pass release=fail test_delta=pass diff_cap=pass",
            |s| s.deployment = None).reason("release", "unknown:"),
        case("codeowner rule: a non-owner's approval", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=fail ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| s.reviews = vec![(GRACE, Verdict::Approved, '2')]).reason("codeowners", "no owner of a touched path approved"),
        case("codeowner rule: no CODEOWNERS recorded", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=fail ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| s.codeowners = None).reason("codeowners", "no CODEOWNERS recorded"),
        case("codeowner rule: no touched path has an owner", AtMerge, Sensitive, true, T2_MERGE_PASS,
            |s| s.codeowners = Some("docs/ docs@example.com\n")).reason("codeowners", "no touched path has an owner"),
        case("unknown paths: path rules fail as unknown", AtMerge, Systemic, false,
            "approvals=fail independent=fail checks=pass codeowners=fail ai_requires_human_approval=pass models=pass test_delta=fail diff_cap=pass",
            |s| { s.paths = None; s.labels = vec!["hotfix"]; }).reason("codeowners", "unknown:").reason("test_delta", "unknown:")
            .finding("tier_paths_unknown"),
        case("big AI change without a test delta", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=pass ai_requires_human_approval=pass models=pass test_delta=fail diff_cap=pass",
            |s| { ai(s); s.models.push(("codex", "codex-5", vec![Tier::T2], None)); s.paths = Some(vec!["src/auth/login.rs"]); s.lines = Some((150, 50)); })
            .reason("test_delta", "200 changed line(s) and no test path touched"),
        case("small AI change still needs a test delta", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=pass ai_requires_human_approval=pass models=pass test_delta=fail diff_cap=pass",
            |s| { ai(s); s.models.push(("codex", "codex-5", vec![Tier::T2], None)); s.paths = Some(vec!["src/auth/login.rs"]); s.lines = Some((2, 1)); }),
        case("small human change needs no test delta", AtMerge, Sensitive, true, T2_MERGE_PASS,
            |s| { s.paths = Some(vec!["src/auth/login.rs"]); s.lines = Some((3, 2)); }),
        case("big human change without tests", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=pass ai_requires_human_approval=pass models=pass test_delta=fail diff_cap=pass",
            |s| s.paths = Some(vec!["src/auth/login.rs"])),
        case("line counts unknown: test delta unknown", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=pass ai_requires_human_approval=pass models=pass test_delta=fail diff_cap=pass",
            |s| s.lines = None).reason("test_delta", "unknown:"),
        case("AI change over the diff cap", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=pass ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=fail",
            |s| { ai(s); s.models.push(("codex", "codex-5", vec![Tier::T2], None)); s.lines = Some((300, 100)); })
            .reason("diff_cap", "400 lines exceeds the cap of 300"),
        case("AI change with unknown size: diff cap unknown", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=pass ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=fail",
            |s| { ai(s); s.models.push(("codex", "codex-5", vec![Tier::T2], None)); s.lines = None; }).reason("diff_cap", "unknown:"),
        case("classified by repository", AtMerge, Systemic, false,
            "approvals=fail independent=fail checks=pass codeowners=pass ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| s.repo = "acme/infra-live").reason("approvals", "1 of 2"),
        case("T3 with two independent approvals", AtMerge, Systemic, true,
            "approvals=pass independent=pass checks=pass codeowners=pass ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| { s.repo = "acme/infra-live"; s.reviews.push((GRACE, Verdict::Approved, '2')); }),
        case("classified by path: documentation only", AtMerge, Low, true, "checks=pass ai_requires_human_approval=pass",
            |s| { s.paths = Some(vec!["docs/guide.md"]); s.reviews.clear(); }),
        case("documentation and code is not T0", AtMerge, Product, true, T1_PASS,
            |s| s.paths = Some(vec!["docs/guide.md", "src/lib.rs"])),
        case("classified by label", AtMerge, Systemic, false,
            "approvals=fail independent=fail checks=pass codeowners=pass ai_requires_human_approval=pass models=pass test_delta=pass diff_cap=pass",
            |s| { t1(s); s.labels = vec!["HotFix"]; s.codeowners = Some("src/ frank@example.com\n"); }),
        case("classified by risk area", AtMerge, Sensitive, false,
            "approvals=pass independent=pass checks=pass codeowners=pass ai_requires_human_approval=pass models=fail test_delta=pass diff_cap=pass",
            |s| { t1(s); s.session = Some(("chatgpt", Some("gpt-5"), Some("billing"))); s.codeowners = Some("src/ frank@example.com\n"); }),
        case("default tier when nothing matches", AtMerge, Product, true, T1_PASS, t1),
        case("nothing recorded for the subject", AtMerge, Product, false,
            "approvals=fail independent=fail checks=fail ai_requires_human_approval=fail models=fail", |s| s.only_registry = true)
            .subject("pr:acme/shop#99").reason("approvals", "unknown: no change record covers pr:acme/shop#99"),
    ]
}

fn parse_rules(s: &str) -> Vec<(String, RuleResult)> {
    s.split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            let r = match v {
                "pass" => RuleResult::Pass,
                "fail" => RuleResult::Fail,
                "waived" => RuleResult::Waived,
                other => panic!("bad result {other}"),
            };
            (k.to_string(), r)
        })
        .collect()
}

#[test]
fn every_rule_outcome_per_case() {
    let cases = cases();
    assert!(cases.len() >= 40, "the table has {} cases", cases.len());
    let mut failures = vec![];
    for c in &cases {
        let subject = c.subject.clone().unwrap_or_else(|| c.scenario.pr());
        let (r, _) = run(&c.scenario, &subject, c.stage);
        let got: Vec<(String, RuleResult)> = r.rules.iter().map(|l| (l.rule.clone(), l.result)).collect();
        let mut problems = vec![];
        if got != parse_rules(c.rules) {
            problems.push(format!("rules: got {got:?}"));
        }
        if r.tier != c.tier {
            problems.push(format!("tier: got {:?} ({})", r.tier, r.tier_reason));
        }
        let allow = r.decision == ledger_core::record::Decision::Allow;
        if allow != c.allow {
            problems.push(format!("decision: got {:?}", r.decision));
        }
        for (rule, text) in &c.reasons {
            match r.rules.iter().find(|l| l.rule == *rule) {
                Some(l) if l.reason.contains(text) => {}
                Some(l) => problems.push(format!("{rule} reason {:?} lacks {text:?}", l.reason)),
                None => problems.push(format!("{rule} not evaluated")),
            }
        }
        for code in &c.findings {
            if !r.findings.iter().any(|f| f.code == *code) {
                problems.push(format!("finding {code} missing: {:?}", r.findings));
            }
        }
        for l in &r.rules {
            if l.result == RuleResult::Waived && l.exception.is_none() {
                problems.push(format!("{} waived without naming the exception", l.rule));
            }
            if l.result != RuleResult::Waived && l.exception.is_some() {
                problems.push(format!("{} names an exception but is {:?}", l.rule, l.result));
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{}:\n  {}\n  reasons: {:#?}", c.name, problems.join("\n  "), r.rules));
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_decision_rechecks_to_itself_and_tampering_names_the_rule() {
    for c in cases() {
        let subject = c.subject.clone().unwrap_or_else(|| c.scenario.pr());
        let (r, _) = run(&c.scenario, &subject, c.stage);
        let body = r.to_body(&subject, &document_digest(POLICY));
        let (again, _) = run(&c.scenario, &subject, c.stage);
        assert_eq!(recheck(&body, &again), Vec::<String>::new(), "{}", c.name);

        let mut tampered = body.clone();
        let first = &mut tampered.rules[0];
        first.result = if first.result == RuleResult::Pass { RuleResult::Fail } else { RuleResult::Pass };
        let rule = first.rule.clone();
        let diff = recheck(&tampered, &again);
        assert!(diff.iter().any(|d| d.starts_with(&format!("rule {rule}:"))), "{}: {diff:?}", c.name);
    }
}

#[test]
fn the_json_form_has_the_documented_fields() {
    let s = Scenario::good();
    let (r, _) = run(&s, &s.pr(), AtMerge);
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["tier"], "T2");
    assert_eq!(v["policy"]["name"], "test");
    assert_eq!(v["policy"]["version"], 3);
    assert!(v["policy"]["digest"].as_str().unwrap().starts_with("sha256:"));
    let rule = &v["rules"][0];
    assert_eq!(rule["rule"], "approvals");
    assert_eq!(rule["result"], "pass");
    assert!(rule["evidence"].as_array().unwrap().iter().all(|e| e.is_u64()));
    assert!(rule.get("exception").is_none());
}
