//! Gas of the stake contract's operations from real receipts, in the embedded EVM and on anvil: a first stake
//! (fresh account: new storage slots), a top-up, an unstake request and the withdrawal, plus the deployment.
//!
//! Run: `cargo bench -p jobmesh-contracts --bench stake_gas` (needs anvil from `scripts/setup.d/30-chain.sh`).

use jobmesh_contracts::alloy::primitives::{keccak256, U256};
use jobmesh_contracts::alloy::signers::local::PrivateKeySigner;
use jobmesh_contracts::anvil::{Anvil, DEV_KEYS};
use jobmesh_contracts::embedded::{accounts, EmbeddedChain};
use jobmesh_contracts::stake::{StakeClient, StakeParams};
use jobmesh_contracts::{Settlement, TxReceipt};

const PARAMS: StakeParams = StakeParams { unstake_delay: 5 };

/// Gas of: deploy, first stake, top-up, request, withdraw.
type Row = [u64; 5];

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

/// Runs the sequence on `c`, mining with `mine` between request and withdrawal.
async fn sequence<B: Settlement>(c: &StakeClient<B>, deploy: u64, mine: impl AsyncFn(u64)) -> Row {
    let node = keccak256(b"bench node");
    let gas = |r: TxReceipt| r.gas_used;
    let first = gas(c.stake(node, eth(1)).await.unwrap());
    let top_up = gas(c.stake(node, eth(1)).await.unwrap());
    let request = gas(c.request_unstake(eth(2)).await.unwrap());
    mine(PARAMS.unstake_delay).await;
    let withdraw = gas(c.withdraw().await.unwrap());
    [deploy, first, top_up, request, withdraw]
}

async fn embedded() -> Row {
    let chain = EmbeddedChain::new(1, 31337);
    let who = accounts("stake-bench", 2);
    for a in &who {
        chain.fund(*a, eth(100));
    }
    let r = chain
        .transact_raw(who[0], None, PARAMS.deploy_code(), U256::ZERO)
        .unwrap();
    let contract = r.contract_address.expect("deployed");
    let c = StakeClient::new(jobmesh_contracts::embedded::EmbeddedSettlement::new(
        chain.clone(),
        who[1],
        contract,
    ));
    sequence(&c, r.gas_used, async |n| chain.mine(n)).await
}

async fn on_anvil() -> Row {
    let anvil = Anvil::start(11_155_111).expect("anvil (run scripts/setup.d/30-chain.sh)");
    let key: PrivateKeySigner = DEV_KEYS[1].parse().unwrap();
    let (c, deploy) = StakeClient::deploy_rpc(&anvil.url(), 11_155_111, key, PARAMS)
        .await
        .unwrap();
    sequence(&c, deploy.gas_used, async |n| anvil.mine(n).await.unwrap()).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rows = [("embedded", embedded().await), ("anvil", on_anvil().await)];
    println!("| backend | deploy | stake (first) | stake (top-up) | requestUnstake | withdraw |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, r) in rows {
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            r[0], r[1], r[2], r[3], r[4]
        );
    }
}
