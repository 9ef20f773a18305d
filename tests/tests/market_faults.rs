//! Faults on an in-process loopback mesh: a worker killed mid-job is replaced and the job completes; a flood
//! of offers from many fresh identities that all forge the same output does not capture a job.

use std::time::{Duration, Instant};

use jobmesh_node::market::requester::SlotState;
use jobmesh_node::market::{Conduct, WorkerPolicy};
use jobmesh_p2p::Transport;
use jobmesh_simnet::Cluster;
use jobmesh_store::unixfs::{file_cid, Profile};

fn cpu_heavy() -> String {
    std::fs::read_to_string(jobmesh_tests::workspace_root().join("examples/cpu-heavy.js")).unwrap()
}

fn worker() -> WorkerPolicy {
    WorkerPolicy {
        max_concurrent: 4,
        ..WorkerPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_is_replaced_and_the_job_completes() {
    let cluster = Cluster::start(
        &[
            None,
            Some(worker()),
            Some(worker()),
            Some(worker()),
            Some(worker()),
        ],
        Transport::Tcp,
    )
    .await
    .unwrap();
    let requester = &cluster.members[0].market;
    // Long enough to be killed while running; the 20 s timeout gives each replica 10 s to commit.
    let mut req = cluster
        .js_job(0, &cpu_heavy(), br#"{"rounds": 6000}"#, 3)
        .unwrap();
    req.timeout = Duration::from_secs(20);
    let id = requester.submit(req).await.unwrap();

    // Wait for a worker that accepted and has not committed yet, and kill its node.
    let started = Instant::now();
    let victim = loop {
        let job = requester.db().requester_job(&id).unwrap().unwrap();
        if let Some(slot) = job
            .slots
            .values()
            .find(|s| matches!(s.state, SlotState::Accepted))
        {
            break slot.worker;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no worker accepted"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let member = cluster
        .members
        .iter()
        .find(|m| m.node.peer_id() == victim)
        .unwrap();
    member.node.shutdown().await.unwrap();

    let s = requester.wait(&id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(s.phase, "verified", "{}", s.reason);
    assert!(!s.agreeing.contains(&victim.to_string()));
    let job = requester.db().requester_job(&id).unwrap().unwrap();
    let victim_slot = job.slots.values().find(|s| s.worker == victim).unwrap();
    if matches!(victim_slot.state, SlotState::Dropped { .. }) && s.agreeing.len() == 3 {
        assert!(job.slots.len() > 3, "a replacement was assigned");
    }
    assert!(requester.db().reputation(&victim).unwrap() < 0);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_fresh_identities_forging_one_output_does_not_capture_jobs() {
    let mut cluster = Cluster::start(
        &[None, Some(worker()), Some(worker()), Some(worker())],
        Transport::Tcp,
    )
    .await
    .unwrap();
    let echo =
        std::fs::read_to_string(jobmesh_tests::workspace_root().join("examples/echo.js")).unwrap();
    // The honest workers earn a record first.
    for i in 0..2 {
        let req = cluster
            .js_job(0, &echo, format!("warm-up {i}").as_bytes(), 3)
            .unwrap();
        let id = cluster.members[0].market.submit(req).await.unwrap();
        let s = cluster.members[0]
            .market
            .wait(&id, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(s.phase, "verified", "{}", s.reason);
    }
    // Ten fresh identities arrive, all forging the same output.
    let forger = WorkerPolicy {
        conduct: Conduct::WrongOutput,
        ..worker()
    };
    for _ in 0..10 {
        cluster.join(Some(forger.clone())).await.unwrap();
    }
    let forgers: Vec<String> = cluster.members[4..]
        .iter()
        .map(|m| m.node.peer_id().to_string())
        .collect();
    let requester = &cluster.members[0].market;
    let mut forgers_outvoted = 0;
    for i in 0..5 {
        let input = format!("real job {i}\n");
        let req = cluster.js_job(0, &echo, input.as_bytes(), 3).unwrap();
        let id = requester.submit(req).await.unwrap();
        let s = requester.wait(&id, Duration::from_secs(30)).await.unwrap();
        assert_eq!(s.phase, "verified", "{}", s.reason);
        let honest = file_cid(input.as_bytes(), &Profile::KUBO).unwrap();
        assert_eq!(s.output.as_deref(), Some(honest.to_string().as_str()));
        assert!(s.agreeing.iter().all(|w| !forgers.contains(w)));
        forgers_outvoted += s.disagreeing.iter().filter(|w| forgers.contains(w)).count();
    }
    eprintln!("forgers outvoted {forgers_outvoted} times in 5 jobs");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verifier_decides_and_a_cancelled_job_stops() {
    let cluster = Cluster::start(
        &[None, Some(worker()), Some(worker()), Some(worker())],
        Transport::Tcp,
    )
    .await
    .unwrap();
    let requester = &cluster.members[0].market;
    let echo =
        std::fs::read_to_string(jobmesh_tests::workspace_root().join("examples/echo.js")).unwrap();
    let plugin = jobmesh_exec::Plugin::bundled().cid();
    let verifier = |source: &str| {
        let code = tokio::task::block_in_place(|| {
            cluster
                .executor()
                .compile_js(&plugin, "verify.js", source)
                .unwrap()
        });
        cluster.members[0]
            .add(&jobmesh_exec::JobCode::Js(code).to_bytes())
            .unwrap()
    };
    let read_stdin = "const b = new Uint8Array(65536); const n = Javy.IO.readSync(0, b); \
                      const v = JSON.parse(new TextDecoder().decode(b.subarray(0, n)));";
    // Accepts an output equal to the input (what echo does).
    let same = verifier(&format!(
        "{read_stdin} Javy.IO.writeSync(1, new TextEncoder().encode(String(v.input === v.output)));"
    ));
    // Accepts nothing.
    let never = verifier(&format!(
        "{read_stdin} Javy.IO.writeSync(1, new TextEncoder().encode('false'));"
    ));
    for (verifier, want) in [(same, "verified"), (never, "failed")] {
        let mut req = cluster.js_job(0, &echo, b"checked", 3).unwrap();
        req.verifier = Some(verifier);
        let id = requester.submit(req).await.unwrap();
        let s = requester.wait(&id, Duration::from_secs(30)).await.unwrap();
        assert_eq!(s.phase, want, "{}", s.reason);
        if want == "failed" {
            assert!(s.reason.contains("verifier printed"), "{}", s.reason);
        }
    }
    assert!(
        requester.db().ledger().unwrap().len() == 3,
        "only the verified job is owed for"
    );

    // A long job, cancelled while the workers run it.
    let req = cluster
        .js_job(0, &cpu_heavy(), br#"{"rounds": 20000}"#, 3)
        .unwrap();
    let id = requester.submit(req).await.unwrap();
    let started = Instant::now();
    while requester.status(&id).unwrap().phase == "announced" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never assigned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = requester.cancel(&id, "changed my mind").await.unwrap();
    assert_eq!(s.phase, "cancelled");
    assert!(s.reason.contains("changed my mind"));
    assert_eq!(requester.status(&id).unwrap().phase, "cancelled");
    cluster.shutdown().await;
}
