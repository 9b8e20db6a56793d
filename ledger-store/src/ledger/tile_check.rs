//! The tile check of `verify`: every full Merkle tile recomputed from the entries and
//! compared with the stored one.

use ledger_core::merkle::Hash;
use ledger_core::tiles::{self, TileBuilder};
use ledger_core::types::Seq;

use crate::error::{Error, Result};
use crate::store::Store;

/// Recomputes the tiles from the entries during `verify` and compares every full tile with
/// the stored one (partial tiles are not stored: they are rebuilt from these on open).
#[derive(Default)]
pub(super) struct TileChecker {
    builder: TileBuilder,
    pending: Vec<Hash>,
}

impl TileChecker {
    /// Continues from a tree of `size` leaves whose partial tiles hold `partials` (level →
    /// hashes, as [`tiles::partial_sources`] lists them).
    pub(super) fn resume(size: u64, partials: &std::collections::BTreeMap<u8, Vec<Hash>>) -> Result<Self> {
        let builder = TileBuilder::resume(size, partials)
            .map_err(|e| Error::tampered(Seq(size.saturating_sub(1)), format!("the partial Merkle tiles: {e}")))?;
        Ok(TileChecker { builder, pending: vec![] })
    }

    pub(super) fn push<S: Store>(&mut self, leaf: Hash, store: &S) -> Result<()> {
        self.pending.push(leaf);
        if self.pending.len() == 4096 {
            self.check(store)?;
        }
        Ok(())
    }

    pub(super) fn finish<S: Store>(&mut self, store: &S) -> Result<()> {
        self.check(store)
    }

    fn check<S: Store>(&mut self, store: &S) -> Result<()> {
        let leaves = std::mem::take(&mut self.pending);
        for t in self.builder.extend_full(&leaves) {
            if store.tile(t.level, t.index)?.as_ref() != Some(&t.hashes) {
                let span = (tiles::TILE_WIDTH as u64).pow(u32::from(t.level) + 1);
                return Err(Error::tampered(
                    Seq(t.index.saturating_mul(span)),
                    format!("stored Merkle tile {}/{} does not match the entries", t.level, t.index),
                ));
            }
        }
        Ok(())
    }
}
