//! The risk-tier policy: which tier a change is in, and what each tier requires before merge
//! and before deploy. Specified in `docs/POLICY.md`; [`DEFAULT_POLICY`] follows the tier table
//! of the product brief.
//!
//! A policy is a TOML document. [`Policy::parse`] checks all of it and reports every error with
//! its line and column; a parsed policy is valid (its globs compile, every tier it names is
//! defined). The gate ([`crate::gate`]) evaluates it against what the ledger holds.

mod codeowners;
mod parse;

use std::collections::BTreeMap;

use globset::{GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use ledger_core::record::Stage;
use ledger_core::types::Tier;
use serde::Serialize;

pub use codeowners::{is_owner, CodeownersFile, OwnerRule};
pub use parse::PolicyError;

/// Every rule id, in the order a gate evaluates them. Reports and exceptions name rules by
/// these ids.
pub const RULE_IDS: &[&str] = &[
    "approvals",
    "independent",
    "checks",
    "codeowners",
    "deployer_not_sole_approver",
    "ai_requires_human_approval",
    "models",
    "release",
    "test_delta",
    "diff_cap",
];

/// The default policy (docs/POLICY.md): the brief's tier table as rules.
pub const DEFAULT_POLICY: &str = include_str!("default.toml");

/// Paths that count as tests for `test_delta` when a tier names none.
pub const DEFAULT_TEST_PATHS: &[&str] = &[
    "test/**",
    "tests/**",
    "**/test/**",
    "**/tests/**",
    "**/__tests__/**",
    "spec/**",
    "**/spec/**",
    "**/*_test.*",
    "**/*_tests.*",
    "**/test_*",
    "**/*.test.*",
    "**/*.spec.*",
    "**/*_spec.*",
    "**/*Test.*",
    "**/*Tests.*",
];

/// A parsed, valid policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// Policy name (a token: no whitespace).
    pub name: String,
    /// Version; a published policy's version must exceed the last published one of that name.
    pub version: u64,
    /// The tier of a change no `[[classify]]` rule matches.
    pub default_tier: Tier,
    /// What each tier requires. A tier without a table requires nothing, and no classification
    /// may name it.
    pub tiers: BTreeMap<Tier, TierRules>,
    /// Classification rules; the highest tier among the matching ones wins.
    pub classify: Vec<ClassifyRule>,
    /// Model name globs and the tiers the models they match are approved for.
    pub models: Vec<ModelRule>,
}

/// What one tier requires. A rule is part of the tier when its key is present (a boolean rule
/// when it is `true`, a list rule when the list is not empty).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TierRules {
    /// `approvals`: valid approvals at the final commit, from people other than the author.
    pub approvals: Option<u64>,
    /// `independent`: the approvals come from people who neither authored nor committed any
    /// commit of the change.
    pub independent: bool,
    /// `checks`: check names or check kinds that must pass at the final commit (`*`: every
    /// check recorded there).
    pub checks: Vec<String>,
    /// `codeowners`: an approval from an owner of a touched path.
    pub codeowners: bool,
    /// `deployer_not_sole_approver` (deploy stage): someone other than the deployer approved.
    pub deployer_not_sole_approver: bool,
    /// `ai_requires_human_approval`: an AI-assisted change has a human approval.
    pub ai_requires_human_approval: bool,
    /// `release` (deploy stage): the deployment's strategy is one of these.
    pub release: Vec<String>,
    /// `test_delta`: a change over `test_delta_over` lines (an AI-assisted one at any size)
    /// touches a path matching `test_paths`.
    pub test_delta: bool,
    /// Changed lines (added + removed) above which `test_delta` applies.
    pub test_delta_over: u64,
    /// Globs of test paths; [`DEFAULT_TEST_PATHS`] when empty.
    pub test_paths: Vec<String>,
    /// `diff_cap`: most changed lines an AI-assisted change may have.
    pub diff_cap: Option<u64>,
    /// `models`: whether AI sessions must use a model approved for the tier (default `true`).
    pub models: bool,
}

impl TierRules {
    /// The rule ids this tier evaluates at `stage`, in [`RULE_IDS`] order. Deploy evaluates
    /// every rule; merge all but `deployer_not_sole_approver` and `release`, which concern a
    /// deployment.
    pub fn rules(&self, stage: Stage) -> Vec<&'static str> {
        let deploy = stage == Stage::Deploy;
        let on = [
            ("approvals", self.approvals.is_some()),
            ("independent", self.independent),
            ("checks", !self.checks.is_empty()),
            ("codeowners", self.codeowners),
            ("deployer_not_sole_approver", self.deployer_not_sole_approver && deploy),
            ("ai_requires_human_approval", self.ai_requires_human_approval),
            ("models", self.models),
            ("release", !self.release.is_empty() && deploy),
            ("test_delta", self.test_delta),
            ("diff_cap", self.diff_cap.is_some()),
        ];
        on.into_iter().filter(|(_, on)| *on).map(|(r, _)| r).collect()
    }

    /// The first of `paths` that is a test path for `test_delta`.
    pub fn first_test_path<'p>(&self, paths: &'p [String]) -> Option<&'p String> {
        let set = if self.test_paths.is_empty() {
            glob_set(&DEFAULT_TEST_PATHS.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        } else {
            glob_set(&self.test_paths)
        };
        paths.iter().find(|p| set.is_match(p.as_str()))
    }
}

/// A `[[classify]]` rule: every condition it has must hold (a list condition holds when any of
/// its items matches). A rule with no condition matches every change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClassifyRule {
    /// Glob over the repository name (`owner/name`).
    pub repo: Option<String>,
    /// Globs over the touched paths: holds when a touched path matches one. Needs the change's
    /// paths: with them unknown, the condition does not hold (the gate says so).
    pub paths: Vec<String>,
    /// `all_paths`: the `paths` condition holds only when *every* touched path matches (for
    /// rules that lower the tier, such as documentation-only changes).
    pub all_paths: bool,
    /// Labels (case-insensitive): holds when the change carries one.
    pub labels: Vec<String>,
    /// Risk areas (case-insensitive) declared in AI provenance: holds when a session names one.
    pub risk_areas: Vec<String>,
    /// The tier of a matching change.
    pub tier: Tier,
}

/// What a change offers to classification.
#[derive(Clone, Debug, Default)]
pub struct ClassifyInput<'a> {
    /// Repository `owner/name`.
    pub repo: &'a str,
    /// Touched paths, when known.
    pub paths: Option<&'a [String]>,
    /// Labels.
    pub labels: &'a [String],
    /// Risk areas declared by the change's AI sessions.
    pub risk_areas: &'a [String],
}

/// How a change was classified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Classification {
    /// The tier.
    pub tier: Tier,
    /// Indexes of the `[[classify]]` rules that matched (0-based, file order).
    pub matched: Vec<usize>,
    /// Indexes of rules with a `paths` condition that could not be decided (paths unknown).
    pub undecided: Vec<usize>,
}

/// A `[models]` entry: a model name glob and the tiers it is approved for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelRule {
    /// Glob over the model name as sessions record it (case-insensitive).
    pub pattern: String,
    /// Tiers approved.
    pub tiers: Vec<Tier>,
}

impl Policy {
    /// Parses and checks a policy document.
    ///
    /// # Errors
    /// Every problem found, each with its 1-based line and column: TOML syntax, unknown keys,
    /// wrong types, bad tiers or globs, missing `name`/`version`/`default_tier`, tiers named
    /// but not defined. Sorted by position.
    pub fn parse(text: &str) -> Result<Policy, Vec<PolicyError>> {
        parse::parse(text)
    }

    /// The default policy, parsed.
    pub fn default_policy() -> Policy {
        #[allow(clippy::expect_used)]
        Policy::parse(DEFAULT_POLICY).expect("the default policy parses (pinned by a test)")
    }

    /// The rules of `tier` (an undefined tier requires nothing).
    pub fn tier(&self, tier: Tier) -> TierRules {
        self.tiers.get(&tier).cloned().unwrap_or_else(|| TierRules { models: false, ..TierRules::default() })
    }

    /// The tier of a change: the highest tier among the matching `[[classify]]` rules, else
    /// `default_tier`.
    pub fn classify(&self, input: &ClassifyInput<'_>) -> Classification {
        let mut matched = vec![];
        let mut undecided = vec![];
        for (i, rule) in self.classify.iter().enumerate() {
            let repo_ok = rule.repo.as_deref().is_none_or(|g| glob_matches(g, input.repo));
            let labels_ok = rule.labels.is_empty()
                || rule.labels.iter().any(|l| input.labels.iter().any(|x| x.eq_ignore_ascii_case(l)));
            let areas_ok = rule.risk_areas.is_empty()
                || rule.risk_areas.iter().any(|a| input.risk_areas.iter().any(|x| x.eq_ignore_ascii_case(a)));
            let paths_ok = match input.paths {
                _ if rule.paths.is_empty() => Some(true),
                Some(paths) => {
                    // Compiled once per rule: a change may touch thousands of paths.
                    let set = glob_set(&rule.paths);
                    let hit = |p: &String| set.is_match(p);
                    Some(if rule.all_paths {
                        !paths.is_empty() && paths.iter().all(hit)
                    } else {
                        paths.iter().any(hit)
                    })
                }
                None => None,
            };
            if !(repo_ok && labels_ok && areas_ok) {
                continue;
            }
            match paths_ok {
                Some(true) => matched.push(i),
                Some(false) => {}
                None => undecided.push(i),
            }
        }
        let tier = matched.iter().map(|&i| self.classify[i].tier).max().unwrap_or(self.default_tier);
        Classification { tier, matched, undecided }
    }

    /// The `[models]` patterns that approve `model` for `tier`.
    pub fn model_approved(&self, model: &str, tier: Tier) -> Option<&ModelRule> {
        self.models.iter().find(|m| m.tiers.contains(&tier) && glob_matches_ci(&m.pattern, model))
    }
}

/// A compiled glob where `*` does not cross `/` and `**` does (gitignore style).
pub(crate) fn glob(pattern: &str, case_insensitive: bool) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .case_insensitive(case_insensitive)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| e.kind().to_string())
}

/// The globs `patterns` as one matcher (patterns that do not compile are left out; parsed
/// policies hold only compiling ones).
pub(crate) fn glob_set(patterns: &[String]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        if let Ok(g) = GlobBuilder::new(p).literal_separator(true).build() {
            b.add(g);
        }
    }
    b.build().unwrap_or_else(|_| GlobSet::empty())
}

/// Whether `path` matches the glob `pattern` (a pattern that does not compile matches
/// nothing; parsed policies hold only compiling ones).
pub fn glob_matches(pattern: &str, path: &str) -> bool {
    glob(pattern, false).is_ok_and(|g| g.is_match(path))
}

fn glob_matches_ci(pattern: &str, text: &str) -> bool {
    glob(pattern, true).is_ok_and(|g| g.is_match(text))
}

/// `T0`…`T3` from its name.
pub fn tier_from_str(s: &str) -> Option<Tier> {
    match s {
        "T0" => Some(Tier::T0),
        "T1" => Some(Tier::T1),
        "T2" => Some(Tier::T2),
        "T3" => Some(Tier::T3),
        _ => None,
    }
}

/// The name of a tier.
pub fn tier_name(t: Tier) -> &'static str {
    match t {
        Tier::T0 => "T0",
        Tier::T1 => "T1",
        Tier::T2 => "T2",
        Tier::T3 => "T3",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_parses_and_follows_the_brief() {
        let p = Policy::default_policy();
        assert_eq!(p.default_tier, Tier::T1);
        assert_eq!(p.tiers.len(), 4);
        let t3 = p.tier(Tier::T3);
        assert_eq!(t3.approvals, Some(2));
        assert!(t3.independent);
        let t2 = p.tier(Tier::T2);
        assert!(t2.deployer_not_sole_approver);
        assert!(t2.checks.iter().any(|c| c == "sast"));
        assert!(p.tier(Tier::T1).codeowners);
        for t in [Tier::T0, Tier::T1, Tier::T2, Tier::T3] {
            assert!(p.tier(t).ai_requires_human_approval, "{t:?}");
        }
        let c = p.classify(&ClassifyInput {
            repo: "acme/api",
            paths: Some(&["db/migrations/001.sql".into()]),
            ..Default::default()
        });
        assert_eq!(c.tier, Tier::T3);
        let c =
            p.classify(&ClassifyInput { repo: "acme/api", paths: Some(&["README.md".into()]), ..Default::default() });
        assert_eq!(c.tier, Tier::T0);
    }

    #[test]
    fn globs_do_not_cross_directories_with_one_star() {
        assert!(glob_matches("docs/*", "docs/a.md"));
        assert!(!glob_matches("docs/*", "docs/x/a.md"));
        assert!(glob_matches("docs/**", "docs/x/a.md"));
        assert!(glob_matches("**/auth/**", "src/auth/login.rs"));
        assert!(glob_matches_ci("claude-*", "Claude-Opus-4"));
    }
}
