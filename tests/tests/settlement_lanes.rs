//! A payer reuses its contract lanes: its second lottery, built once its first is settled, goes into the first
//! one's lane with a fresh nonce, and its commit rewrites that warm slot instead of allocating one (from the
//! receipts' gas, on the embedded EVM running the real contract). The winners claim with `claimAndWithdraw`:
//! each prize lands in the winner's wallet, its deposit account stays empty, and the contract pays out exactly
//! the prizes.

use std::time::Duration;

use jobmesh_contracts::alloy::primitives::U256;
use jobmesh_contracts::{DeployParams, Settlement as _};
use jobmesh_node::market::{Conduct, WorkerPolicy};
use jobmesh_node::settlement::{
    ClaimTo, LotteryRecord, LotteryStatus, Settler, SettlerConfig, Side,
};
use jobmesh_p2p::Transport;
use jobmesh_simnet::{Cluster, SimChain};

fn worker() -> Option<WorkerPolicy> {
    Some(WorkerPolicy {
        conduct: Conduct::Honest,
        ..WorkerPolicy::default()
    })
}

fn wei(s: &str) -> U256 {
    s.parse().expect("decimal wei")
}

/// The payer's lotteries that were committed, oldest first.
fn paid_lotteries(payer: &Settler) -> Vec<LotteryRecord> {
    let mut records: Vec<LotteryRecord> = payer
        .records()
        .expect("records")
        .into_iter()
        .filter(|r| matches!(r.side, Side::Payer { .. }) && r.status != LotteryStatus::Abandoned)
        .collect();
    records.reverse();
    records
}

/// Runs one echo job on two replicas, then waits until the payer has `n` paid lotteries.
async fn job_then_paid(cluster: &Cluster, payer: &Settler, input: &[u8], n: usize) {
    let req = cluster
        .js_job(0, include_str!("../../examples/echo.js"), input, 2)
        .expect("job");
    let member = &cluster.members[0];
    let id = member.market.submit(req).await.expect("submit");
    let st = member
        .market
        .wait(&id, Duration::from_secs(60))
        .await
        .expect("wait");
    assert_eq!(st.phase, "verified", "{}", st.reason);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let l = paid_lotteries(payer);
        if l.len() == n && l.iter().all(|r| r.status == LotteryStatus::Paid) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lottery {n} not paid: {:?}",
            l.iter().map(|r| (r.status, &r.note)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payers_second_lottery_reuses_the_settled_lane_for_less_gas() {
    let policy = SettlerConfig {
        threshold_wei: 1,
        poll: Duration::from_millis(150),
        draw_in_blocks: 2,
        claim_to: ClaimTo::Wallet,
        ..SettlerConfig::default()
    };
    let sim = SimChain::new(21, DeployParams::default(), policy).expect("chain");
    let miner = sim.spawn_miner(Duration::from_millis(100));
    let cluster = Cluster::start_with(
        &[None, worker(), worker()],
        Transport::Memory,
        Some(sim.clone()),
    )
    .await
    .expect("cluster");
    let payer = cluster.members[0].settler.clone().expect("payer settles");
    let workers: Vec<Settler> = cluster.members[1..]
        .iter()
        .map(|m| m.settler.clone().expect("worker settles"))
        .collect();
    // Gas is free on the embedded chain: a worker's wallet only changes by what it wins.
    let wallets_before: Vec<U256> = workers
        .iter()
        .map(|w| sim.chain.balance(w.address()))
        .collect();
    let deposit = U256::from(10u64).pow(U256::from(18));
    payer.deposit(deposit).await.expect("deposit");

    job_then_paid(&cluster, &payer, b"first", 1).await;
    job_then_paid(&cluster, &payer, b"second", 2).await;

    let l = paid_lotteries(&payer);
    let (first, second) = (&l[0].lottery.description, &l[1].lottery.description);
    assert_eq!(first.lane(), 0, "a fresh payer starts in lane 0");
    assert_eq!(second.lane(), first.lane(), "the settled lane is reused");
    assert_ne!(second.nonce, first.nonce, "with a nonce never used before");
    assert_eq!((first.nonce, second.nonce), (0, 65_536));
    // A payer's gas on a paid lottery is its commit's (from the receipt).
    println!(
        "commit gas: fresh lane {}, reused lane {}",
        l[0].gas_used, l[1].gas_used
    );
    assert!(
        l[1].gas_used + 15_000 < l[0].gas_used,
        "rewriting the lane ({}) costs ≈17k gas less than allocating it ({})",
        l[1].gas_used,
        l[0].gas_used
    );

    // Each prize went to its winner's wallet; no deposit account was credited.
    let mut won_total = U256::ZERO;
    for (w, before) in workers.iter().zip(&wallets_before) {
        let r = w.report().await.expect("report");
        assert_eq!(r.won, r.won_to_wallet, "every win was pushed to the wallet");
        assert_eq!(wei(&r.balance), U256::ZERO, "deposit account untouched");
        assert_eq!(wei(&r.wallet), *before + wei(&r.won_to_wallet));
        assert_eq!(sim.chain.balance(w.address()), wei(&r.wallet));
        for row in r
            .lotteries
            .iter()
            .filter(|x| x.status == LotteryStatus::Claimed)
        {
            assert_eq!(row.claimed_to, Some(ClaimTo::Wallet));
        }
        won_total += wei(&r.won_to_wallet);
    }
    let prizes = l
        .iter()
        .fold(U256::ZERO, |a, r| a + r.lottery.description.total);
    assert_eq!(won_total, prizes, "both lotteries were won and pushed");
    // The contract paid out exactly the prizes; the payer's free balance is what it did not pay.
    assert_eq!(sim.chain.balance(sim.contract), deposit - prizes);
    let me = payer.address();
    assert_eq!(
        payer.chain().account(me).await.expect("account").balance,
        deposit - prizes
    );
    miner.abort();
    cluster.shutdown().await;
}
