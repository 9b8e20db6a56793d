//! CODEOWNERS files, as GitHub and GitLab read them: one `pattern owner…` rule a line, the
//! last matching rule wins. Patterns follow gitignore: a leading `/` or an inner `/` anchors
//! the pattern at the repository root, otherwise it matches at any depth; a trailing `/`
//! matches a directory's contents; `*` stays within one directory, `**` crosses them.
//! GitLab `[Section]` headers are skipped (their rules are read as ordinary rules).

use globset::GlobMatcher;
use ledger_core::types::Identity;

use super::glob;

/// One rule of a CODEOWNERS file.
#[derive(Clone, Debug)]
pub struct OwnerRule {
    /// The pattern as written.
    pub pattern: String,
    /// Owners as written: `@user`, `@org/team`, or an e-mail address. Empty: the path has no
    /// owner (a later rule may unset owners this way).
    pub owners: Vec<String>,
    /// 1-based line.
    pub line: usize,
    matchers: Vec<GlobMatcher>,
}

/// A parsed CODEOWNERS file.
#[derive(Clone, Debug, Default)]
pub struct CodeownersFile {
    /// Rules in file order.
    pub rules: Vec<OwnerRule>,
}

impl CodeownersFile {
    /// Parses a CODEOWNERS file.
    ///
    /// # Errors
    /// `(line, message)` for every pattern that cannot be read as a glob.
    pub fn parse(text: &str) -> Result<CodeownersFile, Vec<(usize, String)>> {
        let mut rules = vec![];
        let mut errors = vec![];
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split_once(" #").map_or(raw, |(l, _)| l).trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('[') || line.starts_with("^[") {
                continue;
            }
            let mut parts = line.split_whitespace();
            let Some(pattern) = parts.next() else { continue };
            match matchers(pattern) {
                Ok(matchers) => rules.push(OwnerRule {
                    pattern: pattern.to_string(),
                    owners: parts.map(str::to_string).collect(),
                    line: i + 1,
                    matchers,
                }),
                Err(e) => errors.push((i + 1, format!("bad pattern `{pattern}`: {e}"))),
            }
        }
        if errors.is_empty() {
            Ok(CodeownersFile { rules })
        } else {
            Err(errors)
        }
    }

    /// The rule that decides `path`'s owners: the last one matching it.
    pub fn rule_for(&self, path: &str) -> Option<&OwnerRule> {
        self.rules.iter().rev().find(|r| r.matchers.iter().any(|m| m.is_match(path)))
    }

    /// The owners of `path` (empty when no rule matches or the deciding rule names none).
    pub fn owners_of(&self, path: &str) -> &[String] {
        self.rule_for(path).map_or(&[], |r| r.owners.as_slice())
    }
}

/// Whether the owner `owner` (as written in CODEOWNERS) is the person `who`: `@user` names
/// the forge account `github:user` or `gitlab:user`; an e-mail address names the identity with
/// that address. A team (`@org/team`) names no one the ledger can resolve.
pub fn is_owner(owner: &str, who: &Identity) -> bool {
    if let Some(user) = owner.strip_prefix('@') {
        if user.contains('/') {
            return false;
        }
        let id = who.as_str();
        let account = id.split_once(':').map_or(id, |(_, name)| name);
        return account.eq_ignore_ascii_case(user);
    }
    who.email().is_some_and(|e| e.eq_ignore_ascii_case(owner))
}

fn matchers(pattern: &str) -> Result<Vec<GlobMatcher>, String> {
    let dir_only = pattern.ends_with('/');
    let trimmed = pattern.trim_end_matches('/');
    let anchored = trimmed.starts_with('/') || trimmed.contains('/');
    let body = trimmed.trim_start_matches('/');
    if body.is_empty() {
        // `/` or `*`-less root: everything.
        return Ok(vec![glob("**", false)?]);
    }
    let base = if anchored || body.starts_with("**") { body.to_string() } else { format!("**/{body}") };
    let last_has_wildcard = body.rsplit('/').next().is_some_and(|s| s.contains(['*', '?', '[']));
    // `dir/` names a directory's contents; `docs/*` the files directly in `docs`; a pattern
    // without a wildcard in its last segment names a file or a directory and its contents.
    let out = if dir_only {
        vec![glob(&format!("{base}/**"), false)?]
    } else if last_has_wildcard {
        vec![glob(&base, false)?]
    } else {
        vec![glob(&base, false)?, glob(&format!("{base}/**"), false)?]
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# owners\n*       @global\n*.js    @js-owner #inline\n/build/logs/ @doctocat\ndocs/*  docs@example.com\napps/   @octocat\n/scripts/ @doctocat @octocat\n/apps/github\n";

    #[test]
    fn last_matching_rule_wins_as_on_github() {
        let f = CodeownersFile::parse(FILE).unwrap();
        assert_eq!(f.owners_of("README"), ["@global"]);
        assert_eq!(f.owners_of("src/app.js"), ["@js-owner"]);
        assert_eq!(f.owners_of("build/logs/x/y.log"), ["@doctocat"]);
        assert_eq!(f.owners_of("docs/getting-started.md"), ["docs@example.com"]);
        assert_eq!(f.owners_of("docs/build-app/troubleshooting.md"), ["@global"]);
        assert_eq!(f.owners_of("nested/apps/x.rs"), ["@octocat"]);
        assert!(f.owners_of("apps/github/x.rs").is_empty(), "a rule without owners unsets them");
        assert_eq!(f.owners_of("scripts/deploy.sh"), ["@doctocat", "@octocat"]);
    }

    #[test]
    fn owners_match_accounts_and_addresses_not_teams() {
        let gh = Identity::new("github:Octocat").unwrap();
        assert!(is_owner("@octocat", &gh));
        assert!(!is_owner("@org/octocat", &gh));
        let mail = Identity::new("Doc <DOCS@example.com>").unwrap();
        assert!(is_owner("docs@example.com", &mail));
        assert!(!is_owner("@docs", &mail));
    }
}
