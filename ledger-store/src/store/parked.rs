//! Stores kept open until the process exits (`close_at_process_exit`): a dropped fjall
//! store's engine and directory lock, parked for this process to reuse or to drop at exit.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::disk::Backend;
use super::kv::Kv;
use crate::error::{Error, Result};
use crate::store::kv::{KvIter, PairFn};

static ENABLED: AtomicBool = AtomicBool::new(false);
type Parked = (PathBuf, Backend, Box<dyn Kv>, std::fs::File);
static PARKED: Mutex<Vec<Parked>> = Mutex::new(Vec::new());

pub(super) fn enable() {
    ENABLED.store(true, Ordering::SeqCst);
}

pub(super) fn enabled() -> bool {
    ENABLED.load(Ordering::SeqCst)
}

fn canonical(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

pub(super) fn park(dir: &Path, backend: Backend, kv: Box<dyn Kv>, lock: std::fs::File) {
    if let Ok(mut p) = PARKED.lock() {
        p.push((canonical(dir), backend, kv, lock));
    }
}

/// The store parked for `dir`, if this process keeps one.
pub(super) fn take(dir: &Path, backend: Backend) -> Option<(Box<dyn Kv>, std::fs::File)> {
    if !enabled() {
        return None;
    }
    let dir = canonical(dir);
    let mut p = PARKED.lock().ok()?;
    let i = p.iter().position(|(d, b, _, _)| *d == dir && *b == backend)?;
    let (_, _, kv, lock) = p.swap_remove(i);
    Some((kv, lock))
}

/// What a parked store leaves in its place: never called, since the store is being dropped.
pub(super) struct Closed;

fn closed() -> Error {
    Error::Storage("the store is closed".into())
}

impl Kv for Closed {
    fn get(&self, _: &[u8]) -> Result<Option<Vec<u8>>> {
        Err(closed())
    }
    fn range<'a>(&'a self, _: &[u8], _: &[u8]) -> KvIter<'a> {
        Box::new(std::iter::once(Err(closed())))
    }
    fn prefix<'a>(&'a self, _: &[u8]) -> KvIter<'a> {
        Box::new(std::iter::once(Err(closed())))
    }
    fn for_each_prefix(&self, _: &[u8], _: &mut PairFn<'_>) -> Result<()> {
        Err(closed())
    }
    fn write(&self, _: &[(&[u8], &[u8])], _: &[&[u8]]) -> Result<()> {
        Err(closed())
    }
}
