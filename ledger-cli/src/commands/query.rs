//! Asking the ledger: `verify` (is every entry and every index intact?) and `why` (who
//! approved this, and what evidence proved it was safe?).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use ledger_audit::why::{ChangeReport, EntryRef, Verification, Vouch, WalkStep, WhyReport};
use ledger_core::note::{self, Checkpoint};
use ledger_core::record::KeyRole;
use ledger_core::types::EntryHash;
use ledger_store::ledger::{Ledger, TrustedHead};
use ledger_store::store::DiskStore;
use serde::Serialize;

use crate::backend::{Backend, VerifyOutcome};
use crate::ctx::Ctx;
use crate::output::{json_out, line, out, short, truncate};

/// What `verify --json` prints.
#[derive(Default, Serialize)]
struct VerifyOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head: Option<String>,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    /// `verify --from-checkpoint`: the trusted tree size the check started from.
    #[serde(skip_serializing_if = "Option::is_none")]
    from_tree_size: Option<u64>,
    /// `verify --from-checkpoint`: the RFC 6962 root at the verified size (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    root: Option<String>,
}

impl VerifyOut {
    fn intact(entries: u64, head: EntryHash) -> Self {
        VerifyOut { entries: Some(entries), head: Some(head.to_hex()), ok: true, ..VerifyOut::default() }
    }
}

/// Opens the local ledger without trusting its head: a tampered head is reported (exit 1,
/// the `Err` side) like any other tampered entry.
fn open_local(ctx: &Ctx) -> Result<std::result::Result<Ledger<DiskStore>, ExitCode>> {
    match Ledger::open(ctx.open_store()?, std::sync::Arc::new(ledger_store::clock::SystemClock)) {
        Ok(l) => Ok(Ok(l)),
        Err(e @ ledger_store::Error::Tampered { seq, .. }) => {
            Ok(Err(tampered(ctx, seq.0, &e.tamper_detail().unwrap_or_default())?))
        }
        Err(e) => Err(e.into()),
    }
}

/// `ledger verify`: exit 0 intact, 1 tampered (naming the seq), 2 error.
pub fn verify(ctx: &Ctx) -> Result<ExitCode> {
    let mut ledger = match &ctx.remote {
        Some(_) => ctx.backend()?,
        None => match open_local(ctx)? {
            Ok(l) => Backend::Local(l),
            Err(code) => return Ok(code),
        },
    };
    let total = ledger.len()?;
    let bar = crate::output::progress(ctx.json, total, "verifying {bar:40} {pos}/{len} entries ({per_sec})");
    let res = ledger.verify(|n| bar.set_position(n));
    bar.finish_and_clear();
    match res? {
        VerifyOutcome::Intact { entries, head } => {
            if ctx.json {
                json_out(&VerifyOut::intact(entries, head))?;
            } else {
                line(format!(
                    "ok: {entries} entries verified (signatures, chain links, signer rights, indexes, tiles); head {head}"
                ))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        VerifyOutcome::Tampered { seq, reason } => tampered(ctx, seq, &reason),
    }
}

/// `ledger verify --from-checkpoint FILE`: what was appended since a trusted checkpoint.
/// Exit 0 intact, 1 tampered, 2 error (a checkpoint that does not verify included).
pub fn verify_since(ctx: &Ctx, file: &Path, verifier_key: Option<&str>) -> Result<ExitCode> {
    if ctx.remote.is_some() {
        bail!("--from-checkpoint verifies a local ledger (--db or --store), not one behind --server");
    }
    let text = std::fs::read_to_string(file).with_context(|| format!("reading the checkpoint {}", file.display()))?;
    let l = match open_local(ctx)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let trusted =
        trusted_head(&l, &text, verifier_key).with_context(|| format!("the checkpoint {}", file.display()))?;
    let (size, _) = l.tree_head();
    let bar = crate::output::progress(
        ctx.json,
        size.saturating_sub(trusted.size),
        "verifying {bar:40} {pos}/{len} new entries ({per_sec})",
    );
    let res = l.verify_since(&trusted, |n| bar.set_position(n.saturating_sub(trusted.size)));
    bar.finish_and_clear();
    match res {
        Ok(s) => {
            let (entries, head) = (s.summary.entries, s.summary.head);
            if ctx.json {
                json_out(&VerifyOut {
                    from_tree_size: Some(s.from),
                    root: Some(hex::encode(s.root)),
                    ..VerifyOut::intact(entries, head)
                })?;
            } else {
                line(format!(
                    "ok: {} entries appended since the checkpoint of tree size {} verified (signatures, chain links, signer rights, index keys, tiles), and the tree of {entries} extends it; head {head}",
                    entries - s.from,
                    s.from
                ))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ ledger_store::Error::Tampered { seq, .. }) => {
            tampered(ctx, seq.0, &e.tamper_detail().unwrap_or_default())
        }
        Err(e) => Err(e.into()),
    }
}

/// The tree head a signed checkpoint states, once its signature verifies: by `verifier_key`
/// when given, else by one of the ledger's own checkpoint signers (log keys and the admin key,
/// not revoked).
fn trusted_head(l: &Ledger<DiskStore>, text: &str, verifier_key: Option<&str>) -> Result<TrustedHead> {
    let body = match verifier_key {
        Some(vk) => {
            let (name, key) = note::parse_verifier_key(vk.trim())?;
            note::open(text, &name, &key).context("its signature does not verify with the verifier key given")?
        }
        None => {
            let origin = text.lines().next().unwrap_or_default();
            let name = origin.replace(char::is_whitespace, "-");
            l.keys()
                .iter()
                .filter(|k| (k.admin || k.role == Some(KeyRole::Log)) && k.revoked_at.is_none())
                .find_map(|k| note::open(text, &name, &k.public).ok())
                .ok_or_else(|| {
                    anyhow!("it is not signed by this ledger's log key or admin key (give --verifier-key for another signer)")
                })?
        }
    };
    let cp = Checkpoint::parse(body)?;
    let mut chain_head = None;
    for ext in &cp.extensions {
        if let Some(rest) = ext.strip_prefix("blake3-head ") {
            let (seq, hash) = rest.split_once(' ').ok_or_else(|| anyhow!("malformed `blake3-head` line: `{ext}`"))?;
            if seq.parse::<u64>().ok() != cp.size.checked_sub(1) {
                bail!("its `blake3-head` line names entry #{seq}, not the last of its {} entries", cp.size);
            }
            chain_head = Some(EntryHash::from_hex(hash).map_err(|e| anyhow!("its `blake3-head` hash: {e}"))?);
        }
    }
    Ok(TrustedHead { size: cp.size, root: cp.root, chain_head })
}

fn tampered(ctx: &Ctx, seq: u64, reason: &str) -> Result<ExitCode> {
    if ctx.json {
        json_out(&VerifyOut { ok: false, reason: Some(reason.into()), seq: Some(seq), ..VerifyOut::default() })?;
    } else {
        line(format!("TAMPERED: entry #{seq} fails verification: {reason}"))?;
    }
    Ok(ExitCode::from(1))
}

/// `ledger why SUBJECT`.
pub fn why(ctx: &Ctx, subject: &str, trusted_builders: &[String]) -> Result<ExitCode> {
    let report = ctx.backend()?.why(subject, trusted_builders)?;
    if ctx.json {
        json_out(&report)?;
    } else {
        why_human(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a `why` report as a readable tree.
fn why_human(r: &WhyReport) -> Result<()> {
    let mut s = format!("why {}\n", r.subject);
    s += &walk_human(&r.walked);
    for f in &r.findings {
        s += &format!("  ! {}: {}\n", f.code, f.message);
    }
    for c in &r.changes {
        s += &change_human(c);
    }
    out(&s)
}

/// Most steps of the walk the text form lists (the JSON has them all).
const WALK_SHOWN: usize = 8;

/// The subjects walked, as one line: `walked  A [#1 #2] → B [none] → …`.
fn walk_human(walked: &[WalkStep]) -> String {
    if walked.is_empty() {
        return String::new();
    }
    let step = |w: &WalkStep| {
        let seqs: Vec<String> = w.entries.iter().map(|e| format!("#{}", e.seq)).collect();
        let seqs = if seqs.is_empty() { "nothing recorded".to_string() } else { seqs.join(" ") };
        format!("{} [{seqs}]", w.subject)
    };
    let mut line = walked.iter().take(WALK_SHOWN).map(step).collect::<Vec<_>>().join(" → ");
    if walked.len() > WALK_SHOWN {
        line += &format!(" → … ({} more)", walked.len() - WALK_SHOWN);
    }
    format!("  walked  {line}\n")
}

/// ` · key ci (webhook delivery, HMAC verified)`: who vouched, and how the fact entered.
fn vouch_human(v: &Vouch) -> String {
    format!(" · key {} ({})", v.signer, v.entered.describe())
}

/// ` (also #4 #7)` for an item recorded by several entries.
fn also_human(also: &[EntryRef]) -> String {
    if also.is_empty() {
        return String::new();
    }
    format!(" (also {})", also.iter().map(|e| format!("#{}", e.seq)).collect::<Vec<_>>().join(" "))
}

fn change_human(c: &ChangeReport) -> String {
    let mut s = String::new();
    s += &format!("\nchange {}  \"{}\"   [#{} {}]\n", c.subject, c.title, c.at.seq, short(&c.at.entry));
    s += &format!("├─ author        {}\n", c.author);
    let more = if c.commits_total as usize > c.commits.len() {
        format!(", {} listed", c.commits.len())
    } else {
        String::new()
    };
    if c.commits.is_empty() {
        s += &format!("├─ commits       {} (not listed: recorded from a webhook)\n", c.commits_total);
    } else {
        s += &format!(
            "├─ commits       {}{} by {}\n",
            c.commits_total,
            more,
            c.commit_authors.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    for cm in &c.commits {
        let tr = if cm.trailers.is_empty() { String::new() } else { format!("  [{}]", cm.trailers.join("; ")) };
        s += &format!(
            "│    {}  {:<5} {}{}\n",
            short(cm.sha.as_str()),
            format!("{:?}", cm.signature).to_lowercase(),
            truncate(&cm.title, 60),
            tr
        );
    }
    match &c.merge {
        Some(m) => {
            s += &format!(
                "├─ merged        {} ({:?}) by {} at {}   [#{} {}]{}\n",
                short(m.commit.as_str()),
                m.method,
                m.merged_by.as_ref().map_or("(unknown)".to_string(), |i| i.to_string()),
                m.time,
                m.at.seq,
                short(&m.at.entry),
                vouch_human(&m.vouched)
            );
        }
        None => s += "├─ merged        (no merge recorded)\n",
    }
    s += &format!("├─ final commit  {}\n", c.final_commit);
    if c.reviews.is_empty() {
        s += "├─ reviews       none recorded\n";
    } else {
        s += "├─ reviews\n";
        for r in &c.reviews {
            s += &format!(
                "│    {:<6} {:?} by {} at {} via {}   [#{} {}]{}{}\n",
                r.status,
                r.verdict,
                r.reviewer,
                short(r.commit.as_str()),
                r.via,
                r.at.seq,
                short(&r.at.entry),
                also_human(&r.also),
                vouch_human(&r.vouched)
            );
        }
    }
    if c.evidence.is_empty() {
        s += "├─ evidence      none recorded\n";
    } else {
        s += "├─ evidence\n";
        for e in &c.evidence {
            let at = if e.at_final_commit { "final commit" } else { "other commit" };
            let standing = match (e.verification, e.trusted_builder) {
                (Verification::NotVerified, false) => ", signature not verified, untrusted builder: does not count",
                (Verification::NotVerified, true) => ", signature not verified: does not count",
                (_, false) => ", untrusted builder: does not count",
                (Verification::Verified, true) => ", signature verified",
                _ => "",
            };
            s += &format!(
                "│    {:?} {} at {} ({}{})   [#{} {}]{}\n",
                e.result,
                e.check,
                short(e.commit.as_str()),
                at,
                standing,
                e.at.seq,
                short(&e.at.entry),
                vouch_human(&e.vouched)
            );
        }
    }
    if c.sessions.is_empty() {
        s += "├─ AI sessions   none recorded\n";
    } else {
        s += "├─ AI sessions\n";
        for x in &c.sessions {
            let tiers = x.model_approved_tiers.as_ref().map_or(String::new(), |t| format!(" approved for {t:?}"));
            s += &format!(
                "│    {} model {}{} via {}   [#{} {}]{}\n",
                x.subject,
                x.model.as_deref().unwrap_or("(unknown)"),
                tiers,
                x.via,
                x.at.seq,
                short(&x.at.entry),
                also_human(&x.also)
            );
        }
    }
    for d in &c.deployments {
        s += &format!(
            "├─ deployment    {} {:?} by {} at {} (commit {})   [#{} {}]{}\n",
            d.subject,
            d.status,
            d.deployer,
            d.time,
            short(d.commit.as_str()),
            d.at.seq,
            short(&d.at.entry),
            vouch_human(&d.vouched)
        );
    }
    for i in &c.incidents {
        let how = if i.inferred { "inferred" } else { "explicit" };
        s += &format!(
            "├─ incident      {} \"{}\" severity {} opened {}{} ← {} ({how})   [#{} {}]\n",
            i.subject,
            i.title,
            i.severity.as_deref().unwrap_or("-"),
            i.opened,
            i.resolved.map(|r| format!(" resolved {r}")).unwrap_or_default(),
            i.cause,
            i.at.seq,
            short(&i.at.entry)
        );
        if let Some(why) = &i.inference {
            s += &format!("│    {why}\n");
        }
    }
    for x in &c.exceptions {
        let state = if x.expired { "expired" } else { "in force" };
        s += &format!("├─ exception     {} by {} until {} ({state})\n", x.reason, x.approver, x.not_after);
    }
    for g in &c.gates {
        let stage = g.stage.map_or("?", |st| st.as_str());
        let tier = g.tier.map_or("?".to_string(), |t| format!("{t:?}"));
        let version = g.policy_version.map_or(String::new(), |v| format!(" v{v}"));
        let not_passed: Vec<String> = g
            .rules
            .iter()
            .filter(|r| r.result != ledger_core::record::RuleResult::Pass)
            .map(|r| match r.exception {
                Some(x) => format!("{} {} by exception #{x}", r.rule, r.result.as_str()),
                None => format!("{} {}", r.rule, r.result.as_str()),
            })
            .collect();
        let detail = if not_passed.is_empty() { "every rule passed".to_string() } else { not_passed.join(", ") };
        s += &format!(
            "├─ gate          {:?} at {stage} for {}, tier {tier}, policy{version} {}: {detail}   [#{} {}]{}\n",
            g.decision,
            g.subject,
            short(&g.policy),
            g.at.seq,
            short(&g.at.entry),
            vouch_human(&g.vouched)
        );
    }
    if c.findings.is_empty() {
        s += "└─ findings      none\n";
    } else {
        s += "└─ findings\n";
        for f in &c.findings {
            s += &format!("     ! {}: {}\n", f.code, f.message);
        }
    }
    s
}
