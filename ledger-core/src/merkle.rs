//! The RFC 6962 Merkle tree over entries (SHA-256; leaf = H(0x00 ‖ entry bytes), node =
//! H(0x01 ‖ left ‖ right)), with inclusion and consistency proofs generated as RFC 6962 §2.1
//! defines them and verified by the RFC 9162 §2.1.3.2 and §2.1.4.2 algorithms.
//!
//! SHA-256 (not BLAKE3) is deliberate: it is what witnesses and existing transparency-log
//! verifiers speak. [`Frontier`] keeps the tree incrementally: appending a leaf touches
//! O(log n) hashes and the root of the whole tree is available at any time.

use sha2::{Digest as _, Sha256};

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// Domain prefix of a leaf hash (RFC 6962 §2.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// Domain prefix of an interior node hash (RFC 6962 §2.1).
pub const NODE_PREFIX: u8 = 0x01;

/// Why a proof is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The index is not below the tree size, or the sizes are out of order.
    #[error("index or size out of range: {0}")]
    OutOfRange(&'static str),
    /// The proof has the wrong number of hashes for these sizes.
    #[error("proof has {got} hashes, expected {expected}")]
    WrongLength {
        /// Hashes given.
        got: usize,
        /// Hashes the sizes require.
        expected: usize,
    },
    /// The recomputed root differs from the expected root.
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
    /// A proof needs a subtree the source does not hold complete.
    #[error("tree node at level {level}, index {index} is not available")]
    MissingNode {
        /// Level (the subtree spans 2^level leaves).
        level: u32,
        /// Index at that level.
        index: u64,
    },
}

/// `H(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    h.finalize().into()
}

/// `H(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly less than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// Where proof generation reads tree hashes from: the root of any perfect subtree, named by
/// its level (it spans `2^level` leaves) and its index at that level (it starts at leaf
/// `index << level`). A slice of leaf hashes is one source ([`Leaves`]); stored tiles are
/// another (see [`crate::tiles`]). Proofs need O(log n) such nodes, so a source that stores
/// interior nodes proves in O(log n) reads whatever the tree size.
pub trait NodeSource {
    /// The source's error; it must be able to carry a [`ProofError`].
    type Error: From<ProofError>;
    /// MTH of leaves `[index << level, (index + 1) << level)`.
    ///
    /// # Errors
    /// Whatever the source fails with, e.g. [`ProofError::MissingNode`] when the subtree is
    /// not complete in it.
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// Leaf hashes in memory as a [`NodeSource`]; interior nodes are recomputed on demand.
pub struct Leaves<'a>(pub &'a [Hash]);

impl NodeSource for Leaves<'_> {
    type Error = ProofError;
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, ProofError> {
        let missing = ProofError::MissingNode { level, index };
        let lo = index.checked_shl(level).ok_or(missing.clone())?;
        let hi = lo.checked_add(1u64.checked_shl(level).ok_or(missing.clone())?).ok_or(missing.clone())?;
        let range = usize::try_from(lo).ok().zip(usize::try_from(hi).ok()).filter(|(_, h)| *h <= self.0.len());
        let (lo, hi) = range.ok_or(missing)?;
        Ok(root(&self.0[lo..hi]))
    }
}

/// MTH(D[lo:hi]) (RFC 6962 §2.1), read from `src` as perfect subtrees: one node when the range
/// is a perfect, aligned subtree, else the RFC's split into a left perfect subtree and the rest.
///
/// # Errors
/// [`ProofError::OutOfRange`] if `lo >= hi`; the source's errors.
pub fn subtree_root<S: NodeSource>(src: &mut S, lo: u64, hi: u64) -> Result<Hash, S::Error> {
    if lo >= hi {
        return Err(ProofError::OutOfRange("empty subtree range").into());
    }
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        let level = n.trailing_zeros();
        return src.node(level, lo >> level);
    }
    let k = split(n);
    let left = subtree_root(src, lo, lo + k)?;
    let right = subtree_root(src, lo + k, hi)?;
    Ok(node_hash(&left, &right))
}

/// MTH(D[n]) over leaf hashes (RFC 6962 §2.1).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The root of the first `size` leaves of `src` (the empty root for size 0).
///
/// # Errors
/// The source's errors.
pub fn root_from<S: NodeSource>(src: &mut S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    subtree_root(src, 0, size)
}

/// PATH(m, D[n]): the inclusion proof of leaf `index` in the tree of `leaves` (RFC 6962 §2.1.1).
///
/// # Errors
/// [`ProofError::OutOfRange`] if `index >= leaves.len()`.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Result<Vec<Hash>, ProofError> {
    inclusion_proof_from(&mut Leaves(leaves), leaves.len() as u64, index as u64)
}

/// PATH(index, D[size]) read from `src` (RFC 6962 §2.1.1): O(log size) nodes.
///
/// # Errors
/// [`ProofError::OutOfRange`] if `index >= size`; the source's errors.
pub fn inclusion_proof_from<S: NodeSource>(src: &mut S, size: u64, index: u64) -> Result<Vec<Hash>, S::Error> {
    if index >= size {
        return Err(ProofError::OutOfRange("leaf index not below the tree size").into());
    }
    fn path<S: NodeSource>(src: &mut S, m: u64, lo: u64, hi: u64, out: &mut Vec<Hash>) -> Result<(), S::Error> {
        if hi - lo <= 1 {
            return Ok(());
        }
        let k = split(hi - lo);
        if m < lo + k {
            path(src, m, lo, lo + k, out)?;
            out.push(subtree_root(src, lo + k, hi)?);
        } else {
            path(src, m, lo + k, hi, out)?;
            out.push(subtree_root(src, lo, lo + k)?);
        }
        Ok(())
    }
    let mut out = vec![];
    path(src, index, 0, size, &mut out)?;
    Ok(out)
}

/// PROOF(m, D[n]): the consistency proof between the first `old_size` leaves and all of
/// `leaves` (RFC 6962 §2.1.2).
///
/// # Errors
/// [`ProofError::OutOfRange`] unless `0 < old_size <= leaves.len()`.
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Result<Vec<Hash>, ProofError> {
    consistency_proof_from(&mut Leaves(leaves), old_size as u64, leaves.len() as u64)
}

/// PROOF(old, D[new]) read from `src` (RFC 6962 §2.1.2): O(log new) nodes.
///
/// # Errors
/// [`ProofError::OutOfRange`] unless `0 < old <= new`; the source's errors.
pub fn consistency_proof_from<S: NodeSource>(src: &mut S, old: u64, new: u64) -> Result<Vec<Hash>, S::Error> {
    if old == 0 || old > new {
        return Err(ProofError::OutOfRange("old size must be in 1..=new size").into());
    }
    // SUBPROOF(m, D[lo:hi], complete) with m = old - lo.
    fn sub<S: NodeSource>(
        src: &mut S,
        old: u64,
        lo: u64,
        hi: u64,
        complete: bool,
        out: &mut Vec<Hash>,
    ) -> Result<(), S::Error> {
        let (n, m) = (hi - lo, old - lo);
        if m == n {
            if !complete {
                out.push(subtree_root(src, lo, hi)?);
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            sub(src, old, lo, lo + k, complete, out)?;
            out.push(subtree_root(src, lo + k, hi)?);
        } else {
            sub(src, old, lo + k, hi, false, out)?;
            out.push(subtree_root(src, lo, lo + k)?);
        }
        Ok(())
    }
    let mut out = vec![];
    sub(src, old, 0, new, true, &mut out)?;
    Ok(out)
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
///
/// # Errors
/// [`ProofError`] naming why the proof does not hold.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange("leaf index not below the tree size"));
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(ProofError::WrongLength { got: proof.len(), expected: inclusion_len(index, size) });
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength { got: proof.len(), expected: inclusion_len(index, size) });
    }
    if &r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

fn inclusion_len(index: u64, size: u64) -> usize {
    let (mut f_n, mut s_n, mut len) = (index, size - 1, 0);
    while s_n != 0 {
        if f_n & 1 == 0 && f_n == s_n {
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
            if s_n == 0 {
                break;
            }
        }
        len += 1;
        f_n >>= 1;
        s_n >>= 1;
    }
    len
}

/// Verifies a consistency proof between tree sizes `size1 <= size2` (RFC 9162 §2.1.4.2).
///
/// # Errors
/// [`ProofError`] naming why the proof does not hold.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::OutOfRange("old size larger than new size"));
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength { got: proof.len(), expected: 0 });
        }
        return if root1 == root2 { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    if size1 == 0 {
        // Every tree is consistent with the empty tree; the proof is empty.
        return if proof.is_empty() { Ok(()) } else { Err(ProofError::WrongLength { got: proof.len(), expected: 0 }) };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength { got: 0, expected: 1 });
    }
    // If size1 is an exact power of two, root1 itself is the first node of the path.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(*root1);
    }
    path.extend_from_slice(proof);
    let (mut f_n, mut s_n) = (size1 - 1, size2 - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (path[0], path[0]);
    for c in &path[1..] {
        if s_n == 0 {
            return Err(ProofError::WrongLength { got: proof.len(), expected: proof.len() - 1 });
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength { got: proof.len(), expected: proof.len() + 1 });
    }
    if &f_r != root1 || &s_r != root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The perfect subtrees a range proof for leaves `[start, end)` of a tree of `size` names, as
/// (level, index) pairs: `left` covers `[0, start)`, one subtree per set bit of `start`, largest
/// first (the peaks of a [`Frontier`] of `start` leaves); `right` covers `[end, size)` with the
/// largest aligned perfect subtrees that fit, left to right. Together with the range's leaves
/// they are exactly what recomputes the root of `size` (RFC 6962 §2.1): appending the leaves
/// and then the right subtrees to a frontier built from `left` yields the tree of `size`.
///
/// # Errors
/// [`ProofError::OutOfRange`] unless `start < end <= size`.
pub fn range_proof_nodes(start: u64, end: u64, size: u64) -> Result<RangeNodes, ProofError> {
    if start >= end || end > size {
        return Err(ProofError::OutOfRange("a range proof needs start < end <= size"));
    }
    let mut left = vec![];
    let mut x = 0u64;
    for level in (0..64u32).rev() {
        if start & (1 << level) != 0 {
            left.push((level, x >> level));
            x += 1 << level;
        }
    }
    let mut right = vec![];
    let mut x = end;
    while x < size {
        let mut level = x.trailing_zeros().min(63);
        while x + (1u64 << level) > size {
            level -= 1;
        }
        right.push((level, x >> level));
        x += 1 << level;
    }
    Ok(RangeNodes { left, right })
}

/// The subtrees of a range proof: see [`range_proof_nodes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeNodes {
    /// (level, index) of the subtrees covering the leaves before the range, largest first.
    pub left: Vec<(u32, u64)>,
    /// (level, index) of the subtrees covering the leaves after the range, left to right.
    pub right: Vec<(u32, u64)>,
}

/// The range proof for leaves `[start, end)` of the tree of `size`, read from `src`: the
/// `left` and `right` hashes of the subtrees [`range_proof_nodes`] names.
///
/// # Errors
/// [`ProofError::OutOfRange`] for a bad range; the source's errors.
pub fn range_proof_from<S: NodeSource>(
    src: &mut S,
    start: u64,
    end: u64,
    size: u64,
) -> Result<(Vec<Hash>, Vec<Hash>), S::Error> {
    let nodes = range_proof_nodes(start, end, size)?;
    let left = nodes.left.iter().map(|(l, i)| src.node(*l, *i)).collect::<Result<_, _>>()?;
    let right = nodes.right.iter().map(|(l, i)| src.node(*l, *i)).collect::<Result<_, _>>()?;
    Ok((left, right))
}

/// Checks a contiguous range of leaves against a tree root as the leaves stream past, in
/// O(log size) memory: built from the range's `left` hashes, fed every leaf hash of
/// `[start, end)` in order, then finished with the `right` hashes and the expected root.
#[derive(Clone, Debug)]
pub struct RangeVerifier {
    frontier: Frontier,
    end: u64,
    size: u64,
}

impl RangeVerifier {
    /// Starts checking leaves `[start, end)` of the tree of `size` from the `left` hashes.
    ///
    /// # Errors
    /// [`ProofError::OutOfRange`] for a bad range; [`ProofError::WrongLength`] unless there is
    /// one left hash per set bit of `start`.
    pub fn new(start: u64, end: u64, size: u64, left: Vec<Hash>) -> Result<Self, ProofError> {
        range_proof_nodes(start, end, size)?;
        Ok(RangeVerifier { frontier: Frontier::from_parts(start, left)?, end, size })
    }

    /// The index of the next leaf expected.
    pub fn next(&self) -> u64 {
        self.frontier.size()
    }

    /// Feeds the next leaf hash.
    ///
    /// # Errors
    /// [`ProofError::OutOfRange`] if every leaf of the range was already fed.
    pub fn push(&mut self, leaf: Hash) -> Result<(), ProofError> {
        if self.frontier.size() >= self.end {
            return Err(ProofError::OutOfRange("more leaves than the range holds"));
        }
        self.frontier.push(leaf);
        Ok(())
    }

    /// Completes the tree with the `right` hashes and compares its root with `root`.
    ///
    /// # Errors
    /// [`ProofError::OutOfRange`] if leaves are missing; [`ProofError::WrongLength`] for the
    /// wrong number of right hashes; [`ProofError::RootMismatch`] if the root differs.
    pub fn finish(mut self, right: &[Hash], root: &Hash) -> Result<(), ProofError> {
        if self.frontier.size() != self.end {
            return Err(ProofError::OutOfRange("fewer leaves than the range holds"));
        }
        let nodes = range_proof_nodes(self.end - 1, self.end, self.size)?;
        if nodes.right.len() != right.len() {
            return Err(ProofError::WrongLength { got: right.len(), expected: nodes.right.len() });
        }
        for ((level, _), hash) in nodes.right.iter().zip(right) {
            self.frontier.push_subtree(*level, *hash)?;
        }
        if self.frontier.root() != *root {
            return Err(ProofError::RootMismatch);
        }
        Ok(())
    }
}

/// The right edge of a growing tree: the roots of its perfect subtrees, largest first. Enough
/// to append in O(log n) and to compute the root of the whole tree at any size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Roots of the perfect subtrees, left to right (one per set bit of `size`).
    peaks: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the perfect subtrees, left to right (one per set bit of the size).
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Rebuilds a frontier from its size and peaks.
    ///
    /// # Errors
    /// [`ProofError::WrongLength`] unless there is one peak per set bit of `size`.
    pub fn from_parts(size: u64, peaks: Vec<Hash>) -> Result<Self, ProofError> {
        let expected = size.count_ones() as usize;
        if peaks.len() != expected {
            return Err(ProofError::WrongLength { got: peaks.len(), expected });
        }
        Ok(Frontier { size, peaks })
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        let mut s = self.size;
        // Merge equal-sized subtrees: one merge per trailing one bit of the old size.
        while s & 1 == 1 {
            let left = self.peaks.pop().unwrap_or(node);
            node = node_hash(&left, &node);
            s >>= 1;
        }
        self.peaks.push(node);
        self.size += 1;
    }

    /// Appends the root of a perfect subtree of `2^level` leaves, as if its leaves were
    /// pushed one by one.
    ///
    /// # Errors
    /// [`ProofError::OutOfRange`] unless the size is a multiple of `2^level` (the subtree is
    /// aligned) and the result fits in a u64.
    pub fn push_subtree(&mut self, level: u32, root: Hash) -> Result<(), ProofError> {
        let width = 1u64.checked_shl(level).filter(|_| level < 64).ok_or(ProofError::OutOfRange("subtree level"))?;
        if !self.size.is_multiple_of(width) {
            return Err(ProofError::OutOfRange("a subtree must start at a multiple of its width"));
        }
        let new_size = self.size.checked_add(width).ok_or(ProofError::OutOfRange("tree size overflows"))?;
        let mut node = root;
        let mut s = self.size >> level;
        while s & 1 == 1 {
            let left = self.peaks.pop().unwrap_or(node);
            node = node_hash(&left, &node);
            s >>= 1;
        }
        self.peaks.push(node);
        self.size = new_size;
        Ok(())
    }

    /// MTH of all leaves so far.
    pub fn root(&self) -> Hash {
        let mut it = self.peaks.iter().rev();
        match it.next() {
            None => empty_root(),
            Some(last) => it.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_proofs_recompute_the_root_and_refuse_changes() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for size in 1..=leaves.len() as u64 {
            let root_n = root(&leaves[..size as usize]);
            for start in 0..size {
                for end in start + 1..=size {
                    let (left, right) =
                        range_proof_from(&mut Leaves(&leaves[..size as usize]), start, end, size).unwrap();
                    let check = |left: Vec<Hash>, leaves_in: &[Hash], right: &[Hash]| -> Result<(), ProofError> {
                        let mut v = RangeVerifier::new(start, end, size, left)?;
                        for l in leaves_in {
                            v.push(*l)?;
                        }
                        v.finish(right, &root_n)
                    };
                    let range = &leaves[start as usize..end as usize];
                    assert_eq!(check(left.clone(), range, &right), Ok(()), "size {size} [{start},{end})");
                    // A changed leaf, a missing leaf, a changed edge hash: refused.
                    let mut changed = range.to_vec();
                    changed[0][0] ^= 1;
                    assert!(check(left.clone(), &changed, &right).is_err());
                    assert!(check(left.clone(), &range[1..], &right).is_err());
                    if let Some(h) = right.first() {
                        let mut r = right.clone();
                        r[0] = leaf_hash(h);
                        assert!(check(left.clone(), range, &r).is_err());
                    }
                    if !left.is_empty() {
                        let mut l = left.clone();
                        l[0][5] ^= 1;
                        assert!(check(l, range, &right).is_err());
                    }
                }
            }
        }
    }

    #[test]
    fn frontier_matches_the_recursive_definition() {
        let leaves: Vec<Hash> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut f = Frontier::new();
        assert_eq!(f.root(), empty_root());
        for (i, l) in leaves.iter().enumerate() {
            f.push(*l);
            assert_eq!(f.root(), root(&leaves[..=i]), "size {}", i + 1);
        }
    }
}
