//! Faults on an in-process loopback mesh: a worker killed mid-job is replaced and the job completes; a flood
//! of offers from many fresh identities that all forge the same output does not capture the jobs of a
//! requester that knows its honest workers, but does capture a brand-new requester's (`docs/protocol.md`,
//! "Cold start"); a cancelled job stops burning the workers' CPU within a second.

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
    // About 0.7 s of CPU per replica: a victim killed as soon as it accepted cannot have committed, and the
    // replacement has time to run it on a loaded machine (a 60 s timeout gives each replica 15 s, the
    // replacement about 11 s, to commit).
    let mut req = cluster
        .js_job(0, &cpu_heavy(), br#"{"rounds": 1000}"#, 3)
        .unwrap();
    req.timeout = Duration::from_secs(60);
    let id = requester.submit(req).await.unwrap();

    // Wait for a worker that accepted and is fetching or running the job (it has not committed), and kill its
    // node.
    let started = Instant::now();
    let victim = loop {
        let job = requester.db().requester_job(&id).unwrap().unwrap();
        let accepted = job
            .slots
            .values()
            .filter(|s| matches!(s.state, SlotState::Accepted))
            .map(|s| s.worker)
            .find(|w| {
                cluster
                    .members
                    .iter()
                    .any(|m| m.node.peer_id() == *w && m.market.running_jobs() == 1)
            });
        if let Some(worker) = accepted {
            break worker;
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

    let s = requester.wait(&id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(s.phase, "verified", "{}", s.reason);
    assert!(!s.agreeing.contains(&victim.to_string()));
    // The victim never commits, so reveals cannot start until its slot is dropped; the fourth worker (every
    // worker was asked to offer) then takes its place, and all three replicas agree.
    let job = requester.db().requester_job(&id).unwrap().unwrap();
    let victim_slot = job.slots.values().find(|s| s.worker == victim).unwrap();
    assert!(
        matches!(&victim_slot.state, SlotState::Dropped { reason } if reason.contains("no commitment")),
        "{:?}",
        victim_slot.state
    );
    assert_eq!(job.slots.len(), 4, "a replacement was assigned");
    assert_eq!(s.agreeing.len(), 3, "{:?}", s.agreeing);
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
    let mut forgers_outvoted = Vec::new();
    for i in 0..5 {
        let input = format!("real job {i}\n");
        let req = cluster.js_job(0, &echo, input.as_bytes(), 3).unwrap();
        let id = requester.submit(req).await.unwrap();
        let s = requester.wait(&id, Duration::from_secs(30)).await.unwrap();
        assert_eq!(s.phase, "verified", "{}", s.reason);
        let honest = file_cid(input.as_bytes(), &Profile::KUBO).unwrap();
        assert_eq!(s.output.as_deref(), Some(honest.to_string().as_str()));
        assert!(s.agreeing.iter().all(|w| !forgers.contains(w)));
        forgers_outvoted.extend(
            s.disagreeing
                .iter()
                .filter(|w| forgers.contains(w))
                .cloned(),
        );
    }
    // Two slots of three go by record; the third is drawn among the eleven workers without one, ten of them
    // forgers: a forger takes it in almost every job (all five missing it: (1/11)^5), and loses.
    assert!(!forgers_outvoted.is_empty(), "no forger was ever assigned");
    let reputation = |w: &String| requester.db().reputation(&w.parse().unwrap()).unwrap();
    for forger in &forgers_outvoted {
        assert!(reputation(forger) < 0, "{forger} kept its reputation");
    }
    eprintln!(
        "forgers outvoted {} times in 5 jobs",
        forgers_outvoted.len()
    );
    cluster.shutdown().await;
}

/// The cold start (`docs/protocol.md`, "Cold start"): a requester that has never worked with anyone draws its
/// workers at random from the offers, so ten fresh identities forging one output among thirteen workers win a
/// majority of three slots with a probability of 255/286 per job. It is captured today: its verified output is
/// the forged one, signed off by forgers only, the forgers earn a record and are owed for the job, and an honest
/// worker who told the truth loses reputation. What holds: the job still ends verified, and its result is exactly
/// the forgers' (never a mix). Each attempt is a brand-new requester (one that escaped the capture would have a
/// record from then on): eight in a row all escaping has a probability of (31/286)^8 ≈ 2e-8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brand_new_requester_facing_a_crowd_of_fresh_identities_is_captured() {
    let mut cluster = Cluster::start(
        &[None, Some(worker()), Some(worker()), Some(worker())],
        Transport::Tcp,
    )
    .await
    .unwrap();
    let honest: Vec<String> = cluster.members[1..4]
        .iter()
        .map(|m| m.node.peer_id().to_string())
        .collect();
    let forger = WorkerPolicy {
        conduct: Conduct::WrongOutput,
        ..worker()
    };
    for _ in 0..10 {
        cluster.join(Some(forger.clone())).await.unwrap();
    }
    let echo =
        std::fs::read_to_string(jobmesh_tests::workspace_root().join("examples/echo.js")).unwrap();
    let mut captured = None;
    for i in 0..8 {
        let requester = cluster.join(None).await.unwrap().market.clone();
        assert!(
            requester.db().reputations().unwrap().is_empty(),
            "a brand-new requester"
        );
        let index = cluster.members.len() - 1;
        let input = format!("cold job {i}\n");
        let req = cluster.js_job(index, &echo, input.as_bytes(), 3).unwrap();
        let id = requester.submit(req).await.unwrap();
        let s = requester.wait(&id, Duration::from_secs(30)).await.unwrap();
        assert_eq!(s.phase, "verified", "{}", s.reason);
        let honest_cid = file_cid(input.as_bytes(), &Profile::KUBO)
            .unwrap()
            .to_string();
        if s.output.as_deref() != Some(honest_cid.as_str()) {
            captured = Some((requester, input, s));
            break;
        }
    }
    let (requester, input, s) =
        captured.expect("eight brand-new requesters in a row, none captured");
    let forged = file_cid(format!("{input} (forged)").as_bytes(), &Profile::KUBO).unwrap();
    assert_eq!(
        s.output,
        Some(forged.to_string()),
        "the forgers' output, exactly"
    );
    assert!(
        s.agreeing.len() >= 2 && s.agreeing.iter().all(|w| !honest.contains(w)),
        "{s:?}"
    );
    // The forgers earned a record (and are owed for the job): this requester's next job invites them first.
    let ledger = requester.db().ledger().unwrap();
    for w in &s.agreeing {
        let peer = w.parse().unwrap();
        assert!(requester.db().reputation(&peer).unwrap() > 0, "{w}");
        assert!(
            ledger.iter().any(|(p, wei)| *p == peer && *wei > 0),
            "{w} is owed"
        );
    }
    // An honest worker assigned to it was outvoted, and lost reputation for telling the truth.
    for w in &s.disagreeing {
        assert!(honest.contains(w), "{w} outvoted with the forged majority");
        let rep = requester.db().reputation(&w.parse().unwrap()).unwrap();
        assert!(
            rep < 0,
            "the honest worker {w} outvoted by forgers: reputation {rep}"
        );
    }
    cluster.shutdown().await;
}

/// CPU time this process uses over the next `window`.
async fn cpu_over(window: Duration) -> Duration {
    let before = jobmesh_tests::process_cpu(None);
    tokio::time::sleep(window).await;
    jobmesh_tests::process_cpu(None) - before
}

/// Waits (up to 60 s) until this process uses at most 100 ms of CPU per second; the CPU it then uses per second.
async fn settled_cpu() -> Duration {
    let started = Instant::now();
    loop {
        let cpu = cpu_over(Duration::from_secs(1)).await;
        if cpu <= Duration::from_millis(100) {
            return cpu;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the process never settles: {cpu:?} of CPU per s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verifier_decides_and_a_cancelled_job_stops() {
    // Workers that take on a job far longer than the test.
    let patient = WorkerPolicy {
        max_fuel: u64::MAX,
        ..worker()
    };
    let cluster = Cluster::start(
        &[
            None,
            Some(patient.clone()),
            Some(patient.clone()),
            Some(patient),
        ],
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
    for (verifier, want, why) in [
        (same, "verified", "replicas agreed"),
        (never, "failed", "verifier printed"),
    ] {
        let mut req = cluster.js_job(0, &echo, b"checked", 3).unwrap();
        req.verifier = Some(verifier);
        let id = requester.submit(req).await.unwrap();
        let s = requester.wait(&id, Duration::from_secs(30)).await.unwrap();
        assert_eq!(s.phase, want, "{}", s.reason);
        assert!(s.reason.contains(why), "{}", s.reason);
    }
    assert!(
        requester.db().ledger().unwrap().len() == 3,
        "only the verified job is owed for"
    );

    // The whole process's CPU (requester and workers) with nothing to run: the level it must fall back to.
    let idle = settled_cpu().await;

    // A job of hours, cancelled while all three workers run it.
    let mut req = cluster
        .js_job(0, &cpu_heavy(), br#"{"rounds": 100000000}"#, 3)
        .unwrap();
    req.limits.max_fuel = 1 << 60;
    let id = requester.submit(req).await.unwrap();
    let workers = &cluster.members[1..];
    let started = Instant::now();
    while workers.iter().any(|w| w.market.running_jobs() != 1) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not every worker runs the job"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // They run it: the CPU rises well above the idle level (once the code is fetched and compiled). Three
    // spinning threads get their share of the 2 cores even on this loaded machine.
    let busy = loop {
        let busy = cpu_over(Duration::from_secs(1)).await;
        if busy >= idle + Duration::from_millis(150) {
            break busy;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the workers never ran the job: {busy:?} of CPU per s, {idle:?} per s idle"
        );
    };

    let s = requester.cancel(&id, "changed my mind").await.unwrap();
    let cancelled = Instant::now();
    assert_eq!(s.phase, "cancelled");
    assert!(s.reason.contains("changed my mind"));
    assert_eq!(requester.status(&id).unwrap().phase, "cancelled");
    // Every worker's run stops within a second (a worker counts a job until its wasm run has returned) …
    while workers.iter().any(|w| w.market.running_jobs() != 0) {
        assert!(
            cancelled.elapsed() < Duration::from_secs(1),
            "a worker still runs the cancelled job after {:?}",
            cancelled.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped_after = cancelled.elapsed();
    // … and the CPU falls back to the idle level.
    let after = cpu_over(Duration::from_secs(2)).await;
    eprintln!(
        "CPU: {idle:?} per s idle, {busy:?} per s running; all runs stopped {stopped_after:?} after the \
         cancel; then {after:?} per 2 s"
    );
    assert!(
        after <= idle * 2 + Duration::from_millis(100),
        "{after:?} of CPU in the 2 s after the stop ({idle:?} per s idle, {busy:?} running)"
    );
    cluster.shutdown().await;
}
