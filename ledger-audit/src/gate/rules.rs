//! One function per policy rule: what the recorded evidence says about one change. A rule
//! whose evidence is not recorded fails with a reason starting `unknown:`; it never passes
//! for want of data.

use std::collections::BTreeMap;

use ledger_core::record::{Body, CheckKind, CheckResult, Model};
use ledger_core::types::{Seq, Tier, Timestamp};

use super::facts::{ChangeFacts, DeploymentFacts};
use crate::policy::{is_owner, tier_name, CodeownersFile, Policy, TierRules};
use crate::why::Gathered;

/// A rule's verdict on one change, before exceptions.
pub(super) struct Outcome {
    pub pass: bool,
    pub reason: String,
    pub evidence: Vec<u64>,
}

fn pass(reason: String, evidence: Vec<u64>) -> Outcome {
    Outcome { pass: true, reason, evidence }
}
fn fail(reason: String, evidence: Vec<u64>) -> Outcome {
    Outcome { pass: false, reason, evidence }
}

/// What every rule may read besides the change.
pub(super) struct Ctx<'a> {
    pub policy: &'a Policy,
    pub tier: Tier,
    pub rules: &'a TierRules,
    pub deployment: Option<&'a DeploymentFacts>,
    pub models: &'a [(u64, &'a Model)],
    pub all: &'a BTreeMap<Seq, &'a Gathered>,
    pub now: Timestamp,
}

pub(super) fn evaluate(rule: &str, c: &ChangeFacts<'_>, x: &Ctx<'_>) -> Outcome {
    match rule {
        "approvals" => approvals(c, x.rules.approvals.unwrap_or(0)),
        "independent" => independent(c, x.rules.approvals.unwrap_or(1).max(1)),
        "checks" => checks(c, x),
        "codeowners" => codeowners(c, x),
        "deployer_not_sole_approver" => deployer_not_sole_approver(c, x.deployment),
        "ai_requires_human_approval" => ai_requires_human_approval(c),
        "models" => models(c, x),
        "test_delta" => test_delta(c, x.rules),
        "diff_cap" => diff_cap(c, x.rules.diff_cap.unwrap_or(u64::MAX)),
        other => fail(format!("unknown rule `{other}`"), vec![]),
    }
}

fn short(c: &ChangeFacts<'_>) -> String {
    c.report.final_commit.as_str().chars().take(12).collect()
}

fn names(c: &ChangeFacts<'_>) -> String {
    c.approvers.iter().map(|a| a.who.to_string()).collect::<Vec<_>>().join(", ")
}

fn approver_seqs(c: &ChangeFacts<'_>) -> Vec<u64> {
    c.approvers.iter().flat_map(|a| a.seqs.iter().copied()).collect()
}

fn approvals(c: &ChangeFacts<'_>, need: u64) -> Outcome {
    let n = c.approvers.len() as u64;
    let mut evidence = approver_seqs(c);
    evidence.push(c.report.at.seq);
    if n >= need {
        let by = if n > 0 { format!(" by {}", names(c)) } else { String::new() };
        return pass(format!("{n} approval(s) of the final commit {}{by}; {need} required", short(c)), evidence);
    }
    evidence.extend(c.discounted.iter().map(|(s, _)| *s));
    let not_counted: Vec<&str> = c.discounted.iter().map(|(_, why)| why.as_str()).collect();
    let tail =
        if not_counted.is_empty() { String::new() } else { format!(" (not counted: {})", not_counted.join("; ")) };
    fail(format!("{n} of {need} required approval(s) of the final commit {}{tail}", short(c)), evidence)
}

fn independent(c: &ChangeFacts<'_>, need: u64) -> Outcome {
    let Some(people) = &c.commit_people else {
        return fail(
            "unknown: the change's commits are not recorded, so their authors and committers are not known".into(),
            vec![c.report.at.seq],
        );
    };
    let (indep, involved): (Vec<_>, Vec<_>) =
        c.approvers.iter().partition(|a| !people.iter().any(|p| p.same_person(&a.who)));
    let evidence: Vec<u64> = std::iter::once(c.report.at.seq).chain(approver_seqs(c)).collect();
    let n = indep.len() as u64;
    if n >= need {
        return pass(format!("{n} approval(s) from people who wrote none of the change's commits"), evidence);
    }
    let who: Vec<String> = involved.iter().map(|a| a.who.to_string()).collect();
    let tail =
        if who.is_empty() { String::new() } else { format!("; {} authored or committed its commits", who.join(", ")) };
    fail(format!("{n} of {need} approval(s) come from people independent of the change{tail}"), evidence)
}

fn check_kind(name: &str) -> Option<CheckKind> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

fn checks(c: &ChangeFacts<'_>, x: &Ctx<'_>) -> Outcome {
    let mut evidence = vec![c.report.at.seq];
    let mut problems = vec![];
    let mut passed = vec![];
    for want in &x.rules.checks {
        let kind = check_kind(want);
        let matches = |seq: u64, name: &str| {
            want == "*"
                || want == name
                || x.all.get(&Seq(seq)).is_some_and(|g| match &g.record.body {
                    Body::Evidence(e) => Some(e.check_kind) == kind,
                    _ => false,
                })
        };
        let lines: Vec<_> = c.report.evidence.iter().filter(|e| matches(e.at.seq, &e.check)).collect();
        // The latest counting result of each check at the final commit decides.
        let mut latest: BTreeMap<&str, &crate::why::EvidenceLine> = BTreeMap::new();
        for e in lines.iter().filter(|e| e.at_final_commit && e.counts) {
            latest.insert(e.check.as_str(), e);
        }
        if latest.is_empty() {
            let older = older_pass(c, x, &matches);
            let uncounted = lines.iter().rev().find(|e| e.at_final_commit && !e.counts);
            evidence.extend(uncounted.iter().map(|e| e.at.seq));
            evidence.extend(older);
            problems.push(match (older, uncounted) {
                (_, Some(u)) => format!("`{want}`: only an attestation that does not count (entry {})", u.at.seq),
                (Some(o), None) => format!("`{want}` passed only at an older commit (entry {o})"),
                (None, None) => format!("`{want}`: no check recorded at the final commit {}", short(c)),
            });
            continue;
        }
        evidence.extend(latest.values().map(|e| e.at.seq));
        let failing: Vec<String> = latest
            .values()
            .filter(|e| e.result != CheckResult::Pass)
            .map(|e| format!("`{}` {:?} (entry {})", e.check, e.result, e.at.seq).to_lowercase())
            .collect();
        if failing.is_empty() {
            passed.push(format!("`{want}`"));
        } else {
            problems.push(format!("{} at the final commit", failing.join(", ")));
        }
    }
    if problems.is_empty() {
        pass(format!("{} passed at the final commit {}", passed.join(", "), short(c)), evidence)
    } else {
        fail(problems.join("; "), evidence)
    }
}

/// The latest passing check matching `matches` at a commit of the change other than its
/// final one: what a check that passed only on an earlier revision leaves behind.
fn older_pass(c: &ChangeFacts<'_>, x: &Ctx<'_>, matches: &dyn Fn(u64, &str) -> bool) -> Option<u64> {
    let final_commit = &c.report.final_commit;
    x.all.values().rev().find_map(|g| match &g.record.body {
        Body::Evidence(e)
            if e.result == CheckResult::Pass
                && e.repo.as_str() == c.report.repo
                && &e.commit != final_commit
                && (e.commit == c.report.head_commit || c.report.commits.iter().any(|k| k.sha == e.commit))
                && matches(g.seq.0, &e.check) =>
        {
            Some(g.seq.0)
        }
        _ => None,
    })
}

fn codeowners(c: &ChangeFacts<'_>, x: &Ctx<'_>) -> Outcome {
    let Some(paths) = &c.paths else {
        return fail("unknown: the change's touched paths are not recorded".into(), vec![c.report.at.seq]);
    };
    let Some((seq, file)) = super::facts::codeowners(x.all, &c.report.repo) else {
        return fail(
            format!(
                "no CODEOWNERS recorded for {} (`ledger policy codeowners FILE --repo {}`)",
                c.report.repo, c.report.repo
            ),
            vec![],
        );
    };
    let parsed = match CodeownersFile::parse(&file.document) {
        Ok(p) => p,
        Err(e) => {
            return fail(
                format!("the CODEOWNERS of entry {seq} does not parse: line {}: {}", e[0].0, e[0].1),
                vec![seq],
            )
        }
    };
    let owned: Vec<(&String, &[String])> =
        paths.iter().map(|p| (p, parsed.owners_of(p))).filter(|(_, o)| !o.is_empty()).collect();
    let mut evidence = vec![seq];
    evidence.extend(c.paths_seq);
    if owned.is_empty() {
        return pass(format!("no touched path has an owner in the CODEOWNERS of entry {seq}"), evidence);
    }
    for a in &c.approvers {
        if let Some((path, _)) = owned.iter().find(|(_, owners)| owners.iter().any(|o| is_owner(o, &a.who))) {
            evidence.extend(a.seqs.iter().copied());
            return pass(format!("{} owns {path} and approved the final commit", a.who), evidence);
        }
    }
    let (path, owners) = owned[0];
    evidence.extend(approver_seqs(c));
    fail(format!("no owner of a touched path approved ({path} is owned by {})", owners.join(" ")), evidence)
}

fn deployer_not_sole_approver(c: &ChangeFacts<'_>, d: Option<&DeploymentFacts>) -> Outcome {
    let Some(d) = d else {
        return fail("unknown: no deployment of the change is recorded".into(), vec![]);
    };
    let mut evidence = d.seqs.clone();
    evidence.extend(approver_seqs(c));
    if c.approvers.iter().any(|a| !a.who.same_person(&d.deployer)) {
        return pass(format!("approved by {}, not only by the deployer {}", names(c), d.deployer), evidence);
    }
    if c.approvers.is_empty() {
        fail(format!("no approval besides the deployer {}'s own deployment", d.deployer), evidence)
    } else {
        fail(format!("the deployer {} is the only approver", d.deployer), evidence)
    }
}

fn ai_requires_human_approval(c: &ChangeFacts<'_>) -> Outcome {
    let sessions: Vec<u64> = c.sessions.iter().map(|(s, _)| *s).collect();
    if !c.ai {
        return pass("not AI-assisted: no AI session or AI-authored commit recorded".into(), vec![]);
    }
    let mut evidence = sessions;
    evidence.extend(approver_seqs(c));
    if c.approvers.is_empty() {
        fail("AI-assisted, and no human other than the author approved the final commit".into(), evidence)
    } else {
        pass(format!("AI-assisted; approved by {}", names(c)), evidence)
    }
}

fn models(c: &ChangeFacts<'_>, x: &Ctx<'_>) -> Outcome {
    if c.sessions.is_empty() {
        return pass("no AI session recorded".into(), vec![]);
    }
    let tier = tier_name(x.tier);
    let mut evidence = vec![];
    let mut problems = vec![];
    let mut ok = vec![];
    let mut seen: Vec<ledger_core::subject::Subject> = vec![];
    for (seq, s) in &c.sessions {
        evidence.push(*seq);
        // One session named by several records (each delivery of a pull request body) counts once.
        if seen.contains(&s.subject()) {
            continue;
        }
        seen.push(s.subject());
        let Some(model) = &s.model else {
            problems.push(format!("unknown: session {} (entry {seq}) does not record its model", s.subject()));
            continue;
        };
        if let Some(rule) = x.policy.model_approved(model, x.tier) {
            ok.push(format!("{model} (policy [models] \"{}\")", rule.pattern));
            continue;
        }
        let record = x.models.iter().find(|(_, m)| m.tool == s.tool && m.model.eq_ignore_ascii_case(model)).copied();
        match record {
            Some((mseq, m)) if m.approved_tiers.contains(&x.tier) => {
                evidence.push(mseq);
                match m.not_after {
                    Some(t) if t <= x.now => {
                        problems.push(format!("the approval of {model} (entry {mseq}) expired at {}", t.to_rfc3339()))
                    }
                    _ => ok.push(format!("{model} (entry {mseq})")),
                }
            }
            Some((mseq, m)) => {
                evidence.push(mseq);
                let tiers: Vec<&str> = m.approved_tiers.iter().map(|t| tier_name(*t)).collect();
                problems.push(format!(
                    "{model} is approved for {} (entry {mseq}), not {tier}",
                    if tiers.is_empty() { "no tier".to_string() } else { tiers.join(", ") }
                ));
            }
            None => problems.push(format!("{model} ({}) is not approved for {tier}", s.tool)),
        }
    }
    evidence.sort_unstable();
    evidence.dedup();
    if problems.is_empty() {
        pass(format!("approved for {tier}: {}", ok.join(", ")), evidence)
    } else {
        fail(problems.join("; "), evidence)
    }
}

/// `release` reads only the deployment.
pub(super) fn release(x: &Ctx<'_>) -> Outcome {
    let want = x.rules.release.join(", ");
    let Some(d) = x.deployment else {
        return fail(format!("unknown: no deployment recorded; {} requires one of: {want}", tier_name(x.tier)), vec![]);
    };
    match &d.strategy {
        None => fail(
            format!("unknown: deployment {} records no release strategy; required: one of {want}", d.subject),
            d.seqs.clone(),
        ),
        Some(s) if x.rules.release.iter().any(|r| r.eq_ignore_ascii_case(s.as_str())) => {
            pass(format!("{} is released by `{s}`", d.subject), d.seqs.clone())
        }
        Some(s) => fail(format!("{} is released by `{s}`; required: one of {want}", d.subject), d.seqs.clone()),
    }
}

fn test_delta(c: &ChangeFacts<'_>, rules: &TierRules) -> Outcome {
    let evidence: Vec<u64> = c.lines_seq.iter().chain(c.paths_seq.iter()).copied().collect();
    if !c.ai {
        match c.lines {
            None => return fail("unknown: the change's line counts are not recorded".into(), vec![c.report.at.seq]),
            Some(n) if n <= rules.test_delta_over => {
                return pass(
                    format!("{n} changed line(s), at most {}: no test change required", rules.test_delta_over),
                    evidence,
                )
            }
            Some(_) => {}
        }
    }
    let size = c.lines.map_or("an AI-assisted change".to_string(), |n| format!("{n} changed line(s)"));
    let Some(paths) = &c.paths else {
        return fail(format!("unknown: {size}, and the touched paths are not recorded"), evidence);
    };
    match rules.first_test_path(paths) {
        Some(p) => pass(format!("{size}; touches the test path {p}"), evidence),
        None => fail(format!("{size} and no test path touched"), evidence),
    }
}

fn diff_cap(c: &ChangeFacts<'_>, cap: u64) -> Outcome {
    if !c.ai {
        return pass("not AI-assisted".into(), vec![]);
    }
    match (c.lines, c.lines_seq) {
        (Some(n), Some(seq)) if n > cap => {
            fail(format!("AI-assisted change of {n} lines exceeds the cap of {cap}"), vec![seq])
        }
        (Some(n), Some(seq)) => pass(format!("AI-assisted change of {n} lines, within the cap of {cap}"), vec![seq]),
        _ => fail("unknown: the AI-assisted change's line counts are not recorded".into(), vec![c.report.at.seq]),
    }
}
