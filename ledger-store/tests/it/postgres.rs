//! What is particular to the PostgreSQL store: many handles read, one writes (the writer lease,
//! fencing, takeover), a database that holds no ledger refused, versioned migrations, and a row edited directly in the database (what a
//! superuser can do to a plain audit table) caught by `verify`. The layout's tests (the append
//! path, the tamper battery, the pinned checkpoint) run on PostgreSQL through
//! `support::backends()`. Needs `LEDGER_TEST_PG` (see `testkit::PG_ENV`); skipped without it
//! unless `CI` is set.

use std::sync::Arc;

use ledger_store::clock::SystemClock;
use ledger_store::ledger::Ledger;
use ledger_store::store::{Backend, Claim, DiskStore, Role, Store};
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
fn a_database_is_one_ledger_that_many_handles_read_and_one_writes() {
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
        let a = Ledger::create(store, &genesis, Arc::new(SystemClock)).unwrap();
        // A second handle reads at once; its first write waits for the lease, then is refused
        // naming the holder.
        let b = Ledger::open(DiskStore::open_url(&url).unwrap(), Arc::new(SystemClock)).unwrap();
        assert_eq!(b.head(), a.head());
        let ci = key_rec(KeyAction::Register, "ci", &key("ci"), vec![Kind::Evidence]);
        match b.append(&[signed(&ci, &admin)]) {
            Err(Error::NotWriter { writer }) => assert!(writer.contains("pid"), "{writer}"),
            other => panic!("a second writer must be refused: {other:?}"),
        }
        assert!(!b.is_poisoned(), "a refusal wrote nothing: no reason to stop");
        drop(b);
        drop(a);
    }
    // The lease went with the handle: another writes at once.
    let l = Ledger::open(crate::support::open_store(std::path::Path::new(&url)), Arc::new(SystemClock)).unwrap();
    assert_eq!(l.len(), 1);
    drop(l);
    assert!(matches!(DiskStore::create_url(&url), Err(Error::AlreadyExists { .. })));
    // A schema newer than this binary's is refused, not guessed at.
    sql(&url, "INSERT INTO ledger_schema (version) VALUES (99)");
    let err = DiskStore::open_url(&url).err().expect("a newer schema");
    assert!(err.to_string().contains("newer than this binary"), "{err}");
}

/// A fixture ledger in a fresh PostgreSQL database and its URL, when `LEDGER_TEST_PG` is set.
fn pg_fixture() -> Option<(Fixture, String)> {
    pg_database()?;
    let fx = Fixture::with_backend(Backend::Postgres);
    let url = fx.db().display().to_string();
    Some((fx, url))
}

/// A handle that only claims the lease when asked (a `ledgerd`).
fn standby(url: &str, name: &str) -> Ledger<DiskStore> {
    Ledger::open(DiskStore::open_url_as(url, Claim::Explicit, name).unwrap(), Arc::new(SystemClock)).unwrap()
}

fn append_evidence(
    l: &Ledger<DiskStore>,
    tag: &str,
    n: usize,
) -> ledger_store::Result<Vec<ledger_store::ledger::Receipt>> {
    let records: Vec<_> = (0..n).map(|i| signed(&evidence(&format!("{tag}-{i}")), &key("ci"))).collect();
    l.append(&records)
}

#[test]
fn a_standby_follows_the_writer_takes_over_and_fences_the_old_writer_off() {
    let Some((_fx, url)) = pg_fixture() else { return };
    let a = standby(&url, "server-a");
    let b = standby(&url, "server-b");
    assert!(matches!(a.store().role(), Role::Standby { .. }));
    assert!(a.take_over(|s| s.claim_writer()).unwrap(), "a free lease is claimed");
    assert_eq!(a.store().role(), Role::Writer);
    assert!(!b.take_over(|s| s.claim_writer()).unwrap(), "a live lease is not");
    // The standby refuses appends, naming the writer, and writes nothing.
    match append_evidence(&b, "b", 1) {
        Err(Error::NotWriter { writer }) => assert_eq!(writer, "server-a"),
        other => panic!("a standby must refuse: {other:?}"),
    }
    append_evidence(&a, "a1", 30).unwrap();
    assert_eq!(b.refresh().unwrap(), 30);
    assert_eq!(b.head(), a.head());
    assert_eq!(b.tree_head(), a.tree_head());
    let before = a.tree_head();

    // The writer stops renewing (its lease expires): the standby takes over, catching up first.
    append_evidence(&a, "a2", 5).unwrap();
    sql(&url, "UPDATE ledger_lease SET expires_at = '-infinity'");
    assert!(b.take_over(|s| s.claim_writer()).unwrap());
    assert_eq!(b.head(), a.head(), "the new writer continues from the old one's last entry");
    let taken = append_evidence(&b, "b1", 7).unwrap();
    assert_eq!(taken[0].seq.0, a.len());
    // The old writer, back, is fenced off by the token: nothing written, not stopped.
    match append_evidence(&a, "a3", 3) {
        Err(Error::NotWriter { writer }) => assert_eq!(writer, "server-b"),
        other => panic!("a deposed writer must be fenced off: {other:?}"),
    }
    assert!(!a.is_poisoned());
    assert!(matches!(a.store().role(), Role::Standby { .. }));
    assert_eq!(a.refresh().unwrap(), 7);
    assert_eq!(a.head(), b.head());
    // The tree continued: a consistency proof from before the takeover to after it.
    let after = b.tree_head();
    let (_, _, proof) = b.consistency_proof(before.0, after.0).unwrap();
    ledger_core::merkle::verify_consistency(before.0, after.0, &proof, &before.1, &after.1).unwrap();

    // A writer whose view is stale cannot fork the chain: holding the lease is not enough,
    // the write must extend the stored head.
    b.store().release_writer().unwrap();
    assert!(b.take_over(|s| s.claim_writer()).unwrap());
    append_evidence(&b, "b2", 4).unwrap();
    b.store().release_writer().unwrap();
    assert!(a.store().claim_writer().unwrap(), "claimed without catching up");
    let err = append_evidence(&a, "a4", 2).expect_err("a stale view must not be written");
    assert!(err.to_string().contains("head moved"), "{err}");
    a.store().release_writer().unwrap();
    assert!(a.take_over(|s| s.claim_writer()).unwrap(), "taking over catches up and appends again");
    append_evidence(&a, "a5", 2).unwrap();
    assert_eq!(b.refresh().unwrap(), 2);
    let summary = a.verify(|_| {}).unwrap();
    assert_eq!(summary.entries, 2 + 30 + 5 + 7 + 4 + 2);
    assert_eq!(summary.head, b.head().1);
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
    let Some((fx, url)) = pg_fixture() else { return };
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

/// The TLS URL of the database `url` names (`LEDGER_TEST_PG_TLS`: the same server over TLS,
/// `.ci/postgres.sh`), or `None` when that server is not configured (required when `CI` is set).
fn over_tls(url: &str) -> Option<String> {
    let Ok(tls) = std::env::var("LEDGER_TEST_PG_TLS") else {
        assert!(std::env::var_os("CI").is_none(), "LEDGER_TEST_PG_TLS is not set (CI is set): .ci/postgres.sh sets it");
        eprintln!("notice: LEDGER_TEST_PG_TLS is not set; the TLS case is skipped");
        return None;
    };
    let name = url.split('?').next()?.rsplit('/').next()?.to_string();
    Some(tls.replacen("/postgres?", &format!("/{name}?"), 1))
}

#[test]
fn sslmode_require_encrypts_and_verifies_the_server_against_the_given_ca() {
    let Some(url) = pg_database() else { return };
    let Some(tls) = over_tls(&url) else { return };
    let admin = key("admin");
    let genesis = signed(&key_rec(KeyAction::Genesis, "admin", &admin, vec![Kind::Key]), &admin);
    let l = Ledger::create(DiskStore::create_url(&tls).unwrap(), &genesis, Arc::new(SystemClock)).unwrap();
    l.append(&[signed(&key_rec(KeyAction::Register, "ci", &key("ci"), vec![Kind::Evidence]), &admin)]).unwrap();
    assert_eq!(l.verify(|_| {}).unwrap().entries, 2);
    // The server says the store's session is encrypted.
    let name = url.split('?').next().unwrap().rsplit('/').next().unwrap().to_string();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let encrypted: i64 = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl AND a.datname = $1",
                &[&name],
            )
            .await
            .unwrap()
            .get(0)
    });
    assert!(encrypted >= 1, "no encrypted session on {name}");
    drop(l);
    // A server whose certificate no trusted CA signed is refused, with the way out named.
    let untrusted = tls.split("&sslrootcert=").next().unwrap().to_string();
    let err = DiskStore::open_url(&untrusted).err().expect("an untrusted certificate must be refused").to_string();
    assert!(err.contains("sslrootcert"), "{err}");
}
