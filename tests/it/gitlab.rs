//! `ledger ingest gitlab` on recorded GitLab webhook deliveries: go-playground's and
//! go-gitlab's fixtures (`realdata/gitlab-webhooks`). Every delivery is ingested, the event
//! taken from its `object_kind`, and its records read back with `ledger log`; each field the
//! mapping names is compared with the payload as read here, and the source digest with a
//! SHA-256 of the file computed here. Where a test needs a case the recorded data lacks (an
//! approval, a connected chain of events, other statuses), it edits a recorded payload and
//! writes it to a temporary file.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::support::{finding_codes, shared_data, Ledger};

/// A file of the data set; the data set's directory is found from it.
const ANCHOR: &str = "realdata/gitlab-webhooks/go-gitlab/merge_request.json";

/// `realdata/gitlab-webhooks`, or `None` (with a notice) when the data is absent outside CI.
fn webhooks_dir() -> Option<PathBuf> {
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

/// Lowercase hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The `source` every record derived from a delivery must carry.
fn source_of(event: &str, bytes: &[u8]) -> Value {
    let digest = format!("sha256:{}", sha256_hex(bytes));
    json!({ "payload": { "format": format!("gitlab-webhook:{event}"), "digest": digest } })
}

/// A payload with whitespace around object keys removed: go-gitlab's group merge request
/// fixture spells keys `"iid "`, `"state "`…, and the mapping reads them by name.
fn trimmed(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let t = k.trim();
                let key = if t != k && !m.contains_key(t) && !out.contains_key(t) { t } else { k.as_str() };
                out.insert(key.to_string(), trimmed(x));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(trimmed).collect()),
        other => other.clone(),
    }
}

/// A payload time as the ledger prints it: RFC 3339 in UTC. GitLab writes RFC 3339,
/// `YYYY-MM-DD HH:MM:SS UTC` or `YYYY-MM-DD HH:MM:SS +ZZZZ`.
fn utc(v: &Value) -> Value {
    let s = v.as_str().unwrap_or_else(|| panic!("payload time is not a string: {v}"));
    let t: jiff::Timestamp = if let Ok(t) = s.parse() {
        t
    } else if let Some(civil) = s.strip_suffix(" UTC") {
        let dt: jiff::civil::DateTime = civil.parse().unwrap_or_else(|e| panic!("payload time `{s}`: {e}"));
        dt.to_zoned(jiff::tz::TimeZone::UTC).expect("a UTC time").timestamp()
    } else {
        jiff::fmt::strtime::parse("%Y-%m-%d %H:%M:%S %z", s)
            .and_then(|b| b.to_timestamp())
            .unwrap_or_else(|e| panic!("payload time `{s}`: {e}"))
    };
    Value::String(t.to_string())
}

/// `gitlab:<username>` of a user object.
fn gl(user: &Value) -> Value {
    let name = user["username"].as_str().unwrap_or_else(|| panic!("user without a username: {user}"));
    json!(format!("gitlab:{name}"))
}

/// `pr:<path_with_namespace>#<iid>`.
fn mr_subject(p: &Value, iid: &Value) -> String {
    format!("pr:{}#{}", p["project"]["path_with_namespace"].as_str().expect("project.path_with_namespace"), iid)
}

/// The merge request's author as the mapping names it: `user` when its id is `author_id`,
/// else a user with that id among `assignees`, `reviewers` and `assignee`, else `user`.
fn mr_author(p: &Value) -> Value {
    let id = &p["object_attributes"]["author_id"];
    if id.is_null() || p["user"]["id"] == *id {
        return gl(&p["user"]);
    }
    let mut users: Vec<&Value> = vec![];
    for list in ["assignees", "reviewers"] {
        users.extend(p[list].as_array().into_iter().flatten());
    }
    users.push(&p["assignee"]);
    users.into_iter().find(|u| u["id"] == *id && u["username"].is_string()).map_or_else(|| gl(&p["user"]), gl)
}

/// A pipeline or job status as an evidence result.
fn result_of(status: &str) -> Value {
    json!(match status {
        "success" => "pass",
        "failed" => "fail",
        "canceled" | "skipped" => "neutral",
        _ => panic!("the mapping names no result for status {status}"),
    })
}

/// The full commit of a deployment: `sha` if the payload has one, else `commit_url`'s last
/// path segment; `None` when neither is a full commit id.
fn deployed_commit(p: &Value) -> Option<String> {
    let full = |s: &str| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let url_tail = p["commit_url"].as_str().and_then(|u| u.rsplit('/').next());
    [p["sha"].as_str(), url_tail].into_iter().flatten().find(|s| full(s)).map(str::to_string)
}

/// The repository path of a URL such as `https://gitlab.com/group/project`.
fn url_path(url: &str) -> String {
    let rest = url.split_once("://").expect("a URL").1;
    rest.split_once('/').expect("a path").1.trim_end_matches('/').trim_end_matches(".git").to_string()
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
    let o = &p["object_attributes"];
    let word = |v: &Value| v.as_str().unwrap_or("").trim().to_string();
    let skip = |w: &[&str]| Expect::Skip(w.iter().map(|s| s.to_string()).collect());
    match event {
        "merge_request" => {
            let (action, state) = (word(&o["action"]), word(&o["state"]));
            let change = |merged: bool| {
                let mut kinds = vec!["change"];
                if merged && o["merge_commit_sha"].is_string() {
                    kinds.push("merge");
                }
                Expect::Records(kinds)
            };
            match action.as_str() {
                "open" | "reopen" | "update" | "merge" => change(action == "merge" || state == "merged"),
                "approved" | "approval" | "unapproved" | "unapproval" => Expect::Records(vec!["review"]),
                "" if state == "opened" || state == "merged" => change(state == "merged"),
                "" => skip(&["state"]),
                other => skip(&[other]),
            }
        }
        "note" => skip(&["comment", "note"]),
        "pipeline" => match word(&o["status"]).as_str() {
            "success" | "failed" | "canceled" | "skipped" => Expect::Records(vec!["evidence"]),
            other => skip(&[other]),
        },
        "build" => match word(&p["build_status"]).as_str() {
            "success" | "failed" | "canceled" => Expect::Records(vec!["evidence"]),
            other => skip(&[other]),
        },
        "deployment" => match word(&p["status"]).as_str() {
            "success" | "failed" | "running" | "canceled" if deployed_commit(p).is_some() => {
                Expect::Records(vec!["deployment"])
            }
            "success" | "failed" | "running" | "canceled" => skip(&["commit"]),
            other => skip(&[other]),
        },
        other => skip(&[other]),
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

/// `ledger ingest gitlab [--event E] FILES… --json`, without checking the outcome.
fn ingest_command(ledger: &Ledger, event: Option<&str>, files: &[&Path]) -> assert_cmd::Command {
    let mut args: Vec<OsString> = vec!["ingest".into(), "gitlab".into()];
    if let Some(e) = event {
        args.push("--event".into());
        args.push(e.into());
    }
    args.extend(files.iter().map(|f| f.as_os_str().to_owned()));
    args.push("--json".into());
    ledger.command(args)
}

/// Runs an ingest that must succeed; checks the summary's shape and that its totals add up.
fn ingest(ledger: &Ledger, event: Option<&str>, files: &[&Path]) -> Value {
    let out = ingest_command(ledger, event, files).output().expect("running ledger");
    assert!(
        out.status.success(),
        "ingest gitlab {files:?}: exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("ingest printed JSON");
    let listed = v["files"].as_array().unwrap_or_else(|| panic!("no `files` array: {v}"));
    assert_eq!(listed.len(), files.len(), "one result per file: {v}");
    let (mut appended, mut present, mut skipped) = (0, 0, 0);
    for (f, path) in listed.iter().zip(files) {
        let name = path.file_name().and_then(|n| n.to_str()).expect("UTF-8 file name");
        assert!(f["file"].as_str().is_some_and(|s| s.ends_with(name)), "results out of order: {v}");
        assert!(f["event"].is_string() && (f["action"].is_string() || f["action"].is_null()), "{f}");
        assert!(f["skipped"].is_null() || f["skipped"].is_string(), "{f}");
        let records = f["records"].as_array().unwrap_or_else(|| panic!("no records array: {f}"));
        for r in records {
            let hex64 = r["entry"].as_str().is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(r["seq"].is_u64() && hex64 && r["kind"].is_string() && r["duplicate"].is_boolean(), "{r}");
        }
        let (a, p) = (f["appended"].as_u64().expect("appended"), f["already_present"].as_u64().expect("present"));
        let dups = records.iter().filter(|r| r["duplicate"] == true).count() as u64;
        assert!(a + p == records.len() as u64 && p == dups, "counts of {name} do not add up: {f}");
        appended += a;
        present += p;
        skipped += u64::from(f["skipped"].is_string());
    }
    assert_eq!(
        (v["appended"].as_u64(), v["already_present"].as_u64(), v["skipped"].as_u64()),
        (Some(appended), Some(present), Some(skipped)),
        "the totals are not the sums of the file results: {v}"
    );
    v
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
        .into_iter()
        .flatten()
        .filter(|l| l["rel"] == "change")
        .filter_map(|l| l["target"].as_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

/// Checks one delivery's result (`out`, its entry in the summary) against the mapping.
/// Returns whether it was skipped.
fn check_delivery(pr: &mut Problems, ctx: &str, bytes: &[u8], out: &Value, log: &BTreeMap<u64, Value>) -> bool {
    let raw: Value = serde_json::from_slice(bytes).expect("payload is JSON");
    let p = trimmed(&raw);
    let event = p["object_kind"].as_str().expect("object_kind").to_string();
    pr.eq(ctx, "event", &out["event"], &json!(event));
    let action =
        if p["object_attributes"]["action"].is_string() { &p["object_attributes"]["action"] } else { &p["action"] };
    pr.eq(ctx, "action", &out["action"], action);
    let records = out["records"].as_array().cloned().unwrap_or_default();
    match expected(&event, &p) {
        Expect::Skip(words) => {
            let reason = out["skipped"].as_str().unwrap_or("").to_lowercase();
            pr.check(out["skipped"].is_string(), || format!("{ctx}: not skipped (expected a skip): {out}"));
            pr.check(out["skipped"].is_null() || words.iter().any(|w| reason.contains(&w.to_lowercase())), || {
                format!("{ctx}: skip reason {reason:?} does not mention one of {words:?}")
            });
            pr.check(records.is_empty() && out["appended"] == 0, || format!("{ctx}: a skipped delivery has records"));
            true
        }
        Expect::Records(mut kinds) => {
            pr.check(out["skipped"].is_null(), || format!("{ctx}: skipped ({}), expected {kinds:?}", out["skipped"]));
            let mut got: Vec<&str> = records.iter().filter_map(|r| r["kind"].as_str()).collect();
            got.sort_unstable();
            kinds.sort_unstable();
            pr.check(got == kinds, || format!("{ctx}: records of kinds {got:?}, expected {kinds:?}"));
            pr.check(records.iter().all(|r| r["duplicate"] == false), || format!("{ctx}: duplicates: {out}"));
            let mut by_kind: BTreeMap<String, &Value> = BTreeMap::new();
            for r in &records {
                let Some(entry) = r["seq"].as_u64().and_then(|s| log.get(&s)) else {
                    pr.0.push(format!("{ctx}: record {r} is not in the log"));
                    continue;
                };
                pr.eq(ctx, "logged entry hash", &entry["entry"], &r["entry"]);
                let kind = r["kind"].as_str().unwrap_or("?");
                pr.eq(ctx, &format!("{kind}.source"), &body(entry, kind)["source"], &source_of(&event, bytes));
                by_kind.insert(kind.to_string(), entry);
            }
            check_fields(pr, ctx, &event, &p, &by_kind);
            false
        }
    }
}

/// Checks the mapped fields of a delivery's records against its payload (keys trimmed).
fn check_fields(pr: &mut Problems, ctx: &str, event: &str, p: &Value, by_kind: &BTreeMap<String, &Value>) {
    let o = &p["object_attributes"];
    let path = &p["project"]["path_with_namespace"];
    match event {
        "merge_request" => {
            let subject = mr_subject(p, &o["iid"]);
            if let Some(e) = by_kind.get("change") {
                let c = body(e, "change");
                pr.eq(ctx, "change.repo", &c["repo"], path);
                pr.eq(ctx, "change.number", &c["number"], &o["iid"]);
                pr.eq(ctx, "change.title", &c["title"], &o["title"]);
                let description = match o["description"].as_str() {
                    Some(d) if !d.trim().is_empty() => json!(d),
                    _ => Value::Null,
                };
                pr.eq(ctx, "change.description", &c["description"], &description);
                pr.eq(ctx, "change.author", &c["author"], &mr_author(p));
                pr.eq(ctx, "change.head_commit", &c["head_commit"], &o["last_commit"]["id"]);
                pr.eq(ctx, "change.base_commit", &c["base_commit"], &Value::Null);
                pr.eq(ctx, "change record time", &e["record"]["time"], &utc(&o["updated_at"]));
            }
            if let Some(e) = by_kind.get("merge") {
                let m = body(e, "merge");
                pr.eq(ctx, "merge.repo", &m["repo"], path);
                pr.eq(ctx, "merge.merge_commit", &m["merge_commit"], &o["merge_commit_sha"]);
                pr.eq(ctx, "merge.head_commit", &m["head_commit"], &o["last_commit"]["id"]);
                pr.eq(ctx, "merge.merged_by", &m["merged_by"], &gl(&p["user"]));
                pr.eq(ctx, "merge.method", &m["method"], &json!("merge"));
                pr.eq(ctx, "merge change links", &json!(change_links(e)), &json!([subject]));
            }
            if let Some(e) = by_kind.get("review") {
                let v = body(e, "review");
                let verdict = if o["action"].as_str().is_some_and(|a| a.starts_with("unapprov")) {
                    "dismissed"
                } else {
                    "approved"
                };
                pr.eq(ctx, "review.repo", &v["repo"], path);
                pr.eq(ctx, "review.reviewer", &v["reviewer"], &gl(&p["user"]));
                pr.eq(ctx, "review.verdict", &v["verdict"], &json!(verdict));
                pr.eq(ctx, "review.commit", &v["commit"], &o["last_commit"]["id"]);
                pr.eq(ctx, "review change links", &json!(change_links(e)), &json!([subject]));
            }
        }
        "pipeline" => {
            let Some(e) = by_kind.get("evidence") else { return };
            let v = body(e, "evidence");
            let check = match o["name"].as_str() {
                Some(n) => format!("pipeline/{n}"),
                None => "pipeline".into(),
            };
            let mr = &p["merge_request"];
            let links: Vec<String> = if mr.is_null() { vec![] } else { vec![mr_subject(p, &mr["iid"])] };
            let time = if o["finished_at"].is_string() { &o["finished_at"] } else { &o["created_at"] };
            pr.eq(ctx, "evidence.repo", &v["repo"], path);
            pr.eq(ctx, "evidence.commit", &v["commit"], &o["sha"]);
            pr.eq(ctx, "evidence.check", &v["check"], &json!(check));
            pr.eq(ctx, "evidence.result", &v["result"], &result_of(o["status"].as_str().expect("status")));
            pr.eq(ctx, "evidence.url", &v["url"], &o["url"]);
            pr.eq(ctx, "evidence change links", &json!(change_links(e)), &json!(links));
            pr.eq(ctx, "evidence record time", &e["record"]["time"], &utc(time));
            pr.eq(ctx, "evidence actor", &e["record"]["actor"], &gl(&p["user"]));
        }
        "build" => {
            let Some(e) = by_kind.get("evidence") else { return };
            let v = body(e, "evidence");
            let repo = if path.is_string() {
                path.clone()
            } else {
                json!(url_path(p["repository"]["homepage"].as_str().expect("repository.homepage")))
            };
            let sha = if p["sha"].is_string() { &p["sha"] } else { &p["commit"]["sha"] };
            let check =
                format!("{}/{}", p["build_stage"].as_str().expect("stage"), p["build_name"].as_str().expect("name"));
            pr.eq(ctx, "evidence.repo", &v["repo"], &repo);
            pr.eq(ctx, "evidence.commit", &v["commit"], sha);
            pr.eq(ctx, "evidence.check", &v["check"], &json!(check));
            pr.eq(ctx, "evidence.result", &v["result"], &result_of(p["build_status"].as_str().expect("status")));
            pr.eq(ctx, "evidence record time", &e["record"]["time"], &utc(&p["build_finished_at"]));
        }
        "deployment" => {
            let Some(e) = by_kind.get("deployment") else { return };
            let v = body(e, "deployment");
            let status = match p["status"].as_str().expect("status") {
                "success" => "success",
                "failed" => "failure",
                "running" => "in_progress",
                "canceled" => "inactive",
                other => panic!("the mapping names no status for {other}"),
            };
            let environment = p["environment"].as_str().expect("environment").replace('/', "-");
            pr.eq(ctx, "deployment.service", &v["service"], &p["project"]["name"]);
            pr.eq(ctx, "deployment.environment", &v["environment"], &json!(environment));
            pr.eq(ctx, "deployment.deployment_id", &v["deployment_id"], &json!(p["deployment_id"].to_string()));
            pr.eq(ctx, "deployment.repo", &v["repo"], path);
            pr.eq(ctx, "deployment.commits", &v["commits"], &json!([deployed_commit(p)]));
            pr.eq(ctx, "deployment.deployer", &v["deployer"], &gl(&p["user"]));
            pr.eq(ctx, "deployment.status", &v["status"], &json!(status));
            pr.eq(ctx, "deployment record time", &e["record"]["time"], &utc(&p["status_changed_at"]));
        }
        _ => {}
    }
}

/// Ingests `files` into `ledger` one command per file (the event from `object_kind`), then
/// checks every result against the mapping; panics listing every problem. Returns how many
/// were handled and skipped.
fn ingest_and_check(ledger: &Ledger, dir: &Path, files: &[PathBuf]) -> (usize, usize) {
    let results: Vec<Value> = files.iter().map(|f| ingest(ledger, None, &[f])["files"][0].clone()).collect();
    let log = log_by_seq(ledger);
    let mut problems = Problems::default();
    let (mut handled, mut skipped) = (0, 0);
    for (file, out) in files.iter().zip(&results) {
        let ctx = file.strip_prefix(dir).unwrap_or(file).display().to_string();
        let bytes = std::fs::read(file).expect("reading payload");
        if check_delivery(&mut problems, &ctx, &bytes, out, &log) {
            skipped += 1;
        }
        handled += 1;
    }
    problems.assert_none();
    (handled, skipped)
}

#[test]
fn every_gitlab_payload_is_ingested_or_skipped() {
    let Some(dir) = webhooks_dir() else { return };
    let files = payload_files(&dir);
    for source in ["go-playground", "go-gitlab"] {
        assert!(files.iter().any(|f| f.starts_with(dir.join(source))), "no payload from {source}");
    }
    let ledger = Ledger::init();
    let (handled, skipped) = ingest_and_check(&ledger, &dir, &files);
    assert_eq!(handled, files.len(), "every payload file found must be handled");
    assert!(skipped > 0 && skipped < handled, "{skipped} of {handled} skipped: the data has both kinds");
    ledger.verify();
}

/// Ingesting the whole data set again, or a copy of a delivery under another name, appends
/// nothing and points at the same entries.
#[test]
fn reingesting_gitlab_deliveries_adds_nothing() {
    let Some(dir) = webhooks_dir() else { return };
    let files = payload_files(&dir);
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let ledger = Ledger::init();
    let first = ingest(&ledger, None, &refs);
    assert!(first["appended"].as_u64() > Some(0), "{first}");
    assert_eq!(first["already_present"], 0, "{first}");
    let entries = log_by_seq(&ledger).len();

    let same = |again: &Value, before: &Value| {
        assert_eq!(again["appended"], 0, "re-ingest appended records: {again}");
        assert_eq!(again["already_present"], before["appended"], "{again}");
        for (a, b) in again["files"].as_array().expect("files").iter().zip(before["files"].as_array().expect("files")) {
            assert_eq!(a["skipped"], b["skipped"], "re-ingest skips otherwise: {a}");
            let (recs, old) = (a["records"].as_array().expect("records"), b["records"].as_array().expect("records"));
            assert_eq!(recs.len(), old.len(), "re-ingest yields other records: {a}");
            for (r, o) in recs.iter().zip(old) {
                assert_eq!(r["duplicate"], true, "{a}");
                assert_eq!((&r["seq"], &r["entry"], &r["kind"]), (&o["seq"], &o["entry"], &o["kind"]), "{a}");
            }
        }
    };
    same(&ingest(&ledger, None, &refs), &first);

    let tmp = TempDir::new().expect("temporary directory");
    let original = dir.join("go-gitlab/group_merge_request.json");
    let copy = tmp.path().join("redelivered.json");
    std::fs::copy(&original, &copy).expect("copying the payload");
    let index = files.iter().position(|f| *f == original).expect("the merged MR is in the data set");
    let before = json!({ "appended": first["files"][index]["appended"], "files": [first["files"][index]] });
    // The header name of the event is accepted too.
    same(&ingest(&ledger, Some("Merge Request Hook"), &[&copy]), &before);

    assert_eq!(log_by_seq(&ledger).len(), entries, "re-ingesting changed the number of entries");
    ledger.verify();
}

/// Reads a payload of the data set.
fn load(dir: &Path, rel: &str) -> Value {
    let path = dir.join(rel);
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes `payload` to `dir/name`; returns the path.
fn write(dir: &Path, name: &str, payload: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(payload).expect("JSON")).expect("writing the payload");
    path
}

/// One merge request through its life, from recorded payloads edited only in users, ids,
/// shas, times and project: opened → approved → pipeline success at the last commit →
/// merged → deployed, ingested in order, then read back through `ledger why`.
#[test]
fn a_gitlab_merge_request_reads_back_through_why() {
    let Some(dir) = webhooks_dir() else { return };
    let tmp = TempDir::new().expect("temporary directory");

    let mut opened = load(&dir, "go-playground/merge-request-event.json");
    assert_eq!(opened["object_attributes"]["action"], "open");
    // A project in a nested group; the opener is the author (the fixture's ids disagree).
    opened["project"]["path_with_namespace"] = json!("gitlabhq/platform/gitlab-test");
    opened["object_attributes"]["author_id"] = opened["user"]["id"].clone();
    let project = opened["project"].clone();
    let iid = opened["object_attributes"]["iid"].clone();
    let head = opened["object_attributes"]["last_commit"]["id"].as_str().expect("last_commit.id").to_string();
    let author = gl(&opened["user"]);

    // Approved by the user of go-gitlab's job event.
    let approver = load(&dir, "go-gitlab/job.json")["user"].clone();
    let mut approved = opened.clone();
    approved["object_attributes"]["action"] = json!("approved");
    approved["object_attributes"]["updated_at"] = json!("2013-12-04 09:00:00 UTC");
    approved["user"] = approver.clone();

    let mut pipeline = load(&dir, "go-playground/pipeline-event.json");
    assert_eq!(pipeline["object_attributes"]["status"], "success");
    pipeline["project"] = project.clone();
    pipeline["object_attributes"]["sha"] = json!(head);
    pipeline["merge_request"]["iid"] = iid.clone();
    pipeline["merge_request"]["target_project_id"] = project["id"].clone();

    // Merged by the user of go-gitlab's pipeline event, with go-gitlab's merge commit.
    let merger = load(&dir, "go-gitlab/pipeline.json")["user"].clone();
    let merge_commit = trimmed(&load(&dir, "go-gitlab/group_merge_request.json"))["object_attributes"]
        ["merge_commit_sha"]
        .as_str()
        .expect("merge_commit_sha")
        .to_string();
    let mut merged = opened.clone();
    merged["object_attributes"]["action"] = json!("merge");
    merged["object_attributes"]["state"] = json!("merged");
    merged["object_attributes"]["merge_commit_sha"] = json!(merge_commit);
    merged["object_attributes"]["updated_at"] = json!("2013-12-04T10:00:00Z");
    merged["user"] = merger.clone();

    let mut deployment = load(&dir, "go-playground/deployment-event.json");
    deployment["project"]["path_with_namespace"] = project["path_with_namespace"].clone();
    deployment["short_sha"] = json!(merge_commit[..8]);
    deployment["commit_url"] =
        json!(format!("http://example.com/gitlabhq/platform/gitlab-test/-/commit/{merge_commit}"));

    let chain = [
        ("1-opened", &opened),
        ("2-approved", &approved),
        ("3-pipeline", &pipeline),
        ("4-merged", &merged),
        ("5-deployment", &deployment),
    ];
    let paths: Vec<PathBuf> = chain.iter().map(|(name, p)| write(tmp.path(), &format!("{name}.json"), p)).collect();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let ledger = Ledger::init();
    let summary = ingest(&ledger, None, &refs);
    let log = log_by_seq(&ledger);
    let mut problems = Problems::default();
    for (((name, _), path), out) in chain.iter().zip(&paths).zip(summary["files"].as_array().expect("files")) {
        let bytes = std::fs::read(path).expect("reading payload");
        let skipped = check_delivery(&mut problems, &format!("chain {name}"), &bytes, out, &log);
        problems.check(!skipped, || format!("chain {name}: skipped"));
    }
    problems.assert_none();

    let subject = mr_subject(&opened, &iid);
    assert_eq!(subject, "pr:gitlabhq/platform/gitlab-test#1");
    let change = ledger.why_one_change(&subject);
    let report = || format!("{change:#}");
    assert_eq!(change["subject"], subject.as_str(), "{}", report());
    assert_eq!(change["final_commit"], head.as_str(), "{}", report());
    let reviews = change["reviews"].as_array().expect("reviews");
    assert!(
        reviews.iter().any(|r| r["reviewer"] == gl(&approver)
            && r["verdict"] == "approved"
            && r["commit"] == head.as_str()
            && r["status"] == "valid"),
        "no valid approval by {} at {head}: {}",
        gl(&approver),
        report()
    );
    let evidence = change["evidence"].as_array().expect("evidence");
    assert!(
        evidence.iter().any(|e| e["commit"] == head.as_str() && e["result"] == "pass" && e["at_final_commit"] == true),
        "no passing evidence at the final commit: {}",
        report()
    );
    assert_eq!(change["merge"]["commit"], merge_commit.as_str(), "{}", report());
    assert_eq!(change["merge"]["merged_by"], gl(&merger), "{}", report());
    let deployments = change["deployments"].as_array().expect("deployments");
    assert!(
        deployments.iter().any(|d| d["commit"] == merge_commit.as_str() && d["status"] == "success"),
        "the deployment of the merge commit is not found: {}",
        report()
    );
    let codes = finding_codes(&change["findings"]);
    for absent in ["no_approval", "no_approval_at_final_commit", "self_approval", "no_evidence", "not_merged"] {
        assert!(!codes.iter().any(|c| c == absent), "finding {absent}: {codes:?}\n{}", report());
    }
    assert_ne!(author, gl(&approver), "the approval is independent of the author");

    let by_merge = ledger.why_one_change(&merge_commit);
    assert_eq!(by_merge["subject"], subject.as_str(), "why {merge_commit} finds another change: {by_merge:#}");
}

/// Cases of the mapping the recorded data lacks, made by editing one field of a recorded
/// payload: every status the mapping names and some it skips, approval withdrawn, a closed
/// merge request, a deployment without a full commit id, a nested environment.
#[test]
fn edited_gitlab_payloads_map_as_specified() {
    let Some(dir) = webhooks_dir() else { return };
    let tmp = TempDir::new().expect("temporary directory");
    let mut files = vec![];
    let mut add = |rel: &str, edit: &dyn Fn(&mut Value)| {
        let mut p = load(&dir, rel);
        edit(&mut p);
        files.push(write(tmp.path(), &format!("{}.json", files.len()), &p));
    };
    for status in ["failed", "canceled", "skipped", "running", "pending"] {
        add("go-gitlab/pipeline.json", &|p| p["object_attributes"]["status"] = json!(status));
    }
    for status in ["failed", "canceled", "skipped", "running"] {
        add("go-gitlab/job.json", &|p| p["build_status"] = json!(status));
    }
    for status in ["failed", "running", "canceled", "created"] {
        add("go-gitlab/deployment.json", &|p| p["status"] = json!(status));
    }
    add("go-gitlab/deployment.json", &|p| p["environment"] = json!("review/feature-x"));
    add("go-gitlab/deployment.json", &|p| {
        p.as_object_mut().expect("object").remove("commit_url");
    });
    for action in ["approval", "unapproved", "unapproval", "close", "reopen", "update"] {
        add("go-gitlab/merge_request.json", &|p| p["object_attributes"]["action"] = json!(action));
    }
    add("go-playground/system-merge-request-event.json", &|p| p["object_attributes"]["state"] = json!("closed"));
    // The author found by id among the assignees, not the user who triggered the event.
    add("go-playground/merge-request-event.json", &|p| {
        p["object_attributes"]["author_id"] = p["assignees"][0]["id"].clone();
        assert_ne!(p["assignees"][0]["username"], p["user"]["username"]);
    });
    let n = files.len();
    let ledger = Ledger::init();
    let (handled, skipped) = ingest_and_check(&ledger, tmp.path(), &files);
    assert_eq!(handled, n);
    // running and pending pipelines, skipped and running jobs, a created deployment, one
    // without a full commit id, a closed merge request and a closed one without an action.
    assert_eq!(skipped, 8);
    ledger.verify();
}

/// `--event` must agree with the payload's `object_kind`; a disagreement fails the command
/// (exit 2, naming the file) and appends nothing.
#[test]
fn an_event_that_contradicts_object_kind_is_an_error() {
    let Some(dir) = webhooks_dir() else { return };
    let ledger = Ledger::init();
    let before = log_by_seq(&ledger).len();
    let mr = dir.join("go-gitlab/merge_request.json");
    let pipeline = dir.join("go-gitlab/pipeline.json");
    let out = ingest_command(&ledger, Some("pipeline"), &[&pipeline, &mr]).output().expect("running ledger");
    assert_eq!(out.status.code(), Some(2), "expected exit 2, got {:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("merge_request.json") && stderr.contains("merge_request"), "{stderr}");
    assert_eq!(log_by_seq(&ledger).len(), before, "a failed ingest appended records");
    let v = ingest(&ledger, Some("Pipeline Hook"), &[&pipeline]);
    assert_eq!(v["files"][0]["event"], "pipeline", "{v}");
}
