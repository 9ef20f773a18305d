//! The link model delays what it should: the same small scenario (20 nodes × 40 jobs, no faults) run with no
//! delay and with members placed in world regions takes markedly longer with the regions, never less than a few
//! requester–worker round trips per job, and every job still ends.

use std::time::Duration;

use jobmesh_simnet::checks::Verdict;
use jobmesh_simnet::links::{LinkConfig, LinkKind};
use jobmesh_simnet::scenario::{run, Scenario, Summary};

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
        in_flight: 5,
        max_peers: 64,
        job_timeout: Duration::from_secs(60),
        links,
    }
}

fn all_terminal(s: &Summary) {
    let terminal = s
        .checks
        .iter()
        .find(|c| c.name == "all_jobs_terminal")
        .expect("the check runs");
    assert_eq!(terminal.verdict, Verdict::Pass, "{terminal:?}");
    assert_eq!(s.outcome.wrong_results_accepted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn region_links_delay_jobs_by_their_round_trips_and_every_job_still_ends() {
    let none = run(&scenario(LinkConfig::default()), |_| {})
        .await
        .expect("simnet runs");
    let regions = LinkConfig {
        kind: LinkKind::Regions,
        loss: 0.01,
        bandwidth_bps: Some(50_000_000),
    };
    let linked = run(&scenario(regions), |_| {}).await.expect("simnet runs");
    println!("{}", jobmesh_simnet::report::text(&none));
    println!("{}", jobmesh_simnet::report::text(&linked));
    all_terminal(&none);
    all_terminal(&linked);
    assert!(none.links.is_none() && none.round_trips.is_none());

    let model = linked.links.as_ref().expect("a link model");
    assert!(
        model.pair_rtt_ms[0] >= 20.0 && model.pair_rtt_min_max_ms[1] <= 363.0,
        "{model:?}"
    );
    let rt = linked.round_trips.as_ref().expect("round trips measured");
    assert!(rt.jobs >= 36 && rt.rtt_p50_ms >= 18.0, "{rt:?}");
    let (p50_none, p50_linked) = (none.verified_latency_ms[0], linked.verified_latency_ms[0]);
    // Announce (gossip), offer, assign, fetch code and input, commit, reveal: at least three round trips even
    // if every message overlapped another.
    assert!(
        p50_linked >= 3.0 * rt.rtt_p50_ms,
        "p50 {p50_linked:.0} ms is less than 3 RTTs of {:.0} ms",
        rt.rtt_p50_ms
    );
    assert!(
        p50_linked >= 1.5 * p50_none,
        "with links p50 {p50_linked:.0} ms, without {p50_none:.0} ms"
    );
    assert!(
        linked.network.gossip.latency_ms[0] >= 10.0,
        "gossip crosses the links too: {:?}",
        linked.network.gossip
    );
}
