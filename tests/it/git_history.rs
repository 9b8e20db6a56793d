//! The in-toto/attestation history, recorded as JSON lines, rebuilt as a git repository with
//! the same graph, people, times, messages and signature kinds, ingested with
//! `ledger ingest git`, and queried with `ledger why` / `ledger log`. Every expected value is
//! computed here from the recorded history, never copied from the program's output.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use tempfile::TempDir;

use crate::support::{email_of, finding_codes, shared_data, Ledger};

const DATA: &str = "realdata/git-history/in-toto-attestation.commits.jsonl";
const REPO: &str = "in-toto/attestation";

/// Trailer keys the ledger keeps (from the ingest rules); any other key is ignored.
const KEPT_TRAILERS: &[&str] = &[
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

/// Trailers that record an approval.
const APPROVAL_TRAILERS: &[&str] = &["Reviewed-by", "Acked-by", "Approved-by"];

#[derive(Debug, Deserialize)]
struct Person {
    name: String,
    email: String,
    /// ISO 8601 with an offset, e.g. `2021-04-06T10:38:56-04:00` or `…Z`.
    date: String,
}

#[derive(Debug, Deserialize)]
struct Trailer {
    key: String,
    value: String,
}

/// One line of the JSONL file (fields the tests do not need are ignored).
#[derive(Debug, Deserialize)]
struct InputCommit {
    commit: String,
    parents: Vec<String>,
    author: Person,
    committer: Person,
    subject: String,
    message: String,
    trailers: Vec<Trailer>,
    /// `pgp`, `ssh`, `x509` or null.
    signature: Option<String>,
    pr_number: Option<u64>,
}

impl InputCommit {
    /// Trailers with `key` (case-insensitive), as `Key: value` with the canonical key.
    fn trailers_kept(&self, keys: &[&str]) -> Vec<String> {
        self.trailers
            .iter()
            .filter_map(|t| {
                let key = keys.iter().find(|k| k.eq_ignore_ascii_case(t.key.trim()))?;
                Some(format!("{key}: {}", t.value.trim()))
            })
            .collect()
    }

    /// The signature kind as the ledger names it.
    fn signature_kind(&self) -> &str {
        self.signature.as_deref().unwrap_or("none")
    }
}

/// The recorded history, oldest first (parents before children).
struct History {
    commits: Vec<InputCommit>,
    index: HashMap<String, usize>,
}

impl History {
    fn load(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let commits: Vec<InputCommit> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(n, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1)))
            .collect();
        assert!(!commits.is_empty(), "{} holds no commits", path.display());
        let index = commits.iter().enumerate().map(|(i, c)| (c.commit.clone(), i)).collect();
        History { commits, index }
    }

    fn idx(&self, sha: &str) -> usize {
        *self.index.get(sha).unwrap_or_else(|| panic!("commit {sha} is referenced but not recorded"))
    }

    fn parents(&self, i: usize) -> Vec<usize> {
        self.commits[i].parents.iter().map(|p| self.idx(p)).collect()
    }

    /// The first-parent line of HEAD (the last line of the file), oldest first.
    fn first_parent_line(&self) -> Vec<usize> {
        let mut line = vec![];
        let mut cur = Some(self.commits.len() - 1);
        while let Some(i) = cur {
            line.push(i);
            cur = self.parents(i).first().copied();
        }
        line.reverse();
        line
    }

    /// `i` and every commit reachable from it.
    fn reachable(&self, i: usize) -> HashSet<usize> {
        let mut seen = HashSet::new();
        let mut stack = vec![i];
        while let Some(c) = stack.pop() {
            if seen.insert(c) {
                stack.extend(self.parents(c));
            }
        }
        seen
    }

    /// The commits a landing brought onto the first-parent line, in file order: for a merge,
    /// those reachable from its second parent and not from its first; otherwise itself.
    fn brought_in(&self, landing: usize) -> Vec<usize> {
        let parents = self.parents(landing);
        if parents.len() < 2 {
            return vec![landing];
        }
        let base = self.reachable(parents[0]);
        let mut set: HashSet<usize> = HashSet::new();
        for &p in &parents[1..] {
            set.extend(self.reachable(p));
        }
        let mut out: Vec<usize> = set.difference(&base).copied().collect();
        out.sort_unstable();
        out
    }
}

/// Seconds since the epoch and UTC offset in minutes of an ISO 8601 date with an offset.
fn git_time(date: &str) -> git2::Time {
    let ts: jiff::Timestamp = date.parse().unwrap_or_else(|e| panic!("bad date {date}: {e}"));
    let offset_minutes = if date.ends_with('Z') || date.ends_with('z') {
        0
    } else {
        let tail = &date[date.len() - 6..];
        let sign = match &tail[..1] {
            "+" => 1,
            "-" => -1,
            _ => panic!("date {date} has no ±HH:MM offset"),
        };
        let hours: i32 = tail[1..3].parse().unwrap_or_else(|e| panic!("bad offset in {date}: {e}"));
        let minutes: i32 = tail[4..6].parse().unwrap_or_else(|e| panic!("bad offset in {date}: {e}"));
        sign * (hours * 60 + minutes)
    };
    git2::Time::new(ts.as_second(), offset_minutes)
}

fn signature(p: &Person) -> git2::Signature<'static> {
    git2::Signature::new(&p.name, &p.email, &git_time(&p.date))
        .unwrap_or_else(|e| panic!("git signature for {} <{}>: {e}", p.name, p.email))
}

/// A fake `gpgsig` header value of the recorded kind: only its kind is recorded by the
/// ledger, nothing verifies it.
fn fake_signature(kind: &str, original: &str) -> String {
    let armor = match kind {
        "pgp" => "PGP SIGNATURE",
        "ssh" => "SSH SIGNATURE",
        "x509" => "SIGNED MESSAGE",
        other => panic!("unknown signature kind {other:?} in the recorded history"),
    };
    format!("-----BEGIN {armor}-----\n\nZmFrZSBzaWduYXR1cmUgb2Yg{original}\n-----END {armor}-----")
}

/// The history rebuilt in a temporary bare repository.
struct Rebuilt {
    _dir: TempDir,
    path: PathBuf,
    /// Original commit id → rebuilt commit id, by index into the history.
    new_sha: Vec<String>,
    /// Rebuilt commit id → index into the history.
    by_new_sha: HashMap<String, usize>,
}

fn rebuild(h: &History) -> Rebuilt {
    let dir = tempfile::Builder::new().prefix("ledger-e2e-git-").tempdir().expect("temporary directory");
    let path = dir.path().join("in-toto-attestation.git");
    let repo = git2::Repository::init_bare(&path).expect("git init");
    let mut new_oid: Vec<git2::Oid> = Vec::with_capacity(h.commits.len());
    for (i, c) in h.commits.iter().enumerate() {
        // A tree with one blob naming the original commit keeps every rebuilt commit distinct.
        let blob = repo.blob(c.commit.as_bytes()).expect("write blob");
        let mut tb = repo.treebuilder(None).expect("tree builder");
        tb.insert("ORIGINAL_COMMIT", blob, 0o100_644).expect("tree entry");
        let tree = repo.find_tree(tb.write().expect("write tree")).expect("find tree");
        let parents: Vec<git2::Commit<'_>> = h
            .parents(i)
            .into_iter()
            .map(|p| {
                assert!(p < i, "{} is listed before its parent {}", c.commit, h.commits[p].commit);
                repo.find_commit(new_oid[p]).expect("rebuilt parent")
            })
            .collect();
        let parent_refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let (author, committer) = (signature(&c.author), signature(&c.committer));
        let oid = match &c.signature {
            None => repo.commit(None, &author, &committer, &c.message, &tree, &parent_refs).expect("commit"),
            Some(kind) => {
                let buf = repo
                    .commit_create_buffer(&author, &committer, &c.message, &tree, &parent_refs)
                    .expect("commit buffer");
                let content = buf.as_str().expect("commit buffer is UTF-8");
                repo.commit_signed(content, &fake_signature(kind, &c.commit), Some("gpgsig")).expect("signed commit")
            }
        };
        new_oid.push(oid);
    }
    let head = new_oid[h.commits.len() - 1];
    repo.reference("refs/heads/main", head, true, "rebuilt history").expect("refs/heads/main");
    repo.set_head("refs/heads/main").expect("HEAD → main");
    let new_sha: Vec<String> = new_oid.iter().map(git2::Oid::to_string).collect();
    let by_new_sha = new_sha.iter().enumerate().map(|(i, s)| (s.clone(), i)).collect();
    Rebuilt { _dir: dir, path, new_sha, by_new_sha }
}

/// Differences found by a check, reported together.
#[derive(Default)]
struct Mismatches(Vec<String>);

impl Mismatches {
    fn note(&mut self, what: String) {
        self.0.push(what);
    }

    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: String, actual: T, expected: T) {
        if actual != expected {
            self.note(format!("{what}\n  got:      {actual:?}\n  expected: {expected:?}"));
        }
    }

    fn assert_none(self, context: &str) {
        assert!(self.0.is_empty(), "{context}: {} difference(s):\n{}", self.0.len(), self.0.join("\n"));
    }
}

/// What the ledger must say about one landing, computed from the recorded history.
struct Expected {
    landing: usize,
    /// `merge`, `squash` or `direct`.
    method: &'static str,
    number: Option<u64>,
    brought_in: Vec<usize>,
}

impl Expected {
    fn of(h: &History, landing: usize) -> Self {
        let c = &h.commits[landing];
        let method = match (c.parents.len(), c.pr_number) {
            (n, _) if n > 1 => "merge",
            (_, Some(_)) => "squash",
            _ => "direct",
        };
        Expected { landing, method, number: c.pr_number, brought_in: h.brought_in(landing) }
    }
}

/// The fixture: the recorded history, its rebuilt repository, and a ledger holding it.
struct Fixture {
    history: History,
    rebuilt: Rebuilt,
    ledger: Ledger,
    line: Vec<usize>,
    first_ingest: Value,
}

impl Fixture {
    fn new_sha(&self, i: usize) -> &str {
        &self.rebuilt.new_sha[i]
    }

    /// The original commit behind a rebuilt commit id the ledger reported.
    fn original(&self, new_sha: &Value, context: &str) -> usize {
        let s = new_sha.as_str().unwrap_or_else(|| panic!("{context}: commit id is not a string: {new_sha}"));
        *self
            .rebuilt
            .by_new_sha
            .get(s)
            .unwrap_or_else(|| panic!("{context}: {s} is not a commit of the rebuilt history"))
    }

    /// Checks the commits a change lists (`why` commit lines or `log` change records: trailers
    /// as `"Key: value"` strings or `{key, value}` objects) against the expected landing, and
    /// notes every difference in `m`. `trailer_keys` are the trailer keys compared.
    fn check_commits(
        &self,
        m: &mut Mismatches,
        what: &str,
        commits: &Value,
        total: &Value,
        exp: &Expected,
        trailer_keys: &[&str],
    ) {
        let Some(listed) = commits.as_array() else { return m.note(format!("{what}: commits is not an array")) };
        let Some(total) = total.as_u64() else { return m.note(format!("{what}: commits_total is not a number")) };
        m.eq(format!("{what}: commits_total"), total, exp.brought_in.len() as u64);
        let expected: BTreeSet<usize> = exp.brought_in.iter().copied().collect();
        let mut seen = BTreeSet::new();
        for line in listed {
            let i = self.original(&line["sha"], what);
            let c = &self.history.commits[i];
            let at = format!("{what}, commit {} (originally {})", self.new_sha(i), c.commit);
            if !expected.contains(&i) {
                m.note(format!("{at}: listed, but the landing did not bring it in"));
            }
            if !seen.insert(i) {
                m.note(format!("{at}: listed twice"));
            }
            let author = line["author"].as_str().unwrap_or_default();
            m.eq(format!("{at}: author e-mail"), email_of(author), Some(c.author.email.to_ascii_lowercase()));
            m.eq(format!("{at}: signature kind"), line["signature"].as_str(), Some(c.signature_kind()));
            let Some(trailers) = line["trailers"].as_array() else {
                m.note(format!("{at}: trailers is not an array"));
                continue;
            };
            let trailers: Vec<String> = trailers
                .iter()
                .map(|t| match t {
                    Value::String(s) => s.clone(),
                    t => format!(
                        "{}: {}",
                        t["key"].as_str().unwrap_or_default(),
                        t["value"].as_str().unwrap_or_default()
                    ),
                })
                .filter(|t| trailer_keys.iter().any(|k| t.split(':').next() == Some(*k)))
                .collect();
            m.eq(format!("{at}: trailers {trailer_keys:?}"), trailers, c.trailers_kept(trailer_keys));
        }
        if listed.len() as u64 == total {
            m.eq(format!("{what}: the commits listed (by index in the history)"), seen, expected);
        } else if listed.len() as u64 > total {
            m.note(format!("{what}: {} commits listed but commits_total is {total}", listed.len()));
        }
    }

    /// Checks a change of a `why` report against the expected landing.
    fn check_why_change(&self, what: &str, change: &Value, exp: &Expected) {
        let landing = &self.history.commits[exp.landing];
        let landing_sha = self.new_sha(exp.landing);
        let ctx = format!("{what} (landing {landing_sha}, originally {})", landing.commit);
        assert_eq!(change["number"].as_u64(), exp.number, "{ctx}: number\n{change:#}");
        if let Some(n) = exp.number {
            assert_eq!(change["subject"], format!("pr:{REPO}#{n}"), "{ctx}: subject");
        }
        assert_eq!(change["repo"], REPO, "{ctx}: repo");
        let merge = &change["merge"];
        assert!(merge.is_object(), "{ctx}: no merge recorded\n{change:#}");
        assert_eq!(merge["commit"], landing_sha, "{ctx}: merge.commit");
        assert_eq!(merge["method"], exp.method, "{ctx}: merge.method");
        let head = match exp.method {
            "merge" => self.new_sha(self.history.idx(&landing.parents[1])),
            _ => landing_sha,
        };
        assert_eq!(merge["head_commit"], head, "{ctx}: merge.head_commit");
        assert_eq!(change["head_commit"], head, "{ctx}: head_commit");
        let merger = if exp.method == "merge" || !landing.committer.email.eq_ignore_ascii_case("noreply@github.com") {
            let p = if exp.method == "merge" { &landing.author } else { &landing.committer };
            Some(p.email.to_ascii_lowercase())
        } else {
            None // Merged in GitHub's web UI: who merged is not in git.
        };
        assert_eq!(merge["merged_by"].as_str().and_then(email_of), merger, "{ctx}: merge.merged_by");

        let mut m = Mismatches::default();
        self.check_commits(&mut m, &ctx, &change["commits"], &change["commits_total"], exp, &["Signed-off-by"]);
        m.assert_none(&ctx);
        let authors: BTreeSet<String> = change["commit_authors"]
            .as_array()
            .unwrap_or_else(|| panic!("{ctx}: commit_authors is not an array"))
            .iter()
            .map(|a| {
                email_of(a.as_str().unwrap_or_default()).unwrap_or_else(|| panic!("{ctx}: author without e-mail: {a}"))
            })
            .collect();
        let expected_authors: BTreeSet<String> =
            exp.brought_in.iter().map(|&i| self.history.commits[i].author.email.to_ascii_lowercase()).collect();
        assert_eq!(authors, expected_authors, "{ctx}: commit author e-mails");
    }
}

fn setup(path: &Path) -> Fixture {
    let history = History::load(path);
    let line = history.first_parent_line();
    let rebuilt = rebuild(&history);
    let ledger = Ledger::init();
    let first_ingest = ledger.ingest_git(&rebuilt.path, REPO);
    Fixture { history, rebuilt, ledger, line, first_ingest }
}

#[test]
fn in_toto_attestation_history() {
    let Some(path) = shared_data(DATA) else { return };
    let f = setup(&path);
    check_landings_and_idempotence(&f);
    check_merges(&f);
    check_ai_assisted_commit(&f);
    check_squashes(&f);
    check_every_change_record(&f);
    check_audit_reports(&f);
}

/// The audit commands over a real history with no deployments recorded: an empty population
/// whose findings name every landed change as not deployed (the direct pushes also as landings
/// without a pull request), and control tests that have nothing to fail.
fn check_audit_reports(f: &Fixture) {
    let period = ["--period", "1990-01-01..2099-12-31"];
    let pop = f.ledger.json(["population", period[0], period[1], "--json"]);
    assert!(pop["deployments"].as_array().unwrap().is_empty(), "{pop:#}");
    let findings = pop["findings"].as_array().unwrap();
    let count = |code: &str| findings.iter().filter(|x| x["code"] == code).count();
    let landings = f.first_ingest["landings"].as_u64().unwrap() as usize;
    let not_deployed = count("change_not_deployed");
    assert!(not_deployed > 0 && not_deployed <= landings, "{not_deployed} of {landings} landings");
    let direct = count("landing_without_pull_request");
    assert!(direct > 0 && direct < not_deployed, "{direct} direct landings of {not_deployed}");
    for x in findings.iter().filter(|x| x["code"] == "landing_without_pull_request") {
        assert!(x["subject"].as_str().unwrap().starts_with(&format!("git:{REPO}@")), "{x}");
    }
    let out = f.ledger.command(["controls", "test", period[0], period[1], "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let controls: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(controls["population"], 0);
}

/// (a) one landing per commit on the first-parent line; (b) a second ingest appends nothing;
/// (c) the ledger verifies.
fn check_landings_and_idempotence(f: &Fixture) {
    assert_eq!(f.first_ingest["landings"].as_u64(), Some(f.line.len() as u64), "landings: {}", f.first_ingest);
    assert!(f.first_ingest["appended"].as_u64() >= Some(2 * f.line.len() as u64), "appended: {}", f.first_ingest);
    let entries = f.first_ingest["entries"].as_u64();

    let again = f.ledger.ingest_git(&f.rebuilt.path, REPO);
    assert_eq!(again["appended"], 0, "re-ingesting the same history appended records: {again}");
    assert_eq!(again["landings"], f.first_ingest["landings"], "re-ingest: {again}");
    assert_eq!(again["already_present"], f.first_ingest["appended"], "re-ingest: {again}");
    assert_eq!(again["entries"].as_u64(), entries, "re-ingest changed the number of entries: {again}");

    assert_eq!(Some(f.ledger.verify()), entries, "verify counts another number of entries than ingest left");
}

/// (d) merges of pull requests, chosen across the history: the one bringing in the most
/// commits, evenly spaced ones, and the first bringing in a commit of each signature kind.
fn check_merges(f: &Fixture) {
    let h = &f.history;
    let merges: Vec<usize> = f
        .line
        .iter()
        .copied()
        .filter(|&i| h.commits[i].parents.len() > 1 && h.commits[i].pr_number.is_some())
        .collect();
    assert!(merges.len() >= 5, "the recorded history has only {} pull-request merges", merges.len());
    let sizes: HashMap<usize, usize> = merges.iter().map(|&m| (m, h.brought_in(m).len())).collect();

    let mut picks: Vec<usize> = (0..5).map(|k| merges[k * (merges.len() - 1) / 4]).collect();
    let largest = merges.iter().copied().max_by_key(|m| (sizes[m], std::cmp::Reverse(*m))).expect("merges");
    picks.push(largest);
    for kind in ["pgp", "ssh", "x509", "none"] {
        if let Some(&m) =
            merges.iter().find(|&&m| h.brought_in(m).iter().any(|&c| h.commits[c].signature_kind() == kind))
        {
            picks.push(m);
        }
    }
    let mut seen = HashSet::new();
    picks.retain(|m| seen.insert(*m));
    assert!(picks.len() >= 5, "fewer than 5 distinct merges picked");
    assert!(picks.iter().any(|m| sizes[m] >= 3), "no picked merge brought in several commits");

    for m in picks {
        let exp = Expected::of(h, m);
        assert_eq!(exp.method, "merge");
        let change = f.ledger.why_one_change(f.new_sha(m));
        f.check_why_change(
            &format!("why {} (merge of #{})", f.new_sha(m), exp.number.unwrap_or_default()),
            &change,
            &exp,
        );
    }
}

/// (f) the commit with an `Assisted-by` trailer: `why <abbreviated id>` finds the pull request
/// that brought it in, its AI session, and the findings about an unapproved AI change.
fn check_ai_assisted_commit(f: &Fixture) {
    let h = &f.history;
    let assisted: Vec<usize> = (0..h.commits.len())
        .filter(|&i| h.commits[i].trailers.iter().any(|t| t.key.eq_ignore_ascii_case("Assisted-by")))
        .collect();
    assert!(!assisted.is_empty(), "the recorded history has no Assisted-by trailer");
    for c in assisted {
        let commit = &h.commits[c];
        let landing = *f
            .line
            .iter()
            .find(|&&l| h.brought_in(l).contains(&c))
            .unwrap_or_else(|| panic!("no landing brought in {}", commit.commit));
        let exp = Expected::of(h, landing);
        let abbrev = &f.new_sha(c)[..10];
        let ctx = format!("why {abbrev} (Assisted-by commit, originally {})", commit.commit);
        let change = f.ledger.why_one_change(abbrev);
        f.check_why_change(&ctx, &change, &exp);

        let value = commit
            .trailers
            .iter()
            .find(|t| t.key.eq_ignore_ascii_case("Assisted-by"))
            .map(|t| t.value.trim().to_string())
            .expect("Assisted-by trailer");
        let tool = value.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
        let sessions = change["sessions"].as_array().unwrap_or_else(|| panic!("{ctx}: sessions is not an array"));
        assert!(
            sessions.iter().any(|s| s["tool"] == tool.as_str() && s["model"] == value.as_str()),
            "{ctx}: no session with tool {tool:?} and model {value:?}: {sessions:#?}"
        );

        // The change's commits carry no approval trailer, so nobody approved it.
        let approvals: Vec<String> =
            exp.brought_in.iter().flat_map(|&i| h.commits[i].trailers_kept(APPROVAL_TRAILERS)).collect();
        assert!(approvals.is_empty(), "precondition: the AI-assisted change has approvals {approvals:?}");
        let codes = finding_codes(&change["findings"]);
        for code in ["no_approval", "ai_without_human_approval"] {
            assert!(codes.iter().any(|c| c == code), "{ctx}: finding {code} missing from {codes:?}");
        }

        let human = f.ledger.stdout(["why", abbrev]);
        for needle in [tool.as_str(), "ai_without_human_approval"] {
            assert!(human.contains(needle), "why {abbrev} (human output) does not mention {needle:?}:\n{human}");
        }
    }
}

/// (e) squash-merged pull requests (`… (#N)`), chosen evenly across the history.
fn check_squashes(f: &Fixture) {
    let h = &f.history;
    let squashes: Vec<usize> = f
        .line
        .iter()
        .copied()
        .filter(|&i| h.commits[i].parents.len() == 1 && h.commits[i].pr_number.is_some())
        .collect();
    assert!(!squashes.is_empty(), "the recorded history has no squash merges");
    let n = squashes.len().min(5);
    let picks: BTreeSet<usize> = (0..n).map(|k| squashes[k * (squashes.len() - 1) / (n - 1).max(1)]).collect();
    for s in picks {
        let commit = &h.commits[s];
        // The number in the subject is the recorded PR number.
        let suffix = format!("(#{})", commit.pr_number.unwrap_or_default());
        assert!(
            commit.subject.trim_end().ends_with(&suffix),
            "precondition: {} does not end in {suffix}",
            commit.subject
        );
        let exp = Expected::of(h, s);
        assert_eq!(exp.method, "squash");
        let change = f.ledger.why_one_change(f.new_sha(s));
        f.check_why_change(&format!("why {} (squash {suffix})", f.new_sha(s)), &change, &exp);
    }
}

/// Every landing has exactly one change record (`ledger log --kind change`), listing the
/// commits it brought in with every kept trailer and the signature kind.
fn check_every_change_record(f: &Fixture) {
    let h = &f.history;
    let records = f.ledger.json_lines(["log", "--kind", "change", "--json"]);
    assert_eq!(records.len(), f.line.len(), "one change record per landing");
    let mut by_landing: HashMap<usize, &Value> = HashMap::new();
    for r in &records {
        assert_eq!(r["kind"], "change", "log --kind change printed another kind: {r}");
        let change = &r["record"]["body"]["change"];
        let landing = f.original(&change["source"]["git_commit"]["commit"], "change record source");
        assert!(by_landing.insert(landing, change).is_none(), "two change records for landing {}", f.new_sha(landing));
    }
    // Every difference is collected before failing, so that one report names them all.
    let mut m = Mismatches::default();
    for &l in &f.line {
        let exp = Expected::of(h, l);
        let what = format!("change record of landing {} (originally {})", f.new_sha(l), h.commits[l].commit);
        let Some(change) = by_landing.get(&l) else {
            m.note(format!("{what}: missing"));
            continue;
        };
        m.eq(format!("{what}: number"), change["number"].as_u64(), exp.number);
        m.eq(format!("{what}: repo"), change["repo"].as_str(), Some(REPO));
        f.check_commits(&mut m, &what, &change["commits"], &change["commits_total"], &exp, KEPT_TRAILERS);
    }
    m.assert_none(&format!("change records of the {} landings", f.line.len()));
}
