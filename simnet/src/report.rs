//! The report of a run: a text summary for the terminal, and `summary.json` plus `index.html` (tables and
//! SVG plots: latency over time, jobs by outcome, each worker's owed vs received) in a report folder.

use std::fmt::Write as _;
use std::path::Path;

use crate::scenario::Summary;

/// The summary as a few lines of text.
pub fn text(s: &Summary) -> String {
    let o = &s.outcome;
    let st = &s.settlement;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "simnet: {} nodes ({} requesters), {} jobs × {} replicas, seed {} — {:.1} s, peak RSS {:.0} MiB",
        s.scenario.nodes, s.scenario.requesters, o.jobs, s.scenario.replicas, s.scenario.seed, s.wall_s, s.peak_rss_mib
    );
    let _ = writeln!(
        t,
        "time: start {:.1} s, plan {:.1} s, jobs {:.1} s, settle {:.1} s",
        s.phases.start_s, s.phases.plan_s, s.phases.jobs_s, s.phases.settle_s
    );
    let phases: Vec<String> = o.by_phase.iter().map(|(p, n)| format!("{n} {p}")).collect();
    let _ = writeln!(t, "jobs: {}", phases.join(", "));
    for (reason, n) in &o.failed_by_reason {
        let _ = writeln!(t, "  {n} × {reason}");
    }
    let _ = writeln!(t, "wrong results accepted: {}", o.wrong_results_accepted);
    cost_text(&mut t, s);
    let _ = writeln!(
        t,
        "latency submit→end: p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms; submit→verified p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms",
        s.latency_ms[0], s.latency_ms[1], s.latency_ms[2],
        s.verified_latency_ms[0], s.verified_latency_ms[1], s.verified_latency_ms[2]
    );
    links_text(&mut t, s);
    commit_path_text(&mut t, s);
    let _ = writeln!(
        t,
        "network: gossip {} published, delivery ratio {:.2} ({} redelivered late, {} to nodes started since), latency p50 {:.1} ms p95 {:.1} ms \
         p99 {:.1} ms, {:.1} % within 4 s (Ethereum: 98 % of blocks); bitswap {} blocks / {:.1} MiB; {} direct requests; {} DHT queries; {} connection ends opened, \
         {} peers trimmed",
        s.network.gossip.published,
        s.network.gossip.delivery_ratio,
        s.network.gossip.redelivered,
        s.network.gossip.caught_up,
        s.network.gossip.latency_ms[0],
        s.network.gossip.latency_ms[1],
        s.network.gossip.latency_ms[2],
        s.network.gossip_within_4s * 100.0,
        s.network.bitswap_blocks,
        s.network.bitswap_bytes as f64 / (1 << 20) as f64,
        s.network.direct_requests,
        s.network.dht_queries,
        s.network.connections_opened,
        s.network.peers_trimmed
    );
    let _ = writeln!(
        t,
        "settlement: {} lotteries ({} claimed, {} shared, {} pending) paid {} replica payments for {} gas \
         vs {} gas in plain transfers ({:.1}× cheaper); no money lost: {}",
        st.lotteries_committed,
        st.lotteries_paid,
        st.lotteries_shared,
        st.lotteries_pending,
        st.payments,
        st.gas_used,
        st.gas_plain_transfers,
        st.gas_plain_transfers as f64 / st.gas_used.max(1) as f64,
        st.no_money_lost
    );
    for f in &s.faults {
        let _ = writeln!(t, "fault {f}");
    }
    for c in &s.checks {
        let _ = writeln!(
            t,
            "check {:?} {}: {} (expects {})",
            c.verdict, c.name, c.measured, c.expects
        );
    }
    t
}

/// What verification cost: executions per accepted job overall, in the warm-up and the steady state, the
/// spot-checks, and the wrong results with their 95 % upper bound.
fn cost_text(t: &mut String, s: &Summary) {
    let c = &s.cost;
    let _ = writeln!(
        t,
        "verification {:?}: {:.2} executions per accepted job ({} executions for {} accepted; warm-up {:.2} over {} jobs, \
         steady state {:.2} over the last {} jobs); {} spot-checks ({} fuel, {} wei); wrong {} (rate ≤ {:.2e} at 95 %)",
        s.scenario.verification,
        c.executions_per_accepted_job,
        c.executions,
        c.accepted,
        c.warm_up.executions_per_accepted_job,
        c.warm_up.jobs,
        c.steady_state.executions_per_accepted_job,
        c.steady_state.jobs,
        c.spot_checks,
        c.spot_check_fuel,
        c.spot_check_wei,
        c.wrong_results_accepted,
        c.wrong_rate_upper_95
    );
}

/// The link model and the round trips, when the run had one.
fn links_text(t: &mut String, s: &Summary) {
    let Some(l) = &s.links else {
        let _ = writeln!(t, "links: none (memory transport, no delay)");
        return;
    };
    let regions: Vec<String> = l
        .regions
        .iter()
        .map(|r| format!("{} {}", r.name, r.members))
        .collect();
    let _ = writeln!(
        t,
        "links: {:?}, loss {}, uplink {}; regions: {}; pair RTT p50 {:.0} ms, p95 {:.0} ms (min {:.0}, max {:.0}){}",
        l.config.kind,
        l.config.loss,
        l.config
            .bandwidth_bps
            .map_or("unlimited".to_string(), |b| format!("{:.1} Mbit/s", b as f64 / 1e6)),
        regions.join(", "),
        l.pair_rtt_ms[0],
        l.pair_rtt_ms[1],
        l.pair_rtt_min_max_ms[0],
        l.pair_rtt_min_max_ms[1],
        l.source.map_or(String::new(), |s| format!(" — {s}"))
    );
    if let Some(rt) = &s.round_trips {
        let _ = writeln!(
            t,
            "round trips: submit→verified p50 {:.0} ms over a median requester–worker RTT of {:.0} ms = {:.1} RTTs \
             (per-job ratio p50 {:.1}; farthest agreeing worker's RTT p50 {:.0} ms; {} verified jobs)",
            rt.latency_p50_ms, rt.rtt_p50_ms, rt.ratio, rt.per_job_ratio_p50, rt.rtt_max_p50_ms, rt.jobs
        );
    }
}

/// Writes `summary.json` and `index.html` into `dir` (created if needed).
pub fn write(dir: &Path, s: &Summary) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_vec_pretty(s).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("summary.json"), json)?;
    std::fs::write(dir.join("index.html"), html(s))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An axis figure: whole numbers when large, two decimals when small.
fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A scatter plot with axes; `diagonal` draws y = x.
fn scatter(title: &str, xl: &str, yl: &str, points: &[(f64, f64, &str)], diagonal: bool) -> String {
    let (w, h, m) = (640.0, 320.0, 50.0);
    let xmax = points.iter().map(|p| p.0).fold(0.0, f64::max).max(1e-9);
    let mut ymax = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-9);
    if diagonal {
        ymax = ymax.max(xmax);
    }
    let xmax = if diagonal { ymax } else { xmax };
    let px = |x: f64| m + x / xmax * (w - 2.0 * m);
    let py = |y: f64| h - m - y / ymax * (h - 2.0 * m);
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" \
         xmlns=\"http://www.w3.org/2000/svg\" font-size=\"11\">",
        esc(title)
    );
    let _ = write!(
        svg,
        "<line x1=\"{m}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#333\"/>\
         <line x1=\"{m}\" y1=\"{m}\" x2=\"{m}\" y2=\"{0}\" stroke=\"#333\"/>\
         <text x=\"{2}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\
         <text x=\"12\" y=\"{5}\" transform=\"rotate(-90 12 {5})\" text-anchor=\"middle\">{6}</text>\
         <text x=\"{1}\" y=\"{7}\" text-anchor=\"end\">{8}</text><text x=\"{9}\" y=\"{11}\">{10}</text>",
        h - m,
        w - m,
        w / 2.0,
        h - 10.0,
        esc(xl),
        h / 2.0,
        esc(yl),
        h - m + 14.0,
        num(xmax),
        m + 4.0,
        num(ymax),
        m - 6.0
    );
    if diagonal {
        let _ = write!(
            svg,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#aaa\" stroke-dasharray=\"4\"/>",
            px(0.0),
            py(0.0),
            px(xmax),
            py(xmax)
        );
    }
    for (x, y, color) in points {
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\" fill-opacity=\"0.7\"/>",
            px(*x),
            py(*y)
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// Horizontal bars.
fn bars(title: &str, rows: &[(String, f64)]) -> String {
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1e-9);
    let h = 24.0 * rows.len() as f64 + 10.0;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg viewBox=\"0 0 640 {h}\" width=\"640\" height=\"{h}\" \
         xmlns=\"http://www.w3.org/2000/svg\" font-size=\"12\">",
        esc(title)
    );
    for (i, (label, v)) in rows.iter().enumerate() {
        let y = 5.0 + 24.0 * i as f64;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\">{}</text><rect x=\"200\" y=\"{y}\" width=\"{:.1}\" height=\"18\" fill=\"#4a7\"/>\
             <text x=\"{:.1}\" y=\"{}\">{v}</text>",
            y + 13.0,
            esc(label),
            v / max * 380.0,
            205.0 + v / max * 380.0,
            y + 13.0
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

fn html(s: &Summary) -> String {
    let latency: Vec<(f64, f64, &str)> = s
        .jobs
        .iter()
        .map(|j| {
            let color = match j.phase.as_str() {
                "verified" => "#27a",
                _ => "#c33",
            };
            (j.submitted_s, j.latency_ms, color)
        })
        .collect();
    let fairness: Vec<(f64, f64, &str)> = s
        .settlement
        .workers
        .iter()
        .filter(|w| w.owed_wei > 0.0)
        .map(|w| {
            (
                w.owed_wei,
                w.received_wei,
                if w.honest { "#27a" } else { "#c33" },
            )
        })
        .collect();
    let mut outcome_rows: Vec<(String, f64)> = Vec::new();
    for (kind, phases) in &s.outcome.by_kind {
        for (phase, n) in phases {
            outcome_rows.push((format!("{kind}: {phase}"), *n as f64));
        }
    }
    let executions: Vec<(f64, f64, &str)> = s
        .cost
        .timeline
        .iter()
        .map(|x| (x.first_job as f64, x.executions_per_accepted_job, "#27a"))
        .collect();
    let credibility: Vec<(f64, f64, &str)> = s
        .cost
        .credibility
        .iter()
        .map(|x| (x.at_s, x.mean, "#a72"))
        .collect();
    let st = &s.settlement;
    let gas_rows = vec![
        ("lotteries (commit + claim)".to_string(), st.gas_used as f64),
        (
            "plain transfer per payment".to_string(),
            st.gas_plain_transfers as f64,
        ),
    ];
    let mut failures = String::new();
    for (reason, n) in &s.outcome.failed_by_reason {
        let _ = write!(failures, "<tr><td>{n}</td><td>{}</td></tr>", esc(reason));
    }
    if failures.is_empty() {
        failures.push_str("<tr><td>0</td><td>every job was verified</td></tr>");
    }
    let faults: String = s
        .faults
        .iter()
        .map(|f| format!("<li>{}</li>", esc(f)))
        .collect();
    let checks: String = s
        .checks
        .iter()
        .map(|c| {
            format!(
                "<tr><td>{:?}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                c.verdict,
                c.name,
                esc(c.expects),
                esc(&c.measured)
            )
        })
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>jobmesh simnet report</title>\
<style>body{{font:14px system-ui,sans-serif;max-width:900px;margin:2em auto;color:#222}}\
figure{{margin:1.5em 0}}figcaption{{font-weight:600;margin-bottom:.3em}}td,th{{padding:2px 10px;text-align:left}}\
pre{{background:#f4f4f4;padding:1em;white-space:pre-wrap}}</style></head><body>\
<h1>jobmesh simnet</h1><pre>{text}</pre>\
<h2>Checks</h2><table><tr><th>verdict</th><th>check</th><th>expects</th><th>measured</th></tr>{checks}</table>\
<h2>Jobs</h2>{outcome}<table><tr><th>failed</th><th>reason</th></tr>{failures}</table>\
{latency}<p>Blue: verified; red: failed/expired. Wrong results accepted: <b>{wrong}</b>.</p>\
<h2>Verification cost</h2>{executions}<p>Executions (every replica run, spot-checks included) per accepted job, \
in twentieths of the run by submission order.</p>{credibility}<p>The requesters' mean credibility of the workers \
they hold evidence on, sampled during the run.</p>\
<h2>Settlement</h2>{fairness}<p>Each point is a worker: what requesters owed it (x) against what it received \
through lotteries (y); the dashed line is y = x. Lotteries pay in expectation: over many lotteries points gather \
around the line, over few they sit on an axis (won everything or nothing). Red: faulty or silent workers.</p>{gas}\
<h2>Faults</h2><ul>{faults}</ul><p>Everything above is in <code>summary.json</code>.</p></body></html>",
        text = esc(&text(s)),
        outcome = bars("Jobs by kind and final phase", &outcome_rows),
        latency = scatter("Submit → end latency over the run", "submitted at (s)", "latency (ms)", &latency, false),
        wrong = s.outcome.wrong_results_accepted,
        executions = scatter("Executions per accepted job over the run", "first job of the slice", "executions / accepted job", &executions, false),
        credibility = scatter("Requesters' mean worker credibility over time", "time (s)", "mean credibility", &credibility, false),
        fairness = scatter("Owed vs received per worker (wei)", "owed (wei)", "received (wei)", &fairness, true),
        gas = bars("Gas spent on settlement vs plain transfers", &gas_rows),
    )
}

/// One line on where the commit step spent its time (p50 / p95 / max per step, and the steps that failed).
fn commit_path_text(t: &mut String, s: &Summary) {
    let c = &s.commit_path;
    let step = |name: &str, st: &crate::commit_path::StepTimes| {
        format!("{name} {:.0}/{:.0}/{:.0} ms", st.ms[0], st.ms[1], st.max_ms)
    };
    let _ = writeln!(
        t,
        "commit path (p50/p95/max): {}, {}, {}, {}, {}; {} unanswered, {} fetches failed, {} runs failed, {} commitments undelivered",
        step("answer", &c.answer),
        step("fetch", &c.fetch),
        step("queue", &c.queue),
        step("run", &c.run),
        step("deliver", &c.deliver),
        c.unanswered,
        c.fetch_failed,
        c.run_failed,
        c.undelivered
    );
}
