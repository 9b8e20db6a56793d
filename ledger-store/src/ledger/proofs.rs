//! The RFC 6962 tree over the entries: tree heads, signed C2SP checkpoints, and inclusion and
//! consistency proofs served from the stored tiles (O(log n) reads).

use ledger_core::merkle::{self, Hash};
use ledger_core::tiles;
use ledger_core::types::Seq;

use super::Ledger;
use crate::error::{Error, Result};
use crate::store::Store;

impl<S: Store> Ledger<S> {
    /// The tree size and RFC 6962 root hash now (equal to the number of entries).
    pub fn tree_head(&self) -> (u64, Hash) {
        let t = self.tree.lock().unwrap_or_else(|p| p.into_inner());
        (t.frontier.size(), t.frontier.root())
    }

    /// A signed C2SP checkpoint of the current tree head, with the chain head as the
    /// `blake3-head <seq> <hash>` extension line, signed by `key`, which must be the log's
    /// checkpoint key ([`KeyRegister::checkpoint_key`](ledger_core::keys::KeyRegister::checkpoint_key):
    /// the active log key, else the admin key). Returns (signed note, verifier key, size, root).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `origin` is not a valid note signer name, or `key` is not
    /// the checkpoint key.
    pub fn signed_checkpoint(
        &self,
        origin: &str,
        key: &ed25519_dalek::SigningKey,
    ) -> Result<(String, String, u64, Hash)> {
        // Read the chain head and the tree head under the state lock, so they describe the
        // same entries (and the register, the key entries among them).
        let state = self.lock();
        let (size, root) = self.tree_head();
        let head = state.head();
        let id = ledger_core::entry::key_id(&key.verifying_key());
        match state.keys().checkpoint_key() {
            Some(k) if k.id == id => {}
            Some(k) => {
                let what = if k.admin { "the admin key (no log key is registered)" } else { "the log key" };
                return Err(Error::InvalidArgument(format!(
                    "key {} does not sign this ledger's checkpoints: they are signed by {what} `{}` ({}){}",
                    id.short(),
                    k.name,
                    k.id.short(),
                    if state.keys().get(&id).is_some_and(|o| o.rotated_to.is_some()) {
                        "; this key was rotated out: use the new log key"
                    } else {
                        ""
                    }
                )));
            }
            None => return Err(Error::InvalidArgument("the ledger has no genesis entry".into())),
        }
        drop(state);
        let cp = ledger_core::note::Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions: vec![format!("blake3-head {} {}", size.saturating_sub(1), head)],
        };
        let name = origin.replace(char::is_whitespace, "-");
        let bad =
            |e: ledger_core::note::NoteError| Error::InvalidArgument(format!("checkpoint origin `{origin}`: {e}"));
        let signed = ledger_core::note::sign(&cp.to_text(), &name, key).map_err(bad)?;
        let vkey = ledger_core::note::verifier_key(&name, &key.verifying_key()).map_err(bad)?;
        Ok((signed, vkey, size, root))
    }

    /// A proof node source over the stored tiles.
    pub(super) fn nodes(&self) -> tiles::TileReader<impl FnMut(u8, u64) -> Result<Option<Vec<Hash>>> + '_, Error> {
        // The partial tiles (in memory) as of now: they hold every node of any size up to
        // now that is not in a full, stored tile.
        let partials = self.tree.lock().unwrap_or_else(|p| p.into_inner()).tiles.partials();
        tiles::TileReader::new(move |level, index| match partials.iter().find(|(l, i, _)| (*l, *i) == (level, index)) {
            Some((_, _, hashes)) => Ok(Some(hashes.clone())),
            None => self.store.tile(level, index),
        })
    }

    fn check_size(&self, size: u64) -> Result<()> {
        if size > self.len() {
            return Err(Error::InvalidArgument(format!("tree size {size} is beyond the tree ({} leaves)", self.len())));
        }
        Ok(())
    }

    /// The RFC 6962 root hash at tree size `size` (≤ the number of entries), from the stored
    /// tiles: O(log size) reads.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `size` exceeds the tree; [`Error::Storage`] if a tile is
    /// missing.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        self.check_size(size)?;
        merkle::root_from(&mut self.nodes(), size)
    }

    /// The root hash at `size` and the inclusion proof of entry `seq` in it, from the stored
    /// tiles: O(log size) reads.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `seq >= size` or `size` exceeds the tree;
    /// [`Error::Storage`] if a tile is missing.
    pub fn inclusion_proof(&self, seq: Seq, size: u64) -> Result<(Hash, Vec<Hash>)> {
        if seq.0 >= size {
            return Err(Error::InvalidArgument(format!("entry #{seq} is not in a tree of size {size}")));
        }
        self.check_size(size)?;
        let mut nodes = self.nodes();
        let proof = merkle::inclusion_proof_from(&mut nodes, size, seq.0)?;
        Ok((merkle::root_from(&mut nodes, size)?, proof))
    }

    /// The consistency proof between tree sizes `old <= new` and both roots, from the stored
    /// tiles: O(log new) reads.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for sizes out of range; [`Error::Storage`] if a tile is
    /// missing.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<(Hash, Hash, Vec<Hash>)> {
        if old == 0 || old > new {
            return Err(Error::InvalidArgument(format!(
                "no consistency proof between sizes {old} and {new}: need 0 < old ≤ new"
            )));
        }
        self.check_size(new)?;
        let mut nodes = self.nodes();
        let proof = merkle::consistency_proof_from(&mut nodes, old, new)?;
        Ok((merkle::root_from(&mut nodes, old)?, merkle::root_from(&mut nodes, new)?, proof))
    }
}
