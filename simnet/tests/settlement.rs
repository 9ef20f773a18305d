//! Settlement end to end on the embedded EVM: a requester's owed ledger becomes lotteries that its workers check,
//! and the winners claim — with a deposit too small at first (nothing is lost: the amounts stay owed), then
//! topped up. Checks that no wei is created or lost anywhere.

use std::time::Duration;

use jobmesh_contracts::alloy::primitives::U256;
use jobmesh_contracts::{DeployParams, Settlement as _};
use jobmesh_node::market::{Conduct, WorkerPolicy};
use jobmesh_node::settlement::{
    LotteryRecord, LotteryStatus, SettlementReport, SettlerConfig, Side,
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

async fn wait_for<T>(what: &str, limit: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owed_work_is_paid_through_lotteries_that_workers_claim() {
    let policy = SettlerConfig {
        threshold_wei: 1, // a lottery as soon as anything is owed
        poll: Duration::from_millis(150),
        draw_in_blocks: 2,
        ..SettlerConfig::default()
    };
    // No deposit at start: the requester cannot pay yet.
    let sim = SimChain::new(7, DeployParams::default(), policy).expect("chain");
    let miner = sim.spawn_miner(Duration::from_millis(100));
    let cluster = Cluster::start_with(
        &[None, worker(), worker(), worker()],
        Transport::Memory,
        Some(sim.clone()),
    )
    .await
    .expect("cluster");
    let requester = &cluster.members[0];
    let payer = requester.settler.clone().expect("requester settles");

    // Three jobs, three replicas each: every worker is owed for every job.
    let mut owed_per_worker = std::collections::HashMap::new();
    for i in 0..3u32 {
        let req = cluster
            .js_job(
                0,
                include_str!("../../examples/cpu-heavy.js"),
                format!("{{\"rounds\": {}}}", 200 * (i + 1)).as_bytes(),
                3,
            )
            .expect("job");
        let id = requester.market.submit(req).await.expect("submit");
        let status = requester
            .market
            .wait(&id, Duration::from_secs(60))
            .await
            .expect("wait");
        assert_eq!(status.phase, "verified", "job {i}: {}", status.reason);
    }
    for (peer, wei) in requester.market.db().ledger().expect("ledger") {
        owed_per_worker.insert(peer, wei);
    }
    assert_eq!(owed_per_worker.len(), 3, "every worker is owed");
    let owed_total: u128 = owed_per_worker.values().sum();
    assert!(owed_total > 0);

    // Blocked by the empty deposit: nothing is built, everything stays owed.
    let report = wait_for(
        "the deposit to block settlement",
        Duration::from_secs(10),
        async || {
            let r = payer.report().await.expect("report");
            r.blocked.is_some().then_some(r)
        },
    )
    .await;
    assert!(report.lotteries.is_empty());
    assert_eq!(report.owed_unsettled, owed_total.to_string());

    // Top up the deposit: one lottery pays all three workers.
    let deposit = U256::from(owed_total) * U256::from(10);
    payer.deposit(deposit).await.expect("deposit");
    let paid: LotteryRecord = wait_for(
        "the lottery to be drawn and claimed",
        Duration::from_secs(30),
        async || {
            let records = payer.records().expect("records");
            records
                .into_iter()
                .find(|r| r.status == LotteryStatus::Paid)
        },
    )
    .await;
    let Side::Payer { payees } = &paid.side else {
        panic!("payer side expected")
    };
    assert_eq!(payees.len(), 3);
    for p in payees {
        assert!(
            p.notified && p.refusal.is_none(),
            "payee {} refused: {:?}",
            p.peer,
            p.refusal
        );
        assert_eq!(
            Some(&p.wei),
            owed_per_worker.get(&p.peer),
            "leaf pays what is owed"
        );
    }
    assert_eq!(paid.lottery.description.total, U256::from(owed_total));
    let after: SettlementReport = payer.report().await.expect("report");
    assert_eq!(
        after.owed_unsettled, "0",
        "the ledger moved into the lottery"
    );

    // Exactly one worker won and claimed; the others know they lost.
    let mut winners = 0;
    let mut won_total = U256::ZERO;
    for m in &cluster.members[1..] {
        let s = m.settler.as_ref().expect("worker settles");
        let r = wait_for(
            "the worker to see the draw",
            Duration::from_secs(20),
            async || {
                let r = s.report().await.expect("report");
                r.lotteries
                    .iter()
                    .all(|l| l.status != LotteryStatus::Committed)
                    .then_some(r)
            },
        )
        .await;
        assert_eq!(r.lotteries.len(), 1, "each worker accepted the lottery");
        let share = owed_per_worker[&m.node.peer_id()];
        assert_eq!(r.expected_income, share.to_string());
        if r.lotteries[0].status == LotteryStatus::Claimed {
            winners += 1;
            won_total += wei(&r.won);
            assert_eq!(wei(&r.balance), U256::from(owed_total), "winnings credited");
        } else {
            assert_eq!(r.lotteries[0].status, LotteryStatus::Lost);
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(won_total, U256::from(owed_total));

    // No wei created or lost: the contract holds the deposit; the payer's free balance is what was not paid.
    assert_eq!(sim.chain.balance(sim.contract), deposit);
    assert_eq!(wei(&after.balance), deposit - U256::from(owed_total));
    assert_eq!(payer.chain().sender(), after.address);
    miner.abort();
    cluster.shutdown().await;
}

/// Member 0 submits an echo job on two replicas; it must be verified.
async fn echo_verified(cluster: &Cluster, input: &[u8]) {
    let req = cluster
        .js_job(0, include_str!("../../examples/echo.js"), input, 2)
        .expect("job");
    let id = cluster.members[0].market.submit(req).await.expect("submit");
    let st = cluster.members[0]
        .market
        .wait(&id, Duration::from_secs(60))
        .await
        .expect("wait");
    assert_eq!(st.phase, "verified", "{}", st.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_member_restarts_on_its_own_data_with_its_identity() {
    let sim = SimChain::new(3, DeployParams::default(), SettlerConfig::default()).expect("chain");
    let mut cluster =
        Cluster::start_with(&[None, worker(), worker()], Transport::Memory, Some(sim))
            .await
            .expect("cluster");
    echo_verified(&cluster, b"before").await;
    let peer = cluster.members[1].node.peer_id();
    let jobs_before = cluster.members[1]
        .market
        .db()
        .worker_jobs()
        .expect("db")
        .len();
    let started = std::time::Instant::now();
    cluster
        .restart(1, Duration::from_millis(100))
        .await
        .expect("restart");
    println!("restarted in {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "databases released late"
    );
    assert_eq!(cluster.members[1].node.peer_id(), peer, "same identity");
    assert_eq!(
        cluster.members[1]
            .market
            .db()
            .worker_jobs()
            .expect("db")
            .len(),
        jobs_before,
        "same data"
    );
    echo_verified(&cluster, b"after").await;
    cluster.shutdown().await;
}
