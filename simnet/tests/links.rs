//! The link model delays what it should: a small scenario (20 nodes × 40 jobs, no faults) with members placed in
//! world regions, 1 % loss and 50 Mbit/s uplinks ends every job, and every verified job took at least the two
//! round trips to its farthest agreeing worker that assigning and asking for the reveal cost (delays only add to
//! what the machine's load costs, so the floor holds however busy the machine is).

use std::time::Duration;

use jobmesh_node::market::verification::VerificationPolicy;
use jobmesh_simnet::checks::Verdict;
use jobmesh_simnet::links::{LinkConfig, LinkKind};
use jobmesh_simnet::scenario::{run, Scenario};
use jobmesh_simnet::trust::Adversaries;

fn scenario(links: LinkConfig) -> Scenario {
    Scenario {
        nodes: 20,
        requesters: 2,
        jobs: 40,
        replicas: 3,
        byzantine: 0.0,
        crash: 0.0,
        slow: 0.0,
        sybils: 0,
        partition: None,
        seed: 23,
        in_flight: 2,
        max_peers: 64,
        job_timeout: Duration::from_secs(60),
        links,
        adversaries: Adversaries::default(),
        verification: VerificationPolicy::Majority { replicas: 3 },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_links_delay_every_job_by_its_round_trips_and_every_job_still_ends() {
    let regions = LinkConfig {
        kind: LinkKind::Regions,
        loss: 0.01,
        bandwidth_bps: Some(50_000_000),
    };
    let s = run(&scenario(regions), |_| {}).await.expect("simnet runs");
    println!("{}", jobmesh_simnet::report::text(&s));
    let terminal = s
        .checks
        .iter()
        .find(|c| c.name == "all_jobs_terminal")
        .expect("the check runs");
    assert_eq!(terminal.verdict, Verdict::Pass, "{terminal:?}");
    assert_eq!(s.outcome.wrong_results_accepted, 0);

    let model = s.links.as_ref().expect("a link model");
    assert!(
        model.pair_rtt_min_max_ms[0] >= 18.0 && model.pair_rtt_min_max_ms[1] <= 385.0,
        "{model:?}"
    );
    let rt = s.round_trips.as_ref().expect("round trips measured");
    assert!(rt.jobs >= 36 && rt.rtt_p50_ms >= 18.0, "{rt:?}");
    for j in s.jobs.iter().filter(|j| j.phase == "verified") {
        let farthest = j.rtt_max_ms.expect("verified jobs have workers");
        assert!(
            j.latency_ms >= 2.0 * farthest,
            "job took {:.0} ms with a worker {farthest:.0} ms away: {j:?}",
            j.latency_ms
        );
    }
    // The commit path is measured: every verified job's replicas were answered, fetched, ran and committed.
    let path = &s.commit_path;
    let verified = s.outcome.by_phase.get("verified").copied().unwrap_or(0);
    assert!(
        path.answer.count >= verified * 2 && path.deliver.count >= verified * 2,
        "{path:?}"
    );
    assert!(path.fetch.count >= path.run.count && path.run.count >= path.deliver.count);
    let check = s
        .checks
        .iter()
        .find(|c| c.name == "verified_within_round_trips")
        .expect("the check runs");
    assert_ne!(check.verdict, Verdict::Skipped, "{check:?}");
}
