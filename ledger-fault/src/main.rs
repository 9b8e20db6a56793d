//! `ledger-fault`: the fault battery. Runs a real `ledgerd` under concurrent load (unary
//! `Append` and `AppendStream` clients), cuts it down at random moments, restarts it, and
//! checks after every cut that the store opens, `verify` passes, and every append acknowledged
//! before the cut is present with the entry hash its receipt named.
//!
//! - `powercut`: the cut is a power cut on a LazyFS mount (`../shared/tools/lazyfs`): kill -9
//!   of the process group, every write not fsynced dropped, unmount, mount.
//! - `crashloop`: the cut is kill -9 of the process on an ordinary file system.
//! - `failover`: several `ledgerd` share one PostgreSQL database; the cut is kill -9 or SIGSTOP
//!   of the writer, and another server must take over (`failover.rs`).
//!
//! Exit 0 when every check held, 1 when any failed (an acknowledged append lost, a store that
//! does not open or verify), 2 for an error of the harness itself (LazyFS unusable, `ledgerd`
//! missing). docs/RELIABILITY.md describes the battery and its results.

mod check;
mod daemon;
mod failover;
mod lazyfs;
mod load;
mod rng;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use ledger_store::store::Backend;
use serde::Serialize;

use crate::check::Acks;
use crate::daemon::Daemon;
use crate::rng::Rng;

#[derive(Parser, Debug)]
#[command(name = "ledger-fault", version, about = "Power cuts and crash loops against a live ledgerd under load")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum BackendArg {
    Fjall,
    Sled,
    /// A fresh database per ledger on the server `LEDGER_TEST_PG` names (crash loop only).
    Postgres,
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Backend {
        match b {
            BackendArg::Fjall => Backend::Fjall,
            BackendArg::Sled => Backend::Sled,
            BackendArg::Postgres => Backend::Postgres,
        }
    }
}

/// Settings both batteries share.
#[derive(clap::Args, Debug, Clone)]
struct Common {
    /// Storage backend; repeat for several (default: fjall and sled, and postgres for the
    /// crash loop when `LEDGER_TEST_PG` is set).
    #[arg(long = "backend", value_enum)]
    backends: Vec<BackendArg>,
    /// Concurrent unary `Append` clients.
    #[arg(long, default_value_t = 2)]
    unary: usize,
    /// Concurrent `AppendStream` clients.
    #[arg(long, default_value_t = 2)]
    stream: usize,
    /// Shortest load before a cut, in milliseconds.
    #[arg(long, default_value_t = 50)]
    min_ms: u64,
    /// Longest load before a cut, in milliseconds.
    #[arg(long, default_value_t = 1500)]
    max_ms: u64,
    /// Cuts on one ledger before the battery starts a fresh one (bounds the time `verify` takes).
    #[arg(long, default_value_t = 4)]
    cuts_per_ledger: u32,
    /// Random seed (default: drawn; printed so a run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
    /// The `ledgerd` binary (default: beside this one).
    #[arg(long)]
    ledgerd: Option<PathBuf>,
    /// Work directory (default: a new directory under the system's temporary directory).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Power cuts on a LazyFS mount (kill -9 of the process group, unsynced data dropped,
    /// remount). Needs /dev/fuse and LazyFS built by `../shared/tools/lazyfs/build.sh`.
    Powercut {
        /// Cuts per backend.
        #[arg(long, default_value_t = 20)]
        cuts: u32,
        /// The LazyFS driver script.
        #[arg(long, env = "LEDGER_FAULT_POWERCUT", default_value = "../shared/tools/lazyfs/powercut.sh")]
        powercut_sh: PathBuf,
        /// Exit 0 with a notice when LazyFS cannot be used here (no /dev/fuse, not built),
        /// instead of failing.
        #[arg(long)]
        skip_if_unusable: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Several `ledgerd` on one PostgreSQL database (on the server `LEDGER_TEST_PG` names):
    /// the writer cut down under load, alternately by kill -9 and SIGSTOP (resumed after the
    /// takeover), and another server must take over within 10 s, its tree consistent with the
    /// old one's.
    Failover {
        /// Cuts of the writer.
        #[arg(long, default_value_t = 50)]
        kills: u32,
        /// `ledgerd` processes sharing the database.
        #[arg(long, default_value_t = 2)]
        servers: usize,
        /// Full checks (`verify`, every acknowledged append) every this many cuts.
        #[arg(long, default_value_t = 10)]
        check_every: u32,
        #[command(flatten)]
        common: Common,
    },
    /// kill -9 of `ledgerd` at random moments under load, on the ordinary file system.
    Crashloop {
        /// Kills per backend.
        #[arg(long, default_value_t = 200)]
        runs: u32,
        #[command(flatten)]
        common: Common,
    },
}

/// The outcome of one cut.
#[derive(Serialize, Debug, Default, Clone)]
struct Round {
    backend: &'static str,
    cut: u32,
    /// Milliseconds of load before the cut.
    load_ms: u64,
    /// Appends acknowledged in this round.
    acked: u64,
    /// Appends acknowledged in this round or earlier ones (on this ledger), all checked.
    checked: u64,
    /// Acknowledged appends missing or different after the cut.
    lost: u64,
    /// Entries in the ledger after the cut.
    entries: u64,
    /// What went wrong, if anything: the store did not open or verify, or appends were lost.
    failure: Option<String>,
    /// Milliseconds to start `ledgerd` (recovery included), and for the check after the cut.
    start_ms: u64,
    check_ms: u64,
}

/// The totals of one backend.
#[derive(Serialize, Debug, Default)]
struct Summary {
    backend: &'static str,
    kind: &'static str,
    cuts: u32,
    acked: u64,
    lost: u64,
    failed_cuts: u32,
    max_entries: u64,
    seconds: f64,
    first_failure: Option<String>,
    /// Starts of a freshly created, never cut ledger that LazyFS served wrongly and that
    /// succeeded after a remount (docs/RELIABILITY.md: a LazyFS artefact, not a lost write).
    fresh_start_retries: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The way a battery brings the service down.
enum Cutter {
    /// kill -9 of the process.
    Kill,
    /// A power cut on this LazyFS mount.
    Power(lazyfs::Mount),
}

fn run(cli: Cli) -> Result<bool> {
    let (common, cuts, kind) = match &cli.command {
        Command::Powercut { common, cuts, .. } => (common.clone(), *cuts, "powercut"),
        Command::Crashloop { common, runs, .. } => (common.clone(), *runs, "crashloop"),
        Command::Failover { common, kills, .. } => (common.clone(), *kills, "failover"),
    };
    if common.min_ms > common.max_ms {
        bail!("--min-ms {} exceeds --max-ms {}", common.min_ms, common.max_ms);
    }
    if common.unary + common.stream == 0 {
        bail!("give at least one client (--unary or --stream)");
    }
    let ledgerd = match &common.ledgerd {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("locating this binary")?.with_file_name("ledgerd"),
    };
    if !ledgerd.is_file() {
        bail!(
            "no ledgerd at {} (build it: cargo build --release -p ledger-server, or pass --ledgerd)",
            ledgerd.display()
        );
    }
    let seed = match common.seed {
        Some(s) => s,
        None => {
            let mut b = [0u8; 8];
            getrandom::getrandom(&mut b).map_err(|e| anyhow::anyhow!("drawing a seed: {e}"))?;
            u64::from_le_bytes(b)
        }
    };
    if let Command::Failover { servers, check_every, .. } = &cli.command {
        if common.backends.iter().any(|b| *b != BackendArg::Postgres) {
            bail!("the failover battery runs on PostgreSQL only: several servers share one database");
        }
        if *servers < 2 {
            bail!("--servers {servers}: a failover needs at least 2 servers");
        }
        let work = work_dir(&common, seed)?;
        eprintln!("{kind}: seed {seed}, work directory {}", work.display());
        let opts = failover::Options {
            ledgerd: &ledgerd,
            work: &work,
            kills: cuts,
            servers: *servers,
            unary: common.unary,
            stream: common.stream,
            min_ms: common.min_ms,
            max_ms: common.max_ms,
            check_every: *check_every,
        };
        let (summary, ok) = failover::run(&opts, &mut Rng::new(seed))?;
        if common.json {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            println!(
                "failover: {} servers, {} cuts ({} kill -9, {} SIGSTOP), {} acknowledged appends, {} lost, {} seqs acknowledged twice, {} consistency proofs verified, takeover mean {} ms / max {} ms ({} over 10 s), {} writes of deposed writers fenced off, {} appends acknowledged by a resumed deposed writer, {} full checks, {} entries, {:.0} s",
                summary.servers,
                summary.cuts,
                summary.kill9,
                summary.sigstop,
                summary.acked,
                summary.lost,
                summary.duplicate_seqs,
                summary.consistency_proofs,
                summary.takeover_ms_mean,
                summary.takeover_ms_max,
                summary.takeovers_over_limit,
                summary.fenced_writes,
                summary.deposed_acks,
                summary.full_checks,
                summary.entries,
                summary.seconds
            );
            if let Some(f) = &summary.first_failure {
                println!("  first failure: {f}");
            }
        }
        if ok {
            let _ = std::fs::remove_dir_all(&work);
        } else {
            eprintln!("the work directory {} is kept for inspection (ledgerd logs)", work.display());
        }
        return Ok(ok);
    }
    let backends: Vec<Backend> = if common.backends.is_empty() {
        let mut b = vec![Backend::Fjall, Backend::Sled];
        if kind == "crashloop" && std::env::var_os(ledger_store::testkit::PG_ENV).is_some() {
            b.push(Backend::Postgres);
        }
        b
    } else {
        common.backends.iter().map(|b| Backend::from(*b)).collect()
    };
    if kind == "powercut" && backends.contains(&Backend::Postgres) {
        bail!("the power-cut battery runs on the embedded backends: PostgreSQL keeps its own WAL, on its own disk");
    }
    let work = work_dir(&common, seed)?;
    eprintln!("{kind}: seed {seed}, work directory {}", work.display());

    let mut all_ok = true;
    let mut summaries = Vec::new();
    for backend in backends {
        let cutter = match &cli.command {
            Command::Powercut { powercut_sh, skip_if_unusable, .. } => {
                let dir = work.join(format!("lazyfs-{}", backend.name()));
                match lazyfs::Mount::new(powercut_sh, &dir) {
                    Ok(m) => Cutter::Power(m),
                    Err(e) => {
                        // Nothing ran on this backend: no directory to keep. Earlier backends'
                        // results are already printed.
                        if summaries.is_empty() {
                            let _ = std::fs::remove_dir_all(&work);
                        }
                        if *skip_if_unusable {
                            println!("SKIP: the power-cut battery cannot run here: {e:#}");
                            return Ok(all_ok);
                        }
                        return Err(e);
                    }
                }
            }
            Command::Crashloop { .. } | Command::Failover { .. } => Cutter::Kill,
        };
        let mut rng = Rng::new(seed ^ (backend as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (summary, ok) = battery(&common, &ledgerd, &work, backend, &cutter, cuts, kind, &mut rng)?;
        if let Cutter::Power(m) = &cutter {
            m.unmount();
        }
        all_ok &= ok;
        if !common.json {
            println!(
                "{kind} {}: {} cuts, {} acknowledged appends, {} lost, {} failed cuts, largest ledger {} entries, {:.0} s",
                summary.backend,
                summary.cuts,
                summary.acked,
                summary.lost,
                summary.failed_cuts,
                summary.max_entries,
                summary.seconds
            );
            if let Some(f) = &summary.first_failure {
                println!("  first failure: {f}");
            }
            if summary.fresh_start_retries > 0 {
                println!("  fresh ledgers LazyFS served wrongly until remounted: {}", summary.fresh_start_retries);
            }
        }
        summaries.push(summary);
    }
    if common.json {
        println!("{}", serde_json::to_string_pretty(&summaries)?);
    }
    if all_ok {
        // Nothing to inspect: leave no gigabytes behind.
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("the work directory {} is kept for inspection", work.display());
    }
    Ok(all_ok)
}

/// The work directory: `--work`, or a new one under the system's temporary directory.
fn work_dir(common: &Common, seed: u64) -> Result<PathBuf> {
    let work = match &common.work {
        Some(w) => w.clone(),
        None => std::env::temp_dir().join(format!("ledger-fault-{}-{seed:016x}", std::process::id())),
    };
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    Ok(work)
}

/// Runs `cuts` cuts on one backend. Returns the summary and whether every check held.
#[allow(clippy::too_many_arguments)]
fn battery(
    common: &Common,
    ledgerd: &Path,
    work: &Path,
    backend: Backend,
    cutter: &Cutter,
    cuts: u32,
    kind: &'static str,
    rng: &mut Rng,
) -> Result<(Summary, bool)> {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut summary = Summary { backend: backend.name(), kind, ..Summary::default() };
    let mut acks = Acks::default();
    let mut db = PathBuf::new();
    let mut log_file = work.join(format!("ledgerd-{}.log", backend.name()));
    for cut in 1..=cuts {
        // A fresh ledger every `cuts_per_ledger` cuts keeps each check's `verify` short.
        if cut == 1 || (cut - 1) % common.cuts_per_ledger.max(1) == 0 {
            let base = match cutter {
                Cutter::Kill => work.to_path_buf(),
                Cutter::Power(m) => m.mnt().to_path_buf(),
            };
            db = base.join(format!("{}-{cut:05}", backend.name()));
            // Its creation was made durable before it returned: the first cut tests that too.
            db = check::create_ledger(&db, backend)?;
            if let Cutter::Power(m) = cutter {
                // A LazyFS whose cache saw files deleted and created since it was mounted can
                // serve a new file with a deleted one's attributes (inode reuse): `ledgerd`
                // then reads a fresh journal as empty although the backing file holds it.
                // Remounting (nothing dropped) starts LazyFS afresh. docs/RELIABILITY.md.
                m.remount()?;
            }
            acks = Acks::default();
            log_file = work.join(format!("ledgerd-{}-{cut:05}.log", backend.name()));
        }
        let tag = format!("{}-{}-{cut}", backend.name(), rng.next());
        let load_ms = rng.range(common.min_ms, common.max_ms);
        let t0 = Instant::now();
        let fresh = cut == 1 || (cut - 1) % common.cuts_per_ledger.max(1) == 0;
        let daemon = match (Daemon::start(ledgerd, &db, &log_file), cutter) {
            (Ok(d), _) => d,
            // A ledger just created and closed cleanly, never cut: a failed start is LazyFS
            // serving stale attributes (docs/RELIABILITY.md). Remount and try again, three
            // times at most; counted in the report. After a cut, a failed start is a failure.
            (Err(first), Cutter::Power(m)) if fresh => {
                let mut last = first;
                let mut started = None;
                for _ in 0..3 {
                    eprintln!(
                        "{kind} {}: a fresh ledger did not start on LazyFS ({last:#}); remounting",
                        backend.name()
                    );
                    summary.fresh_start_retries += 1;
                    std::thread::sleep(Duration::from_secs(1));
                    m.remount()?;
                    match Daemon::start(ledgerd, &db, &log_file) {
                        Ok(d) => {
                            started = Some(d);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                match started {
                    Some(d) => d,
                    None => return Err(last),
                }
            }
            (Err(e), _) => return Err(e),
        };
        let start_ms = t0.elapsed().as_millis() as u64;
        let before = acks.len();
        let round_acks = rt.block_on(load::run(
            daemon.url(),
            &tag,
            common.unary,
            common.stream,
            Duration::from_millis(load_ms),
            load::PATIENCE,
            || match cutter {
                Cutter::Kill => daemon.kill9(),
                Cutter::Power(m) => m.powercut(daemon.pid()),
            },
        ))?;
        daemon.reap();
        acks.extend(round_acks);
        let mut round = Round {
            backend: backend.name(),
            cut,
            load_ms,
            acked: (acks.len() - before) as u64,
            checked: acks.len() as u64,
            start_ms,
            ..Round::default()
        };
        let t1 = Instant::now();
        let checked = check::check(&db, &acks);
        round.check_ms = t1.elapsed().as_millis() as u64;
        match checked {
            Ok(c) => {
                round.entries = c.entries;
                round.lost = c.lost;
                if c.lost > 0 {
                    round.failure = Some(format!("{} acknowledged appends lost; first: {}", c.lost, c.first_lost));
                }
            }
            Err(e) => round.failure = Some(format!("{e:#}")),
        }
        summary.cuts += 1;
        summary.acked += round.acked;
        summary.lost += round.lost;
        summary.max_entries = summary.max_entries.max(round.entries);
        if let Some(f) = &round.failure {
            summary.failed_cuts += 1;
            summary.first_failure.get_or_insert_with(|| format!("cut {cut}: {f}"));
            eprintln!("{kind} {} cut {cut}: FAILED: {f}", backend.name());
        } else if cut % 10 == 0 || cut == cuts {
            eprintln!(
                "{kind} {} cut {cut}/{cuts}: ok ({} acknowledged so far; this cut: {} entries, start {} ms, load {} ms, check {} ms; {:.0} s in all)",
                backend.name(),
                summary.acked,
                round.entries,
                round.start_ms,
                round.load_ms,
                round.check_ms,
                started.elapsed().as_secs_f64()
            );
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    let ok = summary.failed_cuts == 0 && summary.lost == 0;
    Ok((summary, ok))
}
