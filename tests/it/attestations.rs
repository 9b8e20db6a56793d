//! `ledger ingest attestation` over the real attestations in `shared/realdata/attestations`:
//! every DSSE envelope of every `.intoto.jsonl` becomes evidence at the source commit its SLSA
//! predicate names, one record per attested subject digest, checked field by field against
//! values decoded here from the files; a VSA verifies with its published key and fails with
//! another; files that hold no statement are skipped.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{finding_codes, shared_data, Ledger};

fn b64(s: &str) -> Vec<u8> {
    // Minimal standard base64 decoder for the test (no padding errors expected in real data).
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = vec![];
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = T.iter().position(|t| *t == c).unwrap_or_else(|| panic!("not base64: {c}")) as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

/// (repo, commit) named by an SLSA predicate, as the test reads it.
fn source(st: &Value) -> Option<(String, String)> {
    let p = &st["predicate"];
    let deps = p["buildDefinition"]["resolvedDependencies"].as_array().cloned().unwrap_or_default();
    let mats = p["materials"].as_array().cloned().unwrap_or_default();
    deps.iter().chain(mats.iter()).find_map(|d| {
        let uri = d["uri"].as_str()?;
        let sha = d["digest"]["gitCommit"].as_str().or(d["digest"]["sha1"].as_str())?;
        let path = uri.trim_start_matches("git+").split_once("://")?.1.split_once('/')?.1;
        let repo = path.split('@').next()?.trim_end_matches(".git").to_string();
        Some((repo, sha.to_string()))
    })
}

fn jsonl_files(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".intoto.jsonl") && !p.to_string_lossy().contains("vsa") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_intoto_envelope_becomes_evidence_at_its_source_commit() {
    let Some(any) = shared_data("realdata/attestations/slsa-verifier/annotated-tag.intoto.jsonl") else { return };
    let root = any.parent().unwrap().to_path_buf();
    let files = jsonl_files(&root);
    assert!(files.len() >= 6, "expected the slsa-verifier .intoto.jsonl files, found {files:?}");
    let l = Ledger::init();
    let mut checked = 0;
    for f in &files {
        let out = l.json(["ingest", "attestation", f.to_str().unwrap(), "--json"]);
        let recs = out["files"][0]["records"].as_array().cloned().unwrap_or_default();
        let mut expected = vec![];
        for line in std::fs::read(f).unwrap().split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let doc: Value = serde_json::from_slice(line).unwrap();
            // A line is a DSSE envelope, or a Sigstore bundle that carries one.
            let env = if doc["dsseEnvelope"].is_object() { &doc["dsseEnvelope"] } else { &doc };
            let st: Value = serde_json::from_slice(&b64(env["payload"].as_str().unwrap())).unwrap();
            let Some((repo, sha)) = source(&st) else { continue };
            let digest = format!("sha256:{}", hex::encode(Sha256::digest(line)));
            for s in st["subject"].as_array().unwrap() {
                let art = if let Some(h) = s["digest"]["sha256"].as_str() {
                    format!("sha256:{h}")
                } else {
                    format!("sha512:{}", s["digest"]["sha512"].as_str().unwrap())
                };
                expected.push((
                    repo.clone(),
                    sha.clone(),
                    art,
                    st["predicateType"].as_str().unwrap().to_string(),
                    digest.clone(),
                ));
            }
        }
        assert_eq!(recs.len(), expected.len(), "{}: {out}", f.display());
        for (r, (repo, sha, art, pt, digest)) in recs.iter().zip(&expected) {
            let e = l.json(["show", &format!("#{}", r["seq"]), "--json"]);
            let ev = &e["record"]["body"]["evidence"];
            assert_eq!(ev["repo"], repo.as_str(), "{}", f.display());
            assert_eq!(ev["commit"], sha.to_ascii_lowercase(), "{}", f.display());
            assert_eq!(ev["artifact"], art.to_ascii_lowercase(), "{}", f.display());
            assert_eq!(ev["predicate_type"], pt.as_str());
            assert_eq!(ev["check_kind"], "provenance");
            assert_eq!(ev["signature"], "not_verified", "signed envelopes without --key are recorded as not verified");
            assert_eq!(ev["source"]["payload"]["digest"], digest.as_str());
            checked += 1;
        }
        // The same file again appends nothing.
        let again = l.json(["ingest", "attestation", f.to_str().unwrap(), "--json"]);
        assert_eq!(again["appended"], 0, "{}", f.display());
    }
    assert!(checked >= 8, "only {checked} evidence records checked");
}

#[test]
fn a_vsa_verifies_with_its_key_and_not_with_another() {
    let (Some(vsa), Some(key), Some(other)) = (
        shared_data("realdata/attestations/slsa-verifier/vsa/gce/v1/gke-gce-pre.bcid-vsa.jsonl"),
        shared_data("realdata/attestations/slsa-verifier/vsa/gce/v1/vsa_signing_public_key.pem"),
        shared_data("realdata/attestations/sigstore-go/public-key-validity.pem"),
    ) else {
        return;
    };
    let l = Ledger::init();
    let commit = format!("git:o/r@{}", "c".repeat(40));
    let (v, k, o) = (vsa.to_str().unwrap(), key.to_str().unwrap(), other.to_str().unwrap());
    // Without --commit the VSA names no source commit: skipped, with the reason.
    let out = l.json(["ingest", "attestation", v, "--json"]);
    assert!(out["files"][0]["skipped"].as_str().unwrap().contains("--commit"), "{out}");
    // A key that did not sign it: an error, nothing appended.
    let before = l.verify();
    let failed = l.command(["ingest", "attestation", v, "--key", o, "--commit", &commit]).output().unwrap();
    assert_eq!(failed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("no DSSE signature verifies"));
    assert_eq!(l.verify(), before);
    // Its own key: verified evidence, result from verificationResult.
    let out = l.json(["ingest", "attestation", v, "--key", k, "--commit", &commit, "--json"]);
    let seq = out["files"][0]["records"][0]["seq"].as_u64().unwrap();
    let e = l.json(["show", &format!("#{seq}"), "--json"]);
    let ev = &e["record"]["body"]["evidence"];
    let env: Value = serde_json::from_str(std::fs::read_to_string(&vsa).unwrap().trim()).unwrap();
    let st: Value = serde_json::from_slice(&b64(env["payload"].as_str().unwrap())).unwrap();
    assert_eq!(ev["signature"], "verified");
    let expected = if st["predicate"]["verificationResult"] == "PASSED" { "pass" } else { "fail" };
    assert_eq!(ev["result"], expected);
    assert_eq!(ev["predicate_type"], st["predicateType"]);
}

#[test]
fn files_without_a_statement_are_skipped() {
    let (Some(root), Some(msg)) = (
        shared_data("realdata/attestations/sigstore-go/trusted-root-public-good.json"),
        shared_data("realdata/attestations/sigstore-go/public-key-validity.sigstore.json"),
    ) else {
        return;
    };
    let l = Ledger::init();
    let out = l.json(["ingest", "attestation", root.to_str().unwrap(), msg.to_str().unwrap(), "--json"]);
    assert_eq!((out["appended"].as_u64(), out["skipped"].as_u64()), (Some(0), Some(2)), "{out}");
}

/// Every file under `realdata/attestations`: JSON documents are ingested into evidence (one
/// record per subject digest of each statement that names a source commit) or skipped with a
/// reason; the other files are key material and artifacts used by the tests above, and are
/// counted here as such.
#[test]
fn every_attestation_file_is_ingested_or_skipped() {
    let Some(any) = shared_data("realdata/attestations/slsa-verifier/annotated-tag.intoto.jsonl") else { return };
    let root = any.parent().unwrap().parent().unwrap().to_path_buf();
    let mut files = vec![];
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let l = Ledger::init();
    let (mut documents, mut other) = (0, 0);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let docs: Vec<Value> = match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => match v["attestations"].as_array() {
                Some(set) => set.iter().map(|a| a["bundle"].clone()).collect(),
                None => vec![v],
            },
            Err(_) => {
                match text.lines().filter(|l| !l.trim().is_empty()).map(serde_json::from_str::<Value>).collect() {
                    Ok(v) => v,
                    Err(_) => {
                        // Not JSON: a PEM key, a digest list or an artifact.
                        other += 1;
                        continue;
                    }
                }
            }
        };
        documents += 1;
        let mut expected = 0;
        for d in &docs {
            let env = if d["dsseEnvelope"].is_object() { &d["dsseEnvelope"] } else { d };
            let st: Value = if env["payload"].is_string() {
                serde_json::from_slice(&b64(env["payload"].as_str().unwrap())).unwrap()
            } else if d["_type"].is_string() {
                d.clone()
            } else {
                continue;
            };
            if source(&st).is_some() {
                expected += st["subject"].as_array().map_or(1, |a| a.len().max(1));
            }
        }
        let out = l.json(["ingest", "attestation", f.to_str().unwrap(), "--json"]);
        let r = &out["files"][0];
        let got = r["records"].as_array().map_or(0, Vec::len);
        assert_eq!(got, expected, "{}: {out}", f.display());
        if expected == 0 {
            let why =
                r["skipped"].as_str().unwrap_or_else(|| panic!("{}: neither records nor a reason: {out}", f.display()));
            assert!(!why.is_empty());
        }
    }
    assert_eq!(documents + other, files.len());
    assert!(documents >= 20, "only {documents} attestation documents found");
}

/// Provenance from a builder outside the trusted set, recorded without a verified signature,
/// is shown on the change but does not count as evidence: `why` says which builder made it,
/// that its signature was not verified, and that the change has no counting evidence.
#[test]
fn unverified_provenance_from_an_untrusted_builder_does_not_count() {
    let Some(f) = shared_data("realdata/attestations/slsa-verifier/binary-linux-amd64-untrusted-builder.intoto.jsonl")
    else {
        return;
    };
    let line = std::fs::read_to_string(&f).unwrap();
    let env: Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    let st: Value = serde_json::from_slice(&b64(env["payload"].as_str().unwrap())).unwrap();
    let (repo, sha) = source(&st).expect("the statement names its source commit");
    let builder = st["predicate"]["builder"]["id"].as_str().unwrap().to_string();
    let l = Ledger::init();
    let body = l.db().parent().unwrap().join("change.json");
    std::fs::write(
        &body,
        serde_json::json!({
            "actor": "github:o", "repo": repo, "number": 1, "title": "t", "author": "github:o",
            "head_commit": sha, "commits_total": 0,
        })
        .to_string(),
    )
    .unwrap();
    l.json(["append", "--kind", "change", "--body", body.to_str().unwrap(), "--json"]);
    l.json(["ingest", "attestation", f.to_str().unwrap(), "--json"]);
    let change = l.why_one_change(&format!("git:{repo}@{sha}"));
    let ev = change["evidence"].as_array().unwrap();
    assert_eq!(ev.len(), 1, "{change:#}");
    assert_eq!(ev[0]["verification"], "not_verified");
    assert_eq!(ev[0]["builder"], builder.as_str());
    assert_eq!(ev[0]["trusted_builder"], false);
    assert_eq!(ev[0]["counts"], false);
    assert_eq!(ev[0]["vouched"]["entered"], "attestation", "{change:#}");
    let codes = finding_codes(&change["findings"]);
    for code in ["no_evidence", "unverified_evidence", "untrusted_builder"] {
        assert!(codes.iter().any(|c| c == code), "expected {code} in {codes:?}");
    }
    // Trusting that builder by name clears `untrusted_builder`; the signature is still unverified.
    let v = l.json(["why", &format!("git:{repo}@{sha}"), "--trusted-builder", &builder, "--json"]);
    let codes = finding_codes(&v["changes"][0]["findings"]);
    assert!(!codes.iter().any(|c| c == "untrusted_builder"), "{codes:?}");
    assert!(codes.iter().any(|c| c == "unverified_evidence"), "{codes:?}");
    assert_eq!(v["changes"][0]["evidence"][0]["counts"], false);
}
