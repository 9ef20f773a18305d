//! `jobmesh simnet` on the command line: runs a [`Scenario`] with a progress bar on stderr, prints the summary
//! (text, or JSON with `--json`) and writes the report folder. The simulator itself is `jobmesh_simnet`.

use anyhow::{Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use jobmesh_simnet::report;
use jobmesh_simnet::scenario::{self, Progress, Scenario};
use jobmesh_simnet::trust::{parse_verification, Adversaries};

use crate::commands::simnet::SimnetArgs;
use crate::context::Context;

/// Runs `jobmesh simnet`.
pub fn run(ctx: &Context, a: &SimnetArgs) -> Result<()> {
    anyhow::ensure!(
        a.job_timeout.is_finite() && a.job_timeout > 0.0,
        "--job-timeout must be a positive number of seconds"
    );
    let s = Scenario {
        nodes: a.nodes,
        requesters: a.requesters,
        jobs: a.jobs,
        replicas: a.replicas,
        byzantine: a.byzantine,
        crash: a.crash,
        slow: a.slow,
        sybils: a.sybils,
        partition: a.partition,
        seed: a.seed,
        in_flight: a.in_flight,
        max_peers: a.max_peers,
        job_timeout: std::time::Duration::try_from_secs_f64(a.job_timeout)
            .map_err(|_| anyhow::anyhow!("--job-timeout is too long"))?,
        links: jobmesh_simnet::links::LinkConfig::from_flags(
            &a.links,
            a.loss,
            a.bandwidth.as_deref(),
        )?,
        adversaries: Adversaries {
            saboteurs: a.saboteurs,
            sabotage_rate: a.sabotage_rate,
            trusted_after: a.trusted_after,
            collude: a.collude,
            sybil_forgers: a.sybil_forgers,
            stake: a.stake,
        },
        verification: parse_verification(
            &a.verification,
            a.replicas,
            a.error_rate,
            a.assumed_fault_rate,
            a.spot_check_rate,
        )?,
    };
    s.check()?;
    let bar = ProgressBar::new(a.jobs as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} jobs {msg}",
        )
        .expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let b = bar.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let summary = rt.block_on(scenario::run(&s, move |p| match p {
        Progress::Starting { nodes } => b.set_message(format!("starting {nodes} nodes")),
        Progress::JobDone { done, .. } => {
            b.set_position(done as u64);
            b.set_message("");
        }
        Progress::Fault(line) => b.println(format!("fault {line}")),
        Progress::Settling => b.set_message("settling the last lotteries"),
    }))?;
    bar.finish_and_clear();
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    if let Some(dir) = &a.report {
        report::write(dir, &summary)
            .with_context(|| format!("cannot write the report to {}", dir.display()))?;
    }
    if ctx.json {
        ctx.print_json(&serde_json::to_value(&summary)?)?;
    } else {
        crate::context::write_stdout(format_args!("{}", report::text(&summary)))?;
        if let Some(dir) = &a.report {
            crate::outln!("report: {}", dir.join("index.html").display())?;
        }
    }
    anyhow::ensure!(
        summary.outcome.wrong_results_accepted == 0,
        "{} wrong results were accepted",
        summary.outcome.wrong_results_accepted
    );
    Ok(())
}
