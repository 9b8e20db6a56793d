//! Two `ledgerd` on one PostgreSQL database, over gRPC: the writer's health service name says
//! it appends and the standby's says it does not, the standby refuses appends with UNAVAILABLE
//! naming the writer and answers `Head` at the writer's head, and when the writer is killed the
//! standby's health turns to serving. Needs `LEDGER_TEST_PG` (skipped without it unless `CI`).

use std::time::{Duration, Instant};

use ledger_proto::v1 as pb;
use ledger_server::lease::WRITER_HEALTH;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::support::*;

async fn writer_health(d: &Daemon) -> ServingStatus {
    let mut health = HealthClient::new(d.channel().await);
    health.check(HealthCheckRequest { service: WRITER_HEALTH.into() }).await.unwrap().into_inner().status()
}

#[test]
fn the_standby_says_so_refuses_appends_naming_the_writer_and_takes_over() {
    // The fixture makes its database with a runtime of its own: outside the test's.
    if ledger_store::testkit::pg_database().is_none() {
        return;
    }
    let fx = Fixture::with_backend(ledger_store::store::Backend::Postgres);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(two_servers(&fx));
}

async fn two_servers(fx: &Fixture) {
    let url = fx.db().display().to_string();
    let writer = Daemon::start_with(fx, &["--store", &url]);
    let standby = Daemon::start_with(fx, &["--store", &url]);
    assert_eq!(writer_health(&writer).await, ServingStatus::Serving);
    assert_eq!(writer_health(&standby).await, ServingStatus::NotServing);

    let mut w = pb::ledger_client::LedgerClient::new(writer.channel().await);
    let mut s = pb::ledger_client::LedgerClient::new(standby.channel().await);
    w.append(ci_req("standby-1")).await.unwrap();
    let refused = s.append(ci_req("standby-2")).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    let addr = format!("http://{}", writer.addr);
    assert!(refused.message().contains("standby") && refused.message().contains(&addr), "{}", refused.message());
    let (wh, sh) = (
        w.head(pb::HeadRequest {}).await.unwrap().into_inner(),
        s.head(pb::HeadRequest {}).await.unwrap().into_inner(),
    );
    assert_eq!((sh.entries, &sh.head), (wh.entries, &wh.head), "the standby reads at the writer's head");
    assert!(!wh.standby && sh.standby);
    assert!(sh.writer.contains(&addr), "{}", sh.writer);

    writer.kill9();
    let killed = Instant::now();
    while writer_health(&standby).await != ServingStatus::Serving {
        assert!(killed.elapsed() < Duration::from_secs(10), "no takeover within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = s.append(ci_req("standby-3")).await.unwrap().into_inner().receipt.unwrap();
    assert_eq!(r.seq, wh.entries, "the new writer appends after the old one's last entry");
}
