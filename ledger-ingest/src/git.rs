//! Mapping git history to records. Pure: the caller reads the repository (see `ledger-cli`)
//! and hands over plain commit data; this module decides which records that history implies.
//!
//! For every commit on the first-parent line of the ingested branch (a *landing*):
//! - a merge commit (`Merge pull request #N from …` or any other merge) lands the commits
//!   reachable from its second parent and not from its first;
//! - a commit whose subject ends in `(#N)` is a squash-merged pull request;
//! - any other commit landed directly, without a pull request.
//!
//! Each landing yields a `change` (the PR, its commits, authors, trailers and signature
//! kinds), a `merge`, one `review` per `Reviewed-by`/`Acked-by`/`Approved-by` trailer (an
//! approval of the exact commit that carries it) and one `session` per AI-assistance trailer
//! (`Assisted-by`, `Generated-by`, or a `Co-authored-by` naming an AI tool or a bot). All
//! record times come from the commits, so re-ingesting yields byte-identical records, which
//! the ledger deduplicates.

use ledger_core::ai::{ai_tool_name, is_bot_name};
use ledger_core::domain::{FORMAT_VERSION, MAX_RECORD_BYTES};
use ledger_core::record::{
    Body, Change, CommitInfo, CommitSignature, Link, Merge, MergeMethod, Record, Rel, Review, Session, Source, Trailer,
    Verdict,
};
use ledger_core::subject::Subject;
use ledger_core::types::{CommitId, Identity, RepoName, Timestamp, Token};
use ledger_core::Result;

/// A git identity with a time, as read from a commit header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitPerson {
    /// Name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Time.
    pub time: Timestamp,
}

impl GitPerson {
    /// The identity `Name <email>`, with control characters removed.
    pub fn identity(&self) -> Identity {
        person_identity(&self.name, &self.email)
    }
}

fn identity_from(s: &str) -> Identity {
    let clean: String = s.chars().filter(|c| !c.is_control()).take(500).collect();
    Identity::new(clean).unwrap_or_else(|_| {
        // Only reachable for an empty or all-control name: fall back to a fixed marker.
        #[allow(clippy::expect_used)]
        Identity::new("git:unknown").expect("constant identity is valid")
    })
}

/// One commit, as the ingest needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitCommit {
    /// Commit id.
    pub sha: CommitId,
    /// Parent ids, first parent first.
    pub parents: Vec<CommitId>,
    /// Author.
    pub author: GitPerson,
    /// Committer.
    pub committer: GitPerson,
    /// Full message.
    pub message: String,
    /// Kind of signature header.
    pub signature: CommitSignature,
    /// What the commit changed against its first parent, when the reader computed it. For a
    /// landing it is the change's diff: a merge commit against its first parent is what the
    /// merged pull request brought in.
    pub diff: Option<DiffStat>,
}

/// Paths and line counts of a diff.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiffStat {
    /// Paths touched (added, modified, deleted or renamed, both names of a rename), sorted.
    pub paths: Vec<String>,
    /// Lines added, when counted (a push webhook lists paths but counts no lines).
    pub lines_added: Option<u64>,
    /// Lines removed, when counted.
    pub lines_removed: Option<u64>,
}

/// Most paths a change record keeps; a longer list is dropped (the paths are then unknown, and
/// the rules that need them say so) rather than kept in part, which would pass rules wrongly.
pub const MAX_PATHS: usize = 2000;

impl GitCommit {
    /// First line of the message.
    pub fn subject_line(&self) -> &str {
        self.message.lines().next().unwrap_or("").trim()
    }
}

/// Trailer keys the ledger keeps (case-insensitive). Other `Key: value` lines, such as the
/// `schema: …` lines git itself mistakes for trailers, are ignored.
pub const KNOWN_TRAILERS: &[&str] = &[
    "Signed-off-by",
    "Reviewed-by",
    "Acked-by",
    "Approved-by",
    "Tested-by",
    "Reported-by",
    "Co-authored-by",
    "Assisted-by",
    "Generated-by",
];

/// Trailers that record an approval of the commit that carries them.
const APPROVAL_TRAILERS: &[&str] = &["Reviewed-by", "Acked-by", "Approved-by"];

/// Splits `message` into paragraphs: runs of lines separated by blank lines (lines of only
/// whitespace count as blank, as in git). Handles `\n` and `\r\n` line endings alike.
fn paragraphs(message: &str) -> Vec<Vec<&str>> {
    let mut out: Vec<Vec<&str>> = vec![];
    let mut cur: Vec<&str> = vec![];
    for line in message.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(line);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Parses the known trailers of the last paragraph of `message`, in order. A message of one
/// paragraph is all subject and has no trailers.
pub fn parse_trailers(message: &str) -> Vec<Trailer> {
    let paras = paragraphs(message);
    let Some(last) = paras.last().filter(|_| paras.len() > 1) else { return Vec::new() };
    last.iter()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            let key = key.trim();
            let value = value.trim();
            let known = KNOWN_TRAILERS.iter().find(|k| k.eq_ignore_ascii_case(key))?;
            (!value.is_empty()).then(|| Trailer { key: (*known).to_string(), value: value.to_string() })
        })
        .collect()
}

/// How a first-parent commit landed, and the PR number if there was one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LandingKind {
    /// Merge, squash or direct.
    pub method: MergeMethod,
    /// The pull request number, when the message names one.
    pub pr: Option<u64>,
}

/// Classifies a commit on the first-parent line.
pub fn classify(commit: &GitCommit) -> LandingKind {
    let subject = commit.subject_line();
    if commit.parents.len() > 1 {
        let pr = subject
            .strip_prefix("Merge pull request #")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok());
        return LandingKind { method: MergeMethod::Merge, pr };
    }
    let squash_pr =
        subject.strip_suffix(')').and_then(|s| s.rsplit_once("(#")).and_then(|(_, n)| n.parse::<u64>().ok());
    match squash_pr {
        Some(n) => LandingKind { method: MergeMethod::Squash, pr: Some(n) },
        None => LandingKind { method: MergeMethod::Direct, pr: None },
    }
}

/// `s` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn commit_info(c: &GitCommit) -> CommitInfo {
    CommitInfo {
        sha: c.sha.clone(),
        author: c.author.identity(),
        authored_at: c.author.time,
        committer: c.committer.identity(),
        committed_at: c.committer.time,
        title: truncate(c.subject_line(), 200),
        signature: c.signature,
        trailers: parse_trailers(&c.message),
    }
}

/// Title and description of the change a landing commit represents.
fn title_and_description(landing: &GitCommit, kind: LandingKind) -> (String, Option<String>) {
    let paras = paragraphs(&landing.message);
    let join = |ps: &[Vec<&str>]| ps.iter().map(|p| p.join("\n")).collect::<Vec<_>>().join("\n\n");
    let subject = paras.first().map(|p| p.join(" ")).unwrap_or_default();
    let rest = (paras.len() > 1).then(|| join(&paras[1..]));
    match (kind.method, kind.pr) {
        // GitHub's merge commit: "Merge pull request #N from branch\n\n<PR title>\n<body>".
        (MergeMethod::Merge, Some(_)) => match paras.get(1) {
            Some(p) => {
                let title = p.first().map(|l| l.trim().to_string()).unwrap_or_default();
                let mut body: Vec<Vec<&str>> = vec![p[1..].to_vec()];
                body.extend(paras[2..].iter().cloned());
                body.retain(|b| !b.is_empty());
                let desc = (!body.is_empty()).then(|| join(&body));
                (truncate(&title, 500), desc.map(|d| truncate(&d, 4096)))
            }
            None => (truncate(&subject, 500), None),
        },
        (MergeMethod::Squash, Some(n)) => {
            let t = subject.trim().strip_suffix(&format!(" (#{n})")).unwrap_or(subject.trim());
            (truncate(t, 500), rest.map(|d| truncate(&d, 4096)))
        }
        _ => (truncate(subject.trim(), 500), rest.map(|d| truncate(&d, 4096))),
    }
}

fn session_tool(trailer: &Trailer) -> Option<String> {
    let name = trailer.value.split('<').next().unwrap_or("").trim();
    let is_assist = trailer.key == "Assisted-by" || trailer.key == "Generated-by";
    if let Some(tool) = ai_tool_name(name) {
        return Some(tool.to_string());
    }
    if is_assist || (trailer.key == "Co-authored-by" && is_bot_name(&trailer.value)) {
        let t: String =
            name.to_ascii_lowercase().chars().map(|c| if c.is_whitespace() || c == '/' { '-' } else { c }).collect();
        return (!t.is_empty()).then_some(t);
    }
    None
}

/// The AI session a commit's trailer declares (`Assisted-by`, `Generated-by`, or a
/// `Co-authored-by` naming an AI tool or a bot), with the session id `git-<sha>` whatever
/// reported the commit (git history or a forge's API), or `None`.
///
/// # Errors
/// [`ledger_core::Error::InvalidField`] for a tool name that is not a valid token.
pub fn trailer_session(trailer: &Trailer, sha: &CommitId, source: Source) -> Result<Option<Session>> {
    let Some(tool) = session_tool(trailer) else { return Ok(None) };
    let model = trailer.value.split('<').next().unwrap_or("").trim();
    declared_session(&tool, model, format!("git-{sha}"), source).map(Some)
}

/// A commit of a pull or merge request, as a forge's API lists it.
#[derive(Clone, Debug)]
pub struct ChangeCommit<'a> {
    /// The repository.
    pub repo: RepoName,
    /// The pull or merge request's number (`iid` on GitLab).
    pub number: u64,
    /// The commit.
    pub sha: CommitId,
    /// Its author time.
    pub time: Timestamp,
    /// Its author.
    pub author: Identity,
    /// Its whole message.
    pub message: &'a str,
}

/// The AI sessions a change's commit declares in its trailers, linked to the change and the
/// commit, with the session ids `ledger ingest git` gives the same commit (`git-<sha>`); each
/// (key, value) trailer counts once. Empty for a commit without such a trailer.
///
/// # Errors
/// A trailer naming a tool or model that is not a valid token.
pub fn change_commit_sessions(c: ChangeCommit<'_>, source: &Source) -> Result<Vec<Record>> {
    let links = vec![
        Link { rel: Rel::Change, target: Subject::Change { repo: c.repo.clone(), number: c.number } },
        Link { rel: Rel::Commit, target: Subject::Commit { repo: Some(c.repo), sha: c.sha.clone() } },
    ];
    let mut seen = std::collections::BTreeSet::new();
    let mut out = vec![];
    for t in parse_trailers(c.message) {
        if !seen.insert((t.key.clone(), t.value.clone())) {
            continue;
        }
        if let Some(session) = trailer_session(&t, &c.sha, source.clone())? {
            out.push(Record {
                v: FORMAT_VERSION,
                time: c.time,
                actor: c.author.clone(),
                links: links.clone(),
                body: Body::Session(session),
            });
        }
    }
    Ok(out)
}

/// A session known only by a line that declares it (a commit trailer, a pull request body's
/// `Assisted-by:`): its tool, its model (none when empty; at most 200 bytes) and an id.
///
/// # Errors
/// [`ledger_core::Error::InvalidField`] for a tool or id that is not a valid token.
pub(crate) fn declared_session(tool: &str, model: &str, session_id: String, source: Source) -> Result<Session> {
    Ok(Session {
        tool: Token::new(tool)?,
        model: (!model.is_empty()).then(|| truncate(model, 200)),
        session_id: Token::new(session_id)?,
        prompt_digest: None,
        summary: None,
        context: vec![],
        declared_reviewer: None,
        risk_area: None,
        verification: vec![],
        source: Some(source),
        cost: None,
    })
}

/// The identity `Name <email>` of a commit's author or committer, with control characters
/// removed (`git:unknown` when nothing is left).
pub fn person_identity(name: &str, email: &str) -> Identity {
    identity_from(&format!("{name} <{email}>"))
}

/// Builds the records one landing implies. `brought_in` are the commits the landing brought
/// onto the branch, oldest first (for a squash or direct commit: just the landing commit).
///
/// # Errors
/// [`ledger_core::Error::InvalidField`] if a derived value is invalid (e.g. a tool name that is
/// not a valid token).
pub fn landing_records(repo: &RepoName, landing: &GitCommit, brought_in: &[GitCommit]) -> Result<Vec<Record>> {
    let kind = classify(landing);
    let (head, base) = match kind.method {
        MergeMethod::Merge => {
            (landing.parents.get(1).cloned().unwrap_or(landing.sha.clone()), landing.parents.first().cloned())
        }
        _ => (landing.sha.clone(), landing.parents.first().cloned()),
    };
    let first = brought_in.first().unwrap_or(landing);
    // From git alone the PR author is not known; the author of its first commit stands in.
    let author = match kind.method {
        MergeMethod::Merge => first.author.identity(),
        _ => landing.author.identity(),
    };
    let (title, description) = title_and_description(landing, kind);
    let source = |c: &GitCommit, trailer: Option<&str>| Source::GitCommit {
        commit: c.sha.clone(),
        trailer: trailer.map(str::to_string),
    };
    let mut change = Change {
        repo: repo.clone(),
        number: kind.pr,
        title,
        description,
        author: author.clone(),
        head_commit: head.clone(),
        base_commit: base.clone(),
        commits: brought_in.iter().map(commit_info).collect(),
        commits_total: brought_in.len() as u64,
        risk_tier: None,
        intent: None,
        source: Some(source(landing, None)),
        paths: landing.diff.as_ref().map(|d| d.paths.clone()).filter(|p| p.len() <= MAX_PATHS),
        lines_added: landing.diff.as_ref().and_then(|d| d.lines_added),
        lines_removed: landing.diff.as_ref().and_then(|d| d.lines_removed),
        labels: vec![],
    };
    let change_subject = change.subject();
    let record = |time: Timestamp, actor: Identity, links: Vec<Link>, body: Body| Record {
        v: FORMAT_VERSION,
        time,
        actor,
        links,
        body,
    };
    // Keep the change under the record size limit: first drop the path list (the paths are
    // then unknown, never partly known), then the newest commit details (`commits_total`
    // still counts them all).
    let mut change_record = record(first.author.time, author.clone(), vec![], Body::Change(change.clone()));
    while ledger_core::encoding::to_canonical(&change_record, "record")?.len() > MAX_RECORD_BYTES - 1024
        && (!change.commits.is_empty() || change.paths.is_some())
    {
        if change.paths.take().is_some() {
            change_record = record(first.author.time, author.clone(), vec![], Body::Change(change.clone()));
            continue;
        }
        let keep = change.commits.len() / 2;
        change.commits.truncate(keep);
        if let Some(d) = &mut change.description {
            *d = truncate(d, 512);
        }
        change_record = record(first.author.time, author.clone(), vec![], Body::Change(change.clone()));
    }
    let mut out = vec![change_record];

    let merged_by = match kind.method {
        MergeMethod::Merge => Some(landing.author.identity()),
        // GitHub's web merge commits name GitHub as committer: the merger is not in git.
        _ if landing.committer.email.eq_ignore_ascii_case("noreply@github.com") => None,
        _ => Some(landing.committer.identity()),
    };
    let merge_actor = merged_by.clone().unwrap_or_else(|| landing.committer.identity());
    out.push(record(
        landing.committer.time,
        merge_actor,
        vec![Link { rel: Rel::Change, target: change_subject.clone() }],
        Body::Merge(Merge {
            repo: repo.clone(),
            merge_commit: landing.sha.clone(),
            head_commit: head,
            base_commit: base,
            merged_by,
            method: kind.method,
            source: Some(source(landing, None)),
        }),
    ));

    let mut commits: Vec<&GitCommit> = brought_in.iter().collect();
    if !commits.iter().any(|c| c.sha == landing.sha) {
        commits.push(landing);
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in commits {
        let commit_link =
            Link { rel: Rel::Commit, target: Subject::Commit { repo: Some(repo.clone()), sha: c.sha.clone() } };
        for t in parse_trailers(&c.message) {
            if !seen.insert((c.sha.clone(), t.key.clone(), t.value.clone())) {
                continue;
            }
            let links = vec![Link { rel: Rel::Change, target: change_subject.clone() }, commit_link.clone()];
            if APPROVAL_TRAILERS.contains(&t.key.as_str()) {
                let reviewer = identity_from(&t.value);
                out.push(record(
                    c.committer.time,
                    reviewer.clone(),
                    links,
                    Body::Review(Review {
                        repo: repo.clone(),
                        reviewer,
                        verdict: Verdict::Approved,
                        commit: c.sha.clone(),
                        source: Some(source(c, Some(&t.key))),
                    }),
                ));
            } else if let Some(session) = trailer_session(&t, &c.sha, source(c, Some(&t.key)))? {
                out.push(record(c.author.time, c.author.identity(), links, Body::Session(session)));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(sha: char, parents: &[char], msg: &str) -> GitCommit {
        let p = GitPerson { name: "Ann".into(), email: "ann@example.com".into(), time: Timestamp(1_000) };
        GitCommit {
            sha: CommitId::new(sha.to_string().repeat(40)).unwrap(),
            parents: parents.iter().map(|c| CommitId::new(c.to_string().repeat(40)).unwrap()).collect(),
            author: p.clone(),
            committer: p,
            message: msg.into(),
            signature: CommitSignature::None,
            diff: None,
        }
    }

    #[test]
    fn trailers_come_from_the_last_paragraph_only() {
        let t = parse_trailers("subject\n\nReviewed-by: not a trailer here\nbody\n\nAssisted-by: Codex 5.3\nschema: x\nSigned-off-by: A <a@b>\n");
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].key.as_str(), t[0].value.as_str()), ("Assisted-by", "Codex 5.3"));
        assert_eq!(t[1].key, "Signed-off-by");
        assert!(parse_trailers("Signed-off-by: only a subject").is_empty());
    }

    #[test]
    fn crlf_messages_split_into_paragraphs_like_lf_ones() {
        let crlf = "Fix (#366)\n\n* a\r\n\r\nSigned-off-by: A <a@b>\r\nCo-authored-by: B <b@c>\r\n\r\nSigned-off-by: C <c@d>\r\n";
        let t = parse_trailers(crlf);
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(t[0].value, "C <c@d>");
        let all_crlf = "Title\r\n\r\nBody\r\n \r\nReviewed-by: R <r@x>\r\n";
        assert_eq!(parse_trailers(all_crlf).len(), 1);
        let c = commit('a', &['b'], "Title here (#12)\r\n\r\nbody");
        let (title, desc) = title_and_description(&c, classify(&c));
        assert_eq!((title.as_str(), desc.as_deref()), ("Title here", Some("body")));
    }

    #[test]
    fn classifies_merges_squashes_and_direct_commits() {
        assert_eq!(
            classify(&commit('a', &['b', 'c'], "Merge pull request #555 from arewm/main\n\nTitle")),
            LandingKind { method: MergeMethod::Merge, pr: Some(555) }
        );
        assert_eq!(
            classify(&commit('a', &['b', 'c'], "Merge branch 'x'")),
            LandingKind { method: MergeMethod::Merge, pr: None }
        );
        assert_eq!(
            classify(&commit('a', &['b'], "Create a thing (#470)\n\n* body")),
            LandingKind { method: MergeMethod::Squash, pr: Some(470) }
        );
        assert_eq!(classify(&commit('a', &['b'], "Fix (typo)")), LandingKind { method: MergeMethod::Direct, pr: None });
    }

    #[test]
    fn a_merge_yields_change_merge_review_and_session() {
        let repo = RepoName::new("o/r").unwrap();
        let work = commit('c', &['b'], "work\n\nAssisted-by: Codex 5.3\nReviewed-by: Bo <bo@example.com>");
        let merge = commit('d', &['b', 'c'], "Merge pull request #7 from o/branch\n\nDo the thing");
        let recs = landing_records(&repo, &merge, std::slice::from_ref(&work)).unwrap();
        let kinds: Vec<_> = recs.iter().map(|r| r.kind().as_str()).collect();
        assert_eq!(kinds, ["change", "merge", "session", "review"]);
        let Body::Change(ch) = &recs[0].body else { panic!() };
        assert_eq!(ch.title, "Do the thing");
        assert_eq!(ch.head_commit, work.sha);
        assert_eq!(ch.subject().to_string(), "pr:o/r#7");
        let Body::Session(s) = &recs[2].body else { panic!() };
        assert_eq!((s.tool.as_str(), s.model.as_deref()), ("codex", Some("Codex 5.3")));
    }
}
