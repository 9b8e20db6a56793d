//! RFC 6962 Merkle tree: the reference test vectors of Certificate Transparency (as
//! published by transparency-dev/merkle, retyped from their data), and exhaustive checks that
//! every proof verifies and every mutation of it is refused: every sampled bit of every proof
//! hash, the leaf, the index, the roots, a longer or shorter proof, and every size whose proof
//! has another shape.

use ledger_core::merkle::*;

fn h(s: &str) -> Hash {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).unwrap();
    out
}

/// The reference leaves: "", 00, 10, 2021, 3031, 40414243, 5051525354555657, 606162…6f.
fn reference_leaves() -> Vec<Hash> {
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
        .iter()
        .map(|x| leaf_hash(&hex::decode(x).unwrap()))
        .collect()
}

const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn reference_roots() {
    let leaves = reference_leaves();
    for (n, want) in ROOTS.iter().enumerate() {
        assert_eq!(hex::encode(root(&leaves[..n])), *want, "MTH of the first {n} leaves");
    }
}

#[test]
fn reference_inclusion_proofs() {
    let leaves = reference_leaves();
    // (0-based leaf index, tree size, path)
    let cases: &[(usize, usize, &[&str])] = &[
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, path) in cases {
        let want: Vec<Hash> = path.iter().map(|x| h(x)).collect();
        let got = inclusion_proof(&leaves[..*size], *index).unwrap();
        assert_eq!(got, want, "PATH({index}, D[{size}])");
        verify_inclusion(&leaves[*index], *index as u64, *size as u64, &got, &h(ROOTS[*size])).unwrap();
    }
}

#[test]
fn reference_consistency_proofs() {
    let leaves = reference_leaves();
    let cases: &[(usize, usize, &[&str])] = &[
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (m, n, path) in cases {
        let want: Vec<Hash> = path.iter().map(|x| h(x)).collect();
        let got = consistency_proof(&leaves[..*n], *m).unwrap();
        assert_eq!(got, want, "PROOF({m}, D[{n}])");
        verify_consistency(*m as u64, *n as u64, &got, &h(ROOTS[*m]), &h(ROOTS[*n])).unwrap();
    }
}

fn leaves(n: usize) -> Vec<Hash> {
    (0..n as u32).map(|i| leaf_hash(&i.to_le_bytes())).collect()
}

fn flip(x: &Hash, bit: usize) -> Hash {
    let mut y = *x;
    y[bit / 8] ^= 1 << (bit % 8);
    y
}

#[test]
fn every_leaf_proves_and_every_mutation_is_refused() {
    let all = leaves(1024);
    // Every leaf of every tree up to 128 leaves; beyond, every size up to 1,024 in steps, with
    // leaves spread over the tree (both ends always included).
    let sizes: Vec<usize> = (1..=128).chain((129..=1024).step_by(37)).chain([1024]).collect();
    for &n in &sizes {
        let d = &all[..n];
        let r = root(d);
        let idx: Vec<usize> =
            if n <= 128 { (0..n).collect() } else { (0..n).step_by(n / 17 + 1).chain([n - 1]).collect() };
        for &i in &idx {
            let p = inclusion_proof(d, i).unwrap();
            verify_inclusion(&d[i], i as u64, n as u64, &p, &r).unwrap_or_else(|e| panic!("leaf {i} of {n}: {e}"));
            if n > 64 {
                continue;
            }
            // Every 1-bit mutation of the proof, the leaf, the index and the size is refused.
            for (j, node) in p.iter().enumerate() {
                for bit in (0..256).step_by(31) {
                    let mut q = p.clone();
                    q[j] = flip(node, bit);
                    assert!(verify_inclusion(&d[i], i as u64, n as u64, &q, &r).is_err(), "mutated proof {i}/{n}");
                }
            }
            assert!(verify_inclusion(&flip(&d[i], 3), i as u64, n as u64, &p, &r).is_err());
            for bit in 0..11 {
                let (i2, n2) = ((i as u64) ^ (1 << bit), (n as u64) ^ (1 << bit));
                if i2 < n as u64 && d[i2 as usize] != d[i] {
                    assert!(verify_inclusion(&d[i], i2, n as u64, &p, &r).is_err(), "index {i}→{i2} of {n}");
                }
                // A size whose proof for this index has another length must be refused. (Where
                // the shapes coincide the path is also a valid path in a tree of that size: the
                // size is bound to the root by the signed checkpoint, not by the path.)
                if n2 > i as u64 && n2 != n as u64 && n2 <= 1024 {
                    let other = inclusion_proof(&all[..n2 as usize], i).unwrap();
                    if other.len() != p.len() {
                        assert!(verify_inclusion(&d[i], i as u64, n2, &p, &r).is_err(), "size {n}→{n2} for {i}");
                    }
                }
            }
            let mut longer = p.clone();
            longer.push(r);
            assert!(verify_inclusion(&d[i], i as u64, n as u64, &longer, &r).is_err());
            if !p.is_empty() {
                assert!(verify_inclusion(&d[i], i as u64, n as u64, &p[..p.len() - 1], &r).is_err());
            }
        }
    }
}

#[test]
fn every_consistency_proof_verifies_and_mutations_are_refused() {
    let all = leaves(200);
    for n in 1..=64usize {
        let d = &all[..n];
        let r2 = root(d);
        for m in 1..=n {
            let r1 = root(&d[..m]);
            let p = consistency_proof(d, m).unwrap();
            verify_consistency(m as u64, n as u64, &p, &r1, &r2).unwrap_or_else(|e| panic!("{m}→{n}: {e}"));
            for (j, node) in p.iter().enumerate() {
                let mut q = p.clone();
                q[j] = flip(node, (j * 7 + m) % 256);
                assert!(verify_consistency(m as u64, n as u64, &q, &r1, &r2).is_err(), "mutated {m}→{n}");
            }
            assert!(verify_consistency(m as u64, n as u64, &p, &flip(&r1, 1), &r2).is_err());
            assert!(verify_consistency(m as u64, n as u64, &p, &r1, &flip(&r2, 1)).is_err());
            if m < n {
                assert!(verify_consistency(m as u64 + 1, n as u64, &p, &r1, &r2).is_err(), "size1 {m}+1→{n}");
            }
        }
    }
    // Sizes out of order are refused.
    assert!(verify_consistency(3, 2, &[], &root(&all[..3]), &root(&all[..2])).is_err());
}

/// Every perfect subtree of a tree, by level (`0.[l][i]`): proofs read from it cost
/// O(log n), which is what makes checking every leaf of every tree up to 1,024 cheap.
struct Table(Vec<Vec<Hash>>);

impl NodeSource for Table {
    type Error = ProofError;
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, ProofError> {
        self.0
            .get(level as usize)
            .and_then(|l| l.get(index as usize))
            .copied()
            .ok_or(ProofError::MissingNode { level, index })
    }
}

#[test]
fn every_leaf_of_every_tree_up_to_1024_leaves_proves() {
    let all = leaves(1024);
    let mut levels = vec![all.clone()];
    while levels.last().is_some_and(|l| l.len() > 1) {
        let next = levels.last().unwrap().chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
        levels.push(next);
    }
    let mut src = Table(levels);
    let mut checked = 0u64;
    for n in 1..=1024u64 {
        let r = root_from(&mut src, n).unwrap();
        assert_eq!(r, root(&all[..n as usize]), "root of {n}");
        for i in 0..n {
            let leaf = &all[i as usize];
            let p = inclusion_proof_from(&mut src, n, i).unwrap();
            verify_inclusion(leaf, i, n, &p, &r).unwrap_or_else(|e| panic!("leaf {i} of {n}: {e}"));
            checked += 1;
            // A 1-bit mutation of one proof hash (a different hash and bit from leaf to leaf)
            // and of the leaf is refused, for every leaf.
            if !p.is_empty() {
                let j = (i as usize) % p.len();
                let mut q = p.clone();
                q[j] = flip(&p[j], (i as usize * 37 + n as usize) % 256);
                assert!(verify_inclusion(leaf, i, n, &q, &r).is_err(), "mutated hash {j} of {i}/{n}");
            }
            assert!(verify_inclusion(&flip(leaf, (i % 256) as usize), i, n, &p, &r).is_err());
            // Every 1-bit mutation of the index, and of the size where the proof shape differs
            // (where it coincides, the size is bound by the signed checkpoint, not the path):
            // for every leaf up to 256 leaves, for every 8th leaf beyond.
            if n > 256 && i % 8 != 0 {
                continue;
            }
            for bit in 0..11 {
                let (i2, n2) = (i ^ (1 << bit), n ^ (1 << bit));
                if i2 < n {
                    assert!(verify_inclusion(leaf, i2, n, &p, &r).is_err(), "index {i}→{i2} of {n}");
                }
                if n2 > i && n2 <= 1024 && inclusion_proof_from(&mut src, n2, i).unwrap().len() != p.len() {
                    assert!(verify_inclusion(leaf, i, n2, &p, &r).is_err(), "size {n}→{n2} for {i}");
                }
            }
        }
    }
    assert_eq!(checked, 1024 * 1025 / 2);
}
