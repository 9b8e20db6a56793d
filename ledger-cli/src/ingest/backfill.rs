//! What `ingest github-api` and `ingest gitlab-api` share: the time window, the token, the
//! response cache, the HTTP runtime, and appending what the ledger does not hold yet
//! ([`ledger_ingest::Held`]), signed locally, in batches, so that an interrupted run keeps
//! what it appended and a re-run continues from there.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use anyhow::{anyhow, bail, Context as _, Result};
use ed25519_dalek::SigningKey;
use ledger_core::record::{Kind, Record};
use ledger_core::types::Timestamp;
use ledger_ingest::{Held, Mapped, Response};
use serde::Serialize;
use serde_json::Value;

use super::api_client::{ApiClient, Fetched, Forge};
use super::sign_and_append;
use crate::backend::{Backend, LogArgs};
use crate::cli::BackfillArgs;
use crate::ctx::Ctx;

/// The kinds a backfill makes, whose facts already in the ledger it skips.
const KINDS: &[Kind] = &[Kind::Change, Kind::Session, Kind::Merge, Kind::Review, Kind::Evidence, Kind::Deployment];

/// A time window: `[since, until)`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Window {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Window {
    /// The window `--since` and `--until` give (RFC 3339 times or dates; a date as `--until`
    /// includes its whole day).
    ///
    /// # Errors
    /// A time that does not parse, named with its flag.
    pub fn of(since: Option<&str>, until: Option<&str>) -> Result<Window> {
        let arg = |s: &str, flag: &str, end_of_day: bool| -> Result<Timestamp> {
            let t: Timestamp = s.parse().map_err(|e| anyhow!("{flag} `{s}`: {e}"))?;
            Ok(if end_of_day && !s.contains('T') { Timestamp(t.0 + 24 * 3600 * 1000) } else { t })
        };
        Ok(Window {
            since: since.map(|s| arg(s, "--since", false)).transpose()?,
            until: until.map(|s| arg(s, "--until", true)).transpose()?,
        })
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }

    /// Whether `t` is before the window.
    pub fn before(&self, t: Timestamp) -> bool {
        self.since.is_some_and(|s| t < s)
    }
}

/// A time field of an API object (RFC 3339).
pub(super) fn time_of(v: &Value, field: &str) -> Option<Timestamp> {
    v.get(field)?.as_str()?.parse().ok()
}

pub(super) fn json_of(f: &Fetched) -> Result<Value> {
    serde_json::from_slice(&f.body).with_context(|| format!("{}: the answer is not JSON", f.resource))
}

/// Items of a list answer: the array itself, or the array under `key` (`check_runs`).
pub(super) fn items(f: &Fetched, key: Option<&str>) -> Result<Vec<Value>> {
    let v = json_of(f)?;
    let list = match key {
        None => v,
        Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
    };
    match list {
        Value::Array(a) => Ok(a),
        _ => bail!("{}: expected a list{}", f.resource, key.map(|k| format!(" under `{k}`")).unwrap_or_default()),
    }
}

pub(super) fn resp(f: &Fetched) -> Response<'_> {
    Response { resource: &f.resource, body: &f.body }
}

/// What a run did, for its report.
#[derive(Serialize, Default, Debug)]
pub(super) struct Totals {
    pub requests: u64,
    pub not_modified: u64,
    pub retries: u64,
    pub rate_limit_waits: u64,
    pub waited_ms: u64,
    pub appended: u64,
    pub already_present: u64,
    pub skipped: u64,
}

impl Totals {
    /// `N requests, …; N records appended, …` for the text report.
    pub fn summary(&self) -> String {
        format!(
            "{} requests, {} not modified, {} retries, {} rate-limit waits; {} records appended, {} already present, {} skipped",
            self.requests,
            self.not_modified,
            self.retries,
            self.rate_limit_waits,
            self.appended,
            self.already_present,
            self.skipped
        )
    }
}

/// Where a backfill's options say to connect and keep its cache.
pub(super) struct Options<'a> {
    pub forge: Forge,
    pub api_url: &'a str,
    pub token_file: Option<&'a Path>,
    /// The environment variable the token is read from without `--token-file`.
    pub token_env: &'a str,
    /// The repository or project, naming its cache directory.
    pub name: &'a str,
    pub args: &'a BackfillArgs,
}

/// A backfill under way.
pub(super) struct Backfill {
    pub ledger: Backend,
    key: SigningKey,
    held: Held,
    pub rt: tokio::runtime::Runtime,
    pub client: ApiClient,
    pub bar: indicatif::ProgressBar,
    pub totals: Totals,
}

impl Backfill {
    /// Opens the ledger, reads the facts it holds, and readies the client.
    ///
    /// # Errors
    /// An unreadable token file or signer key, a ledger that cannot be opened, no HTTP runtime.
    pub fn start(ctx: &Ctx, o: &Options<'_>, bar_template: &str) -> Result<Backfill> {
        if o.args.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        let token = match o.token_file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .with_context(|| format!("reading the token file {}", f.display()))?
                    .trim()
                    .to_string(),
            ),
            None => std::env::var(o.token_env).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
        };
        let forge_dir = match o.forge {
            Forge::GitHub => "github",
            Forge::GitLab => "gitlab",
        };
        let cache: PathBuf = match o.args.cache.as_deref() {
            Some(c) => c.to_path_buf(),
            None if ctx.remote.is_some() => ".ledger-api-cache".into(),
            None => ctx.db.join("api-cache"),
        }
        .join(forge_dir)
        .join(o.name.replace('/', "__"));
        let key = ctx.signer_key(&o.args.signer)?;
        let mut ledger = ctx.backend()?;
        let mut held = Held::default();
        for kind in KINDS {
            ledger.log_each(&LogArgs { kind: Some(*kind), ..Default::default() }, |v| {
                held.note(&v.record);
                Ok(())
            })?;
        }
        let bar = crate::output::progress(ctx.json, 0, bar_template);
        let client =
            ApiClient::new(o.forge, o.api_url, token.map(|t| format!("Bearer {t}")), Some(cache), bar.clone())?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the HTTP runtime")?;
        Ok(Backfill { ledger, key, held, rt, client, bar, totals: Totals::default() })
    }

    /// The numbers (`number_field`: `number`, GitLab's `iid`) of the changes merged in
    /// `window`, ascending, from the listing at `first` (closed or merged changes, most recently
    /// updated first): one merged in the window was updated at or after its merge, so the
    /// listing stops at the first page holding one updated before the window.
    ///
    /// # Errors
    /// A request fails, or a page is not a list.
    pub fn merged_in(&self, first: String, window: Window, number_field: &str) -> Result<Vec<u64>> {
        let mut next = Some(first);
        let mut merged: Vec<u64> = vec![];
        while let Some(url) = next.take() {
            let page = self.rt.block_on(self.client.get(&url))?;
            let mut older = false;
            for change in &items(&page, None)? {
                if time_of(change, "updated_at").is_some_and(|u| window.before(u)) {
                    older = true;
                    continue;
                }
                let Some(at) = time_of(change, "merged_at") else { continue };
                if let (true, Some(n)) = (window.contains(at), change.get(number_field).and_then(Value::as_u64)) {
                    merged.push(n);
                }
            }
            next = if older { None } else { page.next.clone() };
        }
        merged.sort_unstable();
        merged.dedup();
        self.bar.set_length(merged.len() as u64);
        Ok(merged)
    }

    /// Signs and appends the records of `mapped` whose facts the ledger does not hold yet.
    ///
    /// # Errors
    /// Signing or appending fails.
    pub fn append(&mut self, mapped: Vec<Mapped>) -> Result<()> {
        let mut records: Vec<Record> = vec![];
        for m in mapped {
            match m {
                Mapped::Skipped(_) => self.totals.skipped += 1,
                Mapped::Records(rs) => {
                    for r in rs {
                        if self.held.admit(&r) {
                            records.push(r);
                        } else {
                            self.totals.already_present += 1;
                        }
                    }
                }
            }
        }
        for receipt in sign_and_append(&mut self.ledger, &records, &self.key)? {
            if receipt.duplicate {
                self.totals.already_present += 1;
            } else {
                self.totals.appended += 1;
            }
        }
        Ok(())
    }

    /// Ends the progress bar and takes the client's counts into the totals.
    pub fn finish(mut self) -> Totals {
        self.bar.finish_and_clear();
        let c = &self.client.counters;
        self.totals.requests = c.requests.load(Ordering::Relaxed);
        self.totals.not_modified = c.not_modified.load(Ordering::Relaxed);
        self.totals.retries = c.retries.load(Ordering::Relaxed);
        self.totals.rate_limit_waits = c.waits.load(Ordering::Relaxed);
        self.totals.waited_ms = c.waited_ms.load(Ordering::Relaxed);
        self.totals
    }
}
