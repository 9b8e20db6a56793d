//! How the layout's keys and values are encoded (see the table in `mod.rs`): seq-keyed and
//! tile keys, and the head, tree and `Keys` records.

use ledger_core::merkle::Frontier;
use ledger_core::tiles::Tile;
use ledger_core::types::{EntryHash, Seq};

use crate::error::{Error, Result};

pub(super) fn seq_key(prefix: u8, seq: Seq) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&seq.0.to_be_bytes());
    k
}

pub(super) fn tile_key(level: u8, index: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = b't';
    k[1] = level;
    k[2..].copy_from_slice(&index.to_be_bytes());
    k
}

/// Each tile's key and stored bytes.
pub(super) fn tile_pairs(tiles: &[Tile]) -> Vec<([u8; 10], Vec<u8>)> {
    tiles.iter().map(|t| (tile_key(t.level, t.index), t.to_bytes())).collect()
}

pub(super) fn decode_seq(v: &[u8]) -> Result<Seq> {
    let b: [u8; 8] = v.try_into().map_err(|_| Error::Storage(format!("malformed seq value ({} bytes)", v.len())))?;
    Ok(Seq(u64::from_be_bytes(b)))
}

pub(super) fn seq_suffix(k: &[u8]) -> Result<Seq> {
    if k.len() < 8 {
        return Err(Error::Storage("malformed index key".into()));
    }
    decode_seq(&k[k.len() - 8..])
}

pub(super) fn decode_head(v: &[u8]) -> Result<(Seq, EntryHash)> {
    if v.len() != 40 {
        return Err(Error::Storage("malformed head record".into()));
    }
    let seq = decode_seq(&v[..8])?;
    let mut h = [0u8; 32];
    h.copy_from_slice(&v[8..]);
    Ok((seq, EntryHash(h)))
}

pub(super) fn decode_tree(v: &[u8]) -> Result<Frontier> {
    if v.len() < 8 || !(v.len() - 8).is_multiple_of(32) {
        return Err(Error::Storage("malformed tree record".into()));
    }
    let size = decode_seq(&v[..8])?.0;
    let peaks = v[8..].chunks(32).map(|c| c.try_into().unwrap_or([0; 32])).collect();
    Frontier::from_parts(size, peaks).map_err(|e| Error::Storage(format!("malformed tree record: {e}")))
}

/// The key of the `Keys` record (every key entry's seq). Upper case: no index prefix is.
pub(super) const KEYS_RECORD: &[u8] = b"Keys";

pub(super) fn encode_seqs(seqs: &[Seq]) -> Vec<u8> {
    seqs.iter().flat_map(|s| s.0.to_be_bytes()).collect()
}
