//! The GitLab delivery mapping on hand-written payloads (the real ones are in `tests/it`).

use super::*;
use ledger_core::record::{Link, Rel};

#[test]
fn gitlab_time_forms_parse_to_the_same_instant() {
    let t = |s: &str| parse_time(s).unwrap().to_rfc3339();
    assert_eq!(t("2013-12-03T17:23:34Z"), "2013-12-03T17:23:34Z");
    assert_eq!(t("2013-12-03 17:23:34 UTC"), "2013-12-03T17:23:34Z");
    assert_eq!(t("2021-04-28 21:50:00 +0200"), "2021-04-28T19:50:00Z");
    assert_eq!(t("2021-04-28 21:50:00 -0130"), "2021-04-28T23:20:00Z");
    assert_eq!(t("2017-09-28T12:23:42.365Z"), "2017-09-28T12:23:42.365Z");
    assert_eq!(t("2016-08-12 15:23:28.250 UTC"), "2016-08-12T15:23:28.250Z");
    for bad in [
        "2013-12-03 17:23:34",
        "2013-12-03T17:23:34",
        "2013-12-03",
        "2013-12-03 17:23 UTC",
        "2013-12-03 17:23:34 CET",
        "2013-12-03 17:23:34 +02",
        "2013-12-03 25:23:34 UTC",
        "03.12.2013 17:23:34 UTC",
        "yesterday",
    ] {
        assert!(parse_time(bad).is_err(), "{bad} parsed");
    }
}

#[test]
fn header_names_and_object_kinds_name_the_same_event() {
    assert_eq!(event_kind("Merge Request Hook"), "merge_request");
    assert_eq!(event_kind("merge_request"), "merge_request");
    assert_eq!(event_kind("Job Hook"), "build");
    assert_eq!(event_kind("Tag Push Hook"), "tag_push");
    assert_eq!(event_kind("Confidential Note Hook"), "note");
}

const MERGED: &str = r#"{
    "object_kind": "merge_request",
    "user": {"id": 7, "username": "maint"},
    "project": {"name": "Api", "path_with_namespace": "grp/sub/api"},
    "assignees": [{"id": 3, "username": "alice"}],
    "object_attributes": {
        "iid ": 12, "title": "Fix", "description": "", "author_id": 3,
        "updated_at": "2024-05-01 10:00:00 UTC", "state": "merged", "action": "merge",
        "merge_commit_sha": "AC3CA1559BC39ABF963586372EFF7F8FDDED646E",
        "last_commit": {"id": "61b6a0d35dbaf915760233b637622e383d3cc9ec"}
    }
}"#;

#[test]
fn a_merged_merge_request_is_a_change_and_a_merge() {
    let Mapped::Records(r) = map("Merge Request Hook", MERGED.as_bytes()).unwrap() else { panic!() };
    assert_eq!(r.len(), 2);
    let Body::Change(c) = &r[0].body else { panic!("{r:?}") };
    assert_eq!(c.subject().to_string(), "pr:grp/sub/api#12");
    assert_eq!(c.author.as_str(), "gitlab:alice", "the author is found among the assignees by id");
    assert_eq!(c.head_commit.as_str(), "61b6a0d35dbaf915760233b637622e383d3cc9ec");
    assert_eq!((c.description.as_deref(), c.base_commit.as_ref()), (None, None));
    assert_eq!(r[0].time.to_rfc3339(), "2024-05-01T10:00:00Z");
    let Body::Merge(m) = &r[1].body else { panic!("{r:?}") };
    assert_eq!(m.merge_commit.as_str(), "ac3ca1559bc39abf963586372eff7f8fdded646e");
    assert_eq!(m.merged_by.as_ref().map(Identity::as_str), Some("gitlab:maint"));
    assert_eq!(r[1].links, vec![Link { rel: Rel::Change, target: c.subject() }]);
    let Some(Source::Payload { format, digest, .. }) = &c.source else { panic!() };
    assert_eq!(format, "gitlab-webhook:merge_request");
    assert_eq!(digest.to_string(), format!("sha256:{}", hex::encode(Sha256::digest(MERGED.as_bytes()))));

    // Without a merge commit (fast-forward), only the change; an approval is a review.
    let ff = MERGED.replace("\"AC3CA1559BC39ABF963586372EFF7F8FDDED646E\"", "null");
    let Mapped::Records(r) = map("merge_request", ff.as_bytes()).unwrap() else { panic!() };
    assert_eq!(r.len(), 1);
    let approved = MERGED.replace("\"merge\"", "\"approved\"");
    let Mapped::Records(r) = map("merge_request", approved.as_bytes()).unwrap() else { panic!() };
    let Body::Review(v) = &r[0].body else { panic!("{r:?}") };
    assert_eq!((v.reviewer.as_str(), v.verdict), ("gitlab:maint", Verdict::Approved));
    // The payload says which event it is.
    assert!(map("pipeline", MERGED.as_bytes()).is_err());
}
