//! Credibility-based verification on real loopback meshes (issue 21; docs/protocol.md, "Credibility"): the
//! workers are a simulated cluster (real swarms, sled, wasmtime), the requester a node of its own started with
//! the credibility policy and bootstrapped to the cluster.

use std::time::Duration;

use jobmesh_contracts::embedded::EmbeddedSettlement;
use jobmesh_contracts::DeployParams;
use jobmesh_exec::{JobCode, Plugin};
use jobmesh_node::launch::{launch, Launched};
use jobmesh_node::market::credibility::EvidenceChange;
use jobmesh_node::market::db::MarketDb;
use jobmesh_node::market::messages::{CodeKind, JobLimits, JobSpec, JOBS_TOPIC};
use jobmesh_node::market::requester::{Action, RepChange, RequesterJob};
use jobmesh_node::market::verification::{CredibilityParams, VerificationPolicy};
use jobmesh_node::market::{Conduct, JobRequest, JobStatus, MarketConfig, WorkerPolicy};
use jobmesh_node::settlement::{Chain, SettlerConfig};
use jobmesh_p2p::{identity::Keypair, Config, PeerId, Transport};
use jobmesh_simnet::{Cluster, SimChain};
use jobmesh_store::unixfs::{file_cid, Profile};
use jobmesh_store::Store;

fn worker() -> WorkerPolicy {
    WorkerPolicy {
        max_concurrent: 4,
        ..WorkerPolicy::default()
    }
}

/// What a requester knew before the test: `passed` spot-checks of `peer`, and (if `recorded`) a positive
/// reputation, so it is invited by name and waited for.
fn seed(db: &MarketDb, peer: PeerId, passed: u32, recorded: bool) {
    for _ in 0..passed {
        db.record_evidence(&peer, EvidenceChange::SpotCheck { passed: true })
            .unwrap();
    }
    if recorded {
        let cid = jobmesh_store::cid_of_raw(b"history");
        let spec = JobSpec {
            kind: CodeKind::WasiCommand,
            plugin: None,
            code: cid,
            input: cid,
            limits: JobLimits {
                max_fuel: 1,
                memory_bytes: 1,
                output_bytes: 1,
                stderr_bytes: 1,
            },
            engine: "history".into(),
            replicas: 1,
            price_wei_per_mfuel: 0,
            verifier: None,
            nonce: rand_nonce(&peer),
            error_rate_ppb: None,
        };
        let mut past = RequesterJob::new(spec, 0, 1);
        past.cancel("history");
        let agreed = Action::Reputation {
            peer,
            change: RepChange::Agreed,
        };
        db.commit_step(&past, &[agreed], true).unwrap();
    }
}

fn rand_nonce(peer: &PeerId) -> u64 {
    u64::from_le_bytes(peer.to_bytes()[..8].try_into().unwrap())
}

/// A requester verifying by credibility with spot-check rate `q` (every identity counted as staked), its
/// database seeded by `history`, joined to `cluster`.
async fn requester(
    cluster: &Cluster,
    q: f64,
    history: impl FnOnce(&MarketDb),
) -> (Launched, tempfile::TempDir) {
    let params = CredibilityParams {
        spot_check_rate: q,
        // Every identity a staked one here (stake is the cold-start test's subject): f = 0.1 for all.
        stake_required_for_cold_start: false,
        ..CredibilityParams::default()
    };
    requester_with(cluster, params, history, None).await
}

/// Settlement of a requester: its chain client, its lottery policy and the stake contract it credits.
type Settle = (Chain, SettlerConfig, [u8; 20]);

/// A requester verifying by credibility with `params`, its database seeded by `history`, joined to `cluster`
/// and seeing (up to three of) its members on the jobs topic.
async fn requester_with(
    cluster: &Cluster,
    params: CredibilityParams,
    history: impl FnOnce(&MarketDb),
    settle: Option<(Keypair, Settle)>,
) -> (Launched, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("blocks")).unwrap();
    let db = MarketDb::open(&dir.path().join("market")).unwrap();
    history(&db);
    let (key, settle) = match settle {
        Some((key, settle)) => (key, Some(settle)),
        None => (Keypair::generate_ed25519(), None),
    };
    let mut cfg = Config::new(key);
    cfg.transport = Transport::Tcp;
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    cfg.bootstrap = cluster.members[0].node.listen_addrs().await.unwrap();
    let market = MarketConfig {
        verification: VerificationPolicy::Credibility(params),
        stake_contract: settle.as_ref().map(|(.., stake)| *stake),
        ..MarketConfig::default()
    };
    let exec = cluster.executor().clone();
    let settlement = settle.map(|(chain, policy, _)| (chain, policy));
    let launched = launch(cfg, store, db, exec, market, settlement)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let workers = cluster.members.len().min(3);
    while launched.node.topic_peers(JOBS_TOPIC).await.unwrap_or(0) < workers {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the requester never saw the workers"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    (launched, dir)
}

/// An echo job of one replica (the rule adds replicas as it needs) with `input`, stored at `node`.
fn echo_job(cluster: &Cluster, node: &Launched, input: &str) -> JobRequest {
    let echo =
        std::fs::read_to_string(jobmesh_tests::workspace_root().join("examples/echo.js")).unwrap();
    let plugin = Plugin::bundled().cid();
    let exec = cluster.executor().clone();
    let code = tokio::task::block_in_place(|| exec.compile_js(&plugin, "job.js", &echo)).unwrap();
    let add = |bytes: &[u8]| {
        node.node
            .store()
            .add_file(bytes, &Profile::KUBO)
            .unwrap()
            .root
    };
    let limits = jobmesh_exec::Limits::default();
    JobRequest {
        kind: CodeKind::JavyBytecode,
        plugin: Some(plugin),
        code: add(&JobCode::Js(code).to_bytes()),
        input: add(input.as_bytes()),
        limits: JobLimits {
            max_fuel: limits.fuel,
            memory_bytes: limits.memory_bytes,
            output_bytes: limits.output_bytes,
            stderr_bytes: limits.stderr_bytes,
        },
        replicas: 1,
        price_wei_per_mfuel: 1_000,
        verifier: None,
        timeout: Duration::from_secs(30),
        error_rate: Some(1e-3),
    }
}

/// Submits an echo job of `input` and waits for its end.
async fn run(cluster: &Cluster, req: &Launched, input: &str) -> JobStatus {
    run_request(req, echo_job(cluster, req, input)).await
}

/// Submits `job` and waits for its end.
async fn run_request(req: &Launched, job: JobRequest) -> JobStatus {
    let id = req.market.submit(job).await.unwrap();
    req.market.wait(&id, Duration::from_secs(45)).await.unwrap()
}

fn honest_cid(input: &str) -> String {
    file_cid(input.as_bytes(), &Profile::KUBO)
        .unwrap()
        .to_string()
}

/// A worker that passed 41 spot-checks at this requester has credibility `1 − 0.1/(0.9·41·e) = 0.999003`: its
/// result alone reaches `1 − ε` at ε = 10⁻³, so the job is accepted after one execution, where a majority
/// of three would have paid for three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credible_worker_gets_a_job_accepted_with_one_execution() {
    let cluster = Cluster::start(
        &[Some(worker()), Some(worker()), Some(worker())],
        Transport::Tcp,
    )
    .await
    .unwrap();
    let veteran = cluster.members[1].node.peer_id();
    let (req, _dir) = requester(&cluster, 0.0, |db| seed(db, veteran, 41, true)).await;
    let input = "one execution\n";
    let id = req
        .market
        .submit(echo_job(&cluster, &req, input))
        .await
        .unwrap();
    let s = req.market.wait(&id, Duration::from_secs(45)).await.unwrap();
    assert_eq!(s.phase, "verified", "{}", s.reason);
    assert_eq!(s.output.as_deref(), Some(honest_cid(input).as_str()));
    assert_eq!(s.agreeing, vec![veteran.to_string()]);
    assert_eq!(s.assigned, 1, "{s:?}");
    let counters = req.market.verification_counters();
    assert_eq!((counters.executions, counters.spot_checks), (1, 0));
    // The agreement is evidence too (it does not raise credibility: only spot-checks do).
    assert_eq!(req.market.db().evidence(&veteran).unwrap().agreed, 1);
    req.market.stop();
    cluster.shutdown().await;
}

/// A saboteur behaves while it earns trust (its history: 60 spot-checks passed, the most credible worker, so
/// it gets the jobs alone), then turns: it restarts forging every output. Spot-checks (q = ½) re-announce
/// results the requester verified while it was honest; the first one it answers with its forgery fails: that
/// output is not accepted, the worker is blacklisted and the evidence records the failed spot-check, and the
/// next job goes to an honest worker. (Its forgeries on real jobs before the catch were accepted on its
/// credibility: that is the error rate ε the rule allows, not a bound on a single worker.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saboteur_honest_until_trusted_is_caught_by_a_spot_check() {
    let mut cluster = Cluster::start(
        &[Some(worker()), Some(worker()), Some(worker())],
        Transport::Tcp,
    )
    .await
    .unwrap();
    let saboteur = cluster.members[1].node.peer_id();
    let honest = [
        cluster.members[0].node.peer_id(),
        cluster.members[2].node.peer_id(),
    ];
    let (req, _dir) = requester(&cluster, 0.5, |db| {
        seed(db, saboteur, 60, true);
        seed(db, honest[0], 41, false);
        seed(db, honest[1], 41, false);
    })
    .await;
    for i in 0..3 {
        let input = format!("honest period {i}\n");
        let s = run(&cluster, &req, &input).await;
        assert_eq!(s.phase, "verified", "{}", s.reason);
        assert_eq!(s.output.as_deref(), Some(honest_cid(&input).as_str()));
        assert_eq!(s.agreeing, vec![saboteur.to_string()]);
    }
    cluster.members[1].worker = Some(WorkerPolicy {
        conduct: Conduct::WrongOutput,
        ..worker()
    });
    cluster.restart(1, Duration::ZERO).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let db = req.market.db().clone();
    let caught = || db.evidence(&saboteur).unwrap().spot_checks_failed > 0;
    for i in 0..16 {
        if caught() {
            break;
        }
        let _ = run(&cluster, &req, &format!("turned {i}\n")).await;
        // Let a spot-check sent with the last assignment finish.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let evidence = db.evidence(&saboteur).unwrap();
    assert!(
        evidence.spot_checks_failed >= 1,
        "never caught: {evidence:?}"
    );
    assert!(evidence.is_blacklisted());
    let checks: Vec<_> = req
        .market
        .list()
        .unwrap()
        .into_iter()
        .filter(|s| s.reason.starts_with("spot-check failed"))
        .collect();
    assert!(!checks.is_empty(), "no failed spot-check job");
    for check in &checks {
        assert_eq!(check.phase, "failed");
        assert_eq!(check.output, None, "the forged answer is not accepted");
    }
    assert!(req.market.verification_counters().spot_checks >= 1);
    // Blacklisted: the next job goes to an honest worker, whose output is accepted.
    let input = "after the catch\n".to_string();
    let s = run(&cluster, &req, &input).await;
    assert_eq!(s.phase, "verified", "{}", s.reason);
    assert_eq!(s.output.as_deref(), Some(honest_cid(&input).as_str()));
    assert!(
        s.agreeing.iter().all(|w| *w != saboteur.to_string()),
        "{s:?}"
    );
    req.market.stop();
    cluster.shutdown().await;
}

/// The sibling of `market_faults::a_brand_new_requester_facing_a_crowd_of_fresh_identities_is_captured`: a
/// brand-new requester verifying by credibility with stake required at cold start, facing three honest workers
/// and ten fresh identities forging one output, none of them staked (no stake contract is configured, so no
/// stake is credited). Every unstaked identity has credibility ½: no number of agreeing forgers reaches
/// `1 − ε`, so the forged output is never accepted — the job expires instead (what a stake buys is the staked
/// prior 0.9: the next test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brand_new_requester_requiring_stake_does_not_accept_a_fresh_crowds_forgery() {
    let mut cluster = Cluster::start(
        &[Some(worker()), Some(worker()), Some(worker())],
        Transport::Tcp,
    )
    .await
    .unwrap();
    let forger = WorkerPolicy {
        conduct: Conduct::WrongOutput,
        ..worker()
    };
    for _ in 0..10 {
        cluster.join(Some(forger.clone())).await.unwrap();
    }
    let params = CredibilityParams {
        spot_check_rate: 0.0,
        ..CredibilityParams::default()
    };
    assert!(params.stake_required_for_cold_start, "the default");
    let (req, _dir) = requester_with(&cluster, params, |_| {}, None).await;
    assert!(req.market.db().reputations().unwrap().is_empty());
    let input = "cold job\n";
    let mut job = echo_job(&cluster, &req, input);
    job.timeout = Duration::from_secs(15);
    let s = run_request(&req, job).await;
    assert!(s.finished, "{s:?}");
    assert_eq!(s.output, None, "nothing accepted: {s:?}");
    assert_ne!(s.phase, "verified", "{}", s.reason);
    // The forgers earned nothing: no record, nothing owed.
    assert!(req
        .market
        .db()
        .ledger()
        .unwrap()
        .iter()
        .all(|(_, wei)| *wei == 0));
    assert!(req
        .market
        .db()
        .reputations()
        .unwrap()
        .iter()
        .all(|(_, r)| *r <= 0));
    req.market.stop();
    cluster.shutdown().await;
}

/// With a real stake contract on the cluster's embedded chain: the three honest workers lock 0.02 ETH each
/// (bound to their PeerIds), the ten fresh forging identities lock nothing. A brand-new requester crediting
/// that contract (stake required at cold start) gives the staked workers the prior 0.9 and the crowd ½: three
/// staked workers agreeing reach `1 − ε` at ε = 10⁻² (0.99726 against any number of unstaked forgers), so the
/// honest output is accepted and the forgery, however many sign it, is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brand_new_requester_with_staked_workers_accepts_their_output_not_the_crowds() {
    use jobmesh_contracts::alloy::primitives::{keccak256, Address, U256};
    use jobmesh_contracts::stake::{node_id, StakeClient, StakeParams};

    let sim = SimChain::new(11, DeployParams::default(), SettlerConfig::default()).unwrap();
    let embedded = sim.chain.clone();
    let mut cluster = Cluster::start_with(
        &[Some(worker()), Some(worker()), Some(worker())],
        Transport::Tcp,
        Some(sim.clone()),
    )
    .await
    .unwrap();
    let deployer = Address::from_word(keccak256(b"stake deployer"));
    embedded.fund(deployer, U256::from(10u128.pow(21)));
    let stake =
        StakeClient::deploy_embedded(embedded.clone(), deployer, StakeParams::default()).unwrap();
    let address = |peer: &PeerId| Address::from_word(keccak256(peer.to_bytes()));
    let honest: Vec<PeerId> = cluster.members.iter().map(|m| m.node.peer_id()).collect();
    let locked = U256::from(2 * 10u128.pow(16));
    for peer in &honest {
        stake
            .as_sender(address(peer))
            .stake(node_id(&peer.to_bytes()), locked)
            .await
            .unwrap();
    }
    let forger = WorkerPolicy {
        conduct: Conduct::WrongOutput,
        ..worker()
    };
    for _ in 0..10 {
        cluster.join(Some(forger.clone())).await.unwrap();
    }
    let forgers: Vec<String> = cluster.members[3..]
        .iter()
        .map(|m| m.node.peer_id().to_string())
        .collect();
    let key = Keypair::generate_ed25519();
    let me = address(&key.public().to_peer_id());
    embedded.fund(me, U256::from(10u128.pow(21)));
    let chain = Chain::Embedded(EmbeddedSettlement::new(embedded.clone(), me, sim.contract));
    let settle = (chain, sim.policy.clone(), stake.contract().into_array());
    let params = CredibilityParams {
        spot_check_rate: 0.0,
        ..CredibilityParams::default()
    };
    let (req, _dir) = requester_with(&cluster, params, |_| {}, Some((key, settle))).await;
    let input = "staked cold job\n";
    let mut job = echo_job(&cluster, &req, input);
    job.replicas = 3;
    job.error_rate = Some(1e-2);
    let s = run_request(&req, job).await;
    assert_eq!(s.phase, "verified", "{}", s.reason);
    assert_eq!(s.output.as_deref(), Some(honest_cid(input).as_str()));
    assert!(s.agreeing.iter().all(|w| !forgers.contains(w)), "{s:?}");
    assert_eq!(s.agreeing.len(), 3, "{s:?}");
    // The stakes credited are the ones on chain: 0.02 ETH for the honest workers, nothing for a forger.
    for peer in &honest {
        assert_eq!(
            req.market.db().evidence(peer).unwrap().stake_wei,
            2 * 10u128.pow(16)
        );
    }
    for w in &s.disagreeing {
        let peer: PeerId = w.parse().unwrap();
        assert_eq!(req.market.db().evidence(&peer).unwrap().stake_wei, 0);
    }
    req.market.stop();
    cluster.shutdown().await;
}
