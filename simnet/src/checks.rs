//! The expectations of a simulated run, one named check each (as lighthouse's simulator keeps them in
//! `testing/simulator/src/checks.rs`): each looks at a [`Summary`] and returns a [`Check`] with its verdict and
//! what it measured; the report lists them all.

use serde::Serialize;

use crate::scenario::{NetworkSummary, Outcome, RoundTrips, SettlementSummary, Summary};

/// Phases a job ends in.
pub const TERMINAL: [&str; 4] = ["verified", "failed", "expired", "cancelled"];
/// Round trips between requester and workers that submit → verified may take at its p50 (announce, offer,
/// assign, fetch, commit, reveal).
pub const MAX_ROUND_TRIPS: f64 = 6.0;
/// Ethereum's gossip anchor: this share of blocks reaches the nodes within [`ANCHOR_WITHIN_S`].
pub const ANCHOR_SHARE: f64 = 0.98;
/// Ethereum's gossip anchor: the time limit, in seconds.
pub const ANCHOR_WITHIN_S: f64 = 4.0;

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The expectation holds.
    Pass,
    /// It does not.
    Fail,
    /// It does not apply to this run (e.g. round trips without a link model).
    Skipped,
}

/// One named expectation and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Its name.
    pub name: &'static str,
    /// What it expects, in words.
    pub expects: &'static str,
    /// Whether it holds.
    pub verdict: Verdict,
    /// What was measured, in words.
    pub measured: String,
}

fn check(name: &'static str, expects: &'static str, pass: bool, measured: String) -> Check {
    Check {
        name,
        expects,
        verdict: if pass { Verdict::Pass } else { Verdict::Fail },
        measured,
    }
}

/// Every check of a run, in the report's order.
pub fn all(s: &Summary) -> Vec<Check> {
    vec![
        all_jobs_terminal(s),
        no_wrong_results(&s.outcome),
        no_money_lost(&s.settlement),
        honest_workers_owed_what_they_earned(&s.settlement),
        gossip_delivered(&s.network),
        gossip_within_anchor(&s.network),
        verified_within_round_trips(s.round_trips.as_ref()),
        error_within_target(s),
        executions_within_goal(s),
    ]
}

/// Executions per accepted job (spot-checks included) credibility must stay within (issue 21: 40 % below
/// M-first's 4 at f = 0.1, ε = 10⁻³).
pub const CREDIBILITY_EXECUTIONS_GOAL: f64 = 2.4;

/// With credibility: the share of wrong results accepted is within the target error rate ε.
pub fn error_within_target(s: &Summary) -> Check {
    const EXPECTS: &str = "wrong results accepted / accepted ≤ ε";
    let Some(error_rate) = s.scenario.verification.credibility().map(|p| p.error_rate) else {
        return skipped("error_within_target", EXPECTS, "no target error rate");
    };
    let c = &s.cost;
    check(
        "error_within_target",
        EXPECTS,
        c.wrong_results_accepted as f64 <= error_rate * c.accepted as f64,
        format!(
            "{} wrong of {} accepted (95 % upper bound {:.2e}) against ε = {error_rate:e}",
            c.wrong_results_accepted, c.accepted, c.wrong_rate_upper_95
        ),
    )
}

/// With credibility: executions per accepted job, spot-checks included, within
/// [`CREDIBILITY_EXECUTIONS_GOAL`].
pub fn executions_within_goal(s: &Summary) -> Check {
    const EXPECTS: &str = "executions per accepted job (spot-checks included) ≤ 2.4";
    if s.scenario.verification.credibility().is_none() {
        return skipped("executions_within_goal", EXPECTS, "not credibility");
    }
    let c = &s.cost;
    check(
        "executions_within_goal",
        EXPECTS,
        c.accepted > 0 && c.executions_per_accepted_job <= CREDIBILITY_EXECUTIONS_GOAL,
        format!(
            "{:.2} overall ({} executions, {} spot-checks, {} accepted); steady state {:.2}",
            c.executions_per_accepted_job,
            c.executions,
            c.spot_checks,
            c.accepted,
            c.steady_state.executions_per_accepted_job
        ),
    )
}

fn skipped(name: &'static str, expects: &'static str, why: &str) -> Check {
    Check {
        name,
        expects,
        verdict: Verdict::Skipped,
        measured: why.into(),
    }
}

/// Every submitted job reached a terminal phase.
pub fn all_jobs_terminal(s: &Summary) -> Check {
    let over = s
        .jobs
        .iter()
        .filter(|j| TERMINAL.contains(&j.phase.as_str()))
        .count();
    check(
        "all_jobs_terminal",
        "every job verified, failed, expired or cancelled",
        over == s.scenario.jobs && s.jobs.len() == s.scenario.jobs,
        format!("{over} of {} jobs over", s.scenario.jobs),
    )
}

/// No verified job's output differs from the reference run's.
pub fn no_wrong_results(o: &Outcome) -> Check {
    check(
        "no_wrong_results",
        "0 wrong results accepted",
        o.wrong_results_accepted == 0,
        format!("{} wrong results accepted", o.wrong_results_accepted),
    )
}

/// The contract holds every deposit.
pub fn no_money_lost(st: &SettlementSummary) -> Check {
    check(
        "no_money_lost",
        "contract balance = deposits",
        st.no_money_lost,
        format!(
            "contract holds {} wei of {} deposited",
            st.contract_balance_wei, st.deposits_wei
        ),
    )
}

/// Every worker is owed exactly what it earned, and faulty ones earned nothing.
pub fn honest_workers_owed_what_they_earned(st: &SettlementSummary) -> Check {
    let off = st
        .workers
        .iter()
        .filter(|w| w.owed_wei != w.earned_wei || (!w.honest && w.earned_wei > 0.0))
        .count();
    check(
        "workers_owed_what_they_earned",
        "owed = earned for every worker, 0 for faulty ones",
        off == 0,
        format!("{off} of {} workers differ", st.workers.len()),
    )
}

/// Gossip reached (nearly) every live node.
pub fn gossip_delivered(n: &NetworkSummary) -> Check {
    check(
        "gossip_delivered",
        "gossip delivery ratio ≥ 0.99",
        n.gossip.delivery_ratio >= 0.99,
        format!("delivery ratio {:.3}", n.gossip.delivery_ratio),
    )
}

/// Gossip is as timely as Ethereum's block gossip: 98 % of deliveries within 4 s.
pub fn gossip_within_anchor(n: &NetworkSummary) -> Check {
    check(
        "gossip_within_anchor",
        "≥ 98 % of gossip deliveries within 4 s (Ethereum's blocks)",
        n.gossip_within_4s >= ANCHOR_SHARE,
        format!(
            "{:.1} % within {ANCHOR_WITHIN_S} s; p99 {:.0} ms",
            n.gossip_within_4s * 100.0,
            n.gossip.latency_ms[2]
        ),
    )
}

/// With a link model: submit → verified p50 within [`MAX_ROUND_TRIPS`] requester–worker round trips.
pub fn verified_within_round_trips(rt: Option<&RoundTrips>) -> Check {
    const EXPECTS: &str = "submit → verified p50 ≤ 6 requester–worker round trips";
    let Some(rt) = rt.filter(|rt| rt.rtt_p50_ms > 0.0) else {
        return Check {
            name: "verified_within_round_trips",
            expects: EXPECTS,
            verdict: Verdict::Skipped,
            measured: "no link model".into(),
        };
    };
    check(
        "verified_within_round_trips",
        EXPECTS,
        rt.ratio <= MAX_ROUND_TRIPS,
        format!(
            "p50 {:.0} ms over a median RTT of {:.0} ms: {:.1} round trips",
            rt.latency_p50_ms, rt.rtt_p50_ms, rt.ratio
        ),
    )
}
