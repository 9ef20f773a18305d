//! Shared set-up of the embedded-EVM tests: a seeded chain, funded accounts, a deployed contract.
#![allow(dead_code)]

use std::sync::Arc;

use jobmesh_contracts::alloy::primitives::{keccak256, Address, B256, U256};
use jobmesh_contracts::embedded::{accounts, EmbeddedChain, EmbeddedSettlement};
use jobmesh_contracts::lottery::{self, Lottery};
use jobmesh_contracts::{DeployParams, Settlement, SettlementError, TxReceipt};

/// 1 ether in wei.
pub fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

/// The payer's secret of the test lottery with `nonce` (a payer draws it at random; tests derive it).
pub fn secret(nonce: u64) -> B256 {
    keccak256([b"test secret ".as_slice(), &nonce.to_be_bytes()].concat())
}

/// The secret of a test lottery (see [`secret`]).
pub fn secret_of(l: &Lottery) -> B256 {
    secret(l.description.nonce)
}

/// A chain with a deployed settlement contract, a payer and `n` payees, all funded with 1,000 ETH.
pub struct World {
    pub chain: Arc<EmbeddedChain>,
    pub contract: Address,
    pub payer: EmbeddedSettlement,
    pub payees: Vec<Address>,
    pub params: DeployParams,
}

impl World {
    pub fn new(seed: u64, n: usize, params: DeployParams) -> Self {
        let chain = EmbeddedChain::new(seed, 31337);
        let all = accounts(&format!("world-{seed}"), n + 2);
        for a in &all {
            chain.fund(*a, eth(1000));
        }
        let contract = chain.deploy_settlement(all[0], params).expect("deploy");
        let payer = EmbeddedSettlement::new(chain.clone(), all[1], contract);
        Self {
            chain,
            contract,
            payer,
            payees: all[2..].to_vec(),
            params,
        }
    }

    /// The contract seen from `who`.
    pub fn client(&self, who: Address) -> EmbeddedSettlement {
        self.payer.as_sender(who)
    }

    /// Builds a lottery paying `amounts[i]` to payee i, drawn `delay` blocks from now.
    pub fn lottery(&self, nonce: u64, amounts: &[u64], delay: u64) -> Lottery {
        let owed: Vec<_> = self
            .payees
            .iter()
            .zip(amounts)
            .map(|(p, a)| (*p, U256::from(*a)))
            .collect();
        lottery::build(
            self.payer.sender(),
            nonce,
            &owed,
            self.chain.block_number() + delay,
            lottery::secret_hash(secret(nonce)),
        )
        .expect("build")
    }

    /// The hash that draws block `n` on this chain.
    pub fn block_hash(&self, n: u64) -> jobmesh_contracts::alloy::primitives::B256 {
        jobmesh_contracts::embedded::seeded_block_hash(self.chain.seed(), n)
    }

    /// The winning leaf index of a lottery drawn from its own draw block and its payer's secret.
    pub fn winner(&self, l: &Lottery) -> usize {
        l.winner(self.block_hash(l.description.draw_block), secret_of(l))
            .expect("a winner")
    }

    /// Claims leaf `i` of `l`, sent by that payee.
    pub async fn claim(&self, l: &Lottery, i: usize) -> Result<TxReceipt, SettlementError> {
        let leaf = l.leaves[i];
        self.client(leaf.payee)
            .claim(&l.description, &leaf, &l.proof(i), secret_of(l))
            .await
    }

    /// Claims leaf `i` of `l` with `claimAndWithdraw`, sent by that payee (the prize goes to its wallet).
    pub async fn claim_and_withdraw(
        &self,
        l: &Lottery,
        i: usize,
    ) -> Result<TxReceipt, SettlementError> {
        let leaf = l.leaves[i];
        self.client(leaf.payee)
            .claim_and_withdraw(&l.description, &leaf, &l.proof(i), secret_of(l))
            .await
    }
}

/// Asserts that `r` is a revert with the custom error `name`.
#[track_caller]
pub fn assert_reverts<T: std::fmt::Debug>(r: Result<T, SettlementError>, name: &str) {
    match r {
        Err(e) => assert_eq!(
            e.revert_name(),
            Some(name),
            "expected revert {name}, got {e}"
        ),
        Ok(v) => panic!("expected revert {name}, got success {v:?}"),
    }
}
