//! `ledger`: the command-line tool of Provenance Ledger.
//!
//! Exit codes: 0 success, 1 a finding (tampering detected), 2 an error (bad input, missing
//! ledger, I/O). A closed stdout (`ledger log | head`) exits 0.
//!
//! Modules, each using only those above it: `cli` (the command line, clap) · `backend` (a local
//! store or a remote `ledgerd`, with the same results) · `ctx` (where a command runs, key
//! files, output mode) · `output` (printing, shared output types) · `keyfile` (key files) ·
//! `commands` (one module per command group) · `ingest` (the ingest front ends) · `bench`
//! (the load generator, apart from the user-facing commands).

/// mimalloc instead of the system allocator: `verify`, `export` and ingest decode and check
/// entries on two threads, and glibc malloc was a large share of their profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod backend;
mod bench;
mod bench_audit;
mod bench_history;
mod bench_query;
mod cli;
mod commands;
mod ctx;
mod ingest;
mod keyfile;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    // A command is one short process: leave the store to the process's exit rather than wait
    // up to 250 ms for fjall's threads (every write is already durable when it returns).
    ledger_store::store::close_at_process_exit();
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if output::is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            let tampered = e
                .chain()
                .any(|c| matches!(c.downcast_ref::<ledger_store::Error>(), Some(ledger_store::Error::Tampered { .. })));
            eprintln!("error: {e:#}");
            if tampered {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}
