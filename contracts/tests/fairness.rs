//! Fairness and bit-for-bit agreement between `jobmesh-lottery` and the contract.
//!
//! Fairness: 10,000 lotteries with random owed amounts are committed and claimed on the real bytecode in the
//! embedded EVM (seed `FAIRNESS_SEED`). For payee j, income_j = Σ_k V_k·[j wins k] has mean owed_j = Σ_k a_jk
//! and variance σ_j² = Σ_k a_jk·(V_k − a_jk). The test requires |income_j − owed_j| ≤ 5·σ_j for every payee
//! (a fair draw fails this with probability < 6·10⁻⁷ per payee) and that every lottery paid exactly once.

mod common;

use common::{eth, World};
use jobmesh_contracts::alloy::primitives::{Address, B256, U256};
use jobmesh_contracts::alloy::sol_types::SolCall;
use jobmesh_contracts::bindings::Settlement as S;
use jobmesh_contracts::lottery::{self, draw_point, Description};
use jobmesh_contracts::{DeployParams, Settlement};
use rand::{Rng, SeedableRng};

const FAIRNESS_SEED: u64 = 0x5eed_0005;
const LOTTERIES: usize = 10_000;
const PAYEES: usize = 8;
const BATCH: usize = 50;

#[tokio::test]
async fn ten_thousand_lotteries_pay_each_payee_what_it_is_owed() {
    let w = World::new(
        FAIRNESS_SEED,
        PAYEES,
        DeployParams {
            withdraw_delay: 10,
            claim_window: 100,
            min_draw_delay: 1,
        },
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(FAIRNESS_SEED);
    w.payer.deposit(eth(100)).await.unwrap();

    let mut owed = [0f64; PAYEES];
    let mut variance = [0f64; PAYEES];
    let mut paid_total = U256::ZERO;
    let mut nonce = 0u64;
    while (nonce as usize) < LOTTERIES {
        // A batch of lotteries committed in one transaction, all drawn from the next block.
        let draw = w.chain.block_number() + 2;
        let mut batch = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            // Random owed amounts: each payee owed 0..=1000 gwei-units, at least one positive.
            let mut amounts = [0u64; PAYEES];
            for a in amounts.iter_mut() {
                *a = if rng.gen_bool(0.8) {
                    rng.gen_range(1..=1000)
                } else {
                    0
                };
            }
            if amounts.iter().all(|&a| a == 0) {
                amounts[rng.gen_range(0..PAYEES)] = 1;
            }
            let owed_list: Vec<(Address, U256)> = w
                .payees
                .iter()
                .zip(amounts)
                .map(|(p, a)| (*p, U256::from(a) * U256::from(1_000_000_000u64)))
                .collect();
            let l = lottery::build(
                w.payer.sender(),
                nonce,
                &owed_list,
                draw,
                lottery::secret_hash(common::secret(nonce)),
            )
            .unwrap();
            let v: f64 = amounts.iter().sum::<u64>() as f64;
            for (j, &a) in amounts.iter().enumerate() {
                owed[j] += a as f64;
                variance[j] += a as f64 * (v - a as f64);
            }
            nonce += 1;
            batch.push(l);
        }
        let descriptions: Vec<Description> = batch.iter().map(|l| l.description).collect();
        w.payer.commit_many(&descriptions).await.unwrap();
        w.chain.mine(2);
        for l in &batch {
            let win = w.winner(l);
            w.claim(l, win).await.unwrap();
            paid_total += l.description.total;
        }
    }

    let gwei = U256::from(1_000_000_000u64);
    let mut income_sum = U256::ZERO;
    for (j, payee) in w.payees.iter().enumerate() {
        let income = w.payer.account(*payee).await.unwrap().balance;
        income_sum += income;
        let income_units = (income / gwei).to::<u64>() as f64;
        let sigma = variance[j].sqrt();
        let z = (income_units - owed[j]) / sigma;
        println!(
            "payee {j}: owed {:.0}, income {income_units:.0}, sigma {sigma:.0}, z {z:+.2}",
            owed[j]
        );
        assert!(
            z.abs() <= 5.0,
            "payee {j} income {income_units} is {z:.2} sigma from owed {}",
            owed[j]
        );
    }
    assert_eq!(
        income_sum, paid_total,
        "every lottery paid exactly its total, exactly once"
    );
    assert_eq!(
        w.chain.balance(w.contract),
        w.payer.account(w.payer.sender()).await.unwrap().balance + income_sum
    );
}

#[tokio::test]
async fn pure_lottery_matches_contract_on_random_cases() {
    let w = World::new(
        77,
        2,
        DeployParams {
            withdraw_delay: 1,
            claim_window: 1,
            min_draw_delay: 1,
        },
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xc0ffee);
    for _ in 0..3000 {
        let d = Description {
            payer: Address::from(rng.gen::<[u8; 20]>()),
            nonce: rng.gen(),
            total: U256::from(rng.gen_range(1..=lottery::MAX_TOTAL)),
            root: B256::from(rng.gen::<[u8; 32]>()),
            draw_block: rng.gen(),
            secret_hash: B256::from(rng.gen::<[u8; 32]>()),
        };
        let sol = S::Lottery {
            payer: d.payer,
            nonce: d.nonce,
            total: d.total.to::<u128>().try_into().unwrap(),
            root: d.root,
            drawBlock: d.draw_block,
            secretHash: d.secret_hash,
        };
        let out = w
            .payer
            .view(S::lotteryIdCall { lottery: sol }.abi_encode().into())
            .await
            .unwrap();
        let id = S::lotteryIdCall::abi_decode_returns(&out).unwrap();
        assert_eq!(id, d.id());
        let h = B256::from(rng.gen::<[u8; 32]>());
        let secret = B256::from(rng.gen::<[u8; 32]>());
        let call = S::drawPointCall {
            id,
            drawHash: h,
            secret,
            total: d.total,
        };
        let out = w.payer.view(call.abi_encode().into()).await.unwrap();
        assert_eq!(
            S::drawPointCall::abi_decode_returns(&out).unwrap(),
            draw_point(id, h, secret, d.total).unwrap()
        );
    }
}

#[tokio::test]
async fn claims_accept_exactly_the_pure_winner_on_random_trees() {
    // Random tree sizes (1..=300 leaves): the contract accepts the winner computed in Rust, with the proof
    // computed in Rust, and rejects a neighbouring leaf.
    let w = World::new(
        78,
        300,
        DeployParams {
            withdraw_delay: 1,
            claim_window: 1,
            min_draw_delay: 1,
        },
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xbeef);
    w.payer.deposit(eth(100)).await.unwrap();
    for nonce in 0..200u64 {
        let n = rng.gen_range(1..=300);
        let amounts: Vec<u64> = (0..n).map(|_| rng.gen_range(1..=1_000_000)).collect();
        let l = w.lottery(nonce, &amounts, 2);
        w.payer.commit(&l.description).await.unwrap();
        w.chain.mine(1);
        let win = w.winner(&l);
        if n > 1 {
            let other = (win + 1) % n;
            common::assert_reverts(w.claim(&l, other).await, "NotWinner");
        }
        w.claim(&l, win).await.unwrap();
    }
}
