use super::*;

#[test]
fn a_deployment_payload_may_name_the_deployment_it_rolls_back() {
    let with = |rollback: serde_json::Value| {
        let payload = serde_json::json!({
            "repository": {"full_name": "o/shop", "name": "shop"},
            "deployment": {"id": 9, "sha": "c".repeat(40), "environment": "production",
                "creator": {"login": "ops"}, "created_at": "2026-01-01T00:00:00Z",
                "payload": {"rollback_of": rollback}},
        });
        map("deployment", payload.to_string().as_bytes()).map(|m| match m {
            Mapped::Records(r) => match &r[0].body {
                Body::Deployment(d) => d.rollback_of.as_ref().map(|s| s.to_string()),
                _ => panic!("not a deployment"),
            },
            Mapped::Skipped(why) => panic!("skipped: {why}"),
        })
    };
    assert_eq!(with(serde_json::json!(7)).unwrap().as_deref(), Some("deploy:shop/production/7"));
    assert_eq!(with(serde_json::json!("8")).unwrap().as_deref(), Some("deploy:shop/production/8"));
    assert_eq!(with(serde_json::json!("deploy:api/production/3")).unwrap().as_deref(), Some("deploy:api/production/3"));
    assert_eq!(with(serde_json::Value::Null).unwrap(), None);
    let err = with(serde_json::json!({"id": 1})).unwrap_err().to_string();
    assert!(err.contains("rollback_of"), "{err}");
    assert!(with(serde_json::json!("deploy:nonsense")).is_err());
}

#[test]
fn a_provenance_block_in_a_pr_body_becomes_a_session() {
    let body = "Adds login.\n\n```json\n{\"tool\": \"Claude Code\", \"model\": \"claude-opus-4\", \"session_id\": \"s-1\",\n \"prompt_summary\": \"add a login form\", \"reviewer\": \"github:bo\"}\n```\n\n```json\n{\"unrelated\": 1}\n```";
    let payload = serde_json::json!({
        "action": "opened",
        "repository": {"full_name": "o/r"},
        "pull_request": {"number": 7, "title": "t", "body": body, "user": {"login": "ann"},
            "head": {"sha": "a".repeat(40)}, "base": {"sha": "b".repeat(40)}, "updated_at": "2026-01-01T00:00:00Z"}
    });
    let Mapped::Records(r) = map("pull_request", payload.to_string().as_bytes()).unwrap() else { panic!() };
    let sessions: Vec<&Session> = r
        .iter()
        .filter_map(|x| match &x.body {
            Body::Session(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(sessions.len(), 1);
    assert_eq!((sessions[0].tool.as_str(), sessions[0].session_id.as_str()), ("claude", "s-1"));
    assert_eq!(sessions[0].summary.as_deref(), Some("add a login form"));
    assert_eq!(sessions[0].declared_reviewer.as_ref().map(|i| i.as_str()), Some("github:bo"));
}
