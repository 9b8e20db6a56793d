//! The secret scan against a corpus of real-looking credentials, one or more per rule class of
//! gitleaks' default configuration (cloud keys, code-host and service tokens, private keys,
//! JSON web tokens, connection strings, secrets assigned to keys). 10,000 records carrying
//! them reach a live `ledgerd`, signed by a registered key with the client-side scan bypassed:
//! every one is refused with the field named, and none of the credentials is then found in the
//! store's files, the server's log, or an export bundle of the whole ledger. A marker string
//! appended in an ordinary record is found in all three, so the search itself works.
//!
//! The credentials are generated at run time from a fixed seed: none sits in the source.

use std::os::unix::fs::PermissionsExt;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::Signer;
use futures::StreamExt;
use ledger_core::record::{Body, CheckKind, CheckResult, Evidence, Record};
use ledger_core::types::{CommitId, RepoName};
use ledger_proto::v1 as pb;
use tonic::Code;

use crate::support::*;

const RECORDS: usize = 10_000;

/// One credential of rule class `class` (0..CLASSES), and the class's name.
fn credential(class: usize, r: &mut Rng) -> (&'static str, String) {
    // Each prefix is split so that no credential-shaped literal sits in the source.
    let p = |a: &str, b: &str| format!("{a}{b}");
    match class {
        0 => ("AWS access key id", p("AK", "IA") + &r.upper(16)),
        1 => ("AWS secret access key", format!("aws_secret_access_key = {}", r.b64(40))),
        2 => ("Google API key", p("AI", "za") + &r.alnum(35)),
        3 => ("Google OAuth client secret", p("GOC", "SPX-") + &r.alnum(28)),
        4 => (
            "Azure storage connection string",
            format!(
                "DefaultEndpointsProtocol=https;AccountName=acct{};AccountKey={}==;EndpointSuffix=core.windows.net",
                r.digits(4),
                r.b64(86)
            ),
        ),
        5 => ("Azure AD client secret", format!("{}{}{}{}", r.alnum(3), r.digits(1), p("Q", "~"), r.alnum(34))),
        6 => ("DigitalOcean token", p("dop_", "v1_") + &r.hex(64)),
        7 => ("HashiCorp Vault token", p("hv", "s.") + &r.alnum(90)),
        8 => ("Databricks token", p("da", "pi") + &r.hex(32)),
        9 => {
            let kind = ["ghp", "gho", "ghu", "ghs", "ghr"][(r.next() % 5) as usize];
            ("GitHub token", format!("{kind}_{}", r.alnum(36)))
        }
        10 => ("GitHub fine-grained token", format!("{}{}_{}", p("github", "_pat_"), r.alnum(22), r.alnum(59))),
        11 => ("GitLab token", p("glp", "at-") + &r.alnum(20)),
        12 => ("npm token", p("np", "m_") + &r.alnum(36)),
        13 => ("PyPI token", p("pypi-AgEIcHlwaS5", "vcmc") + &r.b64url(70)),
        14 => ("Docker Hub token", p("dckr_", "pat_") + &r.b64url(27)),
        15 => {
            ("Hugging Face token", p("h", "f_") + &r.pick("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 34))
        }
        16 => ("Slack token", format!("{}{}-{}-{}", p("xo", "xb-"), r.digits(12), r.digits(12), r.alnum(24))),
        17 => (
            "Slack webhook",
            format!("https://{}/services/T{}/B{}/{}", p("hooks.sla", "ck.com"), r.upper(8), r.upper(8), r.alnum(24)),
        ),
        18 => ("Telegram bot token", format!("{}:{}{}", r.digits(9), p("A", "A"), r.b64url(33))),
        19 => ("SendGrid key", format!("{}{}.{}", p("S", "G."), r.b64url(22), r.b64url(43))),
        20 => ("Twilio key", p("S", "K") + &r.hex(32)),
        21 => ("Mailgun key", p("ke", "y-") + &r.hex(32)),
        22 => ("Stripe key", p("sk_", "live_") + &r.alnum(24)),
        23 => ("Shopify token", p("shp", "at_") + &r.hex(32)),
        24 => ("OpenAI API key", p("sk-", "proj-") + &r.b64url(48)),
        25 => ("Anthropic API key", p("sk-ant-", "api03-") + &r.b64url(80)),
        26 => {
            let kind = ["RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED ", "DSA "][(r.next() % 6) as usize];
            ("private key", format!("-----BEGIN {kind}{}-----\\n{}", p("PRIVATE ", "KEY"), r.b64(64)))
        }
        27 => ("PGP private key", format!("-----BEGIN PGP {} BLOCK-----\\n{}", p("PRIVATE ", "KEY"), r.b64(64))),
        28 => (
            "JSON web token",
            format!("{}{}.{}{}.{}", p("ey", "J"), r.b64url(20), p("ey", "J"), r.b64url(40), r.b64url(43)),
        ),
        29 => {
            let scheme =
                ["postgres", "postgresql", "mysql", "mongodb+srv", "redis", "amqp", "mssql"][(r.next() % 7) as usize];
            let user = if scheme == "redis" { String::new() } else { format!("svc{}", r.digits(3)) };
            ("connection string", format!("{scheme}://{user}:{}@db{}.internal:5432/app", r.alnum(16), r.digits(2)))
        }
        30 => (
            "ADO.NET connection string",
            format!(
                "Server=tcp:sql{}.example.net;Database=app;User ID=app;{}={}!;",
                r.digits(3),
                p("Pass", "word"),
                r.alnum(14)
            ),
        ),
        31 => {
            let key = ["api_key", "apikey", "client_secret", "secret_key", "access_token", "password", "auth_token"]
                [(r.next() % 7) as usize];
            ("secret assigned to a key", format!("{key}={}{}", r.alnum(30), r.digits(2)))
        }
        _ => unreachable!(),
    }
}

const CLASSES: usize = 32;

/// A free-text field of an `evidence` record to carry the credential, and its name in errors.
const FIELDS: [&str; 4] = ["check", "predicate_type", "url", "builder"];

fn evidence_with(field: usize, text: String, i: usize) -> Record {
    let mut e = Evidence {
        repo: RepoName::new("o/r").unwrap(),
        commit: CommitId::new(format!("{i:040x}")).unwrap(),
        check: "unit-tests".into(),
        check_kind: CheckKind::Unit,
        result: CheckResult::Pass,
        artifact: None,
        predicate_type: None,
        url: None,
        signature: None,
        source: None,
        builder: None,
    };
    match field {
        0 => e.check = text,
        1 => e.predicate_type = Some(text),
        2 => e.url = Some(text),
        _ => e.builder = Some(text),
    }
    let mut r = evidence("template");
    r.body = Body::Evidence(e);
    r
}

/// Signs the record's canonical bytes directly: what a client that skips the scan would send.
fn signed_raw(record: &Record) -> pb::AppendRequest {
    let bytes = ledger_core::encoding::to_canonical(record, "record").unwrap();
    let ci = key("ci");
    let mut msg = ledger_core::domain::RECORD_SIGNATURE_PREFIX.to_vec();
    msg.extend_from_slice(&bytes);
    pb::AppendRequest {
        record: Some(pb::SignedRecord {
            record: bytes,
            signer: ledger_core::entry::key_id(&ci.verifying_key()).0.to_vec(),
            signature: ci.sign(&msg).to_bytes().to_vec(),
        }),
        prove: false,
    }
}

/// Every file under `dir`, read whole.
fn files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_credentials_are_refused_by_field_and_found_nowhere() {
    let fx = Fixture::new();
    let cp = fx.root().join("checkpoint.key");
    std::fs::write(&cp, key("admin").to_pkcs8_pem(Default::default()).unwrap().as_bytes()).unwrap();
    std::fs::set_permissions(&cp, std::fs::Permissions::from_mode(0o600)).unwrap();
    let d = Daemon::start_with(&fx, &["--checkpoint-key", cp.to_str().unwrap(), "--origin", "ledger.example/secrets"]);
    let mut c = d.client().await;
    let before = entries(&mut c).await;

    // A marker in an ordinary record: the searches below must find it.
    let marker = format!("marker-{}", Rng(7).alnum(24));
    c.append(req(&signed(&evidence_with(0, marker.clone(), 1), &key("ci")))).await.unwrap();

    let mut rng = Rng(0x5ec2_e75c_0ffe_e000);
    let mut secrets = Vec::with_capacity(RECORDS);
    let mut reqs = Vec::with_capacity(RECORDS);
    let mut expect = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let class = i % CLASSES;
        let (name, cred) = credential(class, &mut rng);
        let field = (i / CLASSES) % FIELDS.len();
        let text = format!("the tool printed {cred} before it failed");
        // The scan in the library refuses to sign it: the client-side check holds too.
        let record = evidence_with(field, text, 1000 + i);
        assert!(
            ledger_core::entry::SignedRecord::sign(&record, &key("ci")).is_err(),
            "{name} ({cred}) passed the client-side scan"
        );
        reqs.push(signed_raw(&record));
        expect.push((name, format!("body.{}", FIELDS[field])));
        secrets.push(cred);
    }
    let resp: Vec<pb::AppendStreamResponse> =
        c.append_stream(futures::stream::iter(reqs)).await.unwrap().into_inner().map(Result::unwrap).collect().await;
    assert_eq!(resp.len(), RECORDS);
    for (i, r) in resp.iter().enumerate() {
        let (name, field) = &expect[i];
        match &r.result {
            Some(pb::append_stream_response::Result::Error(e)) => {
                assert_eq!(e.code, Code::InvalidArgument as i32, "{name}: {e:?}");
                assert!(e.message.contains(field.as_str()), "{name}: the refusal does not name {field}: {}", e.message);
                assert!(!e.message.contains(&secrets[i]), "{name}: the refusal repeats the secret");
            }
            other => panic!("{name} ({}) was not refused: {other:?}", secrets[i]),
        }
    }
    assert_eq!(entries(&mut c).await, before + 1, "only the marker record was written");

    // An export bundle of the whole ledger, with each entry's CBOR decoded from base64.
    let mut bundle = Vec::new();
    let mut chunks = c
        .export_bundle(pb::ExportBundleRequest { selection: Some(pb::export_bundle_request::Selection::All(true)) })
        .await
        .unwrap()
        .into_inner();
    while let Some(chunk) = chunks.next().await {
        bundle.extend(chunk.unwrap().data);
    }
    let mut decoded = bundle.clone();
    for line in bundle.split(|b| *b == b'\n') {
        if let Some((_, bytes, _)) = ledger_core::bundle::read_entry_line(line) {
            decoded.extend(bytes);
        }
    }
    drop(c);
    d.term();
    let log = std::fs::read(fx.root().join("ledgerd.log")).unwrap_or_default();
    let store = files(&fx.db());

    // One multi-pattern scan of each haystack: the marker (pattern 0) and every credential.
    let mut patterns = vec![marker.clone()];
    patterns.extend(secrets.iter().cloned());
    let ac = aho_corasick::AhoCorasick::new(&patterns).unwrap();
    let hits = |hay: &[u8]| -> std::collections::BTreeSet<usize> {
        ac.find_overlapping_iter(hay).map(|m| m.pattern().as_usize()).collect()
    };
    let in_bundle = hits(&decoded);
    let in_log = hits(&log);
    let mut in_store = std::collections::BTreeSet::new();
    for (_, bytes) in &store {
        in_store.extend(hits(bytes));
    }
    assert!(in_bundle.contains(&0), "the search finds the marker in the bundle");
    assert!(in_store.contains(&0), "the search finds the marker in the store's files");
    let log_text = String::from_utf8_lossy(&log);
    assert!(log_text.contains("appears to contain a secret"), "the log records the refusals");
    for (what, set) in [("export bundle", &in_bundle), ("server log", &in_log), ("store files", &in_store)] {
        let found: Vec<&String> = set.iter().filter(|&&i| i > 0).map(|&i| &patterns[i]).collect();
        assert!(found.is_empty(), "{} credentials found in the {what}, e.g. {:?}", found.len(), found.first());
    }
}
