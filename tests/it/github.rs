//! `ledger ingest github` on recorded GitHub webhook deliveries: Octokit's payload examples,
//! go-playground's fixtures and two deliveries captured with their headers
//! (`realdata/github-webhooks`). Every delivery is ingested and its records read back with
//! `ledger log`; each field the mapping names is compared with the payload as read here, and
//! the source digest with a SHA-256 of the file computed here. Where a test needs a case the
//! recorded data lacks (an incident label, an `Assisted-by` line, a connected chain of events),
//! it edits a recorded payload and writes it to a temporary file.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::support::{finding_codes, shared_data, Ledger};

/// A file of the data set; the data set's directory is found from it.
const ANCHOR: &str = "realdata/github-webhooks/reallyfastci/webhook-pr-close.json";

/// `realdata/github-webhooks`, or `None` (with a notice) when the data is absent outside CI.
pub(crate) fn webhooks_dir() -> Option<PathBuf> {
    let anchor = shared_data(ANCHOR)?;
    Some(anchor.parent().and_then(Path::parent).expect("the anchor lies two levels below the data set").to_path_buf())
}

/// Every `*.json` file under `dir`, recursively, sorted.
fn payload_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("reading {}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The event named by the `x-github-event` line of `<stem>-header.txt` beside `file`
/// (key case-insensitive, separated from the value by tabs or spaces).
fn header_event(file: &Path) -> String {
    let stem = file.file_stem().and_then(|s| s.to_str()).expect("UTF-8 file name");
    let header = file.with_file_name(format!("{stem}-header.txt"));
    let text = std::fs::read_to_string(&header).unwrap_or_else(|e| panic!("reading {}: {e}", header.display()));
    text.lines()
        .find_map(|l| {
            let l = l.trim();
            let end = l.find([' ', '\t'])?;
            l[..end].eq_ignore_ascii_case("x-github-event").then(|| l[end..].trim().to_string())
        })
        .unwrap_or_else(|| panic!("{} has no x-github-event line", header.display()))
}

/// For a file of the data set: the `--event` to pass (none for captured deliveries, whose
/// header file names the event) and the event the ingest must report.
fn event_of(dir: &Path, file: &Path) -> (Option<String>, String) {
    let rel = file.strip_prefix(dir).expect("file under the data set");
    let source = rel.components().next().and_then(|c| c.as_os_str().to_str()).expect("source directory");
    let stem = file.file_stem().and_then(|s| s.to_str()).expect("UTF-8 file name");
    match source {
        // octokit/<event>/<example>.json
        "octokit" => {
            let event = file.parent().and_then(Path::file_name).and_then(|s| s.to_str()).expect("event directory");
            (Some(event.to_string()), event.to_string())
        }
        // go-playground/<event, with dashes>.json
        "go-playground" => {
            let event = stem.replace('-', "_");
            (Some(event.clone()), event)
        }
        "reallyfastci" => (None, header_event(file)),
        other => panic!("{}: data from an unknown source `{other}`; teach this test about it", rel.display()),
    }
}

/// Lowercase hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The `source` every record derived from a delivery must carry.
fn source_of(event: &str, bytes: &[u8]) -> Value {
    let digest = format!("sha256:{}", sha256_hex(bytes));
    json!({ "payload": { "format": format!("github-webhook:{event}"), "digest": digest } })
}

/// A payload time as the ledger prints it: RFC 3339 in UTC (`null` stays `null`).
fn utc(v: &Value) -> Value {
    match v {
        Value::Null => Value::Null,
        Value::String(s) => {
            let t: jiff::Timestamp = s.parse().unwrap_or_else(|e| panic!("payload time `{s}`: {e}"));
            Value::String(t.to_string())
        }
        other => panic!("payload time is neither a string nor null: {other}"),
    }
}

/// `github:<login>`, or `null` when the user is `null`.
fn gh(user: &Value) -> Value {
    match &user["login"] {
        Value::String(login) => Value::String(format!("github:{login}")),
        _ if user.is_null() => Value::Null,
        other => panic!("user without a login: {other}"),
    }
}

/// `pr:<full_name>#<n>`.
fn pr_subject(p: &Value, number: &Value) -> String {
    format!("pr:{}#{}", p["repository"]["full_name"].as_str().expect("repository.full_name"), number)
}

/// A check conclusion (or commit status state) as an evidence result.
fn result_of(conclusion: &Value) -> Value {
    let r = match conclusion.as_str() {
        Some("success") => "pass",
        Some("failure") => "fail",
        Some("neutral" | "skipped" | "cancelled" | "stale") => "neutral",
        Some("timed_out" | "action_required" | "startup_failure" | "error") => "error",
        _ => panic!("the mapping names no result for conclusion {conclusion}"),
    };
    json!(r)
}

/// A deployment status state as a deployment status.
fn deploy_status_of(state: &Value) -> Value {
    let s = match state.as_str() {
        Some("success") => "success",
        Some("failure") => "failure",
        Some("error") => "error",
        Some("inactive") => "inactive",
        Some("in_progress") => "in_progress",
        Some("pending" | "queued") => "pending",
        _ => panic!("the mapping names no status for deployment state {state}"),
    };
    json!(s)
}

/// AI tools as the ledger names them, by the prefix of a name (the longest prefix first).
const AI_TOOLS: &[(&str, &str)] = &[
    ("github copilot", "copilot"),
    ("copilot", "copilot"),
    ("claude", "claude"),
    ("codex", "codex"),
    ("chatgpt", "chatgpt"),
    ("gpt", "chatgpt"),
    ("gemini", "gemini"),
    ("cursor", "cursor"),
    ("devin", "devin"),
    ("aider", "aider"),
];

/// The tool a name starts with, as a whole word.
fn ai_tool(name: &str) -> Option<&'static str> {
    let lower = name.trim().to_ascii_lowercase();
    AI_TOOLS.iter().find_map(|(prefix, tool)| {
        let rest = lower.strip_prefix(prefix)?;
        rest.chars().next().is_none_or(|c| !c.is_ascii_alphabetic()).then_some(*tool)
    })
}

/// The AI sessions a PR body declares: `(tool, model)` for each `Assisted-by:` or
/// `Generated-by:` line and each `Co-authored-by:` line naming an AI tool. The model is the
/// value without its `<email>` part; the tool is `None` when the name is no known tool.
fn ai_lines(body: &str) -> Vec<(Option<&'static str>, String)> {
    body.lines()
        .filter_map(|line| {
            let (key, value) = line.trim().split_once(':')?;
            let key = key.trim().to_ascii_lowercase();
            let model = value.split('<').next().unwrap_or("").trim().to_string();
            match key.as_str() {
                "assisted-by" | "generated-by" => Some((ai_tool(&model), model)),
                "co-authored-by" => ai_tool(&model).map(|t| (Some(t), model)),
                _ => None,
            }
        })
        .collect()
}

/// Whether an `issues` delivery concerns an incident: a label (of the issue, or the one the
/// event adds) whose name contains `incident`, in any case.
fn incident_labelled(p: &Value) -> bool {
    let named = |l: &Value| l["name"].as_str().is_some_and(|n| n.to_ascii_lowercase().contains("incident"));
    p["issue"]["labels"].as_array().is_some_and(|ls| ls.iter().any(named)) || named(&p["label"])
}

/// What a delivery must produce.
#[derive(Debug)]
enum Expect {
    /// Skipped; the reason must mention one of these words (case-insensitive).
    Skip(Vec<String>),
    /// Records of these kinds (in any order).
    Records(Vec<&'static str>),
}

/// The mapping, as far as which kinds a delivery yields or why it is skipped.
fn expected(event: &str, p: &Value) -> Expect {
    let action = p["action"].as_str().unwrap_or("").to_string();
    let skip_action = |also: &[&str]| {
        let mut words = vec![action.clone()];
        words.extend(also.iter().map(|s| s.to_string()));
        Expect::Skip(words)
    };
    match event {
        "pull_request" => match action.as_str() {
            "opened" | "synchronize" | "reopened" | "edited" | "ready_for_review" | "closed" => {
                let mut kinds = vec!["change"];
                if action == "closed" && p["pull_request"]["merged"] == true {
                    kinds.push("merge");
                }
                let sessions = ai_lines(p["pull_request"]["body"].as_str().unwrap_or("")).len();
                kinds.extend(std::iter::repeat_n("session", sessions));
                Expect::Records(kinds)
            }
            _ => skip_action(&[]),
        },
        "pull_request_review" => match action.as_str() {
            "submitted" | "dismissed" => Expect::Records(vec!["review"]),
            _ => skip_action(&[]),
        },
        "check_run" | "check_suite" | "workflow_run" | "workflow_job" => {
            if action == "completed" {
                Expect::Records(vec!["evidence"])
            } else {
                skip_action(&["completed"])
            }
        }
        "status" => {
            if p["state"] == "pending" {
                Expect::Skip(vec!["pending".into()])
            } else {
                Expect::Records(vec!["evidence"])
            }
        }
        "deployment" | "deployment_status" => Expect::Records(vec!["deployment"]),
        "issues" => {
            if incident_labelled(p) {
                Expect::Records(vec!["incident"])
            } else {
                Expect::Skip(vec!["incident".into()])
            }
        }
        "push" => {
            let default = p["repository"]["default_branch"]
                .as_str()
                .or(p["repository"]["master_branch"].as_str())
                .unwrap_or("main");
            let head_msg = p["head_commit"]["message"].as_str().unwrap_or("");
            let subject_line = head_msg.lines().next().unwrap_or("");
            let pr_landing = subject_line.starts_with("Merge pull request #")
                || subject_line
                    .trim_end()
                    .strip_suffix(')')
                    .and_then(|x| x.rsplit_once("(#"))
                    .is_some_and(|(_, n)| n.parse::<u64>().is_ok());
            if p["ref"] != format!("refs/heads/{default}").as_str() {
                Expect::Skip(vec!["default branch".into()])
            } else if p["head_commit"].is_null() {
                Expect::Skip(vec!["head commit".into()])
            } else if pr_landing {
                Expect::Skip(vec!["pull request".into()])
            } else {
                Expect::Records(vec!["change", "merge"])
            }
        }
        other => Expect::Skip(vec![other.to_string()]),
    }
}

/// Collected mismatches, so that one run lists every deviation rather than the first.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn eq(&mut self, ctx: &str, what: &str, actual: &Value, expected: &Value) {
        if actual != expected {
            self.0.push(format!("{ctx}: {what} is {actual}, expected {expected}"));
        }
    }
    fn check(&mut self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.0.push(message());
        }
    }
    fn assert_none(self) {
        assert!(self.0.is_empty(), "{} problem(s):\n  {}", self.0.len(), self.0.join("\n  "));
    }
}

/// `ledger ingest github [--event E] FILES… --json`, without checking the outcome.
fn ingest_command(ledger: &Ledger, event: Option<&str>, files: &[&Path]) -> assert_cmd::Command {
    let mut args: Vec<OsString> = vec!["ingest".into(), "github".into()];
    if let Some(e) = event {
        args.push("--event".into());
        args.push(e.into());
    }
    args.extend(files.iter().map(|f| f.as_os_str().to_owned()));
    args.push("--json".into());
    ledger.command(args)
}

/// Checks the shape of an ingest summary and that its totals add up; `Err` with the reason
/// when the command failed or printed something else.
fn try_ingest(ledger: &Ledger, event: Option<&str>, files: &[&Path]) -> Result<Value, String> {
    let out = ingest_command(ledger, event, files).output().expect("running ledger");
    if !out.status.success() {
        return Err(format!("exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr).trim()));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("invalid JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))?;
    let bad = |why: &str| Err(format!("{why}: {v}"));
    let Some(listed) = v["files"].as_array() else { return bad("no `files` array") };
    if listed.len() != files.len() {
        return bad(&format!("{} file results for {} files", listed.len(), files.len()));
    }
    let (mut appended, mut present, mut skipped) = (0, 0, 0);
    for (f, path) in listed.iter().zip(files) {
        let name = path.file_name().and_then(|n| n.to_str()).expect("UTF-8 file name");
        if !f["file"].as_str().is_some_and(|s| s.ends_with(name)) {
            return bad(&format!("file result `file` does not name {name} (files out of order?)"));
        }
        if !f["event"].is_string() || !(f["action"].is_string() || f["action"].is_null()) {
            return bad("file result without an `event` string or `action` string|null");
        }
        if !(f["skipped"].is_null() || f["skipped"].is_string()) {
            return bad("`skipped` of a file is neither null nor a string");
        }
        let (Some(a), Some(p), Some(records)) =
            (f["appended"].as_u64(), f["already_present"].as_u64(), f["records"].as_array())
        else {
            return bad("file result without `appended`, `already_present` or `records`");
        };
        for r in records {
            let hex64 = r["entry"].as_str().is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if !r["seq"].is_u64() || !hex64 || !r["kind"].is_string() || !r["duplicate"].is_boolean() {
                return bad(&format!("malformed record result {r}"));
            }
        }
        let dups = records.iter().filter(|r| r["duplicate"] == true).count() as u64;
        if a + p != records.len() as u64 || p != dups {
            return bad(&format!("{name}: appended + already_present != records, or already_present != duplicates"));
        }
        appended += a;
        present += p;
        skipped += u64::from(f["skipped"].is_string());
    }
    if v["appended"].as_u64() != Some(appended)
        || v["already_present"].as_u64() != Some(present)
        || v["skipped"].as_u64() != Some(skipped)
    {
        return bad("the totals are not the sums of the file results");
    }
    Ok(v)
}

/// `try_ingest` that must succeed.
fn ingest(ledger: &Ledger, event: Option<&str>, files: &[&Path]) -> Value {
    try_ingest(ledger, event, files).unwrap_or_else(|e| panic!("ingest github {files:?}: {e}"))
}

/// `ledger log --json`, by sequence number.
fn log_by_seq(ledger: &Ledger) -> BTreeMap<u64, Value> {
    ledger.json_lines(["log", "--json"]).into_iter().map(|e| (e["seq"].as_u64().expect("seq"), e)).collect()
}

/// The body of a log entry of the given kind.
fn body<'a>(entry: &'a Value, kind: &str) -> &'a Value {
    &entry["record"]["body"][kind]
}

/// The targets of an entry's `change` links, sorted.
fn change_links(entry: &Value) -> Vec<String> {
    let mut out: Vec<String> = entry["record"]["links"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .filter(|l| l["rel"] == "change")
                .filter_map(|l| l["target"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// `pr:<full_name>#<n>` for each entry of a `pull_requests` array (`null` counts as empty), sorted.
fn pr_links(p: &Value, prs: &Value) -> Vec<String> {
    let mut out: Vec<String> =
        prs.as_array().map(|a| a.iter().map(|pr| pr_subject(p, &pr["number"])).collect()).unwrap_or_default();
    out.sort();
    out
}

/// Checks one delivery's result against the mapping. Returns whether it was skipped. Records
/// of a kind in `dup_ok` may be reported as already present (the same fact from an earlier
/// delivery); their source is then the earlier one's and is not checked.
fn check_delivery(
    pr: &mut Problems,
    ctx: &str,
    event: &str,
    bytes: &[u8],
    out: &Value,
    log: &BTreeMap<u64, Value>,
    dup_ok: &[&str],
) -> bool {
    let p: Value = serde_json::from_slice(bytes).expect("payload is JSON");
    pr.eq(ctx, "event", &out["event"], &json!(event));
    pr.eq(ctx, "action", &out["action"], &p["action"]);
    let records = out["records"].as_array().cloned().unwrap_or_default();

    let mut expect = expected(event, &p);
    // A review without a commit id (go-playground's fixture): the mapping names no commit, so
    // either skipping it (saying why) or recording it at the PR's head is accepted.
    let review_without_commit = event == "pull_request_review" && p["review"]["commit_id"].is_null();
    if review_without_commit && out["skipped"].is_string() {
        eprintln!("note: {ctx}: review without commit_id skipped: {}", out["skipped"]);
        expect = Expect::Skip(vec!["commit".into()]);
    }

    match expect {
        Expect::Skip(words) => {
            let reason = out["skipped"].as_str().unwrap_or("");
            pr.check(out["skipped"].is_string(), || format!("{ctx}: not skipped (expected a skip): {out}"));
            let lower = reason.to_lowercase();
            pr.check(out["skipped"].is_null() || words.iter().any(|w| lower.contains(&w.to_lowercase())), || {
                format!("{ctx}: skip reason {reason:?} does not say why (expected a mention of one of {words:?})")
            });
            pr.check(records.is_empty() && out["appended"] == 0 && out["already_present"] == 0, || {
                format!("{ctx}: a skipped delivery has records: {out}")
            });
            true
        }
        Expect::Records(mut kinds) => {
            pr.check(out["skipped"].is_null(), || format!("{ctx}: skipped ({}), expected {kinds:?}", out["skipped"]));
            let mut got: Vec<&str> = records.iter().filter_map(|r| r["kind"].as_str()).collect();
            got.sort_unstable();
            kinds.sort_unstable();
            pr.check(got == kinds, || format!("{ctx}: records of kinds {got:?}, expected {kinds:?}"));
            let may_be_dup = |r: &Value| r["kind"].as_str().is_some_and(|k| dup_ok.contains(&k));
            pr.check(records.iter().all(|r| r["duplicate"] == false || may_be_dup(r)), || {
                format!("{ctx}: a first ingest reports duplicates: {out}")
            });
            let mut by_kind: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
            for r in &records {
                let Some(entry) = r["seq"].as_u64().and_then(|s| log.get(&s)) else {
                    pr.0.push(format!("{ctx}: record {r} is not in the log"));
                    continue;
                };
                pr.eq(ctx, "logged entry hash", &entry["entry"], &r["entry"]);
                pr.eq(ctx, "logged kind", &entry["kind"], &r["kind"]);
                let kind = r["kind"].as_str().unwrap_or("?");
                if r["duplicate"] == false {
                    pr.eq(ctx, &format!("{kind}.source"), &body(entry, kind)["source"], &source_of(event, bytes));
                }
                by_kind.entry(kind.to_string()).or_default().push(entry);
            }
            check_fields(pr, ctx, event, &p, &by_kind);
            false
        }
    }
}

/// Checks the mapped fields of a delivery's records against its payload.
fn check_fields(pr: &mut Problems, ctx: &str, event: &str, p: &Value, by_kind: &BTreeMap<String, Vec<&Value>>) {
    let one = |kind: &str| by_kind.get(kind).and_then(|v| v.first()).copied();
    let full = &p["repository"]["full_name"];
    match event {
        "push" => {
            // A direct push to the default branch: a change at `after` listing the pushed
            // commits, and a direct merge by the pusher.
            let after = &p["after"];
            if let Some(e) = one("change") {
                let c = body(e, "change");
                pr.eq(ctx, "change.repo", &c["repo"], full);
                pr.eq(ctx, "change.number", &c["number"], &Value::Null);
                pr.eq(ctx, "change.head_commit", &c["head_commit"], after);
                let pushed: Vec<&Value> = p["commits"]
                    .as_array()
                    .map(|a| a.iter().filter(|c| c["distinct"] != false).map(|c| &c["id"]).collect())
                    .unwrap_or_default();
                let listed: Vec<&Value> =
                    c["commits"].as_array().map(|a| a.iter().map(|x| &x["sha"]).collect()).unwrap_or_default();
                for id in &pushed {
                    pr.check(listed.contains(id), || format!("{ctx}: pushed commit {id} not listed"));
                }
                if let Some(first) = c["commits"].as_array().and_then(|a| a.first()) {
                    pr.eq(ctx, "change.commits[0].signature", &first["signature"], &json!("not_reported"));
                }
            }
            if let Some(e) = one("merge") {
                let m = body(e, "merge");
                pr.eq(ctx, "merge.merge_commit", &m["merge_commit"], after);
                pr.eq(ctx, "merge.method", &m["method"], &json!("direct"));
                let pusher = p["pusher"]["name"].as_str().map(|n| json!(format!("github:{n}"))).unwrap_or(Value::Null);
                pr.eq(ctx, "merge.merged_by", &m["merged_by"], &pusher);
            }
        }
        "pull_request" => {
            let pull = &p["pull_request"];
            let subject = pr_subject(p, &pull["number"]);
            if let Some(e) = one("change") {
                let c = body(e, "change");
                pr.eq(ctx, "change.repo", &c["repo"], full);
                pr.eq(ctx, "change.number", &c["number"], &pull["number"]);
                pr.eq(ctx, "change.title", &c["title"], &pull["title"]);
                pr.eq(ctx, "change.author", &c["author"], &gh(&pull["user"]));
                pr.eq(ctx, "change.head_commit", &c["head_commit"], &pull["head"]["sha"]);
                pr.eq(ctx, "change.base_commit", &c["base_commit"], &pull["base"]["sha"]);
                let total = if pull["commits"].is_null() { json!(0) } else { pull["commits"].clone() };
                pr.eq(ctx, "change.commits_total", &c["commits_total"], &total);
                pr.eq(ctx, "change record time", &e["record"]["time"], &utc(&pull["updated_at"]));
            }
            if let Some(e) = one("merge") {
                let m = body(e, "merge");
                pr.eq(ctx, "merge.repo", &m["repo"], full);
                pr.eq(ctx, "merge.merge_commit", &m["merge_commit"], &pull["merge_commit_sha"]);
                pr.eq(ctx, "merge.head_commit", &m["head_commit"], &pull["head"]["sha"]);
                pr.eq(ctx, "merge.merged_by", &m["merged_by"], &gh(&pull["merged_by"]));
                pr.eq(ctx, "merge.method", &m["method"], &json!("merge"));
                pr.eq(ctx, "merge change links", &json!(change_links(e)), &json!([subject]));
            }
            let sessions = by_kind.get("session").cloned().unwrap_or_default();
            for (tool, model) in ai_lines(pull["body"].as_str().unwrap_or("")) {
                let found = sessions.iter().find(|e| body(e, "session")["model"] == model.as_str());
                let Some(e) = found else {
                    pr.0.push(format!("{ctx}: no session with model {model:?}"));
                    continue;
                };
                if let Some(tool) = tool {
                    pr.eq(ctx, "session.tool", &body(e, "session")["tool"], &json!(tool));
                }
                pr.eq(ctx, "session change links", &json!(change_links(e)), &json!([subject]));
            }
        }
        "pull_request_review" => {
            let Some(e) = one("review") else { return };
            let (review, v) = (&p["review"], body(e, "review"));
            let verdict = if p["action"] == "dismissed" {
                json!("dismissed")
            } else {
                json!(review["state"].as_str().expect("review.state").to_lowercase())
            };
            pr.eq(ctx, "review.repo", &v["repo"], full);
            pr.eq(ctx, "review.reviewer", &v["reviewer"], &gh(&review["user"]));
            pr.eq(ctx, "review.verdict", &v["verdict"], &verdict);
            if review["commit_id"].is_null() {
                eprintln!("note: {ctx}: review without commit_id recorded at {}", v["commit"]);
                pr.eq(
                    ctx,
                    "review.commit (no commit_id: the PR head)",
                    &v["commit"],
                    &p["pull_request"]["head"]["sha"],
                );
            } else {
                pr.eq(ctx, "review.commit", &v["commit"], &review["commit_id"]);
            }
            let subject = pr_subject(p, &p["pull_request"]["number"]);
            pr.eq(ctx, "review change links", &json!(change_links(e)), &json!([subject]));
        }
        "check_run" | "check_suite" | "workflow_run" | "workflow_job" | "status" => {
            let Some(e) = one("evidence") else { return };
            let v = body(e, "evidence");
            let o = &p[event];
            // (commit, check, result, url if the mapping names one, pull requests)
            let (commit, check, result, url, prs) = match event {
                "check_run" => {
                    (&o["head_sha"], o["name"].clone(), &o["conclusion"], Some(&o["html_url"]), &o["pull_requests"])
                }
                "check_suite" => {
                    let app = if o["app"]["slug"].is_string() { &o["app"]["slug"] } else { &o["app"]["name"] };
                    let check = json!(format!("check_suite/{}", app.as_str().expect("check_suite.app slug or name")));
                    (&o["head_sha"], check, &o["conclusion"], None, &o["pull_requests"])
                }
                "workflow_run" => {
                    // An empty run name falls back to the workflow's name.
                    let name = match o["name"].as_str() {
                        Some(n) if !n.is_empty() => json!(n),
                        _ => match p["workflow"]["name"].as_str() {
                            Some(w) if !w.is_empty() => json!(w),
                            _ => json!("workflow_run"),
                        },
                    };
                    (&o["head_sha"], name, &o["conclusion"], Some(&o["html_url"]), &o["pull_requests"])
                }
                "workflow_job" => {
                    let check = match o["workflow_name"].as_str() {
                        Some(w) => json!(format!("{w}/{}", o["name"].as_str().expect("workflow_job.name"))),
                        None => o["name"].clone(),
                    };
                    (&o["head_sha"], check, &o["conclusion"], None, &Value::Null)
                }
                _ => (&p["sha"], p["context"].clone(), &p["state"], Some(&p["target_url"]), &Value::Null),
            };
            pr.eq(ctx, "evidence.repo", &v["repo"], full);
            pr.eq(ctx, "evidence.commit", &v["commit"], commit);
            pr.eq(ctx, "evidence.check", &v["check"], &check);
            pr.eq(ctx, "evidence.result", &v["result"], &result_of(result));
            if let Some(url) = url {
                pr.eq(ctx, "evidence.url", &v["url"], url);
            }
            pr.eq(ctx, "evidence change links", &json!(change_links(e)), &json!(pr_links(p, prs)));
        }
        "deployment" | "deployment_status" => {
            let Some(e) = one("deployment") else { return };
            let (v, d) = (body(e, "deployment"), &p["deployment"]);
            let id = json!(d["id"].as_u64().expect("deployment.id").to_string());
            let (deployer, status) = if event == "deployment" {
                (gh(&d["creator"]), json!("pending"))
            } else {
                (gh(&p["deployment_status"]["creator"]), deploy_status_of(&p["deployment_status"]["state"]))
            };
            pr.eq(ctx, "deployment.service", &v["service"], &p["repository"]["name"]);
            pr.eq(ctx, "deployment.environment", &v["environment"], &d["environment"]);
            pr.eq(ctx, "deployment.deployment_id", &v["deployment_id"], &id);
            pr.eq(ctx, "deployment.repo", &v["repo"], full);
            pr.eq(ctx, "deployment.commits", &v["commits"], &json!([d["sha"]]));
            pr.eq(ctx, "deployment.deployer", &v["deployer"], &deployer);
            pr.eq(ctx, "deployment.status", &v["status"], &status);
        }
        "issues" => {
            let Some(e) = one("incident") else { return };
            let (v, issue) = (body(e, "incident"), &p["issue"]);
            let id = format!("{}#{}", full.as_str().expect("repository.full_name"), issue["number"]);
            pr.eq(ctx, "incident.system", &v["system"], &json!("github"));
            pr.eq(ctx, "incident.incident_id", &v["incident_id"], &json!(id));
            pr.eq(ctx, "incident.title", &v["title"], &issue["title"]);
            pr.eq(ctx, "incident.opened", &v["opened"], &utc(&issue["created_at"]));
            pr.eq(ctx, "incident.resolved", &v["resolved"], &utc(&issue["closed_at"]));
        }
        _ => {}
    }
}

/// A payload file to ingest.
struct Delivery {
    path: PathBuf,
    /// The `--event` to pass, if any.
    pass: Option<String>,
    /// The event the ingest must report.
    event: String,
    /// How problems name it.
    ctx: String,
}

impl Delivery {
    /// A file written by a test, ingested with `--event`.
    fn with_event(path: PathBuf, event: &str, ctx: &str) -> Self {
        Delivery { path, pass: Some(event.to_string()), event: event.to_string(), ctx: ctx.to_string() }
    }
}

/// Ingests `files` into `ledger`, one command per file, then checks every result against the
/// mapping; panics listing every problem. Returns how many were handled and skipped.
fn ingest_and_check(ledger: &Ledger, files: &[Delivery]) -> (usize, usize) {
    let mut problems = Problems::default();
    let mut results = vec![];
    for Delivery { path, pass, ctx, .. } in files {
        match try_ingest(ledger, pass.as_deref(), &[path]) {
            Ok(v) => results.push(Some(v["files"][0].clone())),
            Err(e) => {
                problems.0.push(format!("{ctx}: ingest failed: {e}"));
                results.push(None);
            }
        }
    }
    let log = log_by_seq(ledger);
    let (mut handled, mut skipped) = (0, 0);
    for (Delivery { path, event, ctx, .. }, out) in files.iter().zip(results) {
        let Some(out) = out else { continue };
        let bytes = std::fs::read(path).expect("reading payload");
        if check_delivery(&mut problems, ctx, event, &bytes, &out, &log, &[]) {
            skipped += 1;
        }
        handled += 1;
    }
    problems.assert_none();
    (handled, skipped)
}

#[test]
fn every_github_payload_is_ingested_or_skipped() {
    let Some(dir) = webhooks_dir() else { return };
    let files = payload_files(&dir);
    for source in ["octokit", "go-playground", "reallyfastci"] {
        assert!(
            files.iter().any(|f| f.starts_with(dir.join(source))),
            "no payload from {source} under {}",
            dir.display()
        );
    }
    let plan: Vec<Delivery> = files
        .iter()
        .map(|f| {
            let (pass, event) = event_of(&dir, f);
            let ctx = f.strip_prefix(&dir).expect("under the data set").display().to_string();
            Delivery { path: f.clone(), pass, event, ctx }
        })
        .collect();

    let ledger = Ledger::init();
    let (handled, skipped) = ingest_and_check(&ledger, &plan);
    assert_eq!(handled, files.len(), "every payload file found must be handled");
    assert!(skipped > 0 && skipped < handled, "{skipped} of {handled} skipped: the data has both kinds");
    ledger.verify();
}

/// The first ingest of each file appended records; a second ingest of the same files, and of
/// a copy of a delivery under another name, appends nothing and points at the same entries.
#[test]
fn reingesting_a_delivery_adds_nothing() {
    let Some(dir) = webhooks_dir() else { return };
    let ledger = Ledger::init();
    let close = dir.join("reallyfastci/webhook-pr-close.json");
    let push = dir.join("reallyfastci/webhook-push-to-master.json");
    let review = dir.join("octokit/pull_request_review/submitted.payload.json");
    let check = dir.join("octokit/check_run/completed.payload.json");
    let batches: Vec<(Option<&str>, Vec<&Path>)> = vec![
        (None, vec![&close, &push]),
        (Some("pull_request_review"), vec![&review]),
        (Some("check_run"), vec![&check]),
    ];

    let first: Vec<Value> = batches.iter().map(|(e, fs)| ingest(&ledger, *e, fs)).collect();
    for v in &first {
        for f in v["files"].as_array().expect("files") {
            if f["skipped"].is_null() {
                assert!(f["appended"].as_u64() > Some(0), "first ingest appended nothing: {f}");
                assert_eq!(f["already_present"], 0, "first ingest found records present: {f}");
            }
        }
    }
    assert!(first[0]["files"][1]["skipped"].is_string(), "a push of a PR's landing is skipped: {}", first[0]);
    let entries = log_by_seq(&ledger).len();

    let same_records = |again: &Value, before: &Value| {
        for (a, b) in again["files"].as_array().expect("files").iter().zip(before["files"].as_array().expect("files")) {
            assert_eq!(a["appended"], 0, "re-ingest appended records: {a}");
            assert_eq!(a["already_present"], b["appended"], "re-ingest: {a}");
            assert_eq!(a["skipped"], b["skipped"], "re-ingest skips otherwise: {a}");
            let recs = a["records"].as_array().expect("records");
            let old = b["records"].as_array().expect("records");
            assert_eq!(recs.len(), old.len(), "re-ingest yields other records: {a}");
            for (r, o) in recs.iter().zip(old) {
                assert_eq!(r["duplicate"], true, "re-ingested record not reported as a duplicate: {a}");
                assert_eq!((&r["seq"], &r["entry"], &r["kind"]), (&o["seq"], &o["entry"], &o["kind"]), "{a}");
            }
        }
        assert_eq!(again["appended"], 0, "{again}");
        assert_eq!(again["already_present"], before["appended"], "{again}");
    };
    for ((e, fs), before) in batches.iter().zip(&first) {
        let again = ingest(&ledger, *e, fs);
        same_records(&again, before);
    }

    // The same delivery saved under another name is the same delivery.
    let tmp = TempDir::new().expect("temporary directory");
    let copy = tmp.path().join("redelivered.json");
    std::fs::copy(&review, &copy).expect("copying the payload");
    let again = ingest(&ledger, Some("pull_request_review"), &[&copy]);
    same_records(&again, &first[1]);

    assert_eq!(log_by_seq(&ledger).len(), entries, "re-ingesting changed the number of entries");
    let seq = first[1]["files"][0]["records"][0]["seq"].as_u64().expect("a review record");
    let shown = ledger.json(["show", &format!("#{seq}"), "--json"]);
    assert_eq!(shown["entry"], first[1]["files"][0]["records"][0]["entry"], "show #{seq}: {shown}");
    assert_eq!(shown["kind"], "review", "show #{seq}: {shown}");
    ledger.verify();
}

/// Reads a payload of the data set.
fn load(dir: &Path, rel: &str) -> Value {
    let path = dir.join(rel);
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes `payload` to `dir/name` and, when `event` is given, a header file naming it as a
/// captured delivery has; returns the path.
fn write_delivery(dir: &Path, name: &str, event: Option<&str>, payload: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(payload).expect("JSON")).expect("writing the payload");
    if let Some(event) = event {
        let stem = name.strip_suffix(".json").expect("a .json name");
        let header =
            format!("content-type \tapplication/json\nx-github-event \t{event}\nuser-agent \tGitHub-Hookshot/0\n");
        std::fs::write(dir.join(format!("{stem}-header.txt")), header).expect("writing the header");
    }
    path
}

/// Appends `line` to a pull request's body (`null` counts as empty).
fn add_body_line(p: &mut Value, line: &str) {
    let body = p["pull_request"]["body"].as_str().unwrap_or("").to_string();
    p["pull_request"]["body"] = json!(format!("{body}\n\n{line}\n"));
}

/// An issue, edited to carry an incident label (or to be closed), becomes an incident.
#[test]
fn an_issue_labelled_incident_becomes_an_incident() {
    let Some(dir) = webhooks_dir() else { return };
    let tmp = TempDir::new().expect("temporary directory");

    // The issue's own labels name the incident; still open.
    let mut open = load(&dir, "octokit/issues/opened.payload.json");
    open["issue"]["labels"].as_array_mut().expect("issue.labels").push(json!({ "name": "incident" }));
    // The label the event adds names it (in another case); the issue's labels do not.
    let mut labeled = load(&dir, "octokit/issues/labeled.payload.json");
    labeled["label"]["name"] = json!("Incident: SEV2");
    assert!(!labeled["issue"]["labels"].as_array().expect("labels").iter().any(|l| l["name"] == "Incident: SEV2"));
    // Closed: resolved at closed_at.
    let mut closed = load(&dir, "octokit/issues/opened.payload.json");
    closed["issue"]["labels"].as_array_mut().expect("issue.labels").push(json!({ "name": "sev1-INCIDENT" }));
    closed["action"] = json!("closed");
    closed["issue"]["state"] = json!("closed");
    closed["issue"]["closed_at"] = closed["issue"]["updated_at"].clone();
    assert!(closed["issue"]["closed_at"].is_string(), "the payload has an updated_at to close the issue at");

    let plan: Vec<Delivery> = [("open", &open), ("labeled", &labeled), ("closed", &closed)]
        .into_iter()
        .map(|(name, p)| {
            let path = write_delivery(tmp.path(), &format!("issue-{name}.json"), None, p);
            Delivery::with_event(path, "issues", &format!("issues ({name}, edited)"))
        })
        .collect();
    let ledger = Ledger::init();
    let (handled, skipped) = ingest_and_check(&ledger, &plan);
    assert_eq!((handled, skipped), (3, 0), "each labelled issue is an incident");

    let incidents: Vec<Value> = log_by_seq(&ledger)
        .into_values()
        .filter(|e| e["kind"] == "incident")
        .map(|e| body(&e, "incident").clone())
        .collect();
    assert_eq!(incidents.len(), 3, "{incidents:?}");
    let resolved: Vec<&Value> = incidents.iter().map(|i| &i["resolved"]).collect();
    assert_eq!(resolved.iter().filter(|r| r.is_null()).count(), 2, "open issues are unresolved: {incidents:?}");
    assert!(
        resolved.contains(&&utc(&closed["issue"]["closed_at"])),
        "closed issue resolved at closed_at: {incidents:?}"
    );
}

/// AI trailers in a PR body become sessions of the change; without an approval, `why` flags
/// the change as AI-assisted without a human approval.
#[test]
fn ai_lines_of_a_pr_body_become_sessions() {
    let Some(dir) = webhooks_dir() else { return };
    let tmp = TempDir::new().expect("temporary directory");
    let mut p = load(&dir, "octokit/pull_request/opened.payload.json");
    add_body_line(&mut p, "Assisted-by: Codex 5.3");
    add_body_line(&mut p, "Co-authored-by: Claude <noreply@anthropic.com>");
    add_body_line(&mut p, "Generated-by: GitHub Copilot");
    add_body_line(&mut p, "Co-authored-by: Mona Lisa Octocat <mona@example.com>");
    let expected_lines = ai_lines(p["pull_request"]["body"].as_str().expect("body"));
    assert_eq!(
        expected_lines,
        vec![
            (Some("codex"), "Codex 5.3".to_string()),
            (Some("claude"), "Claude".to_string()),
            (Some("copilot"), "GitHub Copilot".to_string())
        ]
    );
    let path = write_delivery(tmp.path(), "pr-with-ai.json", None, &p);
    let ledger = Ledger::init();
    ingest_and_check(&ledger, &[Delivery::with_event(path, "pull_request", "pull_request (AI lines)")]);

    let subject = pr_subject(&p, &p["pull_request"]["number"]);
    let report = ledger.why(&subject);
    let change = &report["changes"][0];
    assert_eq!(change["subject"], subject.as_str(), "{report:#}");
    let sessions = change["sessions"].as_array().expect("sessions");
    let codex =
        sessions.iter().find(|s| s["tool"] == "codex").unwrap_or_else(|| panic!("no codex session: {report:#}"));
    assert_eq!(codex["model"], "Codex 5.3", "{report:#}");
    assert_eq!(sessions.len(), 3, "one session per AI line: {report:#}");
    let codes = finding_codes(&change["findings"]);
    assert!(codes.contains(&"ai_without_human_approval".to_string()), "{codes:?}");
}

/// The event comes from `--event`, else from the header file beside the payload (key in any
/// case, tabs or spaces); without either, the command fails with exit 2 naming the file.
#[test]
fn the_event_name_comes_from_the_option_or_a_header_file() {
    let Some(dir) = webhooks_dir() else { return };
    let tmp = TempDir::new().expect("temporary directory");
    let ledger = Ledger::init();
    let before = log_by_seq(&ledger).len();

    let review = tmp.path().join("delivery.json");
    std::fs::copy(dir.join("octokit/pull_request_review/submitted.payload.json"), &review).expect("copy");
    let out = ingest_command(&ledger, None, &[&review]).output().expect("running ledger");
    assert_eq!(out.status.code(), Some(2), "no event name: expected exit 2, got {:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("delivery.json"), "the error does not name the file: {stderr}");
    assert_eq!(log_by_seq(&ledger).len(), before, "a failed ingest appended records");

    std::fs::write(
        tmp.path().join("delivery-header.txt"),
        "Content-Type  application/json\nX-GitHub-Event    pull_request_review\n",
    )
    .expect("header");
    let v = ingest(&ledger, None, &[&review]);
    assert_eq!(v["files"][0]["event"], "pull_request_review", "{v}");
    assert_eq!(v["files"][0]["records"][0]["kind"], "review", "{v}");

    // --event wins over the header.
    let run = tmp.path().join("run.json");
    std::fs::copy(dir.join("octokit/check_run/completed.payload.json"), &run).expect("copy");
    std::fs::write(tmp.path().join("run-header.txt"), "x-github-event\tpush\n").expect("header");
    let v = ingest(&ledger, Some("check_run"), &[&run]);
    assert_eq!(v["files"][0]["event"], "check_run", "{v}");
    assert_eq!(v["files"][0]["records"][0]["kind"], "evidence", "{v}");
}

/// Issue 4's connected chain: recorded payloads edited only in ids, shas, numbers and
/// repository so that they describe one pull request (opened, approved at an old head,
/// synchronized, approved again, checked, merged, deployed), ingested in order into a fresh
/// ledger, each delivery checked against its records.
pub(crate) struct Chain {
    pub ledger: Ledger,
    pub repo: String,
    pub number: Value,
    /// The head the first approval was for.
    pub old: String,
    /// The final head.
    pub new: String,
    pub merge_commit: String,
    pub merger: Value,
    pub deployment: Value,
    pub status: Value,
}

impl Chain {
    /// `pr:<repo>#<number>`.
    pub fn subject(&self) -> String {
        format!("pr:{}#{}", self.repo, self.number)
    }

    /// The deployment's subject.
    pub fn deployment_subject(&self) -> String {
        format!(
            "deploy:{}/{}/{}",
            self.deployment["repository"]["name"].as_str().expect("repository.name"),
            self.deployment["deployment"]["environment"].as_str().expect("environment"),
            self.deployment["deployment"]["id"]
        )
    }

    pub fn ingest(dir: &Path, tmp: &Path) -> Chain {
        let mut opened = load(dir, "octokit/pull_request/opened.payload.json");
        let repository = opened["repository"].clone();
        let repo = repository["full_name"].as_str().expect("full_name").to_string();
        let number = opened["pull_request"]["number"].clone();
        let old = opened["pull_request"]["head"]["sha"].as_str().expect("head sha").to_string();
        let new = sha256_hex(b"the head after synchronize")[..40].to_string();
        assert_ne!(old, new);
        let ai_line = "Assisted-by: Codex 5.3";
        add_body_line(&mut opened, ai_line);

        // An approval (go-playground's review is `approved`) of the old head.
        let approval = |commit: &str, id: u64| {
            let mut r = load(dir, "go-playground/pull-request-review.json");
            r["repository"] = repository.clone();
            r["pull_request"]["number"] = number.clone();
            r["pull_request"]["head"]["sha"] = json!(commit);
            r["review"]["commit_id"] = json!(commit);
            r["review"]["id"] = json!(id);
            r
        };
        let review_old = approval(&old, 1001);
        assert_eq!(review_old["review"]["state"], "approved");

        let mut sync = load(dir, "octokit/pull_request/synchronize.payload.json");
        sync["repository"] = repository.clone();
        sync["pull_request"]["number"] = number.clone();
        sync["number"] = number.clone();
        sync["before"] = json!(old);
        sync["after"] = json!(new);
        sync["pull_request"]["head"]["sha"] = json!(new);
        add_body_line(&mut sync, ai_line);

        let review_new = approval(&new, 1002);

        let mut check = load(dir, "octokit/check_run/completed.payload.json");
        assert_eq!(check["check_run"]["conclusion"], "success");
        check["repository"] = repository.clone();
        check["check_run"]["head_sha"] = json!(new);
        let mut linked = check["check_run"]["pull_requests"][0].clone();
        linked["number"] = number.clone();
        linked["head"]["sha"] = json!(new);
        check["check_run"]["pull_requests"] = json!([linked]);

        // Merged by the merger of the captured reallyfastci delivery.
        let merger = load(dir, "reallyfastci/webhook-pr-close.json")["pull_request"]["merged_by"].clone();
        let mut closed = load(dir, "octokit/pull_request/closed.payload.json");
        closed["repository"] = repository.clone();
        closed["pull_request"]["number"] = number.clone();
        closed["number"] = number.clone();
        closed["pull_request"]["head"]["sha"] = json!(new);
        closed["pull_request"]["merged"] = json!(true);
        closed["pull_request"]["merged_by"] = merger.clone();
        add_body_line(&mut closed, ai_line);
        let merge_commit = closed["pull_request"]["merge_commit_sha"].as_str().expect("merge_commit_sha").to_string();

        let mut deployment = load(dir, "octokit/deployment/payload.json");
        deployment["repository"] = repository.clone();
        deployment["deployment"]["sha"] = json!(merge_commit);
        let mut status = load(dir, "octokit/deployment_status/payload.json");
        status["repository"] = repository.clone();
        status["deployment"]["sha"] = json!(merge_commit);

        // Captured-delivery style: each file with its header, all in one command, in order.
        let chain: Vec<(&str, &str, &Value)> = vec![
            ("1-opened", "pull_request", &opened),
            ("2-review-old", "pull_request_review", &review_old),
            ("3-synchronize", "pull_request", &sync),
            ("4-review-new", "pull_request_review", &review_new),
            ("5-check-run", "check_run", &check),
            ("6-closed", "pull_request", &closed),
            ("7-deployment", "deployment", &deployment),
            ("8-deployment-status", "deployment_status", &status),
        ];
        let paths: Vec<PathBuf> =
            chain.iter().map(|(name, event, p)| write_delivery(tmp, &format!("{name}.json"), Some(event), p)).collect();
        let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let ledger = Ledger::init();
        let summary = ingest(&ledger, None, &refs);
        let log = log_by_seq(&ledger);
        let mut problems = Problems::default();
        for (((name, event, _), path), out) in chain.iter().zip(&paths).zip(summary["files"].as_array().expect("files"))
        {
            let bytes = std::fs::read(path).expect("reading payload");
            let skipped =
                check_delivery(&mut problems, &format!("chain {name}"), event, &bytes, out, &log, &["session"]);
            problems.check(!skipped, || format!("chain {name}: skipped"));
        }
        problems.assert_none();
        Chain { ledger, repo, number, old, new, merge_commit, merger, deployment, status }
    }
}

/// Issue 4's scenario, read back through `ledger why`.
#[test]
fn a_connected_chain_reads_back_through_why() {
    let Some(dir) = webhooks_dir() else { return };
    let tmp = TempDir::new().expect("temporary directory");
    let Chain { ledger, repo, number, old, new, merge_commit, merger, deployment, status } =
        Chain::ingest(&dir, tmp.path());

    let subject = format!("pr:{repo}#{number}");
    let change = ledger.why_one_change(&subject);
    let report = || format!("{change:#}");
    assert_eq!(change["subject"], subject.as_str(), "{}", report());
    assert_eq!(change["final_commit"], new.as_str(), "{}", report());
    let reviews = change["reviews"].as_array().expect("reviews");
    let review_at = |sha: &str| {
        reviews
            .iter()
            .find(|r| r["commit"] == sha && r["verdict"] == "approved")
            .unwrap_or_else(|| panic!("no approval at {sha}: {}", report()))
    };
    assert_eq!(review_at(&old)["status"], "stale", "{}", report());
    assert_eq!(review_at(&new)["status"], "valid", "{}", report());
    let evidence = change["evidence"].as_array().expect("evidence");
    assert!(
        evidence.iter().any(|e| e["commit"] == new.as_str() && e["result"] == "pass" && e["at_final_commit"] == true),
        "no passing evidence at the final commit: {}",
        report()
    );
    assert_eq!(change["merge"]["commit"], merge_commit.as_str(), "{}", report());
    assert_eq!(change["merge"]["merged_by"], gh(&merger), "{}", report());
    let sessions = change["sessions"].as_array().expect("sessions");
    assert!(
        sessions.iter().any(|s| s["tool"] == "codex" && s["model"] == "Codex 5.3"),
        "no codex session: {}",
        report()
    );
    let codes = finding_codes(&change["findings"]);
    for absent in ["no_approval", "ai_without_human_approval"] {
        assert!(!codes.iter().any(|c| c == absent), "finding {absent} with a valid human approval: {codes:?}");
    }

    let by_merge = ledger.why_one_change(&merge_commit);
    assert_eq!(by_merge["subject"], subject.as_str(), "why {merge_commit} finds another change: {by_merge:#}");
    assert_eq!(by_merge["final_commit"], new.as_str(), "{by_merge:#}");

    // The deployment of the merge commit, with the status's state, and an incident that an
    // operator ties to that deployment explicitly.
    let dep_subject = format!(
        "deploy:{}/{}/{}",
        deployment["repository"]["name"].as_str().expect("repository.name"),
        deployment["deployment"]["environment"].as_str().expect("environment"),
        deployment["deployment"]["id"]
    );
    let deployments = change["deployments"].as_array().expect("deployments");
    let d = deployments
        .iter()
        .find(|d| d["subject"] == dep_subject.as_str())
        .unwrap_or_else(|| panic!("no deployment {dep_subject}: {}", report()));
    assert_eq!(d["commit"], merge_commit.as_str(), "{}", report());
    let same_deployment = status["deployment"]["id"] == deployment["deployment"]["id"];
    if same_deployment {
        assert_eq!(d["status"], status["deployment_status"]["state"], "latest status wins: {}", report());
    }
    let Some(pd) = crate::support::shared_data("realdata/incidents/pagerduty/triggered_v3.json") else { return };
    let inc = ledger.json([
        "ingest",
        "incident",
        "--system",
        "pagerduty",
        pd.to_str().expect("path"),
        "--caused-by",
        &dep_subject,
        "--json",
    ]);
    assert_eq!(inc["appended"], 1, "{inc}");
    let pd_payload: Value = serde_json::from_slice(&std::fs::read(&pd).expect("read")).expect("json");
    let inc_subject = format!("incident:pagerduty/{}", pd_payload["event"]["data"]["id"].as_str().expect("id"));
    // From the incident back to the change, with every line of the chain.
    let from_incident = ledger.why_one_change(&inc_subject);
    assert_eq!(from_incident["subject"], subject.as_str(), "{from_incident:#}");
    let i = &from_incident["incidents"][0];
    assert_eq!(i["subject"], inc_subject.as_str());
    assert_eq!((i["cause"].as_str(), i["inferred"].as_bool()), (Some(dep_subject.as_str()), Some(false)));
    assert_eq!(i["opened"], pd_payload["event"]["occurred_at"]);
    assert_eq!(from_incident["final_commit"], new.as_str());
    assert_eq!(from_incident["merge"]["commit"], merge_commit.as_str());
    let codes = finding_codes(&from_incident["findings"]);
    assert!(codes.iter().any(|c| c == "incident"), "{codes:?}");
}

/// Cases of the mapping the recorded data lacks, made by editing one field of a recorded
/// payload: every conclusion and state the mapping names, review states in either case, a
/// merge without a known merger, a PR without a commit count, a job without a workflow name.
#[test]
fn edited_payloads_map_as_specified() {
    let Some(dir) = webhooks_dir() else { return };
    let tmp = TempDir::new().expect("temporary directory");
    let mut plan = vec![];
    let mut add = |event: &str, rel: &str, label: &str, edit: &dyn Fn(&mut Value)| {
        let mut p = load(&dir, rel);
        edit(&mut p);
        let name = format!("{event}-{}.json", plan.len());
        let path = write_delivery(tmp.path(), &name, None, &p);
        plan.push(Delivery::with_event(path, event, &format!("{rel} ({label})")));
    };
    for state in ["pending", "failure", "error"] {
        add("status", "octokit/status/payload.json", state, &|p| {
            p["state"] = json!(state);
            p["target_url"] = json!("https://ci.example.com/build/1");
        });
    }
    for conclusion in
        ["failure", "neutral", "skipped", "cancelled", "stale", "timed_out", "action_required", "startup_failure"]
    {
        add("check_run", "octokit/check_run/completed.payload.json", conclusion, &|p| {
            p["check_run"]["conclusion"] = json!(conclusion);
        });
    }
    add("check_suite", "octokit/check_suite/completed.1.payload.json", "stale", &|p| {
        p["check_suite"]["conclusion"] = json!("stale");
    });
    add(
        "workflow_job",
        "octokit/workflow_job/completed.success.with-organization.payload.json",
        "no workflow_name",
        &|p| {
            p["workflow_job"].as_object_mut().expect("workflow_job").remove("workflow_name");
        },
    );
    for state in ["failure", "error", "inactive", "in_progress", "queued", "pending"] {
        add("deployment_status", "octokit/deployment_status/payload.json", state, &|p| {
            p["deployment_status"]["state"] = json!(state);
        });
    }
    for state in ["APPROVED", "changes_requested", "CHANGES_REQUESTED"] {
        add("pull_request_review", "octokit/pull_request_review/submitted.payload.json", state, &|p| {
            p["review"]["state"] = json!(state);
        });
    }
    add("pull_request", "reallyfastci/webhook-pr-close.json", "merged by nobody known", &|p| {
        p["pull_request"]["merged_by"] = Value::Null;
    });
    add("pull_request", "reallyfastci/webhook-pr-close.json", "edited, no commit count", &|p| {
        p["action"] = json!("edited");
        p["pull_request"]["merged"] = json!(false);
        p["pull_request"].as_object_mut().expect("pull_request").remove("commits");
    });
    for action in ["assigned", "review_requested", "converted_to_draft"] {
        add("pull_request", "octokit/pull_request/opened.payload.json", action, &|p| p["action"] = json!(action));
    }
    add("pull_request_review", "octokit/pull_request_review/submitted.payload.json", "edited", &|p| {
        p["action"] = json!("edited");
    });
    let n = plan.len();
    let ledger = Ledger::init();
    let (handled, skipped) = ingest_and_check(&ledger, &plan);
    assert_eq!(handled, n);
    // The pending status and the four pull request and review actions that carry no verdict.
    assert_eq!(skipped, 5, "skipped: pending status, three PR actions, an edited review");
}
