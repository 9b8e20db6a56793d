//! Creating a ledger for the battery, and the check after a cut: the store opens, `verify`
//! passes, and every acknowledged append is present with the entry hash its receipt named.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use ledger_core::record::{KeyAction, Kind};
use ledger_core::types::Seq;
use ledger_store::clock::SystemClock;
use ledger_store::ledger::Ledger;
use ledger_store::store::{Backend, DiskStore};
use ledger_store::testkit::{key, key_rec, signed};

/// An acknowledged append: the seq and entry hash its receipt named.
#[derive(Clone, Copy, Debug)]
pub struct Ack {
    /// Sequence number.
    pub seq: u64,
    /// Entry hash.
    pub hash: [u8; 32],
}

/// Every append acknowledged on one ledger.
pub type Acks = Vec<Ack>;

/// Creates a ledger at `db` on `backend` (PostgreSQL: in a fresh database on the server
/// `LEDGER_TEST_PG` names, `db` then holding only files): the test admin key's genesis and the
/// test `ci` key (fixed seeds, not secret) allowed `evidence`. Returns where the ledger is: `db`,
/// or the database's URL.
///
/// # Errors
/// If the store cannot be created, or (PostgreSQL) `LEDGER_TEST_PG` is not set.
pub fn create_ledger(db: &Path, backend: Backend) -> Result<PathBuf> {
    std::fs::create_dir_all(db).with_context(|| format!("creating {}", db.display()))?;
    let admin = key("admin");
    let genesis = signed(&key_rec(KeyAction::Genesis, "admin", &admin, vec![Kind::Key]), &admin);
    let (location, store) = if backend == Backend::Postgres {
        let url = ledger_store::testkit::pg_database()
            .with_context(|| format!("the PostgreSQL battery needs {}", ledger_store::testkit::PG_ENV))?;
        let store = DiskStore::create_url(&url).with_context(|| format!("creating a store in {url}"))?;
        (PathBuf::from(url), store)
    } else {
        let store =
            DiskStore::create_with(db, backend).with_context(|| format!("creating a store at {}", db.display()))?;
        (db.to_path_buf(), store)
    };
    let ledger = Ledger::create(store, &genesis, Arc::new(SystemClock))?;
    ledger.append(&[signed(&key_rec(KeyAction::Register, "ci", &key("ci"), vec![Kind::Evidence]), &admin)])?;
    Ok(location)
}

/// What a check found.
pub struct Checked {
    /// Entries in the ledger.
    pub entries: u64,
    /// Acknowledged appends missing, or with another entry at their seq.
    pub lost: u64,
    /// The first of them.
    pub first_lost: String,
}

/// Opens the ledger at `db` (a directory or a database's URL), verifies it in full, and looks
/// up every acknowledged append.
///
/// # Errors
/// If the store does not open or does not verify.
pub fn check(db: &Path, acks: &[Ack]) -> Result<Checked> {
    let store = DiskStore::open_location(db).context("the store did not open after the cut")?;
    let ledger = Ledger::open(store, Arc::new(SystemClock)).context("the ledger did not open after the cut")?;
    ledger.verify(|_| {}).context("verify failed after the cut")?;
    let mut out = Checked { entries: ledger.len(), lost: 0, first_lost: String::new() };
    for a in acks {
        let found = ledger.get(Seq(a.seq))?;
        let lost = match &found {
            None => Some("missing".to_string()),
            Some(v) if v.hash.0 != a.hash => Some(format!("another entry ({}) in its place", hex(&v.hash.0))),
            Some(_) => None,
        };
        if let Some(why) = lost {
            if out.lost == 0 {
                out.first_lost = format!("#{} {} ({why})", a.seq, hex(&a.hash));
            }
            out.lost += 1;
        }
    }
    Ok(out)
}

/// The first six bytes of `b` in hex, for messages.
pub fn hex(b: &[u8]) -> String {
    b.iter().take(6).map(|x| format!("{x:02x}")).collect()
}
