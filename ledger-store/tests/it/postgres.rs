//! What is particular to the PostgreSQL store: one handle at a time, a database that holds no
//! ledger refused, versioned migrations, and a row edited directly in the database (what a
//! superuser can do to a plain audit table) caught by `verify`. The layout's tests (the append
//! path, the tamper battery, the pinned checkpoint) run on PostgreSQL through
//! `support::backends()`. Needs `LEDGER_TEST_PG` (see `testkit::PG_ENV`); skipped without it
//! unless `CI` is set.

use std::sync::Arc;

use ledger_store::clock::SystemClock;
use ledger_store::ledger::Ledger;
use ledger_store::store::{Backend, DiskStore};
use ledger_store::Error;

use crate::support::{evidence, key, key_rec, pg_database, signed, Fixture};
use ledger_core::record::{KeyAction, Kind};

/// Runs `sql` on the database at `url`.
fn sql(url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute(sql).await.unwrap();
    });
}

#[test]
fn a_database_is_one_ledger_held_by_one_handle_at_a_time() {
    let Some(url) = pg_database() else { return };
    match DiskStore::open_url(&url) {
        Err(Error::NotALedger { reason, .. }) => assert!(reason.contains("ledger init --store"), "{reason}"),
        other => panic!("an empty database is no ledger: {:?}", other.map(|_| ())),
    }
    let admin = key("admin");
    let genesis = signed(&key_rec(KeyAction::Genesis, "admin", &admin, vec![Kind::Key]), &admin);
    {
        let store = DiskStore::create_url(&url).unwrap();
        assert_eq!(store.backend(), Backend::Postgres);
        let l = Ledger::create(store, &genesis, Arc::new(SystemClock)).unwrap();
        let err = DiskStore::open_url(&url).err().expect("a second handle must be refused");
        assert!(matches!(err, Error::Locked { .. }), "{err}");
        assert!(!err.to_string().contains("secret"), "{err}");
        drop(l);
    }
    // The lock went with the connection.
    let l = Ledger::open(crate::support::open_store(std::path::Path::new(&url)), Arc::new(SystemClock)).unwrap();
    assert_eq!(l.len(), 1);
    drop(l);
    assert!(matches!(DiskStore::create_url(&url), Err(Error::AlreadyExists { .. })));
    // A schema newer than this binary's is refused, not guessed at.
    sql(&url, "INSERT INTO ledger_schema (version) VALUES (99)");
    let err = DiskStore::open_url(&url).err().expect("a newer schema");
    assert!(err.to_string().contains("newer than this binary"), "{err}");
}

#[test]
fn a_server_that_cannot_be_reached_is_a_clear_error() {
    let err = DiskStore::open_url("postgresql://ledger:hunter2@127.0.0.1:1/nowhere").err().expect("no server");
    let text = err.to_string();
    assert!(text.contains("cannot connect") && text.contains("127.0.0.1"), "{text}");
    assert!(!text.contains("hunter2"), "the password is not shown: {text}");
}

#[test]
fn a_row_edited_in_the_database_is_caught_by_verify() {
    if pg_database().is_none() {
        return;
    }
    let fx = Fixture::with_backend(Backend::Postgres);
    let url = fx.db().display().to_string();
    let l = Ledger::open(crate::support::open_store(&fx.db()), Arc::new(SystemClock)).unwrap();
    let records: Vec<_> = (0..200).map(|i| signed(&evidence(&format!("pg-{i}")), &key("ci"))).collect();
    for chunk in records.chunks(50) {
        l.append(chunk).unwrap();
    }
    assert_eq!(l.verify(|_| {}).unwrap().entries, 202);
    drop(l);
    // One byte of entry 120's stored bytes, flipped by SQL: the key is `e` ‖ seq (u64 BE).
    sql(
        &url,
        "UPDATE ledger_kv SET v = set_byte(v, 60, get_byte(v, 60) # 1) \
         WHERE k = '\\x65'::bytea || int8send(120)",
    );
    let l = Ledger::open(crate::support::open_store(&fx.db()), Arc::new(SystemClock)).unwrap();
    match l.verify(|_| {}) {
        Err(Error::Tampered { seq, .. }) => assert_eq!(seq.0, 120),
        other => panic!("the edit is not caught: {:?}", other.map(|s| s.entries)),
    }
}
