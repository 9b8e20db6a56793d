//! Stored interior nodes of the RFC 6962 tree, grouped in tiles as C2SP `tlog-tiles` does:
//! a tile at tile level `k` holds up to 256 consecutive hashes of tree level `8k` (a level-0
//! tile holds 256 leaf hashes; a level-1 tile holds the roots of 256 subtrees of 256 leaves).
//! The last tile of each level is partial (its width is below 256) until it fills.
//!
//! With tiles stored, the root of any perfect subtree takes one tile read and at most 127 hash
//! operations, so an inclusion or consistency proof at any tree size takes O(log n) reads
//! instead of reading every leaf. Appending a leaf touches the last tile of each level:
//! amortized O(1) hashes. A ledger stores a tile once, when it fills; the partial last tiles
//! stay in memory and are rebuilt from the entries and full tiles when it is opened.
//!
//! Tiles are a cache of what the entries determine: `verify` recomputes every tile from the
//! entries and compares it with the stored one, so a corrupt tile is found.

use std::collections::BTreeMap;

use crate::merkle::{node_hash, root, Hash, NodeSource, ProofError};

/// Tree levels per tile (C2SP tlog-tiles uses 8).
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile: `2^TILE_HEIGHT`.
pub const TILE_WIDTH: usize = 1 << TILE_HEIGHT;

/// One tile to store: `hashes` are the tree-level `8 × level` nodes with indexes
/// `index × 256 ..`, left to right (1 to 256 of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tile {
    /// Tile level (`k`: the hashes are of tree level `8k`).
    pub level: u8,
    /// Tile index within its level.
    pub index: u64,
    /// The hashes, left to right.
    pub hashes: Vec<Hash>,
}

impl Tile {
    /// The stored form: the hashes concatenated (32 bytes each).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.hashes.concat()
    }

    /// Splits a stored tile back into hashes.
    ///
    /// # Errors
    /// [`ProofError::MissingNode`] (naming the tile's first node) if the length is not a
    /// positive multiple of 32 bytes up to a full tile.
    pub fn hashes_from_bytes(level: u8, index: u64, bytes: &[u8]) -> Result<Vec<Hash>, ProofError> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(32) || bytes.len() > 32 * TILE_WIDTH {
            return Err(ProofError::MissingNode {
                level: u32::from(level) * TILE_HEIGHT,
                index: index * TILE_WIDTH as u64,
            });
        }
        Ok(bytes.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect())
    }
}

/// Number of tree-level-`8k` nodes that are complete in a tree of `size` leaves.
fn nodes_at(size: u64, level: u8) -> u64 {
    size.checked_shr(u32::from(level) * TILE_HEIGHT).unwrap_or(0)
}

/// The partial tile `(level, index, width)` of each tile level of a tree of `size` leaves: the
/// ones a [`TileBuilder`] must be given to continue the tree. Levels whose last tile is full
/// (width 0) are left out.
pub fn partial_tiles(size: u64) -> Vec<(u8, u64, usize)> {
    let mut out = vec![];
    let mut level = 0u8;
    loop {
        let n = nodes_at(size, level);
        if n == 0 {
            break;
        }
        let width = (n % TILE_WIDTH as u64) as usize;
        if width > 0 {
            out.push((level, n / TILE_WIDTH as u64, width));
        }
        level += 1;
    }
    out
}

/// Keeps the last (partial) tile of every level while leaves are appended, and hands out
/// the tiles each batch changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TileBuilder {
    size: u64,
    /// `partial[k]`: hashes of the incomplete last tile of tile level `k` (fewer than 256).
    partial: Vec<Vec<Hash>>,
}

impl TileBuilder {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Continues a tree of `size` leaves from its partial tiles (as listed by
    /// [`partial_tiles`], each with exactly its width of hashes).
    ///
    /// # Errors
    /// [`ProofError::WrongLength`] if a partial tile is missing or has the wrong width.
    pub fn resume(size: u64, partials: &BTreeMap<u8, Vec<Hash>>) -> Result<Self, ProofError> {
        let mut partial = vec![];
        let mut level = 0u8;
        while nodes_at(size, level) > 0 {
            let width = (nodes_at(size, level) % TILE_WIDTH as u64) as usize;
            let got = partials.get(&level).cloned().unwrap_or_default();
            if got.len() != width {
                return Err(ProofError::WrongLength { got: got.len(), expected: width });
            }
            partial.push(got);
            level += 1;
        }
        Ok(TileBuilder { size, partial })
    }

    /// Every partial last tile as `(level, index, hashes)`.
    pub fn partials(&self) -> Vec<(u8, u64, Vec<Hash>)> {
        (0..self.partial.len())
            .filter_map(|l| u8::try_from(l).ok())
            .filter_map(|l| self.partial(l).map(|(i, h)| (l, i, h.to_vec())))
            .collect()
    }

    /// The partial last tile of `level` as `(index, hashes)`, if that level has one.
    pub fn partial(&self, level: u8) -> Option<(u64, &[Hash])> {
        let hashes = self.partial.get(usize::from(level)).filter(|h| !h.is_empty())?;
        Some((nodes_at(self.size, level) / TILE_WIDTH as u64, hashes))
    }

    /// Appends leaf hashes; returns every tile they changed with its new contents (tiles that
    /// filled, and the partial last tile of each level touched), one per `(level, index)`.
    pub fn extend(&mut self, leaves: &[Hash]) -> Vec<Tile> {
        let (mut changed, touched) = self.push_all(leaves);
        for level in touched {
            if let Some((index, hashes)) = self.partial(level) {
                changed.push(Tile { level, index, hashes: hashes.to_vec() });
            }
        }
        changed
    }

    /// Appends leaf hashes; returns only the tiles they filled: what a ledger stores (partial
    /// tiles stay here, see [`partial_sources`]).
    pub fn extend_full(&mut self, leaves: &[Hash]) -> Vec<Tile> {
        self.push_all(leaves).0
    }

    /// Appends leaf hashes; returns the tiles that filled and the levels whose last tile changed.
    fn push_all(&mut self, leaves: &[Hash]) -> (Vec<Tile>, std::collections::BTreeSet<u8>) {
        let mut full: Vec<Tile> = vec![];
        let mut touched = std::collections::BTreeSet::new();
        for leaf in leaves {
            let mut node = *leaf;
            let mut level = 0u8;
            loop {
                if self.partial.len() <= usize::from(level) {
                    self.partial.push(Vec::with_capacity(TILE_WIDTH));
                }
                let index = nodes_at(self.size, level) / TILE_WIDTH as u64;
                let tile = &mut self.partial[usize::from(level)];
                tile.push(node);
                touched.insert(level);
                if tile.len() < TILE_WIDTH {
                    break;
                }
                // The tile is full: store it, and its root is the next level's newest node.
                let hashes = std::mem::replace(tile, Vec::with_capacity(TILE_WIDTH));
                node = root(&hashes);
                full.push(Tile { level, index, hashes });
                level += 1;
            }
            self.size += 1;
        }
        (full, touched)
    }
}

/// Where each hash of the partial tiles of a tree of `size` leaves comes from, so they can be
/// rebuilt without storing them: for tile level 0, the leaf indexes (`from..size`); for tile
/// level `k ≥ 1`, the indexes of the full level-`k−1` tiles whose roots they are. Returned as
/// `(level, first, count)`: level 0 counts leaves, level `k` counts full tiles of level `k−1`.
pub fn partial_sources(size: u64) -> Vec<(u8, u64, u64)> {
    partial_tiles(size)
        .into_iter()
        .map(|(level, index, width)| (level, index * TILE_WIDTH as u64, width as u64))
        .collect()
}

/// The root of a full tile's 256 hashes: the next tile level's hash for it.
///
/// # Errors
/// [`ProofError::WrongLength`] unless there are exactly 256 hashes.
pub fn full_tile_root(hashes: &[Hash]) -> Result<Hash, ProofError> {
    if hashes.len() != TILE_WIDTH {
        return Err(ProofError::WrongLength { got: hashes.len(), expected: TILE_WIDTH });
    }
    Ok(root(hashes))
}

/// A [`NodeSource`] over stored tiles: `read(level, index)` returns a tile's hashes (or
/// `None`). Tiles read once are kept for the life of the reader, so one proof reads each
/// tile at most once.
pub struct TileReader<F, E>
where
    F: FnMut(u8, u64) -> Result<Option<Vec<Hash>>, E>,
{
    read: F,
    cache: BTreeMap<(u8, u64), Vec<Hash>>,
}

impl<F, E> TileReader<F, E>
where
    F: FnMut(u8, u64) -> Result<Option<Vec<Hash>>, E>,
{
    /// A reader over `read`.
    pub fn new(read: F) -> Self {
        TileReader { read, cache: BTreeMap::new() }
    }
}

impl<F, E> NodeSource for TileReader<F, E>
where
    F: FnMut(u8, u64) -> Result<Option<Vec<Hash>>, E>,
    E: From<ProofError>,
{
    type Error = E;

    fn node(&mut self, level: u32, index: u64) -> Result<Hash, E> {
        let missing = || E::from(ProofError::MissingNode { level, index });
        let tile_level = u8::try_from(level / TILE_HEIGHT).map_err(|_| missing())?;
        let r = level % TILE_HEIGHT;
        // The node is the root of 2^r consecutive hashes of tree level 8k, all in one tile.
        let first = index.checked_shl(r).ok_or_else(missing)?;
        let key = (tile_level, first / TILE_WIDTH as u64);
        if !self.cache.contains_key(&key) {
            let hashes = (self.read)(key.0, key.1)?.ok_or_else(missing)?;
            self.cache.insert(key, hashes);
        }
        let tile = self.cache.get(&key).ok_or_else(missing)?;
        let off = (first % TILE_WIDTH as u64) as usize;
        let span = &tile.get(off..off + (1usize << r)).ok_or_else(missing)?;
        Ok(match span.len() {
            1 => span[0],
            // A perfect subtree: the RFC split halves it exactly.
            _ => perfect_root(span),
        })
    }
}

/// Root of a perfect subtree from its 2^r leaves (r ≥ 1).
fn perfect_root(hashes: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = hashes.to_vec();
    while level.len() > 1 {
        level = level.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{self, leaf_hash, Leaves};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// Builds tiles for `n` leaves in uneven batches, as stored (later writes replace earlier).
    fn build(all: &[Hash], batch: usize) -> BTreeMap<(u8, u64), Vec<Hash>> {
        let mut b = TileBuilder::new();
        let mut store = BTreeMap::new();
        for chunk in all.chunks(batch) {
            for t in b.extend(chunk) {
                store.insert((t.level, t.index), t.hashes);
            }
        }
        store
    }

    #[test]
    fn proofs_from_tiles_equal_proofs_from_leaves() {
        let all = leaves(70_000);
        let store = build(&all, 777);
        let mut reader = TileReader::new(|l, i| Ok::<_, ProofError>(store.get(&(l, i)).cloned()));
        for size in [1u64, 2, 3, 255, 256, 257, 511, 512, 65_535, 65_536, 65_537, 70_000] {
            let want = merkle::root(&all[..size as usize]);
            assert_eq!(merkle::root_from(&mut reader, size).unwrap(), want, "root at {size}");
            for idx in [0, size / 3, size / 2, size - 1] {
                let got = merkle::inclusion_proof_from(&mut reader, size, idx).unwrap();
                let expect = merkle::inclusion_proof_from(&mut Leaves(&all[..size as usize]), size, idx).unwrap();
                assert_eq!(got, expect, "inclusion {idx} in {size}");
                merkle::verify_inclusion(&all[idx as usize], idx, size, &got, &want).unwrap();
            }
            for old in [1, size / 2, size - 1, size] {
                if old == 0 {
                    continue;
                }
                let got = merkle::consistency_proof_from(&mut reader, old, size).unwrap();
                let expect = merkle::consistency_proof(&all[..size as usize], old as usize).unwrap();
                assert_eq!(got, expect, "consistency {old} → {size}");
            }
        }
    }

    #[test]
    fn batches_do_not_change_the_tiles_and_resume_continues_them() {
        let all = leaves(1_000);
        assert_eq!(build(&all, 1), build(&all, 1_000));
        assert_eq!(build(&all, 1), build(&all, 256));
        // Resume at 600 from the stored partial tiles, then append the rest.
        let first = build(&all[..600], 100);
        let partials: BTreeMap<u8, Vec<Hash>> =
            partial_tiles(600).into_iter().map(|(l, i, _)| (l, first[&(l, i)].clone())).collect();
        let mut b = TileBuilder::resume(600, &partials).unwrap();
        let mut store = first.clone();
        for t in b.extend(&all[600..]) {
            store.insert((t.level, t.index), t.hashes);
        }
        assert_eq!(store, build(&all, 1));
        // `extend_full` hands out exactly the full tiles `extend` does, in the same order.
        let (mut a, mut b) = (TileBuilder::new(), TileBuilder::new());
        for chunk in all.chunks(300) {
            let full: Vec<Tile> = a.extend(chunk).into_iter().filter(|t| t.hashes.len() == TILE_WIDTH).collect();
            assert_eq!(b.extend_full(chunk), full);
        }
        assert_eq!(a, b);
        // A partial tile of the wrong width is refused.
        let mut bad = partials.clone();
        bad.get_mut(&0).unwrap().pop();
        assert!(TileBuilder::resume(600, &bad).is_err());
    }

    #[test]
    fn a_missing_or_short_tile_is_an_error_not_a_wrong_proof() {
        let all = leaves(600);
        let mut store = build(&all, 600);
        store.remove(&(0, 1));
        let mut reader = TileReader::new(|l, i| Ok::<_, ProofError>(store.get(&(l, i)).cloned()));
        let e = merkle::inclusion_proof_from(&mut reader, 600, 300).unwrap_err();
        assert!(matches!(e, ProofError::MissingNode { .. }), "{e}");
        assert_eq!(partial_tiles(600), vec![(0, 2, 88), (1, 0, 2)]);
        assert_eq!(partial_tiles(512), vec![(1, 0, 2)]);
        // Partial tiles of 600 leaves: leaves 512..600, and the roots of level-0 tiles 0..2.
        assert_eq!(partial_sources(600), vec![(0, 512, 88), (1, 0, 2)]);
        assert!(Tile::hashes_from_bytes(0, 0, &[0; 33]).is_err());
    }
}
