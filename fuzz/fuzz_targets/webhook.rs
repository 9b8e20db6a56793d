//! Payload mapping of every source a webhook or a file brings in: GitHub (per event name),
//! GitLab, PagerDuty, Opsgenie, AI provenance. The first byte picks the mapper and event.
#![no_main]

use ledger_core::subject::Subject;
use ledger_core::types::Timestamp;
use ledger_ingest::{github, gitlab, incident, provenance};
use libfuzzer_sys::fuzz_target;

const GITHUB: &[&str] = &[
    "pull_request",
    "pull_request_review",
    "push",
    "check_run",
    "check_suite",
    "workflow_run",
    "workflow_job",
    "deployment",
    "deployment_status",
    "deployment_review",
    "status",
    "merge_group",
    "issues",
];
const GITLAB: &[&str] =
    &["Merge Request Hook", "Push Hook", "Pipeline Hook", "Deployment Hook", "Job Hook", "Note Hook"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else { return };
    let pick = usize::from(pick);
    match pick % 5 {
        0 => {
            let _ = github::action(payload);
            let _ = github::map(GITHUB[(pick / 5) % GITHUB.len()], payload);
        }
        1 => {
            let _ = gitlab::object_kind(payload);
            let _ = gitlab::map(GITLAB[(pick / 5) % GITLAB.len()], payload);
        }
        2 => {
            let _ = incident::map(incident::System::PagerDuty, payload, Some(Timestamp(1_764_000_000_000)), vec![]);
        }
        3 => {
            let _ = incident::map(incident::System::Opsgenie, payload, None, vec![]);
        }
        _ => {
            if let Ok(change) = "pr:o/r#1".parse::<Subject>() {
                let _ = provenance::map(payload, &change, Timestamp(1_764_000_000_000));
            }
        }
    }
});
