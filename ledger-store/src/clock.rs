//! The system clock.

use ledger_core::types::{Clock, Timestamp};

/// Reads the operating system's clock (UTC, milliseconds).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(jiff::Timestamp::now().as_millisecond())
    }
}
