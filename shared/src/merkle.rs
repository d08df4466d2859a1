//! A Merkle tree over a digest's leaves, as Certificate Transparency builds it (RFC 9162, 2.1):
//! leaves and inner nodes are hashed under different prefixes, so no leaf can pose as a node, and
//! a tree of `n` leaves splits at the largest power of two below `n`. An inclusion proof is the
//! sibling hashes from a leaf up to the root, checked with the leaf's index and the tree's size.

use sha2::{Digest, Sha256};

use crate::hash256::Hash256;

/// The hash of a leaf's bytes: `SHA-256(0x00 ‖ bytes)`.
pub fn leaf_hash(bytes: &[u8]) -> Hash256 {
    Hash256::from_bytes(Sha256::new().chain_update([0]).chain_update(bytes).finalize().into())
}

/// The hash of an inner node: `SHA-256(0x01 ‖ left ‖ right)`.
fn node_hash(left: &Hash256, right: &Hash256) -> Hash256 {
    Hash256::from_bytes(
        Sha256::new()
            .chain_update([1])
            .chain_update(left.as_bytes())
            .chain_update(right.as_bytes())
            .finalize()
            .into(),
    )
}

/// The largest power of two below `n` (`n` ≥ 2): where a tree of `n` leaves splits.
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The root of the tree over `leaves` (leaf hashes, in order); that of no leaf is `SHA-256("")`.
pub fn root(leaves: &[Hash256]) -> Hash256 {
    match leaves {
        [] => Hash256::from_bytes(Sha256::digest([]).into()),
        [leaf] => *leaf,
        _ => {
            let k = split(leaves.len());
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The inclusion proof of leaf `index` in the tree over `leaves`: its siblings' hashes, from the
/// leaf up. `None` when there is no such leaf.
pub fn inclusion_path(leaves: &[Hash256], index: usize) -> Option<Vec<Hash256>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    let (mut leaves, mut index) = (leaves, index);
    // Walk down from the root, then give the siblings leaf-first.
    while leaves.len() > 1 {
        let k = split(leaves.len());
        if index < k {
            path.push(root(&leaves[k..]));
            leaves = &leaves[..k];
        } else {
            path.push(root(&leaves[..k]));
            (leaves, index) = (&leaves[k..], index - k);
        }
    }
    path.reverse();
    Some(path)
}

/// Whether `path` proves that `leaf` is leaf `index` of a tree of `size` leaves whose root is
/// `root` (RFC 9162, 2.1.3.2).
pub fn verify_inclusion(leaf: &Hash256, index: u64, size: u64, path: &[Hash256], root: &Hash256) -> bool {
    if index >= size {
        return false;
    }
    let (mut node, mut last, mut hash) = (index, size - 1, *leaf);
    for sibling in path {
        if last == 0 {
            return false;
        }
        if node & 1 == 1 || node == last {
            hash = node_hash(sibling, &hash);
            // A right edge without a sibling of its own: climb until it is a right child.
            if node & 1 == 0 {
                while node & 1 == 0 && node != 0 {
                    node >>= 1;
                    last >>= 1;
                }
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        node >>= 1;
        last >>= 1;
    }
    last == 0 && hash == *root
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn leaves(n: usize) -> Vec<Hash256> {
        (0..n).map(|i| leaf_hash(format!("leaf {i}").as_bytes())).collect()
    }

    #[test]
    fn a_tree_of_three_is_two_then_one() {
        let l = leaves(3);
        assert_eq!(root(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
        assert_eq!(inclusion_path(&l, 2), Some(vec![node_hash(&l[0], &l[1])]));
        assert_eq!(inclusion_path(&l, 0), Some(vec![l[1], l[2]]));
        assert_eq!(inclusion_path(&l, 3), None);
    }

    #[test]
    fn a_leaf_is_not_a_node() {
        // The two leaves' hashes, concatenated, are a leaf of their own: it must not hash alike.
        let l = leaves(2);
        let mut joined = l[0].as_bytes().to_vec();
        joined.extend_from_slice(l[1].as_bytes());
        assert_ne!(leaf_hash(&joined), root(&l));
        assert_eq!(
            root(&[]),
            Hash256::parse("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").unwrap()
        );
    }

    proptest! {
        /// Every leaf of every tree has a proof that verifies, and only for its own index, hash
        /// and root. (A left leaf's path can fit a larger tree too: the digest signs the size.)
        #[test]
        fn every_leaf_proves_and_nothing_else_does(n in 1usize..70, pick in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>()) {
            let l = leaves(n);
            let top = root(&l);
            let index = pick.index(n);
            let path = inclusion_path(&l, index).unwrap();
            prop_assert!(verify_inclusion(&l[index], index as u64, n as u64, &path, &top));
            let other = leaf_hash(b"another leaf");
            prop_assert!(!verify_inclusion(&other, index as u64, n as u64, &path, &top));
            if n > 1 {
                let moved = (index + 1) % n;
                prop_assert!(!verify_inclusion(&l[index], moved as u64, n as u64, &path, &top));
                let mut changed = path.clone();
                let at = flip.index(changed.len());
                changed[at] = other;
                prop_assert!(!verify_inclusion(&l[index], index as u64, n as u64, &changed, &top));
            }
            let mut more = l.clone();
            more.push(other);
            prop_assert!(!verify_inclusion(&l[index], index as u64, n as u64, &path, &root(&more)));
        }
    }
}
