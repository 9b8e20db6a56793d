//! `ledgerd` as a child process in its own process group, so that a cut can kill it (and
//! anything it started) at once.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// How long `ledgerd` may take to open its store and listen (recovery after a cut included).
const START_PATIENCE: Duration = Duration::from_secs(120);

/// A running `ledgerd`.
pub struct Daemon {
    child: Mutex<Child>,
    addr: String,
}

impl Daemon {
    /// Starts `ledgerd` on `db` (a directory, or a PostgreSQL URL: `--store`, with the log's
    /// directory as `--db`), listening on a free port, its stderr appended to `log`, and waits
    /// until it listens.
    ///
    /// # Errors
    /// If it cannot be started, or exits or stays silent for two minutes instead of listening.
    pub fn start(ledgerd: &Path, db: &Path, log: &Path) -> Result<Daemon> {
        let stderr =
            File::options().create(true).append(true).open(log).with_context(|| format!("{}", log.display()))?;
        let mut command = Command::new(ledgerd);
        match db.to_str().filter(|d| ledger_store::store::is_postgres(d)) {
            Some(url) => command.arg("--store").arg(url).arg("--db").arg(log.parent().unwrap_or(Path::new("."))),
            None => command.arg("--db").arg(db),
        };
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--log-filter", "warn"])
            .env_remove("LEDGER_READ_TOKEN_FILE")
            .env_remove("LEDGER_TLS_CERT")
            .env_remove("LEDGER_TLS_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", ledgerd.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout pipe"))?;
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        // Reads stdout to its end, so that the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        match rx.recv_timeout(START_PATIENCE) {
            Ok(addr) => Ok(Daemon { child: Mutex::new(child), addr }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                let tail = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(5).collect();
                bail!(
                    "ledgerd on {} did not start (exit status {status:?}); last log lines: {}",
                    db.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )
            }
        }
    }

    /// `http://address`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.lock().map(|c| c.id()).unwrap_or_default()
    }

    /// Sends `signal` (`STOP`, `CONT`) to the process: a stopped server keeps its connections
    /// (to its clients and its database) open but answers nothing, as behind a cut network.
    ///
    /// # Errors
    /// If `kill` cannot be run or fails.
    pub fn signal(&self, signal: &str) -> Result<()> {
        let pid = self.pid().to_string();
        let status = Command::new("kill").arg(format!("-{signal}")).arg(&pid).status().context("running kill")?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed: {status}");
        Ok(())
    }

    /// SIGKILL, then wait until the process is gone.
    ///
    /// # Errors
    /// If the signal cannot be sent.
    pub fn kill9(&self) -> Result<()> {
        let mut c = self.child.lock().map_err(|_| anyhow!("daemon lock poisoned"))?;
        c.kill().context("kill -9 ledgerd")?;
        c.wait().context("waiting for ledgerd")?;
        Ok(())
    }

    /// Reaps the process once it is gone (killed by a power cut); kills it first if it still
    /// runs.
    pub fn reap(self) {
        if let Ok(mut c) = self.child.into_inner() {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}
