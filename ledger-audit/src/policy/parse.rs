//! Checking a policy document: TOML syntax first (every syntax error the parser recovers
//! from), then the schema of docs/POLICY.md, key by key, so that one run reports every error
//! with its line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use ledger_core::types::{Tier, Token};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{glob, tier_from_str, tier_name, ClassifyRule, ModelRule, Policy, TierRules, RULE_IDS};

/// One problem in a policy document.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PolicyError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

const TOP_KEYS: &[&str] = &["name", "version", "default_tier", "description", "tiers", "classify", "models"];
/// Keys of a `[tiers.Tn]` table besides the rule ids ([`RULE_IDS`]): the rules' parameters.
const TIER_PARAMETERS: &[&str] = &["test_delta_over", "test_paths"];
const CLASSIFY_KEYS: &[&str] = &["repo", "paths", "all_paths", "labels", "risk_areas", "tier"];

struct Checker<'t> {
    text: &'t str,
    errors: Vec<PolicyError>,
}

type Value<'i> = Spanned<DeValue<'i>>;

impl Checker<'_> {
    fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let start = span.start.min(self.text.len());
        let before = self.text.get(..start).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        self.errors.push(PolicyError { line, column, message: message.into() });
    }

    fn unknown_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], where_: &str) {
        for (k, _) in table.iter() {
            if !allowed.contains(&k.get_ref().as_ref()) {
                let msg = format!("unknown key `{}` in {where_}; expected one of: {}", k.get_ref(), allowed.join(", "));
                self.at(k.span(), msg);
            }
        }
    }

    fn string(&mut self, v: &Value<'_>, what: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.at(v.span(), format!("`{what}` must be a string, not {}", type_name(other)));
                None
            }
        }
    }

    fn u64(&mut self, v: &Value<'_>, what: &str) -> Option<u64> {
        match v.get_ref() {
            DeValue::Integer(i) if i.as_str().starts_with('-') => {
                self.at(v.span(), format!("`{what}` must not be negative"));
                None
            }
            DeValue::Integer(i) => match u64::from_str_radix(i.as_str().trim_start_matches('+'), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.at(v.span(), format!("`{what}` is too large"));
                    None
                }
            },
            other => {
                self.at(v.span(), format!("`{what}` must be a whole number, not {}", type_name(other)));
                None
            }
        }
    }

    fn bool(&mut self, v: &Value<'_>, what: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.at(v.span(), format!("`{what}` must be true or false, not {}", type_name(other)));
                None
            }
        }
    }

    fn tier(&mut self, v: &Value<'_>, what: &str) -> Option<(Tier, Range<usize>)> {
        let s = self.string(v, what)?;
        match tier_from_str(&s) {
            Some(t) => Some((t, v.span())),
            None => {
                self.at(v.span(), format!("`{what}`: unknown tier `{s}`; expected T0, T1, T2 or T3"));
                None
            }
        }
    }

    /// A list of non-empty strings; `check` judges each (an error message, or `None` if fine).
    fn strings(&mut self, v: &Value<'_>, what: &str, check: impl Fn(&str) -> Option<String>) -> Vec<String> {
        let DeValue::Array(items) = v.get_ref() else {
            self.at(v.span(), format!("`{what}` must be a list of strings, not {}", type_name(v.get_ref())));
            return vec![];
        };
        let mut out = vec![];
        for item in items.iter() {
            let Some(s) = self.string(item, what) else { continue };
            if s.trim().is_empty() {
                self.at(item.span(), format!("`{what}`: empty string"));
            } else if let Some(problem) = check(&s) {
                self.at(item.span(), format!("`{what}`: {problem}"));
            } else {
                out.push(s);
            }
        }
        out
    }

    fn table<'a, 'i>(&mut self, v: &'a Value<'i>, what: &str) -> Option<&'a DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.at(v.span(), format!("`{what}` must be a table, not {}", type_name(other)));
                None
            }
        }
    }
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

fn bad_glob(g: &str) -> Option<String> {
    glob(g, false).err().map(|e| format!("bad glob `{g}`: {e}"))
}

fn bad_token(s: &str) -> Option<String> {
    Token::new(s).err().map(|_| format!("`{s}` must be a single word without whitespace"))
}

pub(super) fn parse(text: &str) -> Result<Policy, Vec<PolicyError>> {
    let mut c = Checker { text, errors: vec![] };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            let msg = e.message().trim().to_string();
            c.at(e.span().unwrap_or(0..0), format!("TOML syntax: {msg}"));
        }
        return Err(sorted(c.errors));
    }
    let doc = doc.get_ref();
    c.unknown_keys(doc, TOP_KEYS, "the policy");

    let name = doc.get("name").and_then(|v| {
        let s = c.string(v, "name")?;
        match bad_token(&s) {
            Some(problem) => {
                c.at(v.span(), format!("`name`: {problem}"));
                None
            }
            None => Some(s),
        }
    });
    let version = doc.get("version").and_then(|v| c.u64(v, "version"));
    let default_tier = doc.get("default_tier").and_then(|v| c.tier(v, "default_tier"));
    if let Some(d) = doc.get("description") {
        c.string(d, "description");
    }
    for (key, found) in
        [("name", name.is_some()), ("version", version.is_some()), ("default_tier", default_tier.is_some())]
    {
        if !found && doc.get(key).is_none() {
            c.at(0..0, format!("missing `{key}` (docs/POLICY.md)"));
        }
    }

    let tiers = doc.get("tiers").map(|v| tiers(&mut c, v)).unwrap_or_default();
    let classify = doc.get("classify").map(|v| classify(&mut c, v)).unwrap_or_default();
    let models = doc.get("models").map(|v| models(&mut c, v)).unwrap_or_default();

    // Every tier a change can be put in must say what it requires.
    let mut used: Vec<(Tier, Range<usize>)> = default_tier.iter().cloned().collect();
    used.extend(classify.iter().map(|(r, span)| (r.tier, span.clone())));
    for (t, span) in used {
        if !tiers.contains_key(&t) {
            c.at(span, format!("tier {} is used but has no [tiers.{}] table", tier_name(t), tier_name(t)));
        }
    }

    if !c.errors.is_empty() {
        return Err(sorted(c.errors));
    }
    match (name, version, default_tier) {
        (Some(name), Some(version), Some((default_tier, _))) => Ok(Policy {
            name,
            version,
            default_tier,
            tiers,
            classify: classify.into_iter().map(|(r, _)| r).collect(),
            models,
        }),
        // Unreachable: a missing or bad field is an error above.
        _ => Err(vec![PolicyError { line: 1, column: 1, message: "incomplete policy".into() }]),
    }
}

fn sorted(mut errors: Vec<PolicyError>) -> Vec<PolicyError> {
    errors.sort_by_key(|e| (e.line, e.column));
    errors.dedup();
    errors
}

fn tiers(c: &mut Checker<'_>, v: &Value<'_>) -> BTreeMap<Tier, TierRules> {
    let mut out = BTreeMap::new();
    let Some(table) = c.table(v, "tiers") else { return out };
    for (k, tv) in table.iter() {
        let Some(tier) = tier_from_str(k.get_ref()) else {
            c.at(k.span(), format!("unknown tier `{}` in [tiers]; expected T0, T1, T2 or T3", k.get_ref()));
            continue;
        };
        let what = format!("tiers.{}", k.get_ref());
        let Some(t) = c.table(tv, &what) else { continue };
        let allowed: Vec<&str> = RULE_IDS.iter().chain(TIER_PARAMETERS).copied().collect();
        c.unknown_keys(t, &allowed, &format!("[{what}]"));
        let mut r = TierRules { models: true, ..TierRules::default() };
        for (key, v) in t.iter() {
            let key = key.get_ref().as_ref();
            let name = format!("{what}.{key}");
            match key {
                "approvals" => r.approvals = c.u64(v, &name),
                "independent" => r.independent = c.bool(v, &name).unwrap_or(false),
                "checks" => r.checks = c.strings(v, &name, |_| None),
                "codeowners" => r.codeowners = c.bool(v, &name).unwrap_or(false),
                "deployer_not_sole_approver" => r.deployer_not_sole_approver = c.bool(v, &name).unwrap_or(false),
                "ai_requires_human_approval" => r.ai_requires_human_approval = c.bool(v, &name).unwrap_or(false),
                "models" => r.models = c.bool(v, &name).unwrap_or(true),
                "release" => r.release = c.strings(v, &name, bad_token),
                "test_delta" => r.test_delta = c.bool(v, &name).unwrap_or(false),
                "test_delta_over" => r.test_delta_over = c.u64(v, &name).unwrap_or(0),
                "test_paths" => r.test_paths = c.strings(v, &name, bad_glob),
                "diff_cap" => r.diff_cap = c.u64(v, &name),
                _ => {}
            }
        }
        out.insert(tier, r);
    }
    out
}

fn classify(c: &mut Checker<'_>, v: &Value<'_>) -> Vec<(ClassifyRule, Range<usize>)> {
    let DeValue::Array(items) = v.get_ref() else {
        c.at(v.span(), "`classify` must be a list of tables ([[classify]])");
        return vec![];
    };
    let mut out = vec![];
    for (i, item) in items.iter().enumerate() {
        let what = format!("classify[{i}]");
        let Some(t) = c.table(item, &what) else { continue };
        c.unknown_keys(t, CLASSIFY_KEYS, &format!("[[classify]] #{}", i + 1));
        let repo = t.get("repo").and_then(|v| {
            let s = c.string(v, &format!("{what}.repo"))?;
            if let Some(problem) = bad_glob(&s) {
                c.at(v.span(), format!("`{what}.repo`: {problem}"));
            }
            Some(s)
        });
        let list = |c: &mut Checker<'_>, key: &str, check: fn(&str) -> Option<String>| {
            t.get(key).map(|v| c.strings(v, &format!("{what}.{key}"), check)).unwrap_or_default()
        };
        let paths = list(c, "paths", bad_glob);
        let labels = list(c, "labels", |_| None);
        let risk_areas = list(c, "risk_areas", |_| None);
        let all_paths = t.get("all_paths").and_then(|v| c.bool(v, &format!("{what}.all_paths"))).unwrap_or(false);
        let tier = match t.get("tier") {
            Some(v) => c.tier(v, &format!("{what}.tier")),
            None => {
                c.at(item.span(), format!("[[classify]] #{} has no `tier`", i + 1));
                None
            }
        };
        if let Some((tier, span)) = tier {
            out.push((ClassifyRule { repo, paths, all_paths, labels, risk_areas, tier }, span));
        }
    }
    out
}

fn models(c: &mut Checker<'_>, v: &Value<'_>) -> Vec<ModelRule> {
    let Some(table) = c.table(v, "models") else { return vec![] };
    let mut out = vec![];
    for (k, tv) in table.iter() {
        let pattern = k.get_ref().to_string();
        if let Some(problem) = bad_glob(&pattern) {
            c.at(k.span(), format!("[models]: {problem}"));
            continue;
        }
        let what = format!("models.\"{pattern}\"");
        let DeValue::Array(items) = tv.get_ref() else {
            c.at(tv.span(), format!("`{what}` must be a list of tiers, e.g. [\"T0\", \"T1\"]"));
            continue;
        };
        let tiers: Vec<Tier> = items.iter().filter_map(|i| c.tier(i, &what).map(|(t, _)| t)).collect();
        out.push(ModelRule { pattern, tiers });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_line_and_column() {
        let text = "name = \"p\"\nversion = -1\ndefault_tier = \"T9\"\n[tiers.T1]\napprovals = \"two\"\nbogus = 1\n\
                    [[classify]]\npaths = [\"[\"]\ntier = \"T2\"\n";
        let errs = Policy::parse(text).unwrap_err();
        let at: Vec<(usize, usize)> = errs.iter().map(|e| (e.line, e.column)).collect();
        assert!(at.contains(&(2, 11)), "{errs:?}");
        assert!(at.contains(&(3, 16)), "{errs:?}");
        assert!(at.contains(&(5, 13)), "{errs:?}");
        assert!(at.contains(&(6, 1)), "{errs:?}");
        assert!(at.contains(&(8, 10)), "{errs:?}");
        assert!(errs.iter().any(|e| e.message.contains("tier T2 is used")), "{errs:?}");
    }

    #[test]
    fn syntax_errors_are_reported_with_positions() {
        let errs = Policy::parse("name = \"p\"\nversion = 1\ndefault_tier = \n").unwrap_err();
        assert_eq!(errs[0].line, 3, "{errs:?}");
        assert!(errs[0].message.starts_with("TOML syntax"), "{errs:?}");
    }

    #[test]
    fn missing_fields_are_named() {
        let errs = Policy::parse("[tiers.T0]\n").unwrap_err();
        let msgs: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
        assert!(msgs.iter().any(|m| m.contains("missing `name`")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.contains("missing `version`")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.contains("missing `default_tier`")), "{msgs:?}");
    }
}

#[cfg(test)]
mod hostile {
    use super::*;

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        for depth in [1_000usize, 100_000, 1_000_000] {
            let arrays = format!(
                "name = \"p\"\nversion = 1\ndefault_tier = \"T0\"\nx = {}{}\n",
                "[".repeat(depth),
                "]".repeat(depth)
            );
            assert!(Policy::parse(&arrays).is_err());
            let tables = format!("name = \"p\"\nx = {}1{}\n", "{a = ".repeat(depth), "}".repeat(depth));
            assert!(Policy::parse(&tables).is_err());
            let dotted = format!("{} = 1\n", vec!["a"; depth].join("."));
            assert!(Policy::parse(&dotted).is_err());
        }
    }
}
