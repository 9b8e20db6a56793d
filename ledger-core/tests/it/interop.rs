//! Interoperability: the ledger's RFC 6962 roots and proofs against `ct-merkle`, an
//! independent published implementation (dev-dependency only): same roots, byte-identical
//! proofs, and each side verifies the other's proofs.

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use ledger_core::merkle;
use sha2_011::Sha256;

fn items(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("entry bytes #{i} {}", "x".repeat(i % 7)).into_bytes()).collect()
}

fn concat(hs: &[merkle::Hash]) -> Vec<u8> {
    hs.iter().flatten().copied().collect()
}

fn root_of(tree: &MemoryBackedTree<Sha256, Vec<u8>>) -> [u8; 32] {
    tree.root().as_bytes().as_slice().try_into().unwrap()
}

#[test]
fn roots_and_proofs_agree_with_ct_merkle() {
    let data = items(96);
    let leaves: Vec<merkle::Hash> = data.iter().map(|d| merkle::leaf_hash(d)).collect();
    let mut ct = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    let mut ct_roots = vec![];
    for d in &data {
        ct.push(d.clone());
        ct_roots.push(root_of(&ct));
    }
    for n in 1..=data.len() {
        let ours = merkle::root(&leaves[..n]);
        assert_eq!(ours, ct_roots[n - 1], "root of {n} leaves");
        let ct_root = RootHash::<Sha256>::new(ours.into(), n as u64);
        for (i, d) in data.iter().enumerate().take(n) {
            let p = merkle::inclusion_proof(&leaves[..n], i).unwrap();
            let theirs = InclusionProof::<Sha256>::try_from_bytes(concat(&p)).unwrap();
            ct_root
                .verify_inclusion(d, i as u64, &theirs)
                .unwrap_or_else(|e| panic!("ct-merkle rejects our proof {i}/{n}: {e:?}"));
        }
        for m in 1..=n {
            let p = merkle::consistency_proof(&leaves[..n], m).unwrap();
            let old = RootHash::<Sha256>::new(merkle::root(&leaves[..m]).into(), m as u64);
            let theirs = ConsistencyProof::<Sha256>::try_from_bytes(concat(&p)).unwrap();
            ct_root
                .verify_consistency(&old, &theirs)
                .unwrap_or_else(|e| panic!("ct-merkle rejects our consistency proof {m}→{n}: {e:?}"));
        }
    }
    // Proofs ct-merkle generates verify with ours, and are the same bytes.
    let n = data.len();
    let root = merkle::root(&leaves);
    for i in 0..n {
        let theirs = ct.prove_inclusion(i);
        let hashes: Vec<merkle::Hash> = theirs.as_bytes().chunks(32).map(|c| c.try_into().unwrap()).collect();
        assert_eq!(hashes, merkle::inclusion_proof(&leaves, i).unwrap(), "inclusion proof bytes for {i}");
        merkle::verify_inclusion(&leaves[i], i as u64, n as u64, &hashes, &root).unwrap();
    }
    for additions in 0..n {
        let m = n - additions;
        let theirs = ct.prove_consistency(additions);
        let hashes: Vec<merkle::Hash> = theirs.as_bytes().chunks(32).map(|c| c.try_into().unwrap()).collect();
        merkle::verify_consistency(m as u64, n as u64, &hashes, &merkle::root(&leaves[..m]), &root)
            .unwrap_or_else(|e| panic!("our verifier rejects ct-merkle's proof {m}→{n}: {e}"));
    }
}
