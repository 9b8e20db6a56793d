//! Export bundles end to end in process: every selection the exporter writes verifies and
//! proves what it claims; every way of altering a bundle (dropping, repeating, swapping or
//! editing a line, relabelling an entry, truncating) is caught; a bundle signed by a later log
//! key verifies with the key an auditor pinned before the rotation, and with no other.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use ledger_core::bundle::{BundleError, BundleSummary, BundleVerifier, Completeness, Selection};
use ledger_core::keys::sign_handover;
use ledger_core::note;
use ledger_core::record::*;
use ledger_core::types::*;
use ledger_store::ledger::{Ledger, LogFilter};
use ledger_store::store::{DiskStore, Store};

use crate::support::{evidence, key, key_rec, signed};

/// A clock the test moves: integration times are what it says.
struct StepClock(Arc<AtomicI64>);
impl Clock for StepClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

const ORIGIN: &str = "ledger.example/bundles";

fn log_key_rec(action: KeyAction, k: &SigningKey, replaces: Option<&SigningKey>, handover: bool) -> Record {
    let mut r = key_rec(action, "log", k, vec![]);
    if let Body::Key(b) = &mut r.body {
        b.role = Some(KeyRole::Log);
        if let Some(old) = replaces {
            b.replaces = Some(ledger_core::entry::key_id(&old.verifying_key()));
            if handover {
                b.handover = Some(sign_handover(old, &k.verifying_key()));
            }
        }
    }
    r
}

/// A ledger of 40 entries integrated at times 1000, 2000, … (several per time step), with a
/// signer registered and one revoked in the middle, and the log key `log-1` rotated to `log-2`
/// with a hand-over. Returns the ledger, its directory and the clock.
fn ledger() -> (Ledger<DiskStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicI64::new(1000));
    let admin = key("admin");
    let l = Ledger::create(
        DiskStore::create(dir.path()).unwrap(),
        &signed(&key_rec(KeyAction::Genesis, "admin", &admin, vec![Kind::Key]), &admin),
        Arc::new(StepClock(now.clone())),
    )
    .unwrap();
    l.append(&[signed(&log_key_rec(KeyAction::Register, &key("log-1"), None, false), &admin)]).unwrap();
    l.append(&[signed(&key_rec(KeyAction::Register, "ci", &key("ci"), vec![Kind::Evidence]), &admin)]).unwrap();
    for i in 0..36u64 {
        now.store(1000 + 1000 * (i as i64 / 3 + 1), Ordering::SeqCst);
        match i {
            10 => {
                let r = key_rec(KeyAction::Register, "ci-2", &key("ci-2"), vec![Kind::Evidence]);
                l.append(&[signed(&r, &admin)]).unwrap();
            }
            20 => {
                let r = log_key_rec(KeyAction::Rotate, &key("log-2"), Some(&key("log-1")), true);
                l.append(&[signed(&r, &admin)]).unwrap();
            }
            25 => {
                let r = key_rec(KeyAction::Revoke, "ci-2", &key("ci-2"), vec![]);
                l.append(&[signed(&r, &admin)]).unwrap();
            }
            _ => {
                let signer = if (11..25).contains(&i) && i % 2 == 0 { key("ci-2") } else { key("ci") };
                l.append(&[signed(&evidence(&format!("e{i}")), &signer)]).unwrap();
            }
        }
    }
    (l, dir)
}

fn export(l: &Ledger<DiskStore>, selection: &Selection, log: &SigningKey) -> Vec<u8> {
    let mut out = vec![];
    l.export_bundle(selection, ORIGIN, log, &mut out, &mut |_, _| {}).unwrap();
    out
}

fn vkey(k: &SigningKey) -> (String, ed25519_dalek::VerifyingKey) {
    (ORIGIN.to_string(), k.verifying_key())
}

/// Feeds a bundle to the verifier line by line, as `ledger verify-bundle` does.
fn verify(bundle: &[u8], trusted: &SigningKey) -> Result<BundleSummary, BundleError> {
    let (name, key) = vkey(trusted);
    let mut lines = bundle.split_inclusive(|b| *b == b'\n');
    let mut v = BundleVerifier::start(lines.next().unwrap_or_default(), &name, &key)?;
    for line in lines {
        v.line(line)?;
    }
    v.end()
}

fn lines(bundle: &[u8]) -> Vec<Vec<u8>> {
    bundle.split_inclusive(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
}

#[test]
fn every_time_range_verifies_complete_with_exactly_its_entries() {
    let (l, _dir) = ledger();
    let log2 = key("log-2");
    let all = l.log(&LogFilter::default()).unwrap();
    let times: Vec<Option<Timestamp>> =
        std::iter::once(None).chain((0..15).map(|i| Some(Timestamp(500 + 500 * i)))).collect();
    for since in &times {
        for until in &times {
            let selection = Selection::Time { since: *since, until: *until };
            let s =
                verify(&export(&l, &selection, &log2), &log2).unwrap_or_else(|e| panic!("{}: {e}", selection.label()));
            let expected = all
                .iter()
                .filter(|v| since.is_none_or(|t| v.entry.time >= t) && until.is_none_or(|t| v.entry.time < t))
                .count() as u64;
            assert_eq!(s.selected, expected, "{}", selection.label());
            assert_eq!(s.completeness, Completeness::Proven);
        }
    }
}

#[test]
fn every_alteration_of_a_bundle_is_caught() {
    let (l, _dir) = ledger();
    let log2 = key("log-2");
    let selections = [
        Selection::All,
        Selection::Time { since: Some(Timestamp(4000)), until: Some(Timestamp(7000)) },
        Selection::Subject { subject: commit_of(&l, 30) },
    ];
    for selection in &selections {
        let bundle = export(&l, selection, &log2);
        let s = verify(&bundle, &log2).unwrap_or_else(|e| panic!("{}: {e}", selection.label()));
        assert!(s.selected > 0, "{}", selection.label());
        let original = lines(&bundle);
        let caught = |edited: Vec<Vec<u8>>, what: &str| {
            let r = verify(&edited.concat(), &log2);
            assert!(r.is_err(), "{}: {what} was not caught", selection.label());
            assert!(
                !matches!(r, Err(BundleError::Malformed(_))),
                "{}: {what} is an integrity failure",
                selection.label()
            );
        };
        for i in 1..original.len() {
            let mut dropped = original.clone();
            dropped.remove(i);
            caught(dropped, &format!("dropping line {}", i + 1));
            let mut repeated = original.clone();
            repeated.insert(i, original[i].clone());
            caught(repeated, &format!("repeating line {}", i + 1));
            if i + 1 < original.len() {
                let mut swapped = original.clone();
                swapped.swap(i, i + 1);
                caught(swapped, &format!("swapping lines {} and {}", i + 1, i + 2));
            }
            let text = String::from_utf8(original[i].clone()).unwrap();
            if text.contains("\"entry\"") {
                // One changed character of the entry's base64, and the entry relabelled.
                let at = text.find("\"entry\":\"").unwrap() + 20;
                let mut edited = original.clone();
                let c = if text.as_bytes()[at] == b'A' { "B" } else { "A" };
                edited[i] = format!("{}{c}{}", &text[..at], &text[at + 1..]).into_bytes();
                caught(edited, &format!("editing the entry on line {}", i + 1));
                let mut relabelled = original.clone();
                relabelled[i] = if text.contains("\"selected\":false") {
                    text.replace(",\"selected\":false", "").into_bytes()
                } else {
                    text.replace("}\n", ",\"selected\":false}\n").into_bytes()
                };
                caught(relabelled, &format!("relabelling the entry on line {}", i + 1));
            }
        }
        // The final newline cut off: every line, the manifest's too, ends with one.
        let mut cut = original.clone();
        cut.last_mut().unwrap().pop();
        caught(cut, "dropping the final newline");
        // A manifest from another bundle of the same log and checkpoint size.
        let other = lines(&export(&l, &Selection::All, &log2));
        let mut swapped_manifest = original.clone();
        *swapped_manifest.last_mut().unwrap() = other.last().unwrap().clone();
        if swapped_manifest != original {
            caught(swapped_manifest, "another bundle's manifest");
        }
    }
}

/// The commit of the evidence record at seq `seq`.
fn commit_of(l: &Ledger<DiskStore>, seq: u64) -> String {
    match l.get(Seq(seq)).unwrap().unwrap().record.body {
        Body::Evidence(e) => e.commit.to_string(),
        other => panic!("#{seq} is not evidence: {other:?}"),
    }
}

#[test]
fn a_rotated_log_key_is_followed_from_the_key_an_auditor_pinned_and_from_no_other() {
    let (l, _dir) = ledger();
    let (log1, log2) = (key("log-1"), key("log-2"));
    let bundle = export(&l, &Selection::All, &log2);
    // Pinned before the rotation: trusted through the hand-over the bundle holds.
    let s = verify(&bundle, &log1).unwrap();
    assert_eq!(s.handed_over_from, Some(ledger_core::entry::key_id(&log1.verifying_key())));
    // The admin key registered the log keys.
    assert!(verify(&bundle, &key("admin")).is_ok());
    assert!(verify(&bundle, &log2).unwrap().handed_over_from.is_none());
    // A stranger's key, or a signer's: no.
    for k in [key("stranger"), key("ci")] {
        assert!(matches!(verify(&bundle, &k), Err(BundleError::Checkpoint(_))), "trusted from an unrelated key");
    }
    // The old log key no longer signs checkpoints.
    let mut out = vec![];
    assert!(l.export_bundle(&Selection::All, ORIGIN, &log1, &mut out, &mut |_, _| {}).is_err());
    // A bundle whose checkpoint predates the rotation cannot be made now, but one signed by a
    // key the register never made the log key is refused even with a valid header hint.
    let forged = forge_with(&l, &key("stranger"));
    assert!(verify(&forged, &key("stranger")).is_err());
}

/// An `all` bundle of `l` whose checkpoint and manifest are signed by `k` (not the log key).
fn forge_with(l: &Ledger<DiskStore>, k: &SigningKey) -> Vec<u8> {
    use ledger_core::bundle::BundleWriter;
    let (size, root) = l.tree_head();
    let head = l.head().1;
    let cp = note::Checkpoint {
        origin: ORIGIN.into(),
        size,
        root,
        extensions: vec![format!("blake3-head {} {head}", size - 1)],
    };
    let signed_cp = note::sign(&cp.to_text(), ORIGIN, k).unwrap();
    let vk = note::verifier_key(ORIGIN, &k.verifying_key()).unwrap();
    let (mut w, header) = BundleWriter::new(Selection::All, &signed_cp, &vk).unwrap();
    let mut out = header.into_bytes();
    out.extend(w.run(0, size, &[], &[]).into_bytes());
    for (i, bytes) in l.store().entries(Seq(0), size).unwrap().iter().enumerate() {
        out.extend(w.entry(i as u64, bytes, true).into_bytes());
    }
    let manifest = note::sign(&w.manifest_text(), ORIGIN, k).unwrap();
    out.extend(BundleWriter::manifest_line(&manifest).into_bytes());
    out
}
