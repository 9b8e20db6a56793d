//! The derived indexes of the layout: which keys an entry implies ([`index_keys`]), and how an
//! index key is written and read back.

use ledger_core::record::Kind;
use ledger_core::types::{EntryHash, RecordId, Seq};

/// The derived index keys of an entry (the layout above): one in each of the hash, record and
/// kind indexes, and one per indexed subject ([`indexed_subjects`]). The writer writes exactly
/// these, and `verify` recomputes them from each entry ([`visit_index_keys`] names the same
/// keys without building them).
pub fn index_keys(hash: EntryHash, record_id: RecordId, kind: Kind, subjects: &[String]) -> Vec<IndexKey> {
    let mut out = Vec::with_capacity(3 + subjects.len());
    visit_index_keys(hash, record_id, kind, subjects, |index, id| {
        out.push(match index {
            Index::Hash => IndexKey::Hash(hash),
            Index::Record => IndexKey::Record(record_id),
            Index::Kind => IndexKey::Kind(kind.code()),
            Index::Subject => IndexKey::Subject(String::from_utf8_lossy(id).into_owned()),
        })
    });
    out
}

/// Calls `f` with each derived index key of an entry, as (index, the key's
/// [`IndexKey::id_bytes`]): the keys of [`index_keys`], borrowed.
pub fn visit_index_keys(
    hash: EntryHash,
    record_id: RecordId,
    kind: Kind,
    subjects: &[String],
    mut f: impl FnMut(Index, &[u8]),
) {
    f(Index::Hash, &hash.0);
    f(Index::Record, &record_id.0);
    f(Index::Kind, &[kind.code()]);
    for s in subjects {
        f(Index::Subject, s.as_bytes());
    }
}

/// The subject strings the subject index holds for `record`: every subject it mentions
/// (sorted, distinct), except repository-qualified commits. Every record that names one also
/// names its bare form `git:<sha>`, which is indexed; a repository-qualified lookup filters
/// the bare hits (one index key per commit instead of two).
pub fn indexed_subjects(record: &ledger_core::record::Record) -> Vec<String> {
    let mut out: Vec<String> = record
        .subjects()
        .iter()
        .filter(|s| !matches!(s, ledger_core::subject::Subject::Commit { repo: Some(_), .. }))
        .map(|s| s.to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A derived index of the layout: keys written with each entry, recomputable from the entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Index {
    /// `h ‖ entry hash → seq`.
    Hash,
    /// `r ‖ record id → seq` (deduplication).
    Record,
    /// `s ‖ subject ‖ 0x00 ‖ seq` (queries by subject, `why`).
    Subject,
    /// `k ‖ kind code ‖ seq` (queries by kind, the key register on open).
    Kind,
}

impl Index {
    /// Every derived index.
    pub const ALL: [Index; 4] = [Index::Hash, Index::Record, Index::Subject, Index::Kind];

    /// The index's name in messages: `hash`, `record`, `subject`, `kind`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Index::Hash => "hash",
            Index::Record => "record",
            Index::Subject => "subject",
            Index::Kind => "kind",
        }
    }

    /// The first byte of its keys.
    pub(super) fn prefix(self) -> u8 {
        match self {
            Index::Hash => b'h',
            Index::Record => b'r',
            Index::Subject => b's',
            Index::Kind => b'k',
        }
    }
}

impl std::fmt::Display for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One key of a derived index, decoded (the seq it maps to travels beside it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IndexKey {
    /// An entry hash.
    Hash(EntryHash),
    /// A record id.
    Record(RecordId),
    /// A subject string.
    Subject(String),
    /// A kind code (see [`Kind::code`]; an unknown code is kept as it was found).
    Kind(u8),
    /// A key under an index's prefix that the layout cannot decode (wrong length, no
    /// separator): the raw key bytes. Never written; only found.
    Malformed(Index, Vec<u8>),
}

impl IndexKey {
    /// The index this key belongs to.
    #[must_use]
    pub fn index(&self) -> Index {
        match self {
            IndexKey::Hash(_) => Index::Hash,
            IndexKey::Record(_) => Index::Record,
            IndexKey::Subject(_) => Index::Subject,
            IndexKey::Kind(_) => Index::Kind,
            IndexKey::Malformed(i, _) => *i,
        }
    }

    /// The bytes that identify the key within its index (what a fingerprint covers).
    #[must_use]
    pub fn id_bytes(&self) -> &[u8] {
        match self {
            IndexKey::Hash(h) => &h.0,
            IndexKey::Record(r) => &r.0,
            IndexKey::Subject(s) => s.as_bytes(),
            IndexKey::Kind(k) => std::slice::from_ref(k),
            IndexKey::Malformed(_, raw) => raw,
        }
    }
}

impl std::fmt::Display for IndexKey {
    /// `hash:<hex>`, `record:<hex>`, `subject:<subject>`, `kind:<name>`; malformed keys in hex.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexKey::Hash(h) => write!(f, "hash:{h}"),
            IndexKey::Record(r) => write!(f, "record:{}", r.to_hex()),
            IndexKey::Subject(s) => write!(f, "subject:{s}"),
            IndexKey::Kind(c) => match Kind::from_code(*c) {
                Some(k) => write!(f, "kind:{k}"),
                None => write!(f, "kind:<unknown code {c}>"),
            },
            IndexKey::Malformed(i, raw) => write!(f, "{i}:<malformed key {}>", hex::encode(raw)),
        }
    }
}

/// The stored key and value of an index key pointing at `seq` (8 bytes, big-endian).
pub(super) fn index_pair<'a>(key: &IndexKey, seq: &'a [u8; 8]) -> (Vec<u8>, &'a [u8]) {
    let prefix = key.index().prefix();
    match key {
        IndexKey::Hash(_) | IndexKey::Record(_) => ([&[prefix][..], key.id_bytes()].concat(), seq),
        IndexKey::Subject(s) => ([&[prefix][..], s.as_bytes(), &[0], seq].concat(), &[]),
        IndexKey::Kind(code) => ([&[prefix, *code][..], seq].concat(), &[]),
        IndexKey::Malformed(_, raw) => ([&[prefix][..], raw].concat(), &[]),
    }
}

/// A stored index key read in place: whether the layout can decode it, the key's id bytes
/// ([`IndexKey::id_bytes`]; the whole key after the prefix when it is malformed) and the seq it
/// names (a malformed key's seq value or last 8 bytes, else `u64::MAX`).
pub(super) fn decode_index_id<'a>(index: Index, k: &'a [u8], v: &[u8]) -> (bool, &'a [u8], Seq) {
    let seq_of = |b: &[u8]| -> Option<Seq> { b.try_into().ok().map(|b: [u8; 8]| Seq(u64::from_be_bytes(b))) };
    let body = &k[1..];
    let decoded = match index {
        Index::Hash | Index::Record => seq_of(v).filter(|_| body.len() == 32).map(|s| (body, s)),
        Index::Kind => seq_of(body.get(1..).unwrap_or_default()).map(|s| (&body[..1], s)),
        Index::Subject => match body.len().checked_sub(9) {
            Some(n) if n > 0 && body[n] == 0 && std::str::from_utf8(&body[..n]).is_ok() => {
                seq_of(&body[n + 1..]).map(|s| (&body[..n], s))
            }
            _ => None,
        },
    };
    match decoded {
        Some((id, seq)) => (true, id, seq),
        None => {
            // Name what it seems to point at: a seq value, or the last 8 bytes of the key.
            let seq = seq_of(v).or_else(|| body.len().checked_sub(8).and_then(|n| seq_of(&body[n..])));
            (false, body, seq.unwrap_or(Seq(u64::MAX)))
        }
    }
}

/// Decodes a stored index key (with its value) as [`index_pair`] wrote it.
pub(super) fn decode_index_key(index: Index, k: &[u8], v: &[u8]) -> (IndexKey, Seq) {
    let (well_formed, id, seq) = decode_index_id(index, k, v);
    let key = match (well_formed, index) {
        (true, Index::Hash) => id.try_into().map(|h| IndexKey::Hash(EntryHash(h))).ok(),
        (true, Index::Record) => id.try_into().map(|r| IndexKey::Record(RecordId(r))).ok(),
        (true, Index::Kind) => Some(IndexKey::Kind(id[0])),
        (true, Index::Subject) => std::str::from_utf8(id).ok().map(|s| IndexKey::Subject(s.to_string())),
        (false, _) => None,
    };
    (key.unwrap_or_else(|| IndexKey::Malformed(index, id.to_vec())), seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(key: &IndexKey, seq: u64) -> (Vec<u8>, Vec<u8>) {
        let s = seq.to_be_bytes();
        let (k, v) = index_pair(key, &s);
        (k, v.to_vec())
    }

    #[test]
    fn written_keys_read_back_and_the_borrowed_reading_agrees() {
        let keys = [
            IndexKey::Hash(EntryHash([1; 32])),
            IndexKey::Record(RecordId([2; 32])),
            IndexKey::Kind(Kind::Review.code()),
            IndexKey::Subject("pr:o/r#5".into()),
        ];
        for key in keys {
            let (k, v) = stored(&key, 77);
            assert_eq!(decode_index_key(key.index(), &k, &v), (key.clone(), Seq(77)));
            assert_eq!(decode_index_id(key.index(), &k, &v), (true, key.id_bytes(), Seq(77)));
        }
        // Malformed keys: read as such, with the same id bytes both ways.
        for (index, k, v) in [
            (Index::Hash, b"hshort".to_vec(), 5u64.to_be_bytes().to_vec()),
            (Index::Kind, b"k\x04".to_vec(), vec![]),
            (Index::Subject, [&b"sgit:x"[..], &9u64.to_be_bytes()].concat(), vec![]),
            (Index::Subject, [&b"s\xff\0"[..], &9u64.to_be_bytes()].concat(), vec![]),
        ] {
            let (key, seq) = decode_index_key(index, &k, &v);
            assert!(matches!(key, IndexKey::Malformed(..)), "{key}");
            let (ok, id, seq2) = decode_index_id(index, &k, &v);
            assert_eq!((ok, id, seq2), (false, key.id_bytes(), seq));
        }
    }
}
