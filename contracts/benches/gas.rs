//! Gas per paid payee of a lottery for 10, 100 and 1,000 payees, from real receipts in the embedded EVM and on
//! anvil, against one plain ETH transfer per payee (21,000 gas, measured), batched transfers (Golem's whitepaper:
//! 21,000 + 11,000 per payee) and Golem's lottery (≈155,000 gas per lottery). Two ways to be paid, each on its own
//! lottery: commit + claimAndWithdraw (the winnings go to the winner's wallet; what nodes do, and what the goals
//! are measured on) and commit + claim (credited to the winner's deposit account, still to be withdrawn).
//!
//! Run: `cargo bench -p jobmesh-contracts --bench gas` (needs anvil from `scripts/setup.d/30-chain.sh`).
//! "first" = a fresh lane (and, for a credited claim, a first-time winner: a fresh account slot); "steady" = a
//! reused lane (and a winner that already has an account), the state of a payer and workers that settle
//! regularly.

use std::time::Instant;

use jobmesh_contracts::alloy::network::TransactionBuilder;
use jobmesh_contracts::alloy::primitives::{keccak256, Address, B256, U256};
use jobmesh_contracts::alloy::providers::Provider;
use jobmesh_contracts::alloy::rpc::types::TransactionRequest;
use jobmesh_contracts::alloy::signers::local::PrivateKeySigner;
use jobmesh_contracts::anvil::{Anvil, DEV_KEYS};
use jobmesh_contracts::embedded::{accounts, seeded_block_hash, EmbeddedChain, EmbeddedSettlement};
use jobmesh_contracts::lottery::{self, Lottery};
use jobmesh_contracts::rpc::RpcSettlement;
use jobmesh_contracts::{DeployParams, Settlement};

const SIZES: [usize; 3] = [10, 100, 1000];
/// Payees in all: each size gets its own (so a "first" credited claim's winner has no account yet).
const ALL_PAYEES: usize = 10 + 100 + 1000;
const GOLEM_LOTTERY: f64 = 155_000.0;
const PARAMS: DeployParams = DeployParams {
    withdraw_delay: 10,
    claim_window: 100,
    min_draw_delay: 1,
};

/// The payer's secret of the lottery with `nonce` (a node draws it at random).
fn secret(nonce: u64) -> B256 {
    keccak256(nonce.to_be_bytes())
}

struct Row {
    backend: &'static str,
    payees: usize,
    phase: &'static str,
    /// Commit of the lottery claimed with `claimAndWithdraw`.
    commit: u64,
    claim_and_withdraw: u64,
    /// Commit of the lottery claimed with `claim` (credited to the winner's deposit account).
    commit_credit: u64,
    claim: u64,
}

/// How a round's winner claims.
#[derive(Clone, Copy)]
enum Claim {
    /// `claim`: credited to the winner's deposit account.
    Credit,
    /// `claimAndWithdraw`: sent to the winner's wallet.
    Push,
}

/// The payees of size `n`: a range of their own.
fn range(n: usize) -> std::ops::Range<usize> {
    match n {
        10 => 0..10,
        100 => 10..110,
        _ => 110..1110,
    }
}

fn owed(payees: &[Address], round: u64) -> Vec<(Address, U256)> {
    payees
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                *p,
                U256::from(1_000_000_000u64 * (1 + ((i as u64 * 7919 + round) % 1000))),
            )
        })
        .collect()
}

/// Commits and claims one lottery; returns (commit gas, claim gas).
async fn round<S: Settlement>(
    payer: &S,
    client_for: impl Fn(Address) -> S,
    l: &Lottery,
    how: Claim,
    mine: impl AsyncFn(u64),
    hash: impl AsyncFn(&Lottery) -> jobmesh_contracts::alloy::primitives::B256,
) -> (u64, u64) {
    let c = payer.commit(&l.description).await.expect("commit");
    let head = payer.block_number().await.unwrap();
    mine(l.description.draw_block + 1 - head.min(l.description.draw_block)).await;
    let h = hash(l).await;
    let s = secret(l.description.nonce);
    let win = l.winner(h, s).expect("winner");
    let leaf = l.leaves[win];
    let winner = client_for(leaf.payee);
    let r = match how {
        Claim::Credit => winner.claim(&l.description, &leaf, &l.proof(win), s).await,
        Claim::Push => {
            winner
                .claim_and_withdraw(&l.description, &leaf, &l.proof(win), s)
                .await
        }
    }
    .expect("claim");
    (c.gas_used, r.gas_used)
}

/// Lanes: "first" uses fresh lanes `n` (credited) and `n + 1` (pushed); "steady" reuses them (nonce + 65,536).
fn nonces(n: usize, phase: &str) -> (u64, u64) {
    let base = n as u64 + if phase == "steady" { 65_536 } else { 0 };
    (base, base + 1)
}

async fn embedded(rows: &mut Vec<Row>) -> u64 {
    let chain = EmbeddedChain::new(1, 31337);
    let payees = accounts("bench", ALL_PAYEES + 1);
    for p in &payees {
        chain.fund(*p, U256::from(10u64).pow(U256::from(20)));
    }
    let payer_addr = payees[ALL_PAYEES];
    let contract = chain.deploy_settlement(payer_addr, PARAMS).unwrap();
    let payer = EmbeddedSettlement::new(chain.clone(), payer_addr, contract);
    payer
        .deposit(U256::from(10u64).pow(U256::from(19)))
        .await
        .unwrap();
    // Plain transfer, measured.
    let transfer = chain
        .transact_raw(
            payees[0],
            Some(payees[1]),
            Default::default(),
            U256::from(1),
        )
        .unwrap();
    for &n in &SIZES {
        let mine_payees = &payees[range(n)];
        for phase in ["first", "steady"] {
            if phase == "steady" {
                // Every payee already has an account, as regular workers do: a credited claim rewrites a slot.
                for a in mine_payees {
                    if payer.account(*a).await.unwrap().balance.is_zero() {
                        payer.as_sender(*a).deposit(U256::from(1)).await.unwrap();
                    }
                }
            }
            let (credit_nonce, push_nonce) = nonces(n, phase);
            let mut gas = Vec::new();
            for (nonce, how) in [(credit_nonce, Claim::Credit), (push_nonce, Claim::Push)] {
                let l = lottery::build(
                    payer_addr,
                    nonce,
                    &owed(mine_payees, nonce),
                    chain.block_number() + 2,
                    lottery::secret_hash(secret(nonce)),
                )
                .unwrap();
                let chain2 = chain.clone();
                gas.push(
                    round(
                        &payer,
                        |a| payer.as_sender(a),
                        &l,
                        how,
                        async |k| chain2.mine(k),
                        async |l: &Lottery| seeded_block_hash(1, l.description.draw_block),
                    )
                    .await,
                );
            }
            rows.push(Row {
                backend: "embedded",
                payees: n,
                phase,
                commit: gas[1].0,
                claim_and_withdraw: gas[1].1,
                commit_credit: gas[0].0,
                claim: gas[0].1,
            });
        }
    }
    // Throughput of the embedded EVM on commit + claimAndWithdraw rounds of 10 payees.
    let start = Instant::now();
    let rounds = 2000u64;
    for i in 0..rounds {
        let nonce = 200_000 + i;
        let l = lottery::build(
            payer_addr,
            nonce,
            &owed(&payees[..10], i),
            chain.block_number() + 2,
            lottery::secret_hash(secret(nonce)),
        )
        .unwrap();
        payer.commit(&l.description).await.unwrap();
        chain.mine(1);
        let win = l
            .winner(
                seeded_block_hash(1, l.description.draw_block),
                secret(nonce),
            )
            .unwrap();
        payer
            .as_sender(l.leaves[win].payee)
            .claim_and_withdraw(&l.description, &l.leaves[win], &l.proof(win), secret(nonce))
            .await
            .unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "embedded EVM: {} transactions in {secs:.2} s = {:.0} tx/s",
        2 * rounds,
        2.0 * rounds as f64 / secs
    );
    transfer.gas_used
}

async fn on_anvil(rows: &mut Vec<Row>) -> u64 {
    let anvil = Anvil::start(11_155_111).expect("anvil (run scripts/setup.d/30-chain.sh)");
    let key: PrivateKeySigner = DEV_KEYS[0].parse().unwrap();
    let (payer, _) = RpcSettlement::deploy(&anvil.url(), 11_155_111, key.clone(), PARAMS)
        .await
        .unwrap();
    payer
        .deposit(U256::from(10u64).pow(U256::from(21)))
        .await
        .unwrap();
    // Payees: fresh keys, funded by the dev account (they send their own claims).
    let keys: Vec<PrivateKeySigner> = (0..ALL_PAYEES)
        .map(|_| PrivateKeySigner::random())
        .collect();
    let addrs: Vec<Address> = keys.iter().map(|k| k.address()).collect();
    let provider = payer.provider().clone();
    let mut transfer_gas = 0;
    for (i, a) in addrs.iter().enumerate() {
        // anvil_setBalance avoids 1,110 transfers; one real transfer measures the anchor.
        if i == 0 {
            let tx = TransactionRequest::default()
                .with_to(*a)
                .with_value(U256::from(10u64).pow(U256::from(18)));
            let r = provider
                .send_transaction(tx)
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap();
            transfer_gas = r.gas_used;
        } else {
            let _: serde_json::Value = provider
                .raw_request(
                    "anvil_setBalance".into(),
                    (*a, U256::from(10u64).pow(U256::from(18))),
                )
                .await
                .unwrap();
        }
    }
    let url = anvil.url();
    let contract = payer.contract();
    let clients: std::collections::HashMap<Address, RpcSettlement> = {
        let mut m = std::collections::HashMap::new();
        for k in &keys {
            m.insert(
                k.address(),
                RpcSettlement::connect(&url, 11_155_111, Some(k.clone()), contract)
                    .await
                    .unwrap(),
            );
        }
        m
    };
    for &n in &SIZES {
        let mine_payees = &addrs[range(n)];
        for phase in ["first", "steady"] {
            if phase == "steady" {
                // Every payee of this size already has an account: a credited claim rewrites a slot.
                for a in mine_payees {
                    if payer.account(*a).await.unwrap().balance.is_zero() {
                        clients[a].deposit(U256::from(1)).await.unwrap();
                    }
                }
            }
            let (credit_nonce, push_nonce) = nonces(n, phase);
            let mut gas = Vec::new();
            for (nonce, how) in [(credit_nonce, Claim::Credit), (push_nonce, Claim::Push)] {
                let head = payer.block_number().await.unwrap();
                let l = lottery::build(
                    payer.sender(),
                    nonce,
                    &owed(mine_payees, nonce),
                    head + 2,
                    lottery::secret_hash(secret(nonce)),
                )
                .unwrap();
                gas.push(
                    round(
                        &payer,
                        |a| clients[&a].clone(),
                        &l,
                        how,
                        async |k| anvil.mine(k).await.unwrap(),
                        async |l: &Lottery| payer.draw_hash(&l.description).await.unwrap().unwrap(),
                    )
                    .await,
                );
            }
            rows.push(Row {
                backend: "anvil",
                payees: n,
                phase,
                commit: gas[1].0,
                claim_and_withdraw: gas[1].1,
                commit_credit: gas[0].0,
                claim: gas[0].1,
            });
        }
    }
    transfer_gas
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut rows = Vec::new();
    let t_embedded = embedded(&mut rows).await;
    let t_anvil = on_anvil(&mut rows).await;
    println!("plain ETH transfer, measured: embedded {t_embedded} gas, anvil {t_anvil} gas");
    println!();
    println!("Pushed: commit + claimAndWithdraw (winnings sent to the winner's wallet). Ratios are for this.");
    println!("| backend | payees | state | commit | claimAndWithdraw | commit+claimAndWithdraw | gas/payee | vs 21,000/payee | vs 21,000+11,000/payee | vs Golem 155,000 |");
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let total = (r.commit + r.claim_and_withdraw) as f64;
        let n = r.payees as f64;
        let plain = 21_000.0 * n;
        let batched = 21_000.0 + 11_000.0 * n;
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {:.1}× | {:.1}× | {:.2}× |",
            r.backend,
            r.payees,
            r.phase,
            r.commit,
            r.claim_and_withdraw,
            r.commit + r.claim_and_withdraw,
            total / n,
            plain / total,
            batched / total,
            GOLEM_LOTTERY / total
        );
    }
    println!();
    println!("Credited: commit + claim (winnings in the winner's deposit account; withdrawing them takes");
    println!("requestWithdrawal + withdraw after the time lock, not counted).");
    println!("| backend | payees | state | commit | claim | commit+claim | vs 21,000/payee |");
    println!("|---|---:|---|---:|---:|---:|---:|");
    for r in &rows {
        let total = r.commit_credit + r.claim;
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.1}× |",
            r.backend,
            r.payees,
            r.phase,
            r.commit_credit,
            r.claim,
            total,
            21_000.0 * r.payees as f64 / total as f64
        );
    }
}
