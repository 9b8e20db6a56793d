//! `ledger ingest git`: reads a repository with libgit2 (through `git2`) and appends the
//! records [`ledger_ingest::git`] derives from its first-parent history.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use git2::{Oid, Repository, Sort};
use ledger_core::entry::SignedRecord;
use ledger_core::record::CommitSignature;
use ledger_core::types::{CommitId, RepoName, Timestamp};
use ledger_ingest::git::{landing_records, DiffStat, GitCommit, GitPerson};
use serde::Serialize;

use crate::cli::SignerArgs;
use crate::ctx::Ctx;
use crate::output::{json_out, line};

/// Records appended per batch (one atomic write and flush each).
const BATCH: usize = 256;

fn signature_kind(c: &git2::Commit<'_>) -> CommitSignature {
    let Ok(buf) = c.header_field_bytes("gpgsig") else { return CommitSignature::None };
    let s = String::from_utf8_lossy(&buf);
    let s = s.trim_start();
    if s.starts_with("-----BEGIN PGP SIGNATURE-----") {
        CommitSignature::Pgp
    } else if s.starts_with("-----BEGIN SSH SIGNATURE-----") {
        CommitSignature::Ssh
    } else if s.starts_with("-----BEGIN SIGNED MESSAGE-----") || s.starts_with("-----BEGIN CERTIFICATE") {
        CommitSignature::X509
    } else {
        CommitSignature::Unknown
    }
}

fn person(s: &git2::Signature<'_>) -> GitPerson {
    GitPerson {
        name: String::from_utf8_lossy(s.name_bytes()).into_owned(),
        email: String::from_utf8_lossy(s.email_bytes()).into_owned(),
        time: Timestamp::from_unix_secs(s.when().seconds()),
    }
}

fn to_commit(c: &git2::Commit<'_>) -> Result<GitCommit> {
    Ok(GitCommit {
        sha: CommitId::new(c.id().to_string())?,
        parents: c.parent_ids().map(|p| CommitId::new(p.to_string())).collect::<Result<_, _>>()?,
        author: person(&c.author()),
        committer: person(&c.committer()),
        message: String::from_utf8_lossy(c.message_raw_bytes()).into_owned(),
        signature: signature_kind(c),
        diff: None,
    })
}

/// What `c` changed against its first parent (the empty tree for a root commit): the paths,
/// and the lines added and removed. For a merge commit that is what the merged branch brought
/// in. `None` when git cannot diff the trees.
fn landing_diff(repo: &Repository, c: &git2::Commit<'_>) -> Option<DiffStat> {
    let tree = c.tree().ok()?;
    let parent = match c.parents().next() {
        Some(p) => Some(p.tree().ok()?),
        None => None,
    };
    // Line counts need no context lines around the changes.
    let mut opts = git2::DiffOptions::new();
    opts.context_lines(0).interhunk_lines(0);
    let diff = repo.diff_tree_to_tree(parent.as_ref(), Some(&tree), Some(&mut opts)).ok()?;
    let mut paths = std::collections::BTreeSet::new();
    for d in diff.deltas() {
        for f in [d.old_file(), d.new_file()] {
            if let Some(p) = f.path().and_then(|p| p.to_str()) {
                paths.insert(p.to_string());
            }
        }
    }
    let stats = diff.stats().ok()?;
    Some(DiffStat {
        paths: paths.into_iter().collect(),
        lines_added: Some(stats.insertions() as u64),
        lines_removed: Some(stats.deletions() as u64),
    })
}

/// `owner/name` from a remote URL such as `https://github.com/owner/name.git` or
/// `git@gitlab.com:group/name.git`.
fn repo_from_url(url: &str) -> Option<RepoName> {
    let url = url.trim().trim_end_matches('/').trim_end_matches(".git");
    let path = if let Some(rest) = url.split_once("://").map(|(_, r)| r) {
        rest.split_once('/')?.1
    } else {
        url.split_once(':')?.1
    };
    RepoName::new(path).ok()
}

fn repo_name(repo: &Repository, path: &Path, given: Option<&str>) -> Result<(RepoName, bool)> {
    if let Some(g) = given {
        return Ok((RepoName::new(g).context("--repo")?, false));
    }
    if let Some(name) = repo.find_remote("origin").ok().and_then(|r| r.url().and_then(repo_from_url)) {
        return Ok((name, false));
    }
    let dir = repo.workdir().unwrap_or(repo.path()).canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let base: String = dir
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' })
                .collect()
        })
        .unwrap_or_default();
    let base = if base.is_empty() || base == "." || base == ".." { "repo".to_string() } else { base };
    Ok((RepoName::new(format!("local/{base}"))?, true))
}

/// `ledger ingest git PATH [--repo owner/name] [--rev REV]`.
pub fn run(
    ctx: &Ctx,
    path: &Path,
    repo_arg: Option<&str>,
    rev: &str,
    signer: &SignerArgs,
    quiet: bool,
) -> Result<ExitCode> {
    let as_json = ctx.json;
    let repo =
        Repository::open(path).map_err(|e| anyhow!("{} is not a git repository: {}", path.display(), e.message()))?;
    let (name, guessed) = repo_name(&repo, path, repo_arg)?;
    if guessed && !as_json {
        eprintln!("note: no `origin` remote; recording this repository as `{name}` (pass --repo owner/name to choose)");
    }
    let key = ctx.signer_key(signer)?;
    let mut ledger = ctx.backend()?;

    let head = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|e| anyhow!("cannot resolve `{rev}` to a commit in {}: {}", path.display(), e.message()))?;
    // The first-parent line, oldest first.
    let mut line_ids: Vec<Oid> = vec![];
    let mut cur = Some(head);
    while let Some(c) = cur {
        line_ids.push(c.id());
        cur = c.parents().next();
    }
    line_ids.reverse();

    let bar = crate::output::progress(
        quiet || as_json,
        line_ids.len() as u64,
        "ingesting {bar:40} {pos}/{len} landings ({per_sec}, eta {eta})",
    );

    let (mut appended, mut present, mut landings) = (0u64, 0u64, 0u64);
    let mut pending: Vec<SignedRecord> = vec![];
    let mut flush = |pending: &mut Vec<SignedRecord>, appended: &mut u64, present: &mut u64| -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        for r in ledger.append(pending)? {
            if r.duplicate {
                *present += 1;
            } else {
                *appended += 1;
            }
        }
        pending.clear();
        Ok(())
    };
    for id in &line_ids {
        let c = repo.find_commit(*id)?;
        let mut landing = to_commit(&c)?;
        landing.diff = landing_diff(&repo, &c);
        let brought_in: Vec<GitCommit> = if c.parent_count() > 1 {
            let mut walk = repo.revwalk()?;
            walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
            for p in c.parent_ids().skip(1) {
                walk.push(p)?;
            }
            walk.hide(c.parent_id(0)?)?;
            walk.map(|oid| to_commit(&repo.find_commit(oid?)?)).collect::<Result<_>>()?
        } else {
            vec![landing.clone()]
        };
        let records =
            landing_records(&name, &landing, &brought_in).with_context(|| format!("commit {}", landing.sha))?;
        for r in &records {
            let signed = SignedRecord::sign(r, &key)
                .with_context(|| format!("{} record for commit {}", r.kind(), landing.sha))?;
            pending.push(signed);
        }
        landings += 1;
        if pending.len() >= BATCH {
            flush(&mut pending, &mut appended, &mut present)?;
        }
        bar.inc(1);
    }
    flush(&mut pending, &mut appended, &mut present)?;
    bar.finish_and_clear();
    if landings == 0 {
        bail!("no commits found at `{rev}`");
    }
    if as_json {
        /// What `ingest git --json` prints.
        #[derive(Serialize)]
        struct GitIngestOut<'a> {
            already_present: u64,
            appended: u64,
            entries: u64,
            landings: u64,
            repo: &'a str,
        }
        let entries = ledger.len()?;
        json_out(&GitIngestOut { already_present: present, appended, entries, landings, repo: name.as_str() })?;
    } else {
        line(format!(
            "{name}: {landings} landings on the first-parent line; {appended} records appended, {present} already present; ledger has {} entries",
            ledger.len()?
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::repo_from_url;

    #[test]
    fn repo_names_from_remote_urls() {
        let n = |u: &str| repo_from_url(u).map(|r| r.to_string());
        assert_eq!(n("https://github.com/in-toto/attestation.git").as_deref(), Some("in-toto/attestation"));
        assert_eq!(n("git@github.com:opencontainers/image-spec.git").as_deref(), Some("opencontainers/image-spec"));
        assert_eq!(n("https://gitlab.com/group/sub/proj").as_deref(), Some("group/sub/proj"));
        assert_eq!(n("/some/local/path"), None);
    }
}
