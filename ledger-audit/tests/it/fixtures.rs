//! What the `why` and gate tables share: the clock (2026-01-01T00:00:00Z, record `n` at `n`
//! minutes), the people, and constructors that cannot fail on their fixed inputs.

use ledger_core::types::{CommitId, Identity};

/// 2026-01-01T00:00:00Z in milliseconds.
pub const T0: i64 = 1_767_225_600_000;
pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// Author of the change and of its first commit.
pub const ALICE: &str = "Alice <alice@example.com>";
/// Author of the second commit.
pub const BOB: &str = "Bob <bob@example.com>";
/// The independent approver (and the code owner of `src/auth/`).
pub const FRANK: &str = "Frank <frank@example.com>";
pub const GRACE: &str = "Grace <grace@example.com>";
pub const OPS: &str = "Ops <ops@example.com>";
pub const BOT: &str = "renovate[bot]";

pub fn id(s: &str) -> Identity {
    Identity::new(s).unwrap()
}

/// A commit id of one repeated hex digit.
pub fn sha(c: char) -> CommitId {
    CommitId::new(c.to_string().repeat(40)).unwrap()
}
