//! The market end to end on a 5-node loopback mesh (1 requester, 4 workers, one of them byzantine): 20 jobs
//! of different kinds all complete with the output, fuel and failure detail a local run gives, the byzantine
//! worker is outvoted (it is one of only three workers for the first jobs) and never in an accepted majority,
//! and the requester's ledger holds exactly what the honest workers earned.

use std::collections::HashMap;
use std::time::Duration;

use jobmesh_exec::{JobCode, Plugin};
use jobmesh_node::market::tally::owed_wei;
use jobmesh_node::market::{Conduct, WorkerPolicy};
use jobmesh_p2p::Transport;
use jobmesh_simnet::Cluster;
use jobmesh_store::unixfs::{file_cid, Profile};

fn example(name: &str) -> String {
    std::fs::read_to_string(jobmesh_tests::workspace_root().join("examples").join(name)).unwrap()
}

/// Twenty (source, input) pairs: the examples with varied inputs, plus jobs that throw and that run out of fuel
/// (replicas agree on failures too).
fn jobs() -> Vec<(String, Vec<u8>)> {
    let mut jobs = Vec::new();
    for i in 0..6 {
        let text = format!("the quick brown fox {i} jumps over the lazy dog {i} times the fox");
        jobs.push((
            example("wordcount.js"),
            format!("{{\"text\": \"{text}\"}}").into_bytes(),
        ));
    }
    for i in 0..5 {
        jobs.push((
            example("echo.js"),
            format!("echo number {i}\n").into_bytes(),
        ));
    }
    for n in [10, 100, 1000, 5000] {
        jobs.push((
            example("determinism.js"),
            format!("{{\"n\": {n}}}").into_bytes(),
        ));
    }
    for rounds in [20, 200] {
        jobs.push((
            example("cpu-heavy.js"),
            format!("{{\"rounds\": {rounds}}}").into_bytes(),
        ));
    }
    jobs.push((
        "const x = JSON.parse('{\"a\": [1, 2, 3]}'); Javy.IO.writeSync(1, new TextEncoder().encode(String(x.a.reduce((s, v) => s + v, 0))));".into(),
        Vec::new(),
    ));
    jobs.push((
        "Javy.IO.writeSync(2, new TextEncoder().encode('about to fail\\n')); throw new Error('deliberate failure');".into(),
        Vec::new(),
    ));
    jobs.push(("let i = 0; for (;;) { i++; }".into(), Vec::new()));
    assert_eq!(jobs.len(), 20);
    jobs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_jobs_on_five_nodes_with_a_byzantine_worker() {
    let honest = WorkerPolicy {
        max_concurrent: 8,
        ..WorkerPolicy::default()
    };
    let byzantine = WorkerPolicy {
        conduct: Conduct::WrongOutput,
        ..honest.clone()
    };
    // Three workers for the first batch, so the byzantine one is assigned to every job of it; the fourth joins
    // after that.
    let mut cluster = Cluster::start(
        &[
            None,
            Some(honest.clone()),
            Some(honest.clone()),
            Some(byzantine),
        ],
        Transport::Tcp,
    )
    .await
    .expect("cluster");
    let liar = cluster.members[3].node.peer_id();
    let requester = cluster.members[0].market.clone();
    let exec = cluster.executor().clone();
    let plugin = Plugin::bundled().cid();

    let mut expected_owed: HashMap<String, u128> = HashMap::new();
    let mut liar_assigned = 0;
    let mut failures_explained = 0;
    // Five jobs in flight at a time.
    for (i, batch) in jobs().chunks(5).enumerate() {
        if i == 1 {
            cluster
                .join(Some(honest.clone()))
                .await
                .expect("a fourth worker");
        }
        let mut pending = Vec::new();
        for (source, input) in batch {
            let mut req = cluster.js_job(0, source, input, 3).unwrap();
            req.limits.max_fuel = 2_000_000_000;
            // What an honest run gives, computed here with the same engine.
            // (exec runs synchronously, with a runtime of its own: not on this runtime's threads)
            let code = tokio::task::block_in_place(|| exec.compile_js(&plugin, "job.js", source));
            let code = JobCode::Js(code.unwrap());
            let limits = jobmesh_exec::Limits {
                fuel: req.limits.max_fuel,
                ..jobmesh_exec::Limits::default()
            };
            let outcome = tokio::task::block_in_place(|| exec.run(&code, input, &limits)).unwrap();
            let cid = file_cid(&outcome.output, &Profile::KUBO).unwrap();
            let message = outcome.status.describe(&limits);
            let id = requester.submit(req).await.expect("submit");
            pending.push((id, cid, outcome, message));
        }
        for (id, cid, outcome, message) in pending {
            let (fuel, status) = (outcome.fuel_used, outcome.status.name());
            let s = requester.wait(&id, Duration::from_secs(90)).await.unwrap();
            assert_eq!(s.phase, "verified", "job {}: {}", s.id, s.reason);
            assert_eq!(
                s.output.as_deref(),
                Some(cid.to_string().as_str()),
                "output of {}",
                s.id
            );
            assert_eq!(s.fuel_used, Some(fuel), "fuel of {}", s.id);
            assert_eq!(s.status.as_deref(), Some(status));
            // A failure says why, as the local run does (message with its stack, and stderr).
            let failed = outcome.status != jobmesh_exec::Status::Ok;
            assert_eq!(
                s.message,
                failed.then(|| message.clone()),
                "message of {}",
                s.id
            );
            let first_line = message.lines().next().unwrap().to_string();
            assert_eq!(s.error, failed.then_some(first_line), "error of {}", s.id);
            let stderr = String::from_utf8_lossy(&outcome.stderr).into_owned();
            assert_eq!(s.stderr, (!stderr.is_empty()).then_some(stderr));
            failures_explained += usize::from(failed && s.stderr.is_some());
            assert!(
                !s.agreeing.contains(&liar.to_string()),
                "the byzantine worker is in the accepted majority of {}",
                s.id
            );
            if s.disagreeing.contains(&liar.to_string()) {
                liar_assigned += 1;
            }
            for w in &s.agreeing {
                *expected_owed.entry(w.clone()).or_default() += owed_wei(fuel, 1_000);
            }
        }
    }
    let ledger: HashMap<String, u128> = requester
        .db()
        .ledger()
        .unwrap()
        .into_iter()
        .map(|(p, wei)| (p.to_string(), wei))
        .collect();
    assert_eq!(
        ledger, expected_owed,
        "the ledger holds what the honest workers earned"
    );
    assert!(!ledger.contains_key(&liar.to_string()));
    let reputation: HashMap<String, i64> = requester
        .db()
        .reputations()
        .unwrap()
        .into_iter()
        .map(|(p, r)| (p.to_string(), r))
        .collect();
    assert!(
        liar_assigned >= 1,
        "the byzantine worker was never assigned"
    );
    assert_eq!(failures_explained, 1, "the throwing job's stderr came back");
    assert!(
        reputation[&liar.to_string()] < 0,
        "the liar lost reputation"
    );
    eprintln!("the byzantine worker was outvoted in {liar_assigned} of 20 jobs");
    cluster.shutdown().await;
}
