//! `jobmesh settle …` end to end through the real binary against a real anvil (npm
//! `@foundry-rs/anvil-linux-amd64`, installed by `scripts/setup.d/30-chain.sh`) started on 127.0.0.1 with
//! Sepolia's chain id — the commands of `docs/testnet.md`. Keys come from the environment or a keystore file,
//! never from the command line. Bad input must give one clear error line.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use jobmesh_contracts::alloy::primitives::{Address, U256};
use jobmesh_contracts::alloy::providers::Provider as _;
use jobmesh_contracts::alloy::signers::local::PrivateKeySigner;
use jobmesh_contracts::anvil::{Anvil, DEV_KEYS};
use serde_json::Value;

const SEPOLIA: &str = "11155111";
/// The payer's key comes from the environment variable (anvil's dev account 0).
const PAYER_ENV: &[(&str, &str)] = &[("JOBMESH_SETTLEMENT_KEY", DEV_KEYS[0])];

/// Runs `jobmesh --data-dir HOME --json settle --rpc-url URL --chain-id ID ARGS…` with `env` set (and every
/// settlement variable of the caller's environment cleared).
fn settle(home: &Path, url: &str, chain: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobmesh"));
    cmd.arg("--data-dir")
        .arg(home)
        .args(["--json", "settle", "--rpc-url", url, "--chain-id", chain])
        .args(args);
    for var in [
        "JOBMESH_SETTLEMENT_KEY",
        "JOBMESH_KEYSTORE_PASSWORD",
        "JOBMESH_KEYSTORE",
        "JOBMESH_RPC_URL",
        "JOBMESH_CHAIN_ID",
        "JOBMESH_SETTLEMENT_CONTRACT",
        "RUST_BACKTRACE",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("runs jobmesh")
}

/// The command's JSON output; panics with its stderr if it failed.
fn ok(out: Output) -> Value {
    assert!(
        out.status.success(),
        "jobmesh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {:?}",
            String::from_utf8_lossy(&out.stdout).to_string()
        )
    })
}

/// The command failed with exactly one line on stderr (JSON `{"error": …}` under `--json`) that contains
/// every one of `needles`; returns the message.
fn fails(out: Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "expected a failure, got {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one error line expected: {stderr}");
    let msg = serde_json::from_str::<Value>(lines[0])
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| lines[0].to_owned());
    for n in needles {
        assert!(msg.contains(n), "{n:?} not in {msg:?}");
    }
    msg
}

fn wei(v: &Value) -> U256 {
    v.as_str()
        .unwrap_or_else(|| panic!("not a wei string: {v}"))
        .parse()
        .unwrap()
}

fn addr(v: &Value) -> Address {
    v.as_str().unwrap().parse().unwrap()
}

/// Sends an anvil cheat RPC (mine blocks, set a balance or code).
async fn cheat(anvil: &Anvil, method: &'static str, params: Value) {
    let p = jobmesh_contracts::rpc::connect(&anvil.url(), anvil.chain_id(), None)
        .await
        .unwrap();
    p.raw_request::<_, Value>(method.into(), params)
        .await
        .unwrap();
}

/// Runs a blocking CLI call off the async runtime.
async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_commands_on_anvil_with_sepolia_chain_id() {
    tokio::time::timeout(Duration::from_secs(240), scenario())
        .await
        .expect("settle CLI scenario finished within 240 s");
}

async fn scenario() {
    let anvil = Anvil::start(11_155_111).expect("anvil (run scripts/setup.d/30-chain.sh)");
    let url = anvil.url();
    let tmp = tempfile::tempdir().unwrap();
    let (payer_home, a_home, b_home) = (
        tmp.path().join("payer"),
        tmp.path().join("payee-a"),
        tmp.path().join("payee-b"),
    );
    let payer_addr = DEV_KEYS[0].parse::<PrivateKeySigner>().unwrap().address();
    // Payee A's from an encrypted keystore created by `keygen` (password in a file), funded for gas.
    let keystore = tmp.path().join("payee-a.json");
    let password = tmp.path().join("password");
    std::fs::write(&password, "correct horse\n").unwrap();
    let (ks, pw) = (
        keystore.to_str().unwrap().to_owned(),
        password.to_str().unwrap().to_owned(),
    );
    let a_args = ["--keystore", ks.as_str(), "--password-file", pw.as_str()];
    let created = ok(settle(
        &a_home,
        &url,
        SEPOLIA,
        &[],
        &[&a_args[..], &["keygen"]].concat(),
    ));
    let payee_a = addr(&created["address"]);
    assert!(keystore.exists());
    cheat(
        &anvil,
        "anvil_setBalance",
        serde_json::json!([payee_a, "0xDE0B6B3A7640000"]),
    )
    .await;
    // Payee B's from the environment variable.
    let b_env: &[(&str, &str)] = &[("JOBMESH_SETTLEMENT_KEY", DEV_KEYS[1])];
    let payee_b = addr(&ok(settle(&b_home, &url, SEPOLIA, b_env, &["address"]))["address"]);

    // deploy: recorded in the payer's data dir.
    let deployed = ok(settle(
        &payer_home,
        &url,
        SEPOLIA,
        PAYER_ENV,
        &[
            "deploy",
            "--withdraw-delay",
            "3",
            "--claim-window",
            "20",
            "--min-draw-delay",
            "1",
        ],
    ));
    let contract = addr(&deployed["contract"]);
    let contract_s = contract.to_string();
    assert_eq!(deployed["chain_id"], 11_155_111);
    assert!(payer_home.join("settlement.json").exists());

    // deposit 1 ETH.
    let dep = ok(settle(
        &payer_home,
        &url,
        SEPOLIA,
        PAYER_ENV,
        &["deposit", "1eth"],
    ));
    assert_eq!(wei(&dep["balance"]), U256::from(10u64.pow(18)));

    // commit a lottery owing 1,000 wei to A and 3,000 wei to B.
    let owed = tmp.path().join("owed.csv");
    std::fs::write(
        &owed,
        format!("# who,amount\n{payee_a},1000\n{payee_b},3000wei\n"),
    )
    .unwrap();
    let committed = ok(settle(
        &payer_home,
        &url,
        SEPOLIA,
        PAYER_ENV,
        &["commit", "--owed", owed.to_str().unwrap(), "--draw-in", "2"],
    ));
    assert_eq!(wei(&committed["total"]), U256::from(4000));
    assert_eq!(committed["payees"], 2);
    let id = committed["id"].as_str().unwrap().to_owned();
    let announcement = committed["announcement"].as_str().unwrap().to_owned();
    let secret_file = committed["secret_file"].as_str().unwrap().to_owned();
    assert!(
        !std::fs::read_to_string(&announcement)
            .unwrap()
            .contains(&std::fs::read_to_string(&secret_file).unwrap()[..20]),
        "the announcement does not carry the secret"
    );

    // status: 4,000 wei reserved in one pending lottery.
    let st = ok(settle(&payer_home, &url, SEPOLIA, PAYER_ENV, &["status"]));
    assert_eq!(wei(&st["reserved"]), U256::from(4000));
    assert_eq!(st["pending_lotteries"], 1);
    assert_eq!(wei(&st["balance"]), U256::from(10u64.pow(18) - 4000));

    // withdraw: the reserved value cannot be requested; a free amount is time-locked.
    fails(
        settle(&payer_home, &url, SEPOLIA, PAYER_ENV, &["withdraw", "1eth"]),
        &["withdrawal request failed", "ExceedsFreeBalance"],
    );
    let req = ok(settle(
        &payer_home,
        &url,
        SEPOLIA,
        PAYER_ENV,
        &["withdraw", "0.5eth"],
    ));
    assert_eq!(wei(&req["requested"]), U256::from(5 * 10u64.pow(17)));
    fails(
        settle(
            &payer_home,
            &url,
            SEPOLIA,
            PAYER_ENV,
            &["withdraw", "complete"],
        ),
        &["withdrawal failed", "WithdrawalLocked"],
    );

    // The payees import the announcement (checked) and see the pending lottery and their share.
    for (home, env, extra, share) in [
        (&a_home, &[][..], &a_args[..], "1000"),
        (&b_home, b_env, &[][..], "3000"),
    ] {
        let rows = ok(settle(
            home,
            &url,
            SEPOLIA,
            env,
            &[
                extra,
                &[
                    "--contract",
                    &contract_s,
                    "lotteries",
                    "--import",
                    &announcement,
                ],
            ]
            .concat(),
        ));
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["id"], id.as_str());
        assert_eq!(rows[0]["state"], "pending");
        assert_eq!(rows[0]["my_share"], share);
    }
    // Before the draw nobody can claim.
    let early = ok(settle(
        &b_home,
        &url,
        SEPOLIA,
        b_env,
        &["--contract", &contract_s, "claim"],
    ));
    assert_eq!(early["claimed"].as_array().unwrap().len(), 0);
    assert_eq!(early["waiting_for_draw"], 1);

    // Past the draw block (and the withdrawal's unlock).
    cheat(&anvil, "anvil_mine", serde_json::json!(["0x4"])).await;
    // Without the payer's secret nobody knows who won yet.
    let blind = ok(settle(
        &b_home,
        &url,
        SEPOLIA,
        b_env,
        &["--contract", &contract_s, "claim"],
    ));
    assert_eq!(blind["claimed"].as_array().unwrap().len(), 0);
    assert_eq!(blind["waiting_for_secret"], 1);
    // The payer hands its secret to the payees; a file that is not the lottery's secret is refused.
    let forged = tmp.path().join("forged.secret");
    let mut forged_json: Value =
        serde_json::from_str(&std::fs::read_to_string(&secret_file).unwrap()).unwrap();
    forged_json["secret"] = Value::String(format!("0x{}", "11".repeat(32)));
    std::fs::write(&forged, forged_json.to_string()).unwrap();
    fails(
        settle(
            &b_home,
            &url,
            SEPOLIA,
            b_env,
            &[
                "--contract",
                &contract_s,
                "lotteries",
                "--secret",
                forged.to_str().unwrap(),
            ],
        ),
        &["is not the secret of"],
    );
    for (home, env, extra) in [(&a_home, &[][..], &a_args[..]), (&b_home, b_env, &[][..])] {
        ok(settle(
            home,
            &url,
            SEPOLIA,
            env,
            &[
                extra,
                &[
                    "--contract",
                    &contract_s,
                    "lotteries",
                    "--secret",
                    &secret_file,
                ],
            ]
            .concat(),
        ));
    }
    let out = ok(settle(
        &payer_home,
        &url,
        SEPOLIA,
        PAYER_ENV,
        &["withdraw", "complete"],
    ));
    assert_eq!(wei(&out["withdrawn"]), U256::from(5 * 10u64.pow(17)));

    // check: the code is our artifact's, and exactly one payee has an unclaimed win.
    let mut winners = Vec::new();
    for (home, env, extra, who) in [
        (&a_home, &[][..], &a_args[..], payee_a),
        (&b_home, b_env, &[][..], payee_b),
    ] {
        let c = ok(settle(
            home,
            &url,
            SEPOLIA,
            env,
            &[extra, &["--contract", &contract_s, "check"]].concat(),
        ));
        assert_eq!(c["code_matches_artifact"], true);
        assert_eq!(addr(&c["address"]), who);
        let wins = c["unclaimed_wins"].as_array().unwrap();
        if !wins.is_empty() {
            assert_eq!(wins.len(), 1);
            assert_eq!(wins[0], id.as_str());
            winners.push((home, env, extra, who));
        }
    }
    assert_eq!(winners.len(), 1, "exactly one payee wins");

    // claim: both try; only the winner is paid, the whole 4,000 wei, straight to its wallet (the default).
    let wallet = |who: Address| {
        let url = url.clone();
        async move {
            jobmesh_contracts::rpc::connect(&url, 11_155_111, None)
                .await
                .unwrap()
                .get_balance(who)
                .await
                .unwrap()
        }
    };
    let winner_before = wallet(winners[0].3).await;
    let mut paid = Vec::new();
    for (home, env, extra) in [(&a_home, &[][..], &a_args[..]), (&b_home, b_env, &[][..])] {
        let c = ok(settle(
            home,
            &url,
            SEPOLIA,
            env,
            &[extra, &["--contract", &contract_s, "claim"]].concat(),
        ));
        paid.extend(c["claimed"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(paid.len(), 1, "{paid:?}");
    assert_eq!(paid[0]["id"], id.as_str());
    assert_eq!(wei(&paid[0]["amount"]), U256::from(4000));
    assert_eq!(paid[0]["to"], "wallet");
    let (w_home, w_env, w_extra, winner) = winners[0];
    let fee = wei(&paid[0]["fee_wei"]);
    assert!(fee > U256::ZERO, "anvil charges gas");
    assert_eq!(
        wallet(winner).await,
        winner_before + U256::from(4000) - fee,
        "{winner}'s wallet got the prize less the claim's fee"
    );
    let c = ok(settle(
        w_home,
        &url,
        SEPOLIA,
        w_env,
        &[w_extra, &["--contract", &contract_s, "status"]].concat(),
    ));
    assert_eq!(
        wei(&c["balance"]),
        U256::ZERO,
        "{winner}'s deposit account is not involved"
    );
    assert_eq!(c["unclaimed_wins"].as_array().unwrap().len(), 0);
    let rows = ok(settle(
        w_home,
        &url,
        SEPOLIA,
        w_env,
        &[w_extra, &["--contract", &contract_s, "lotteries"]].concat(),
    ));
    assert_eq!(rows[0]["state"], "settled");

    // The payer's check: nothing reserved or pending any more; read-only without a key.
    let c = ok(settle(
        &payer_home,
        &url,
        SEPOLIA,
        &[],
        &["check", "--address", &payer_addr.to_string()],
    ));
    assert_eq!(c["code_matches_artifact"], true);
    assert_eq!(wei(&c["reserved"]), U256::ZERO);
    assert_eq!(c["pending_lotteries"], 0);
    assert_eq!(wei(&c["balance"]), U256::from(5 * 10u64.pow(17) - 4000));
    let text = settle(&payer_home, &url, SEPOLIA, PAYER_ENV, &["check"]);
    assert!(text.status.success());

    // check refuses code that is not our artifact.
    let impostor = "0x00000000000000000000000000000000000000aa";
    cheat(
        &anvil,
        "anvil_setCode",
        serde_json::json!([impostor, "0x6001600101"]),
    )
    .await;
    fails(
        settle(
            &payer_home,
            &url,
            SEPOLIA,
            &[],
            &["--contract", impostor, "check"],
        ),
        &["NOT the jobmesh settlement artifact"],
    );

    bad_input(&anvil, &payer_home, &a_args, &contract_s).await;
}

/// Wrong chain id, bad keys, an unreachable endpoint, a key on the command line: one clear line each.
async fn bad_input(anvil: &Anvil, payer_home: &Path, a_args: &[&str], contract: &str) {
    let url = anvil.url();
    let (home, a_args, contract) = (
        payer_home.to_path_buf(),
        a_args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        contract.to_owned(),
    );
    run(move || {
        // Wrong chain id: the endpoint serves Sepolia's.
        fails(
            settle(
                &home,
                &url,
                "1",
                PAYER_ENV,
                &["--contract", &contract, "status"],
            ),
            &["chain id mismatch", "11155111", "expected 1"],
        );
        fails(
            settle(&home, &url, "1", PAYER_ENV, &["deploy"]),
            &["chain id mismatch"],
        );
        // A bad hex key, a missing key, a wrong keystore password.
        fails(
            settle(
                &home,
                &url,
                SEPOLIA,
                &[("JOBMESH_SETTLEMENT_KEY", "0x1234nothex")],
                &["deposit", "1gwei"],
            ),
            &["JOBMESH_SETTLEMENT_KEY is not a valid hex private key"],
        );
        fails(
            settle(&home, &url, SEPOLIA, &[], &["deposit", "1gwei"]),
            &["no settlement key"],
        );
        let wrong_pw = home.join("wrong-password");
        std::fs::write(&wrong_pw, "wrong\n").unwrap();
        fails(
            settle(
                &home,
                &url,
                SEPOLIA,
                &[],
                &[
                    "--keystore",
                    &a_args[1],
                    "--password-file",
                    wrong_pw.to_str().unwrap(),
                    "deposit",
                    "1gwei",
                ],
            ),
            &["cannot open keystore"],
        );
        // A key on the command line is not an option at all.
        let out = settle(
            &home,
            &url,
            SEPOLIA,
            &[],
            &["--private-key", DEV_KEYS[0], "status"],
        );
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("--private-key"));
        // Bad amounts and owed files.
        fails(
            settle(&home, &url, SEPOLIA, PAYER_ENV, &["deposit", "lots"]),
            &["bad amount"],
        );
        // An unreachable endpoint (a port nobody listens on) fails fast.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
        };
        let started = std::time::Instant::now();
        fails(
            settle(&home, &dead, SEPOLIA, PAYER_ENV, &["status"]),
            &["rpc"],
        );
        assert!(started.elapsed() < Duration::from_secs(30));
        fails(
            settle(&home, "not a url", SEPOLIA, PAYER_ENV, &["status"]),
            &["bad RPC URL"],
        );
    })
    .await;
}

/// `node start`'s worker standing flags are checked before anything starts: a bad value is one clear line.
#[test]
fn node_start_refuses_bad_standing_flags_in_one_line() {
    let home = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &[&str]); 2] = [
        (
            &["--max-unpaid-credit", "lots"],
            &["invalid --max-unpaid-credit"],
        ),
        (&["--receipt-grace", "1e300"], &["--receipt-grace"]),
    ];
    for (args, needles) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_jobmesh"))
            .arg("--data-dir")
            .arg(home.path())
            .args([
                "node",
                "start",
                "--worker",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
            ])
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .output()
            .expect("runs jobmesh");
        fails(out, needles);
    }
    assert!(
        !home.path().join("blocks").exists(),
        "nothing was opened before the flags were checked"
    );
}
