//! Lottery nanopayments: the lottery description, interval assignment, the Merkle tree over payee leaves and
//! its proofs, the winner draw, and the checks a payee runs on an announced lottery.
//!
//! Every hash here is bit-for-bit what `contracts/sol/Settlement.sol` computes:
//! - lottery id = `keccak256(abi.encode(payer, nonce, total, root, drawBlock, secretHash))` (six 32-byte words);
//! - secret hash = `keccak256(secret)` (the payer's 32-byte secret, revealed to the payees after the draw);
//! - leaf hash = `keccak256(abi.encode(payee, start, length))` (three words);
//! - inner node = `keccak256(min(a, b) ‖ max(a, b))` (sorted pairs); an odd node is promoted unchanged;
//! - drawn point = `uint256(keccak256(abi.encode(id, drawHash, secret))) % total`.
//!
//! Owns: pure functions and data types. Must not touch: any I/O (chain, network, disk); the contracts crate
//! submits what this crate computes, the node decides when to build lotteries.

use alloy_primitives::{keccak256, Address, B256, U256};
use serde::{Deserialize, Serialize};

/// The largest lottery value the contract accepts (its amounts are `uint96`).
pub const MAX_TOTAL: u128 = (1u128 << 96) - 1;

/// Why a lottery cannot be built or fails a payee's check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LotteryError {
    /// Nothing is owed (no payee with a positive amount).
    #[error("nothing owed: a lottery needs at least one positive amount")]
    Empty,
    /// The amounts add up to more than the contract's `uint96` limit.
    #[error("total owed exceeds the contract limit of 2^96 - 1 wei")]
    TooLarge,
    /// The leaves do not hash to the committed root.
    #[error("the leaves do not match the lottery's Merkle root")]
    RootMismatch,
    /// The intervals leave a gap, overlap, or do not end at the total.
    #[error("intervals do not exactly cover [0, total): {0}")]
    BadIntervals(String),
    /// The payee has no leaf in the lottery.
    #[error("payee {0} has no leaf in this lottery")]
    NotAPayee(Address),
    /// The payee's interval is shorter than what it is owed.
    #[error("payee's interval is {got} wei, it is owed {owed} wei")]
    Underpaid {
        /// Length of the payee's interval.
        got: U256,
        /// What the payee expected.
        owed: U256,
    },
    /// The draw block is further ahead of the current block than the payee accepts.
    #[error("draw block {draw_block} is more than {max_ahead} blocks after block {current}")]
    DrawTooFar {
        /// The lottery's draw block.
        draw_block: u64,
        /// The block it was compared with.
        current: u64,
        /// The most blocks ahead the payee accepts.
        max_ahead: u64,
    },
    /// The draw block is not after the given current block.
    #[error("draw block {draw_block} is not after block {current}")]
    DrawBlockPassed {
        /// The lottery's draw block.
        draw_block: u64,
        /// The block it was compared with.
        current: u64,
    },
    /// A lottery has a zero total.
    #[error("lottery total is zero")]
    ZeroTotal,
    /// The payer holds a leaf of its own lottery (the contract never pays it).
    #[error("the payer {0} is a payee of its own lottery")]
    PayerIsPayee(Address),
    /// A revealed secret does not hash to the lottery's committed secret hash.
    #[error("the revealed secret does not match the lottery's secret hash")]
    WrongSecret,
}

/// What is committed on chain (by hash): who pays, which lane/nonce, how much, which payees (root), when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Description {
    /// The payer (the account whose deposit backs the lottery).
    pub payer: Address,
    /// The payer's nonce; its low 16 bits are the contract lane holding the lottery's state.
    pub nonce: u64,
    /// The lottery value in wei (paid in full to the winner).
    pub total: U256,
    /// Merkle root over the payees' leaves.
    pub root: B256,
    /// The block whose hash, mixed with the payer's secret, draws the winner.
    pub draw_block: u64,
    /// `keccak256(secret)`: commits the payer to the secret it reveals after the draw block.
    pub secret_hash: B256,
}

impl Description {
    /// The lottery id: `keccak256(abi.encode(payer, nonce, total, root, drawBlock, secretHash))`.
    pub fn id(&self) -> B256 {
        let mut buf = [0u8; 192];
        buf[12..32].copy_from_slice(self.payer.as_slice());
        buf[32..64].copy_from_slice(&U256::from(self.nonce).to_be_bytes::<32>());
        buf[64..96].copy_from_slice(&self.total.to_be_bytes::<32>());
        buf[96..128].copy_from_slice(self.root.as_slice());
        buf[128..160].copy_from_slice(&U256::from(self.draw_block).to_be_bytes::<32>());
        buf[160..192].copy_from_slice(self.secret_hash.as_slice());
        keccak256(buf)
    }

    /// The contract lane of this lottery (`uint16(nonce)`).
    pub fn lane(&self) -> u16 {
        self.nonce as u16
    }
}

/// One payee's share: it wins when the drawn point lies in `[start, start + length)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Leaf {
    /// The payee credited if this leaf wins.
    pub payee: Address,
    /// First point of the interval.
    pub start: U256,
    /// Length of the interval (what the payee is owed, in wei).
    pub length: U256,
}

impl Leaf {
    /// `keccak256(abi.encode(payee, start, length))`.
    pub fn hash(&self) -> B256 {
        let mut buf = [0u8; 96];
        buf[12..32].copy_from_slice(self.payee.as_slice());
        buf[32..64].copy_from_slice(&self.start.to_be_bytes::<32>());
        buf[64..96].copy_from_slice(&self.length.to_be_bytes::<32>());
        keccak256(buf)
    }

    /// Whether `point` falls in this leaf's interval.
    pub fn contains(&self, point: U256) -> bool {
        point >= self.start && point - self.start < self.length
    }
}

/// A full lottery as announced to its payees: the committed description plus every leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lottery {
    /// What is committed on chain.
    pub description: Description,
    /// The leaves, in tree order.
    pub leaves: Vec<Leaf>,
}

/// `keccak256(secret)`: what a lottery commits of its payer's secret.
pub fn secret_hash(secret: B256) -> B256 {
    keccak256(secret)
}

/// Builds a lottery paying `owed` (amounts per payee; duplicates are merged, zero amounts dropped) from
/// `payer`, with the given nonce, draw block and secret hash ([`secret_hash`] of a secret the payer keeps
/// until the draw block is mined). Intervals are assigned in the order of first appearance.
pub fn build(
    payer: Address,
    nonce: u64,
    owed: &[(Address, U256)],
    draw_block: u64,
    secret_hash: B256,
) -> Result<Lottery, LotteryError> {
    let mut merged: Vec<(Address, U256)> = Vec::with_capacity(owed.len());
    let mut index = std::collections::HashMap::with_capacity(owed.len());
    for &(payee, amount) in owed {
        if amount.is_zero() {
            continue;
        }
        match index.get(&payee) {
            Some(&i) => {
                let slot: &mut (Address, U256) = &mut merged[i];
                slot.1 = slot.1.checked_add(amount).ok_or(LotteryError::TooLarge)?;
            }
            None => {
                index.insert(payee, merged.len());
                merged.push((payee, amount));
            }
        }
    }
    if merged.is_empty() {
        return Err(LotteryError::Empty);
    }
    let mut start = U256::ZERO;
    let mut leaves = Vec::with_capacity(merged.len());
    for (payee, length) in merged {
        leaves.push(Leaf {
            payee,
            start,
            length,
        });
        start = start.checked_add(length).ok_or(LotteryError::TooLarge)?;
    }
    if start > U256::from(MAX_TOTAL) {
        return Err(LotteryError::TooLarge);
    }
    let root = MerkleTree::new(leaves.iter().map(Leaf::hash).collect()).root();
    Ok(Lottery {
        description: Description {
            payer,
            nonce,
            total: start,
            root,
            draw_block,
            secret_hash,
        },
        leaves,
    })
}

impl Lottery {
    /// The lottery id (hash of the description).
    pub fn id(&self) -> B256 {
        self.description.id()
    }

    /// The Merkle tree over the leaves.
    pub fn tree(&self) -> MerkleTree {
        MerkleTree::new(self.leaves.iter().map(Leaf::hash).collect())
    }

    /// The index of `payee`'s leaf, if any.
    pub fn leaf_index(&self, payee: Address) -> Option<usize> {
        self.leaves.iter().position(|l| l.payee == payee)
    }

    /// The Merkle proof of leaf `index` (panics if out of range; use [`Lottery::leaf_index`]).
    pub fn proof(&self, index: usize) -> Vec<B256> {
        self.tree().proof(index)
    }

    /// The index of the winning leaf for `draw_hash` and the payer's `secret`, if the intervals cover the
    /// drawn point.
    pub fn winner(&self, draw_hash: B256, secret: B256) -> Option<usize> {
        let point = draw_point(self.id(), draw_hash, secret, self.description.total)?;
        self.leaves.iter().position(|l| l.contains(point))
    }

    /// Checks a secret revealed by the payer against the committed secret hash.
    pub fn check_secret(&self, secret: B256) -> Result<(), LotteryError> {
        if secret_hash(secret) == self.description.secret_hash {
            Ok(())
        } else {
            Err(LotteryError::WrongSecret)
        }
    }

    /// Checks that the leaves hash to the root, their intervals exactly cover `[0, total)` in order, and no
    /// leaf is the payer's.
    pub fn validate(&self) -> Result<(), LotteryError> {
        if self.description.total.is_zero() {
            return Err(LotteryError::ZeroTotal);
        }
        if self.description.total > U256::from(MAX_TOTAL) {
            return Err(LotteryError::TooLarge);
        }
        let mut next = U256::ZERO;
        for (i, leaf) in self.leaves.iter().enumerate() {
            if leaf.start != next {
                return Err(LotteryError::BadIntervals(format!(
                    "leaf {i} starts at {} instead of {next}",
                    leaf.start
                )));
            }
            if leaf.length.is_zero() {
                return Err(LotteryError::BadIntervals(format!("leaf {i} is empty")));
            }
            if leaf.payee == self.description.payer {
                return Err(LotteryError::PayerIsPayee(leaf.payee));
            }
            next = next
                .checked_add(leaf.length)
                .ok_or_else(|| LotteryError::BadIntervals("interval overflow".into()))?;
        }
        if next != self.description.total {
            return Err(LotteryError::BadIntervals(format!(
                "intervals end at {next}, total is {}",
                self.description.total
            )));
        }
        if self.tree().root() != self.description.root {
            return Err(LotteryError::RootMismatch);
        }
        Ok(())
    }

    /// What a payee checks before accepting an announced lottery as payment: the lottery is well-formed (root,
    /// exact cover of `[0, total)`), it has a leaf for `payee` at least `terms.owed − terms.tolerance` long, its
    /// draw is after `terms.current_block`, and at most `terms.max_draw_ahead` blocks after it. Returns the
    /// payee's leaf index. The checks run in that order, so a [`LotteryError::DrawBlockPassed`] means every
    /// other check passed. (That the description is committed on chain is checked through the contracts
    /// crate.)
    pub fn check_payee(&self, payee: Address, terms: &PayeeTerms) -> Result<usize, LotteryError> {
        self.validate()?;
        let index = self
            .leaf_index(payee)
            .ok_or(LotteryError::NotAPayee(payee))?;
        let got = self.leaves[index].length;
        if got.saturating_add(terms.tolerance) < terms.owed {
            return Err(LotteryError::Underpaid {
                got,
                owed: terms.owed,
            });
        }
        let (draw_block, current) = (self.description.draw_block, terms.current_block);
        if draw_block <= current {
            return Err(LotteryError::DrawBlockPassed {
                draw_block,
                current,
            });
        }
        if draw_block - current > terms.max_draw_ahead {
            return Err(LotteryError::DrawTooFar {
                draw_block,
                current,
                max_ahead: terms.max_draw_ahead,
            });
        }
        Ok(index)
    }
}

/// What a payee expects of a lottery it is paid with ([`Lottery::check_payee`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayeeTerms {
    /// What the payee is owed by the lottery's payer, in wei.
    pub owed: U256,
    /// How much shorter than `owed` its leaf may be (rounding), in wei.
    pub tolerance: U256,
    /// The chain's current block.
    pub current_block: u64,
    /// The most blocks after `current_block` the draw block may be.
    pub max_draw_ahead: u64,
}

impl PayeeTerms {
    /// Terms of exactly `owed` (no tolerance) at `current_block`, with no bound on the draw block.
    pub fn exactly(owed: U256, current_block: u64) -> PayeeTerms {
        PayeeTerms {
            owed,
            tolerance: U256::ZERO,
            current_block,
            max_draw_ahead: u64::MAX,
        }
    }
}

/// The drawn point in `[0, total)`: `uint256(keccak256(abi.encode(id, drawHash, secret))) % total`; `None`
/// if `total` is zero.
pub fn draw_point(id: B256, draw_hash: B256, secret: B256, total: U256) -> Option<U256> {
    if total.is_zero() {
        return None;
    }
    let mut buf = [0u8; 96];
    buf[..32].copy_from_slice(id.as_slice());
    buf[32..64].copy_from_slice(draw_hash.as_slice());
    buf[64..].copy_from_slice(secret.as_slice());
    Some(U256::from_be_bytes(keccak256(buf).0) % total)
}

/// Sorted-pair hash of two nodes: `keccak256(min ‖ max)`.
pub fn hash_pair(a: B256, b: B256) -> B256 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(lo.as_slice());
    buf[32..].copy_from_slice(hi.as_slice());
    keccak256(buf)
}

/// Folds a proof onto a leaf hash, as the contract does.
pub fn fold_proof(leaf: B256, proof: &[B256]) -> B256 {
    proof
        .iter()
        .fold(leaf, |node, sibling| hash_pair(node, *sibling))
}

/// Whether `proof` links `leaf` to `root`.
pub fn verify_proof(leaf: &Leaf, proof: &[B256], root: B256) -> bool {
    fold_proof(leaf.hash(), proof) == root
}

/// A Merkle tree with sorted-pair inner nodes; an unpaired node moves up a level unchanged.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    /// `levels[0]` are the leaf hashes, the last level is the root alone.
    levels: Vec<Vec<B256>>,
}

impl MerkleTree {
    /// Builds the tree over the given leaf hashes (an empty tree has root zero).
    pub fn new(leaves: Vec<B256>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let prev = levels.last().expect("non-empty");
            let next = prev
                .chunks(2)
                .map(|pair| match pair {
                    [a, b] => hash_pair(*a, *b),
                    [a] => *a,
                    _ => unreachable!("chunks(2)"),
                })
                .collect();
            levels.push(next);
        }
        Self { levels }
    }

    /// The root (zero for an empty tree).
    pub fn root(&self) -> B256 {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or(B256::ZERO)
    }

    /// The sibling path of leaf `index` (promoted levels contribute no sibling).
    pub fn proof(&self, mut index: usize) -> Vec<B256> {
        assert!(index < self.levels[0].len(), "leaf index out of range");
        let mut proof = Vec::new();
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = index ^ 1;
            if sibling < level.len() {
                proof.push(level[sibling]);
            }
            index /= 2;
        }
        proof
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr(i: u64) -> Address {
        let mut b = [0u8; 20];
        b[12..].copy_from_slice(&i.to_be_bytes());
        Address::from(b)
    }

    #[test]
    fn build_assigns_contiguous_intervals_and_merges_duplicates() {
        let owed = [
            (addr(1), U256::from(5)),
            (addr(2), U256::ZERO),
            (addr(3), U256::from(7)),
            (addr(1), U256::from(2)),
        ];
        let l = build(addr(99), 4, &owed, 100, B256::ZERO).unwrap();
        assert_eq!(l.leaves.len(), 2);
        assert_eq!(
            l.leaves[0],
            Leaf {
                payee: addr(1),
                start: U256::ZERO,
                length: U256::from(7)
            }
        );
        assert_eq!(l.leaves[1].start, U256::from(7));
        assert_eq!(l.description.total, U256::from(14));
        l.validate().unwrap();
        assert_eq!(
            l.check_payee(addr(3), &PayeeTerms::exactly(U256::from(7), 99))
                .unwrap(),
            1
        );
    }

    #[test]
    fn build_rejects_empty_and_oversized() {
        assert_eq!(
            build(addr(1), 0, &[], 5, B256::ZERO),
            Err(LotteryError::Empty)
        );
        let big = U256::from(MAX_TOTAL);
        assert_eq!(
            build(
                addr(1),
                0,
                &[(addr(2), big), (addr(3), U256::from(1))],
                5,
                B256::ZERO
            ),
            Err(LotteryError::TooLarge)
        );
    }

    #[test]
    fn payee_check_catches_gaps_overlaps_root_and_underpayment() {
        let owed: Vec<_> = (1..=5).map(|i| (addr(i), U256::from(i * 10))).collect();
        let good = build(addr(99), 1, &owed, 50, B256::ZERO).unwrap();

        // The payer holding a leaf of its own lottery (the contract would never pay that leaf).
        let own = build(addr(1), 1, &owed, 50, B256::ZERO).unwrap();
        assert_eq!(own.validate(), Err(LotteryError::PayerIsPayee(addr(1))));

        // A gap the payer could win itself: shift one interval, keep the root consistent.
        let mut gap = good.clone();
        gap.leaves[2].start += U256::from(1);
        gap.description.root = gap.tree().root();
        assert!(matches!(gap.validate(), Err(LotteryError::BadIntervals(_))));

        let mut overlap = good.clone();
        overlap.leaves[3].start -= U256::from(1);
        overlap.description.root = overlap.tree().root();
        assert!(matches!(
            overlap.validate(),
            Err(LotteryError::BadIntervals(_))
        ));

        let mut short_total = good.clone();
        short_total.description.total += U256::from(1);
        assert!(matches!(
            short_total.validate(),
            Err(LotteryError::BadIntervals(_))
        ));

        let mut wrong_root = good.clone();
        wrong_root.description.root = B256::repeat_byte(7);
        assert_eq!(wrong_root.validate(), Err(LotteryError::RootMismatch));

        assert_eq!(
            good.check_payee(addr(77), &PayeeTerms::exactly(U256::from(1), 0)),
            Err(LotteryError::NotAPayee(addr(77)))
        );
        assert!(matches!(
            good.check_payee(addr(2), &PayeeTerms::exactly(U256::from(21), 0)),
            Err(LotteryError::Underpaid { .. })
        ));
        assert!(matches!(
            good.check_payee(addr(2), &PayeeTerms::exactly(U256::from(20), 50)),
            Err(LotteryError::DrawBlockPassed { .. })
        ));
    }

    /// A leaf of 1,000 wei in a lottery drawn at block 100, checked at block 40.
    fn share_of_1000() -> (Lottery, PayeeTerms) {
        let owed = [(addr(1), U256::from(500)), (addr(2), U256::from(1000))];
        let lottery = build(addr(99), 1, &owed, 100, B256::ZERO).unwrap();
        let terms = PayeeTerms {
            owed: U256::from(1000),
            tolerance: U256::from(3),
            current_block: 40,
            max_draw_ahead: 60,
        };
        (lottery, terms)
    }

    #[test]
    fn a_share_short_by_at_most_the_rounding_tolerance_is_accepted() {
        let (lottery, terms) = share_of_1000();
        // Exactly what is owed.
        assert_eq!(lottery.check_payee(addr(2), &terms), Ok(1));
        // Owed − rounding: the leaf (1,000) is 3 short of 1,003.
        let short_by_rounding = PayeeTerms {
            owed: U256::from(1003),
            ..terms
        };
        assert_eq!(lottery.check_payee(addr(2), &short_by_rounding), Ok(1));
        // More than owed is fine too.
        let overpaid = PayeeTerms {
            owed: U256::from(10),
            ..terms
        };
        assert_eq!(lottery.check_payee(addr(2), &overpaid), Ok(1));
    }

    #[test]
    fn a_share_short_by_more_than_the_rounding_tolerance_is_refused() {
        let (lottery, terms) = share_of_1000();
        // Owed − rounding − 1: the leaf (1,000) is 4 short of 1,004.
        let short = PayeeTerms {
            owed: U256::from(1004),
            ..terms
        };
        assert_eq!(
            lottery.check_payee(addr(2), &short),
            Err(LotteryError::Underpaid {
                got: U256::from(1000),
                owed: U256::from(1004)
            })
        );
        // Without tolerance, one wei short is refused.
        let strict = PayeeTerms {
            owed: U256::from(1001),
            tolerance: U256::ZERO,
            ..terms
        };
        assert!(matches!(
            lottery.check_payee(addr(2), &strict),
            Err(LotteryError::Underpaid { .. })
        ));
        // A 1-wei leaf for a debt of 1,000.
        let one_wei = build(addr(99), 1, &[(addr(2), U256::from(1))], 100, B256::ZERO).unwrap();
        assert!(matches!(
            one_wei.check_payee(addr(2), &terms),
            Err(LotteryError::Underpaid { .. })
        ));
        // A tolerance that would overflow does not wrap around.
        let huge = PayeeTerms {
            owed: U256::MAX,
            tolerance: U256::MAX,
            ..terms
        };
        assert_eq!(lottery.check_payee(addr(2), &huge), Ok(1));
    }

    #[test]
    fn a_draw_block_too_far_ahead_is_refused_and_one_passed_is_reported() {
        let (lottery, terms) = share_of_1000();
        // Draw at 100, checked at 40: 60 blocks ahead, the most accepted.
        assert_eq!(lottery.check_payee(addr(2), &terms), Ok(1));
        let at_39 = PayeeTerms {
            current_block: 39,
            ..terms
        };
        assert_eq!(
            lottery.check_payee(addr(2), &at_39),
            Err(LotteryError::DrawTooFar {
                draw_block: 100,
                current: 39,
                max_ahead: 60
            })
        );
        let far = build(
            addr(99),
            1,
            &[(addr(2), U256::from(1000))],
            u64::MAX,
            B256::ZERO,
        )
        .unwrap();
        assert!(matches!(
            far.check_payee(addr(2), &terms),
            Err(LotteryError::DrawTooFar { .. })
        ));
        let at_100 = PayeeTerms {
            current_block: 100,
            ..terms
        };
        assert!(matches!(
            lottery.check_payee(addr(2), &at_100),
            Err(LotteryError::DrawBlockPassed { .. })
        ));
        // The amount is checked first: an underpaying lottery is refused as such whatever its draw block.
        let short_and_far = PayeeTerms {
            owed: U256::from(5000),
            current_block: 0,
            ..terms
        };
        assert!(matches!(
            lottery.check_payee(addr(2), &short_and_far),
            Err(LotteryError::Underpaid { .. })
        ));
    }

    #[test]
    fn known_vector_matches_solidity_abi_encoding() {
        // keccak256(abi.encode(address(1), uint256(2), uint256(3))) computed independently from the word layout.
        let leaf = Leaf {
            payee: addr(1),
            start: U256::from(2),
            length: U256::from(3),
        };
        let mut words = Vec::new();
        for v in [1u64, 2, 3] {
            words.extend_from_slice(&U256::from(v).to_be_bytes::<32>());
        }
        assert_eq!(leaf.hash(), keccak256(&words));
        // Single-leaf tree: the root is the leaf, the proof is empty.
        let l = build(
            addr(9),
            0,
            &[(addr(1), U256::from(3))],
            10,
            secret_hash(B256::repeat_byte(2)),
        )
        .unwrap();
        assert_eq!(l.description.root, l.leaves[0].hash());
        assert!(l.proof(0).is_empty());
        assert_eq!(
            l.winner(B256::repeat_byte(1), B256::repeat_byte(2)),
            Some(0)
        );
        assert_eq!(l.check_secret(B256::repeat_byte(2)), Ok(()));
        assert_eq!(
            l.check_secret(B256::repeat_byte(3)),
            Err(LotteryError::WrongSecret)
        );
    }

    proptest! {
        #[test]
        fn every_proof_verifies_and_foreign_proofs_fail(n in 1usize..70, seed in any::<u64>()) {
            let owed: Vec<_> = (0..n as u64)
                .map(|i| (addr(i + 1), U256::from(1 + (seed.wrapping_mul(i + 7) % 1000))))
                .collect();
            let l = build(addr(0xfeed), seed, &owed, 1, B256::ZERO).unwrap();
            l.validate().unwrap();
            let depth = (n as f64).log2().ceil() as usize;
            for i in 0..n {
                let p = l.proof(i);
                prop_assert!(p.len() <= depth);
                prop_assert!(verify_proof(&l.leaves[i], &p, l.description.root));
                if n > 1 {
                    let other = (i + 1) % n;
                    prop_assert!(!verify_proof(&l.leaves[other], &p, l.description.root) || l.leaves[other] == l.leaves[i]);
                }
            }
        }

        #[test]
        fn exactly_one_winner(n in 1usize..40, h in any::<[u8; 32]>()) {
            let owed: Vec<_> = (0..n as u64).map(|i| (addr(i + 1), U256::from(3 + i))).collect();
            let l = build(addr(5), 0, &owed, 1, secret_hash(B256::from(h))).unwrap();
            let point = draw_point(l.id(), B256::from(h), B256::from(h), l.description.total).unwrap();
            let winners = l.leaves.iter().filter(|leaf| leaf.contains(point)).count();
            prop_assert_eq!(winners, 1);
            prop_assert!(l.winner(B256::from(h), B256::from(h)).is_some());
        }
    }
}
