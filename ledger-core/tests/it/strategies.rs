//! proptest strategies for every record kind.

use ledger_core::domain::FORMAT_VERSION;
use ledger_core::record::*;
use ledger_core::subject::Subject;
use ledger_core::types::*;
use proptest::prelude::*;

pub fn token() -> impl Strategy<Value = Token> {
    "[a-z0-9][a-z0-9._-]{0,20}".prop_map(|s| Token::new(s).unwrap())
}
pub fn text() -> impl Strategy<Value = String> {
    // Any Unicode, including control characters and empty strings.
    any::<String>()
}
pub fn ident() -> impl Strategy<Value = Identity> {
    "[A-Za-z][A-Za-z0-9 ._\\[\\]-]{0,20} <[a-z0-9.]{1,10}@[a-z]{1,8}\\.com>".prop_map(|s| Identity::new(s).unwrap())
}
pub fn sha() -> impl Strategy<Value = CommitId> {
    prop_oneof!["[0-9a-f]{40}", "[0-9a-f]{64}"].prop_map(|s| CommitId::new(s).unwrap())
}
pub fn repo() -> impl Strategy<Value = RepoName> {
    "[a-z0-9-]{1,10}/[a-z0-9._-]{1,10}"
        .prop_filter("no dot segments", |s| !s.split('/').any(|p| p == "." || p == ".."))
        .prop_map(|s| RepoName::new(s).unwrap())
}
pub fn time() -> impl Strategy<Value = Timestamp> {
    (-62_000_000_000_000i64..250_000_000_000_000i64).prop_map(Timestamp)
}
pub fn digest() -> impl Strategy<Value = Digest> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 32).prop_map(|v| Digest::new(DigestAlg::Sha256, v).unwrap()),
        proptest::collection::vec(any::<u8>(), 64).prop_map(|v| Digest::new(DigestAlg::Sha512, v).unwrap()),
        any::<Vec<u8>>().prop_map(|v| Digest::blake3_of(&v)),
    ]
}
pub fn tier() -> impl Strategy<Value = Tier> {
    prop_oneof![Just(Tier::T0), Just(Tier::T1), Just(Tier::T2), Just(Tier::T3)]
}
pub fn kind() -> impl Strategy<Value = Kind> {
    proptest::sample::select(Kind::ALL.to_vec())
}
pub fn subject() -> impl Strategy<Value = Subject> {
    prop_oneof![
        (proptest::option::of(repo()), sha()).prop_map(|(repo, sha)| Subject::Commit { repo, sha }),
        (repo(), any::<u64>()).prop_map(|(repo, number)| Subject::Change { repo, number }),
        (token(), token(), token()).prop_map(|(service, environment, id)| Subject::Deployment {
            service,
            environment,
            id
        }),
        (token(), token()).prop_map(|(system, id)| Subject::Incident { system, id }),
        (token(), token()).prop_map(|(tool, id)| Subject::Session { tool, id }),
        any::<[u8; 32]>().prop_map(|b| Subject::Entry(EntryHash(b))),
    ]
}
pub fn source() -> impl Strategy<Value = Option<Source>> {
    proptest::option::of(prop_oneof![
        (sha(), proptest::option::of(text())).prop_map(|(commit, trailer)| Source::GitCommit { commit, trailer }),
        (text(), digest(), proptest::option::of(prop_oneof![Just(Channel::WebhookHmac), Just(Channel::WebhookToken)]))
            .prop_map(|(format, digest, channel)| Source::Payload { format, digest, channel }),
    ])
}
fn rel() -> impl Strategy<Value = Rel> {
    proptest::sample::select(vec![
        Rel::Change,
        Rel::Commit,
        Rel::Session,
        Rel::Deployment,
        Rel::CausedBy,
        Rel::CausedByInferred,
        Rel::RollbackOf,
        Rel::Supersedes,
        Rel::Input,
    ])
}
fn commit_info() -> impl Strategy<Value = CommitInfo> {
    (
        sha(),
        ident(),
        time(),
        ident(),
        time(),
        text(),
        proptest::sample::select(vec![
            CommitSignature::None,
            CommitSignature::Pgp,
            CommitSignature::Ssh,
            CommitSignature::X509,
            CommitSignature::Unknown,
            CommitSignature::NotReported,
        ]),
        proptest::collection::vec((text(), text()).prop_map(|(key, value)| Trailer { key, value }), 0..3),
    )
        .prop_map(|(sha, author, authored_at, committer, committed_at, title, signature, trailers)| CommitInfo {
            sha,
            author,
            authored_at,
            committer,
            committed_at,
            title,
            signature,
            trailers,
        })
}

pub fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (
            token(),
            proptest::option::of(text()),
            token(),
            proptest::option::of(digest()),
            proptest::option::of(text()),
            proptest::collection::vec(text(), 0..3),
            proptest::option::of(ident()),
            source(),
            proptest::option::of(0u64..10_000_000_000)
        )
            .prop_map(
                |(tool, model, session_id, prompt_digest, summary, context, declared_reviewer, source, micros)| {
                    Body::Session(Session {
                        tool,
                        model,
                        session_id,
                        prompt_digest,
                        summary,
                        context,
                        declared_reviewer,
                        risk_area: None,
                        verification: vec!["unit tests".into()],
                        source,
                        cost: micros.map(|micros| Cost { micros, currency: Token::new("USD").unwrap() }),
                    })
                }
            ),
        (token(), text(), proptest::collection::vec(tier(), 0..4), proptest::option::of(time())).prop_map(
            |(tool, model, approved_tiers, not_after)| Body::Model(Model { tool, model, approved_tiers, not_after })
        ),
        (
            repo(),
            proptest::option::of(any::<u64>()),
            text(),
            proptest::option::of(text()),
            ident(),
            sha(),
            proptest::option::of(sha()),
            proptest::collection::vec(commit_info(), 0..4),
            any::<u64>(),
            proptest::option::of(tier()),
            source()
        )
            .prop_map(
                |(
                    repo,
                    number,
                    title,
                    description,
                    author,
                    head_commit,
                    base_commit,
                    commits,
                    commits_total,
                    risk_tier,
                    source,
                )| {
                    Body::Change(Change {
                        repo,
                        number,
                        title,
                        description,
                        author,
                        head_commit,
                        base_commit,
                        commits,
                        commits_total,
                        risk_tier,
                        intent: None,
                        source,
                        paths: (commits_total % 3 == 0).then(|| vec!["src/a.rs".into(), "docs/b.md".into()]),
                        lines_added: (commits_total % 2 == 0).then_some(commits_total / 2),
                        lines_removed: (commits_total % 2 == 0).then_some(7),
                        labels: if commits_total % 5 == 0 { vec!["risk:T2".into()] } else { vec![] },
                    })
                }
            ),
        (
            repo(),
            ident(),
            proptest::sample::select(vec![
                Verdict::Approved,
                Verdict::ChangesRequested,
                Verdict::Commented,
                Verdict::Dismissed
            ]),
            sha(),
            source()
        )
            .prop_map(|(repo, reviewer, verdict, commit, source)| Body::Review(Review {
                repo,
                reviewer,
                verdict,
                commit,
                source
            })),
        (
            repo(),
            sha(),
            text(),
            proptest::option::of(digest()),
            proptest::option::of(text()),
            source(),
            proptest::option::of(text())
        )
            .prop_map(|(repo, commit, check, artifact, url, source, builder)| Body::Evidence(Evidence {
                repo,
                commit,
                check,
                check_kind: CheckKind::Unit,
                result: CheckResult::Pass,
                artifact,
                predicate_type: None,
                url,
                signature: Some(SignatureCheck::NotVerified),
                source,
                builder,
            })),
        (ident(), text(), subject(), proptest::option::of(text()), time()).prop_map(
            |(approver, reason, scope, rule, not_after)| {
                Body::Exception(Exception { approver, reason, scope, rule, not_after })
            }
        ),
        (repo(), sha(), sha(), proptest::option::of(sha()), proptest::option::of(ident()), source()).prop_map(
            |(repo, merge_commit, head_commit, base_commit, merged_by, source)| Body::Merge(Merge {
                repo,
                merge_commit,
                head_commit,
                base_commit,
                merged_by,
                method: MergeMethod::Squash,
                source
            })
        ),
        (
            token(),
            token(),
            token(),
            proptest::option::of(repo()),
            proptest::collection::vec(sha(), 0..3),
            ident(),
            proptest::option::of(subject())
        )
            .prop_map(|(service, environment, deployment_id, repo, commits, deployer, rollback_of)| {
                let strategy = (commits.len() == 1).then(|| Token::new("canary").unwrap());
                Body::Deployment(Deployment {
                    service,
                    environment,
                    deployment_id,
                    repo,
                    commits,
                    version: Some("1.2.3".into()),
                    deployer,
                    status: DeployStatus::Success,
                    rollback_of,
                    source: None,
                    strategy,
                })
            }),
        (token(), token(), text(), proptest::option::of(text()), time(), proptest::option::of(time())).prop_map(
            |(system, incident_id, title, severity, opened, resolved)| Body::Incident(Incident {
                system,
                incident_id,
                title,
                service: None,
                severity,
                opened,
                resolved,
                source: None,
                inference: resolved.map(|_| "inferred: the latest successful production deployment".into()),
            })
        ),
        (token(), any::<u64>(), text()).prop_map(|(name, version, document)| Body::Policy(Policy {
            name,
            version,
            digest: (version % 2 == 0).then(|| document_digest(&document)),
            document,
        })),
        (digest(), subject(), proptest::collection::vec(text(), 0..3), any::<u64>()).prop_map(
            |(policy, subject, reasons, n)| {
                let full = n % 2 == 0;
                Body::Gate(Gate {
                    policy,
                    subject,
                    decision: Decision::Deny,
                    reasons,
                    policy_name: full.then(|| Token::new("default").unwrap()),
                    policy_version: full.then_some(n),
                    stage: full.then_some(Stage::Deploy),
                    tier: full.then_some(Tier::T2),
                    tree_size: full.then_some(n / 2),
                    inputs: if full { vec![1, 5, n / 4] } else { vec![] },
                    rules: if full {
                        vec![RuleOutcome {
                            rule: "approvals".into(),
                            result: RuleResult::Fail,
                            reason: "0 of 2".into(),
                            evidence: vec![3],
                            exception: Some(9),
                        }]
                    } else {
                        vec![]
                    },
                })
            }
        ),
        (repo(), text()).prop_map(|(repo, document)| Body::Codeowners(Codeowners {
            repo,
            digest: document_digest(&document),
            document,
        })),
        (
            token(),
            any::<[u8; 32]>(),
            proptest::collection::vec(kind(), 0..4),
            time(),
            proptest::option::of(time()),
            proptest::option::of(any::<[u8; 32]>()),
            any::<bool>(),
            proptest::option::of(any::<[u8; 32]>()),
        )
            .prop_map(|(name, pk, kinds, not_before, not_after, replaces, log, handover)| {
                Body::Key(KeyBody {
                    action: KeyAction::Register,
                    name,
                    public_key: PublicKeyBytes(pk),
                    kinds,
                    not_before,
                    not_after,
                    replaces: replaces.map(KeyId),
                    role: log.then_some(KeyRole::Log),
                    handover: handover.map(|h| {
                        let mut sig = [0u8; 64];
                        sig[..32].copy_from_slice(&h);
                        SignatureBytes(sig)
                    }),
                })
            }),
    ]
}

pub fn record() -> impl Strategy<Value = Record> {
    (
        time(),
        ident(),
        proptest::collection::vec((rel(), subject()).prop_map(|(rel, target)| Link { rel, target }), 0..4),
        body(),
    )
        .prop_map(|(time, actor, links, body)| Record { v: FORMAT_VERSION, time, actor, links, body })
}
