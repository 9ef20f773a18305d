//! Settlement through real node processes on a real chain: anvil (npm `@foundry-rs/anvil-linux-amd64`) on
//! 127.0.0.1 with Sepolia's chain id, the contract deployed and funded with `jobmesh settle`, then a requester
//! and two workers started with `node start --rpc-url …`. The requester's owed ledger must become a lottery
//! its workers accept; after the draw exactly one worker claims it — with `claimAndWithdraw`, straight to its
//! wallet — and the API, the metrics and the chain agree.

mod mesh_util;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobmesh_contracts::alloy::primitives::{Address, B256, U256};
use jobmesh_contracts::alloy::signers::local::PrivateKeySigner;
use jobmesh_contracts::anvil::{Anvil, DEV_KEYS};
use jobmesh_contracts::rpc::RpcSettlement;
use jobmesh_contracts::Settlement as _;
use jobmesh_tests::{jobmesh_bin, run_ok};
use mesh_util::{eventually, example, post, wait_peers, NodeProc};
use serde_json::Value;

const SEPOLIA: &str = "11155111";

/// `jobmesh --json settle --rpc-url URL --chain-id SEPOLIA ARGS…` in `home`, with the key of `key`.
fn settle(home: &std::path::Path, url: &str, key: &str, args: &[&str]) -> Value {
    let mut cmd = Command::new(jobmesh_bin());
    cmd.arg("--data-dir")
        .arg(home)
        .args(["--json", "settle", "--rpc-url", url, "--chain-id", SEPOLIA])
        .args(args)
        .env("JOBMESH_SETTLEMENT_KEY", key);
    let out = run_ok(&mut cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_slice(&out).expect("JSON")
}

/// The payer's deposit (0.01 ETH) in wei.
const DEPOSIT: u128 = 10_000_000_000_000_000;

/// Anvil on 127.0.0.1 with Sepolia's chain id, the contract deployed by `settle deploy` from the payer's data
/// dir and `DEPOSIT` deposited by `DEV_KEYS[0]`.
struct Funded {
    /// Killed when dropped.
    _anvil: Anvil,
    url: String,
    payer_home: tempfile::TempDir,
    contract: String,
}

/// The chain as every command of a test sees it: `--rpc-url URL --chain-id SEPOLIA --contract C`.
fn chain_args<'a>(url: &'a str, contract: &'a str) -> [&'a str; 6] {
    [
        "--rpc-url",
        url,
        "--chain-id",
        SEPOLIA,
        "--contract",
        contract,
    ]
}

fn funded() -> Funded {
    let anvil =
        Anvil::start(SEPOLIA.parse().unwrap()).expect("anvil (scripts/setup.d/30-chain.sh)");
    let url = anvil.url();
    let payer_home = tempfile::tempdir().unwrap();
    let deployed = settle(payer_home.path(), &url, DEV_KEYS[0], &["deploy"]);
    let contract = deployed["contract"].as_str().unwrap().to_string();
    settle(
        payer_home.path(),
        &url,
        DEV_KEYS[0],
        &["deposit", "0.01eth"],
    );
    Funded {
        _anvil: anvil,
        url,
        payer_home,
        contract,
    }
}

/// Two workers (settling with `DEV_KEYS[1]` and `DEV_KEYS[2]`) bootstrapped to `requester` with `args`.
fn start_workers(requester: &NodeProc, args: &[&str]) -> Vec<NodeProc> {
    let mut args = args.to_vec();
    args.push("--worker");
    WORKER_KEYS
        .iter()
        .map(|key| {
            NodeProc::try_start_env(
                tempfile::tempdir().unwrap(),
                "/ip4/127.0.0.1/tcp/0",
                &[&requester.addr],
                &args,
                &[("JOBMESH_SETTLEMENT_KEY", key)],
            )
            .expect("worker starts")
        })
        .collect()
}

/// The workers' settlement keys.
const WORKER_KEYS: [&str; 2] = [DEV_KEYS[1], DEV_KEYS[2]];

/// Runs the wordcount example on two replicas at 1,000 wei per million fuel; returns what each worker is owed.
fn run_paid_job(requester: &NodeProc) -> u128 {
    let v = requester.submit_job(
        &example("wordcount.js"),
        &example("wordcount.input.json"),
        2,
        1000,
    );
    assert_eq!(v["phase"], "verified", "{v}");
    let owed_each = jobmesh_node::market::tally::owed_wei(v["fuel_used"].as_u64().unwrap(), 1000);
    assert!(owed_each > 0);
    owed_each
}

/// Waits (at most `limit`) until one of `requester`'s lotteries is paid; returns its settlement status.
fn wait_paid(requester: &NodeProc, limit: Duration) -> Value {
    let mut last = Value::Null;
    let paid = eventually(limit, || {
        last = status(requester);
        last["lotteries"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x["status"] == "paid"))
    });
    assert!(paid, "no lottery was paid: {last:#}");
    last
}

/// Waits (at most 30 s) until `worker` knows its one lottery's draw; returns its settlement status.
fn wait_drawn(worker: &NodeProc) -> Value {
    let mut s = Value::Null;
    let drawn = eventually(Duration::from_secs(30), || {
        s = status(worker);
        s["lotteries"]
            .as_array()
            .is_some_and(|l| l.len() == 1 && l[0]["status"] != "committed")
    });
    assert!(drawn, "worker did not see the draw: {s:#}");
    s
}

fn status(node: &NodeProc) -> Value {
    let (code, body) = post(&node.api, "settlement/status", b"", Duration::from_secs(10));
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("JSON")
}

/// `eth_getBalance` of `who` at the latest block, from the chain itself.
fn eth_balance(url: &str, who: Address) -> U256 {
    let api = url.trim_start_matches("http://");
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["{who}","latest"]}}"#
    );
    let (code, _, out) = mesh_util::http(
        api,
        "POST",
        "/",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
        Duration::from_secs(5),
    );
    assert_eq!(code, 200);
    let v: Value = serde_json::from_slice(&out).expect("JSON-RPC answer");
    let hex = v["result"].as_str().unwrap_or_else(|| panic!("{v}"));
    U256::from_str_radix(hex.trim_start_matches("0x"), 16).expect("hex quantity")
}

fn wei(v: &Value) -> U256 {
    v.as_str()
        .unwrap_or_else(|| panic!("not a wei string: {v}"))
        .parse()
        .expect("decimal wei")
}

/// Mines a block on anvil every 300 ms (draws need blocks; anvil mines only on transactions otherwise).
fn spawn_miner(url: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let api = url.trim_start_matches("http://").to_string();
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"evm_mine","params":[]}"#;
        while !stop.load(Ordering::Relaxed) {
            let _ = mesh_util::http(
                &api,
                "POST",
                "/",
                &[("Content-Type", "application/json")],
                body,
                Duration::from_secs(5),
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    })
}

#[test]
fn a_requesters_ledger_becomes_a_lottery_its_workers_claim_on_anvil() {
    let Funded {
        _anvil,
        url,
        payer_home,
        contract,
    } = funded();
    // The chain as every command here sees it, then the lottery policy of the nodes.
    let chain = chain_args(&url, &contract);
    let policy = [
        "--lottery-threshold",
        "1wei",
        "--settle-poll",
        "0.3",
        "--draw-in",
        "2",
    ];
    let args: Vec<&str> = chain.iter().chain(&policy).copied().collect();
    // The requester runs on the data dir `settle deploy` wrote (its settlement.json names the contract too).
    let requester = NodeProc::try_start_env(
        payer_home,
        "/ip4/127.0.0.1/tcp/0",
        &[],
        &args,
        &[("JOBMESH_SETTLEMENT_KEY", DEV_KEYS[0])],
    )
    .expect("requester starts");
    // The workers' wallets before anything happened (they send no transaction but their claim).
    let wallets_before: Vec<U256> = WORKER_KEYS
        .iter()
        .map(|k| eth_balance(&url, k.parse::<PrivateKeySigner>().unwrap().address()))
        .collect();
    let workers = start_workers(&requester, &args);
    wait_peers(&requester, 2);
    let stop = Arc::new(AtomicBool::new(false));
    let miner = spawn_miner(url.clone(), stop.clone());

    let owed_each = run_paid_job(&requester);

    // The requester builds, commits and announces one lottery; its winner claims it.
    let last = wait_paid(&requester, Duration::from_secs(60));
    let lottery = last["lotteries"][0].clone();
    assert_eq!(lottery["side"], "payer");
    assert_eq!(lottery["payees"], 2);
    assert_eq!(lottery["total"], (2 * owed_each).to_string());
    assert_eq!(last["owed_unsettled"], "0");

    let mut claimed = 0;
    for (w, before) in workers.iter().zip(&wallets_before) {
        let s = wait_drawn(w);
        assert_eq!(s["lotteries"][0]["id"], lottery["id"]);
        assert_eq!(s["expected_income"], owed_each.to_string());
        match s["lotteries"][0]["status"].as_str().unwrap() {
            "claimed" => {
                claimed += 1;
                assert_eq!(s["won"], lottery["total"]);
                assert_eq!(s["won_to_wallet"], lottery["total"]);
                let row = &s["lotteries"][0];
                assert_eq!(row["claimed_to"], "wallet");
                // One transaction: the prize, less what the claim cost, is in its wallet; the deposit account
                // (and its withdrawal time lock) is not involved.
                assert_eq!(s["balance"], "0", "nothing credited to its deposit account");
                let fee = wei(&row["fees_wei"]);
                assert!(fee > U256::ZERO, "anvil charges gas: {row}");
                let address: Address = s["address"].as_str().unwrap().parse().unwrap();
                let now = eth_balance(&url, address);
                assert_eq!(
                    now,
                    *before + wei(&lottery["total"]) - fee,
                    "wallet = before + prize − claim fee"
                );
                assert_eq!(wei(&s["wallet"]), now, "the report's wallet is the chain's");
                // The settlement metrics say the same.
                let (code, _, body) =
                    mesh_util::http(&w.api, "GET", "/metrics", &[], b"", Duration::from_secs(10));
                assert_eq!(code, 200);
                let text = String::from_utf8_lossy(&body);
                assert!(
                    text.contains("jobmesh_lotteries{side=\"payee\",status=\"claimed\"} 1"),
                    "{text}"
                );
            }
            "lost" => {
                let address: Address = s["address"].as_str().unwrap().parse().unwrap();
                assert_eq!(eth_balance(&url, address), *before, "a loser sends nothing");
                assert_eq!(s["won_to_wallet"], "0");
            }
            other => panic!("unexpected status {other}: {s:#}"),
        }
    }
    assert_eq!(claimed, 1, "exactly one winner");

    // `settle check` against the same endpoint sees the payer's deposit minus the paid lottery.
    let mut check_args = vec!["settle"];
    check_args.extend(chain);
    check_args.extend(["check", "--address", last["address"].as_str().unwrap()]);
    let check = requester.cli_json(&check_args);
    assert_eq!(check["code_matches_artifact"], true);
    assert_eq!(check["balance"], (DEPOSIT - 2 * owed_each).to_string());
    assert_eq!(check["reserved"], "0");

    // Bad input on the settlement routes is a 400 with a JSON message.
    let (code, body) = post(
        &requester.api,
        "settlement/deposit?amount=lots",
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(code, 400);
    assert!(String::from_utf8_lossy(&body).contains("bad amount"));
    stop.store(true, Ordering::Relaxed);
    miner.join().unwrap();
}

/// Every lottery `payer` committed on the contract, from its `LotteryCommitted` events.
fn committed_on_chain(url: &str, contract: &str, payer: Address) -> Vec<B256> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = RpcSettlement::connect(
            url,
            SEPOLIA.parse().unwrap(),
            None,
            contract.parse().unwrap(),
        )
        .await
        .expect("connect");
        c.committed_by(payer, 0)
            .await
            .expect("logs")
            .iter()
            .map(|d| d.id())
            .collect()
    })
}

/// Waits (at most 30 s) for a node process to end by itself; panics if it does not.
fn wait_exit(node: &mut NodeProc) -> std::process::ExitStatus {
    let ended = eventually(Duration::from_secs(30), || {
        node.child.try_wait().ok().flatten().is_some()
    });
    assert!(ended, "the node did not stop at the failpoint");
    node.child.wait().unwrap()
}

#[test]
fn a_payer_killed_between_recording_and_committing_a_lottery_commits_it_once_after_restart() {
    use std::os::unix::process::ExitStatusExt as _;
    let t0 = std::time::Instant::now();

    let Funded {
        _anvil,
        url,
        payer_home,
        contract,
    } = funded();
    let payer: Address = DEV_KEYS[0].parse::<PrivateKeySigner>().unwrap().address();
    let chain = chain_args(&url, &contract);
    // Draws far enough ahead that the restarted payer still finds the recorded lottery's draw in the future.
    let with_policy = |threshold: &'static str| -> Vec<String> {
        chain
            .iter()
            .copied()
            .chain([
                "--lottery-threshold",
                threshold,
                "--lottery-period",
                "3600",
                "--settle-poll",
                "0.3",
                "--draw-in",
                "40",
            ])
            .map(str::to_string)
            .collect()
    };
    let payer_key = [("JOBMESH_SETTLEMENT_KEY", DEV_KEYS[0])];

    // 1. The requester runs a job and owes its workers; its threshold is too high to build a lottery yet.
    let high = with_policy("1eth");
    let high: Vec<&str> = high.iter().map(String::as_str).collect();
    let mut requester =
        NodeProc::try_start_env(payer_home, "/ip4/127.0.0.1/tcp/0", &[], &high, &payer_key)
            .expect("requester starts");
    let worker_policy = with_policy("1wei");
    let worker_args: Vec<&str> = worker_policy.iter().map(String::as_str).collect();
    let workers = start_workers(&requester, &worker_args);
    wait_peers(&requester, 2);
    let stop = Arc::new(AtomicBool::new(false));
    let miner = spawn_miner(url.clone(), stop.clone());
    let owed_each = run_paid_job(&requester);
    let owed = (2 * owed_each).to_string();
    assert_eq!(status(&requester)["owed_unsettled"], owed);
    eprintln!("{:?}: job verified, {owed} wei owed", t0.elapsed());
    assert!(requester.stop(), "clean stop");
    let home = requester.kill9();

    // 2. Restarted with a threshold it now meets, it records a lottery (the ledger debited in the same
    //    transaction) and is killed right there, before the commit is sent.
    let low = with_policy("1wei");
    let low: Vec<&str> = low.iter().map(String::as_str).collect();
    let worker_addrs: Vec<&str> = workers.iter().map(|w| w.addr.as_str()).collect();
    let mut env = payer_key.to_vec();
    env.push(("JOBMESH_FAILPOINT", "settlement-recorded"));
    let mut crashing =
        NodeProc::try_start_env(home, "/ip4/127.0.0.1/tcp/0", &worker_addrs, &low, &env)
            .expect("requester restarts");
    let exit = wait_exit(&mut crashing);
    assert_eq!(exit.signal(), Some(6), "aborted at the failpoint: {exit:?}");
    assert!(
        committed_on_chain(&url, &contract, payer).is_empty(),
        "nothing was committed before the crash"
    );
    let home = crashing.kill9();
    eprintln!("{:?}: killed after recording", t0.elapsed());

    // 3. Restarted normally: it finds the recorded lottery, sees it is not on chain and its draw is ahead,
    //    commits it — once — and its winner is paid.
    let requester = NodeProc::try_start_env(
        home,
        "/ip4/127.0.0.1/tcp/0",
        &worker_addrs,
        &low,
        &payer_key,
    )
    .expect("requester restarts again");
    let last = wait_paid(&requester, Duration::from_secs(90));
    eprintln!("{:?}: paid", t0.elapsed());
    let lotteries = last["lotteries"].as_array().unwrap();
    assert_eq!(lotteries.len(), 1, "one lottery, never rebuilt: {last:#}");
    let lottery = &lotteries[0];
    assert_eq!(lottery["total"], owed, "it pays exactly what was owed");
    assert_eq!(last["owed_unsettled"], "0", "nothing owed twice");
    let committed = committed_on_chain(&url, &contract, payer);
    assert_eq!(committed.len(), 1, "committed exactly once: {committed:?}");
    assert_eq!(committed[0].to_string(), lottery["id"].as_str().unwrap());

    // Exactly one worker won it, once; the payer's deposit lost exactly the lottery.
    let mut winners = 0;
    for w in &workers {
        let s = wait_drawn(w);
        if s["lotteries"][0]["status"] == "claimed" {
            winners += 1;
            assert_eq!(s["won"], owed);
        }
    }
    assert_eq!(winners, 1);
    let mut check_args = vec!["settle"];
    check_args.extend(chain);
    check_args.extend(["check", "--address", last["address"].as_str().unwrap()]);
    let check = requester.cli_json(&check_args);
    assert_eq!(check["balance"], (DEPOSIT - 2 * owed_each).to_string());
    assert_eq!(check["reserved"], "0");
    stop.store(true, Ordering::Relaxed);
    miner.join().unwrap();
}
