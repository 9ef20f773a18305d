//! Settlement end to end on the embedded EVM: a requester's owed ledger becomes lotteries that its workers check,
//! and the winners claim — with a deposit too small at first (nothing is lost: the amounts stay owed), then
//! topped up. Checks that no wei is created or lost anywhere. And a payer reuses its contract lanes: its second
//! lottery, built once its first is settled, goes into the first one's lane with a fresh nonce, and its commit
//! rewrites that warm slot instead of allocating one (from the receipts' gas); its winners claim with
//! `claimAndWithdraw`, so each prize lands in the winner's wallet and the contract pays out exactly the prizes.
//! And `Settler::settle_now` builds at once the lottery that a long period would have held back.
//! And a worker refuses a lottery that pays it less than it is owed (a payer made to send 1-wei leaves): the
//! debt stays open on its side, and past its unpaid-credit limit it stops taking that payer's jobs, while it
//! accepts an honest payer's lottery and keeps working for it. And a payer that vanishes before revealing its
//! lottery's secret leaves its workers exactly their shares after the claim window.

use std::time::Duration;

use jobmesh_contracts::alloy::primitives::U256;
use jobmesh_contracts::{DeployParams, Settlement as _};
use jobmesh_node::market::messages::JobId;
use jobmesh_node::market::{Conduct, WorkerPolicy};
use jobmesh_node::settlement::{
    ClaimTo, LotteryRecord, LotteryStatus, PayerConduct, SettlementReport, Settler, SettlerConfig,
    Side,
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

/// How many lotteries with a nonce between `low` and `high` the payer built but the contract refused.
fn abandoned_between(payer: &Settler, low: u64, high: u64) -> u64 {
    let records = payer.records().expect("records");
    let refused = records.iter().filter(|r| {
        let nonce = r.lottery.description.nonce;
        r.status == LotteryStatus::Abandoned && low < nonce && nonce < high
    });
    refused
        .inspect(|r| println!("abandoned: {}", r.note))
        .count() as u64
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
    wait_paid(payer, n).await;
}

/// Waits until the payer has committed exactly `n` lotteries and every one of them is paid.
async fn wait_paid(payer: &Settler, n: usize) {
    wait_for(
        &format!("lottery {n} paid"),
        Duration::from_secs(60),
        async || {
            let l = paid_lotteries(payer);
            (l.len() == n && l.iter().all(|r| r.status == LotteryStatus::Paid)).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payers_second_lottery_reuses_the_settled_lane_for_less_gas() {
    let policy = SettlerConfig {
        threshold_wei: 1,
        poll: Duration::from_millis(150),
        // A block every 100 ms: a draw 2 blocks ahead could be reached before a slow machine's commit lands
        // (the contract refuses it and the payer builds again with the next nonce).
        draw_in_blocks: 5,
        claim_to: ClaimTo::Wallet,
        ..SettlerConfig::default()
    };
    let (sim, miner, cluster, payer) = requester_and_two_workers(21, policy).await;
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
    assert!(second.nonce > first.nonce, "with a nonce never used before");
    assert_eq!(
        second.nonce - first.nonce,
        65_536 * (1 + abandoned_between(&payer, first.nonce, second.nonce)),
        "one counter step per lottery built (a refused commit uses one too)"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_now_builds_the_lottery_its_period_would_have_waited_for() {
    let policy = SettlerConfig {
        threshold_wei: u128::MAX,
        period: Duration::from_secs(3600),
        poll: Duration::from_millis(150),
        draw_in_blocks: 5,
        ..SettlerConfig::default()
    };
    let (_sim, miner, cluster, payer) = requester_and_two_workers(11, policy).await;
    payer
        .deposit(wei("1000000000000000000"))
        .await
        .expect("deposit");
    echo_verified(&cluster, b"owed").await;
    let owed: u128 = cluster.members[0]
        .market
        .db()
        .ledger()
        .expect("ledger")
        .into_iter()
        .map(|(_, wei)| wei)
        .sum();
    assert!(owed > 0, "the workers are owed");
    // Rounds run every 150 ms, but the period (an hour) and the threshold keep the ledger as it is.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(paid_lotteries(&payer).is_empty(), "built before its period");

    payer.settle_now().await.expect("settle now");
    let built = paid_lotteries(&payer);
    assert_eq!(built.len(), 1, "one lottery over what was owed");
    assert_eq!(built[0].lottery.description.total, U256::from(owed));
    assert_eq!(payer.report().await.expect("report").owed_unsettled, "0");
    wait_paid(&payer, 1).await;
    miner.abort();
    cluster.shutdown().await;
}

/// A requester (member 0) and two honest workers on a fresh chain mined every 100 ms; with the miner's task and
/// the requester's settler.
async fn requester_and_two_workers(
    seed: u64,
    policy: SettlerConfig,
) -> (SimChain, tokio::task::JoinHandle<()>, Cluster, Settler) {
    let sim = SimChain::new(seed, DeployParams::default(), policy).expect("chain");
    let miner = sim.spawn_miner(Duration::from_millis(100));
    let cluster = Cluster::start_with(
        &[None, worker(), worker()],
        Transport::Memory,
        Some(sim.clone()),
    )
    .await
    .expect("cluster");
    let payer = cluster.members[0].settler.clone().expect("payer settles");
    (sim, miner, cluster, payer)
}

/// Member `m` submits an echo job on one replica at `price` wei per million fuel, with `timeout`; returns its id.
async fn echo_job(cluster: &Cluster, m: usize, input: &[u8], timeout: Duration) -> JobId {
    let mut req = cluster
        .js_job(m, include_str!("../../examples/echo.js"), input, 1)
        .expect("job");
    req.price_wei_per_mfuel = 1_000_000; // ≈ 60,000 wei per echo job
    req.timeout = timeout;
    cluster.members[m].market.submit(req).await.expect("submit")
}

/// Submits an echo job on member `m` (see [`echo_job`]) and waits until it is verified.
async fn verified_echo(cluster: &Cluster, m: usize, input: &[u8]) -> JobId {
    let id = echo_job(cluster, m, input, Duration::from_secs(60)).await;
    let st = cluster.members[m]
        .market
        .wait(&id, Duration::from_secs(60))
        .await
        .expect("wait");
    assert_eq!(st.phase, "verified", "{}", st.reason);
    id
}

/// The payer's only lottery once every payee answered its notice.
async fn answered_lottery(payer: &Settler) -> LotteryRecord {
    wait_for(
        "the payee to answer the lottery notice",
        Duration::from_secs(30),
        async || {
            let records = payer.records().expect("records");
            records.into_iter().find(|r| match &r.side {
                Side::Payer { payees } => payees.iter().all(|p| p.notified),
                Side::Payee { .. } => false,
            })
        },
    )
    .await
}

/// What `payer` owes the worker unpaid, by the worker's own account.
async fn unpaid(worker: &Settler, payer: &jobmesh_p2p::PeerId) -> String {
    let report = worker.report().await.expect("report");
    let row = report
        .unpaid_credit
        .iter()
        .find(|s| s.payer == payer.to_string())
        .expect("the payer has an account with the worker");
    row.unpaid.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_refuses_a_one_wei_leaf_keeps_the_debt_and_stops_working_for_that_payer() {
    let policy = SettlerConfig {
        threshold_wei: 1,
        poll: Duration::from_millis(150),
        draw_in_blocks: 5,
        // Jobs run one after another here: every receipt is older than the lottery that must cover it.
        receipt_grace: Duration::ZERO,
        ..SettlerConfig::default()
    };
    let sim = SimChain::new(29, DeployParams::default(), policy).expect("chain");
    let miner = sim.spawn_miner(Duration::from_millis(100));
    let limit = 1_000u128;
    let worker = Some(WorkerPolicy {
        max_unpaid_credit_wei: Some(limit),
        ..WorkerPolicy::default()
    });
    // Member 0 pays honestly, member 1 sends 1-wei leaves, member 2 works for both.
    let cluster = Cluster::start_with(&[None, None, worker], Transport::Memory, Some(sim.clone()))
        .await
        .expect("cluster");
    let (honest, cheat) = (&cluster.members[0], &cluster.members[1]);
    let w = cluster.members[2].settler.clone().expect("worker settles");
    for m in [honest, cheat] {
        let s = m.settler.as_ref().expect("payer settles");
        s.deposit(wei("1000000000000000000"))
            .await
            .expect("deposit");
    }
    cheat
        .settler
        .as_ref()
        .expect("payer settles")
        .set_conduct(PayerConduct::OneWeiLeaves);

    // The cheat's job runs; its lottery gives the worker 1 wei for ≈ 60,000 owed: refused.
    verified_echo(&cluster, 1, b"cheat 1").await;
    let bad = answered_lottery(cheat.settler.as_ref().expect("settles")).await;
    let Side::Payer { payees } = &bad.side else {
        panic!("payer side")
    };
    // What the cheat took out of its ledger for the worker.
    let owed_by_cheat = payees[0].wei;
    assert!(owed_by_cheat > limit + 1);
    assert_eq!(bad.lottery.leaves[0].length, U256::from(1), "a 1-wei leaf");
    let refusal = payees[0].refusal.as_deref().expect("the worker refused it");
    assert!(refusal.contains("interval is 1 wei"), "{refusal}");
    let r = w.report().await.expect("report");
    assert_eq!(r.refused, 1);
    assert_eq!(r.expected_income, "0", "a refused lottery is not income");
    assert_eq!(r.lotteries[0].status, LotteryStatus::Refused);
    // `/metrics` counts it: jobmesh_lotteries{side="payee",status="refused"}.
    let mut metrics = jobmesh_node::metrics::Snapshot::default();
    metrics.add_lotteries(&w.records().expect("records"));
    let refused_gauge = ("payee".to_string(), "refused".to_string());
    assert_eq!(metrics.lotteries.get(&refused_gauge), Some(&1));
    assert_eq!(
        unpaid(&w, &cheat.node.peer_id()).await,
        owed_by_cheat.to_string(),
        "the debt stays open"
    );

    // The honest payer's lottery pays the full debt: accepted, nothing owed unpaid.
    verified_echo(&cluster, 0, b"honest 1").await;
    let good = answered_lottery(honest.settler.as_ref().expect("settles")).await;
    let Side::Payer { payees } = &good.side else {
        panic!("payer side")
    };
    assert_eq!(payees[0].refusal, None, "the honest lottery is accepted");
    assert_eq!(unpaid(&w, &honest.node.peer_id()).await, "0");
    let r = w.report().await.expect("report");
    assert_eq!(r.refused, 1);
    assert_eq!(r.expected_income, payees[0].wei.to_string());

    // Standing: the cheat owes more than the limit, so its next job gets no offer and never runs on the worker;
    // the honest payer's next job still runs.
    let id = echo_job(&cluster, 1, b"cheat 2", Duration::from_secs(4)).await;
    let st = cheat
        .market
        .wait(&id, Duration::from_secs(30))
        .await
        .expect("wait");
    assert_ne!(st.phase, "verified");
    assert_eq!((st.offers, st.assigned), (0, 0), "{st:?}");
    let worker_db = cluster.members[2].market.db();
    assert!(
        worker_db.worker_job(&id).expect("db").is_none(),
        "never assigned"
    );
    let id = verified_echo(&cluster, 0, b"honest 2").await;
    assert!(worker_db.worker_job(&id).expect("db").is_some());
    miner.abort();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_take_their_shares_when_the_payer_vanishes_before_revealing_its_secret() {
    let policy = SettlerConfig {
        threshold_wei: 1,
        poll: Duration::from_millis(150),
        // 8 s until the draw at a block per 100 ms: time to deliver the notices, then the payer vanishes.
        draw_in_blocks: 80,
        ..SettlerConfig::default()
    };
    let params = DeployParams {
        claim_window: 20,
        ..DeployParams::default()
    };
    let sim = SimChain::new(41, params, policy).expect("chain");
    let miner = sim.spawn_miner(Duration::from_millis(100));
    let cluster = Cluster::start_with(
        &[None, worker(), worker()],
        Transport::Memory,
        Some(sim.clone()),
    )
    .await
    .expect("cluster");
    let payer = cluster.members[0].settler.clone().expect("payer settles");
    let deposit = U256::from(10u64).pow(U256::from(18));
    payer.deposit(deposit).await.expect("deposit");
    echo_verified(&cluster, b"unrevealed").await;
    let workers: Vec<Settler> = cluster.members[1..]
        .iter()
        .map(|m| m.settler.clone().expect("worker settles"))
        .collect();
    // Both workers accepted the lottery; neither has its secret (the draw block is not mined yet).
    let mut shares = Vec::new();
    for w in &workers {
        let r = wait_for(
            "the worker to accept",
            Duration::from_secs(20),
            async || w.records().expect("records").into_iter().next(),
        )
        .await;
        assert_eq!(r.secret, None, "no secret before the draw");
        let Side::Payee { leaf, .. } = r.side else {
            panic!("payee side expected")
        };
        shares.push(r.lottery.leaves[leaf].length);
    }
    let l = paid_lotteries(&payer).remove(0).lottery;
    assert!(
        sim.chain.block_number() < l.description.draw_block,
        "the payer could have revealed already"
    );
    // The payer goes away for good before it can reveal its secret.
    cluster.members[0].market.stop();
    for (w, share) in workers.iter().zip(&shares) {
        let r = wait_for(
            "the worker to take its share",
            Duration::from_secs(30),
            async || {
                let r = w.report().await.expect("report");
                (r.lotteries[0].status == LotteryStatus::Shared).then_some(r)
            },
        )
        .await;
        assert!(
            r.lotteries[0].note.contains("never revealed"),
            "{}",
            r.lotteries[0].note
        );
        assert_eq!(wei(&r.balance), *share, "exactly its share, credited");
        assert_eq!(wei(&r.won), *share);
    }
    // Nothing came back to the payer: its free balance is the deposit less the whole lottery.
    let me = payer.address();
    assert_eq!(
        payer.chain().account(me).await.expect("account").balance,
        deposit - l.description.total
    );
    assert_eq!(
        shares.iter().fold(U256::ZERO, |a, s| a + s),
        l.description.total
    );
    assert_eq!(sim.chain.balance(sim.contract), deposit);
    miner.abort();
    cluster.shutdown().await;
}
