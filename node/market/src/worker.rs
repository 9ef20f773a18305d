//! The worker's side of the market (`docs/protocol.md`, "Worker state machine"): offer on announcements that
//! fit the node's policy, run assigned jobs in exec, commit to the result, reveal it when asked.
//!
//! A worker writes its result and salt to [`MarketDb`](crate::db::MarketDb) before it sends the commitment,
//! so a worker restarted after committing still reveals; a job found `Running` after a restart is run again
//! (runs are deterministic, so the result is the same).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobmesh_exec::{CancelToken, Limits, Plugin};
use jobmesh_p2p::{GossipMessage, Multiaddr, PeerId};
use jobmesh_store::unixfs::Profile;
use jobmesh_store::Cid;
use tokio::sync::broadcast;
use tracing::{debug, info, warn};

use crate::adversary::{Forgery, Saboteur, COLLUDING_SUFFIX};
use crate::commit_path::{Miss, Step};
use crate::db::{DbError, WorkerJob, WorkerPhase};
use crate::messages::{
    commitment_hash, open_validated, Assignment, Commitment, Gossip, JobAnnouncement, JobId,
    JobSpec, Offer, Receipt, Request, Response, Reveal, RunDetail, MAX_GOSSIP_BYTES,
};
use crate::runner::{limits_of, load_code, read_file, RunError};
use crate::shared::{now_ms, Core};

/// Why a worker could not run an assigned job.
#[derive(Debug, thiserror::Error)]
pub enum JobRunError {
    /// The code or input could not be fetched from the requester or the mesh.
    #[error("cannot fetch {cid}: {source}")]
    Fetch {
        /// The file.
        cid: Cid,
        /// Why.
        source: Box<jobmesh_p2p::Error>,
    },
    /// The plugin the job names could not be fetched.
    #[error("cannot fetch the plugin {cid}: {source}")]
    FetchPlugin {
        /// The plugin.
        cid: Cid,
        /// Why.
        source: Box<jobmesh_p2p::Error>,
    },
    /// A file could not be read or the code loaded.
    #[error(transparent)]
    Load(#[from] Box<RunError>),
    /// exec refused the job (a run that traps or runs out of fuel is a result, not this error).
    #[error(transparent)]
    Exec(#[from] Box<jobmesh_exec::ExecError>),
    /// The output could not be stored.
    #[error("cannot store the output: {0}")]
    StoreOutput(#[source] Box<jobmesh_store::StoreError>),
    /// The blocking task running the job panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
    /// The result could not be recorded.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The job was cancelled while its wasm ran; the run stopped.
    #[error("cancelled while running")]
    Cancelled,
}

impl From<RunError> for JobRunError {
    fn from(e: RunError) -> Self {
        JobRunError::Load(Box::new(e))
    }
}

impl From<jobmesh_exec::ExecError> for JobRunError {
    fn from(e: jobmesh_exec::ExecError) -> Self {
        JobRunError::Exec(Box::new(e))
    }
}

/// What a worker accepts to run.
#[derive(Clone, Debug)]
pub struct WorkerPolicy {
    /// Largest fuel budget it takes on.
    pub max_fuel: u64,
    /// Lowest price it works for, in wei per million fuel.
    pub min_price_wei_per_mfuel: u64,
    /// Jobs it runs at once.
    pub max_concurrent: usize,
    /// How it behaves (anything but [`Conduct::Honest`] is a fault injected by tests and the simnet).
    pub conduct: Conduct,
    /// The most a requester may owe it unpaid (its receipts not covered by a lottery this worker accepted), in
    /// wei: above it the worker makes no offer for that requester's jobs and refuses its assignments until a
    /// lottery pays. `None`: no limit (a node that does not settle is never paid by lottery).
    pub max_unpaid_credit_wei: Option<u128>,
    /// The active stake, in wei, this worker's offers claim in the stake contract (requesters check it on
    /// chain). `None`: unstaked.
    pub stake_wei: Option<u128>,
}

impl Default for WorkerPolicy {
    fn default() -> Self {
        WorkerPolicy {
            max_fuel: Limits::default().fuel,
            min_price_wei_per_mfuel: 0,
            max_concurrent: 2,
            conduct: Conduct::Honest,
            max_unpaid_credit_wei: None,
            stake_wei: None,
        }
    }
}

/// How a worker behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduct {
    /// Runs jobs and reports what they printed.
    Honest,
    /// Byzantine: runs jobs but reports a different output (commits to it and reveals it consistently). Every
    /// such worker forges the *same* wrong output: a colluding crowd.
    WrongOutput,
    /// Byzantine without accomplices: reports a wrong output of its own (a broken or cheating machine whose
    /// wrong answers no other worker repeats).
    Faulty,
    /// Accepts assignments and then never commits (a crashed or lazy worker).
    SilentAfterAccept,
    /// Honest but slow: waits this many milliseconds before running each job (an overloaded machine).
    Slow {
        /// The delay before each run.
        delay_ms: u64,
    },
    /// Honest until a requester trusts it, then wrong at a seeded rate ([`Saboteur`]).
    Saboteur(Saboteur),
}

/// A job in a worker's running table.
#[derive(Clone)]
struct Running {
    task: tokio::task::AbortHandle,
    cancel: CancelToken,
}

impl Running {
    /// Stops the job: the task at once, its wasm run (if it started) at its next loop iteration.
    fn stop(&self) {
        self.cancel.cancel();
        self.task.abort();
    }
}

/// Holds a job's place in the running table. The task and its blocking wasm run each keep a clone; the place
/// is freed when the last one drops, so an aborted task does not free it while its run still burns the CPU.
struct RunSlot {
    id: JobId,
    running: Arc<Mutex<HashMap<JobId, Running>>>,
}

impl Drop for RunSlot {
    fn drop(&mut self) {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// What a worker remembers of an announcement: the requester, its addresses, the deadline, its settlement address.
type Seen = (PeerId, Vec<String>, u64, Option<[u8; 20]>);

/// The worker half of a node's market. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Worker {
    shared: Arc<Core>,
    policy: WorkerPolicy,
    /// Jobs being fetched or run: the task doing it and the token that stops its wasm run. A job leaves this
    /// table only once its run has really stopped (see [`RunSlot`]).
    running: Arc<Mutex<HashMap<JobId, Running>>>,
    /// Announcements seen, by job.
    seen: Arc<Mutex<HashMap<JobId, Seen>>>,
    /// Held while a direct request is answered: they are answered one at a time, as they arrive (a repeated
    /// assignment must find the first one's record).
    answering: Arc<Mutex<()>>,
}

impl Worker {
    pub(crate) fn new(shared: Arc<Core>, policy: WorkerPolicy) -> Worker {
        Worker {
            shared,
            policy,
            running: Arc::default(),
            seen: Arc::default(),
            answering: Arc::default(),
        }
    }

    /// Jobs being fetched or run right now.
    pub(crate) fn running_count(&self) -> usize {
        self.running.lock().map(|r| r.len()).unwrap_or(usize::MAX)
    }

    /// Stops a running job (it stays counted until its run has stopped).
    fn stop_running(&self, id: &JobId) {
        let job = self.running.lock().ok().and_then(|r| r.get(id).cloned());
        if let Some(job) = job {
            job.stop();
        }
    }

    /// Why this worker would not take a job from `requester`, if it would not.
    fn refuse(&self, requester: &PeerId, spec: &JobSpec, deadline_ms: u64) -> Option<String> {
        if let Err(e) = spec.validate() {
            return Some(e.to_string());
        }
        if spec.engine != jobmesh_exec::ENGINE_ID {
            return Some(format!("engine {:?} is not this worker's", spec.engine));
        }
        if spec.limits.max_fuel > self.policy.max_fuel {
            return Some(format!(
                "max fuel {} is above this worker's {}",
                spec.limits.max_fuel, self.policy.max_fuel
            ));
        }
        if spec.price_wei_per_mfuel < self.policy.min_price_wei_per_mfuel {
            return Some(format!(
                "price {} is below this worker's {}",
                spec.price_wei_per_mfuel, self.policy.min_price_wei_per_mfuel
            ));
        }
        if deadline_ms <= now_ms() {
            return Some("the deadline has passed".into());
        }
        if self.running_count() >= self.policy.max_concurrent {
            return Some("busy".into());
        }
        self.over_credit(requester)
    }

    /// Why `requester` is not in good standing with this worker, if it is not: it owes more unpaid than the
    /// policy's limit.
    fn over_credit(&self, requester: &PeerId) -> Option<String> {
        let limit = self.policy.max_unpaid_credit_wei?;
        let unpaid = match self.shared.db.payer_credit(requester) {
            Ok(credit) => credit.unpaid(),
            Err(e) => return Some(format!("worker database: {e}")),
        };
        (unpaid > limit).then(|| {
            format!(
                "{requester} owes {unpaid} wei unpaid, above this worker's limit of {limit} wei"
            )
        })
    }

    /// Aborts every running job (the market is stopping).
    pub(crate) fn abort_all(&self) {
        let jobs: Vec<Running> = self
            .running
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        jobs.iter().for_each(Running::stop);
    }

    /// Listens to the jobs topic: offers on announcements, drops cancelled jobs.
    pub(crate) fn spawn_gossip(self, mut rx: broadcast::Receiver<GossipMessage>) {
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = self.shared.stopped() => return,
                    msg = rx.recv() => msg,
                };
                let msg = match msg {
                    Ok(m) => m,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!(missed = n, "job announcements arrived faster than handled");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                // The subscription delivers only what the jobs topic's validator accepted (signature checked).
                match open_validated::<Gossip>(&msg.data, MAX_GOSSIP_BYTES) {
                    Ok((signer, Gossip::Announcement(a))) if a.requester == signer => {
                        self.on_announcement(*a)
                    }
                    Ok((signer, Gossip::Cancellation(c))) => self.on_cancellation(signer, c.job_id),
                    Ok(_) => {}
                    Err(e) => debug!(error = %e, "undecodable gossip"),
                }
            }
        });
    }

    fn on_announcement(&self, a: JobAnnouncement) {
        let id = a.spec.id();
        if a.requester == self.shared.node.peer_id() {
            return;
        }
        if !a.asks(&id, &self.shared.node.peer_id()) {
            debug!(job = %id, share_ppm = a.offer_share_ppm, "not in the sample asked to offer");
            return;
        }
        if let Some(why) = self.refuse(&a.requester, &a.spec, a.deadline_ms) {
            debug!(job = %id, %why, "not offering");
            return;
        }
        if let Ok(mut seen) = self.seen.lock() {
            seen.retain(|_, (_, _, deadline, _)| *deadline > now_ms());
            let addrs = a.listen_addrs.clone();
            seen.insert(id, (a.requester, addrs, a.deadline_ms, a.eth_address));
        }
        let offer = Request::Offer(Offer {
            job_id: id,
            eth_address: self.shared.eth_address,
            price_wei_per_mfuel: a
                .spec
                .price_wei_per_mfuel
                .max(self.policy.min_price_wei_per_mfuel),
            stake_wei: self.policy.stake_wei,
        });
        let shared = self.shared.clone();
        tokio::spawn(async move {
            match shared
                .ask(a.requester, parse_addrs(&a.listen_addrs), &offer)
                .await
            {
                Ok(Response::Ack) => debug!(job = %id, "offered"),
                other => debug!(job = %id, ?other, "offer not taken"),
            }
        });
    }

    fn on_cancellation(&self, signer: PeerId, id: JobId) {
        let Ok(Some(mut job)) = self.shared.db.worker_job(&id) else {
            return;
        };
        if job.requester != signer || job.phase == WorkerPhase::Done {
            return;
        }
        self.stop_running(&id);
        job.phase = WorkerPhase::Done;
        let _ = self.shared.db.save_worker_job(&id, &job);
        info!(job = %id, "job cancelled by its requester");
    }

    /// Answers a worker-side direct request (assignment, reveal request, receipt). Blocking: it writes and
    /// flushes the worker's records, so call it from the blocking pool.
    pub(crate) fn on_request(&self, peer: PeerId, request: Request) -> Response {
        let _one_at_a_time = self.answering.lock().unwrap_or_else(|e| e.into_inner());
        match request {
            Request::Assignment(a) => self.on_assignment(peer, *a),
            Request::RevealRequest { job_id } => self.on_reveal_request(peer, job_id),
            Request::Receipt(r) => self.on_receipt(peer, r),
            _ => Response::Reject {
                reason: "not a request for a worker".into(),
            },
        }
    }

    /// An assignment from `peer`: accept it (and start running) or refuse it.
    pub(crate) fn on_assignment(&self, peer: PeerId, a: Assignment) -> Response {
        let id = a.job_id;
        if a.spec.id() != id {
            return Response::Reject {
                reason: "the spec does not hash to the job id".into(),
            };
        }
        match self.shared.db.worker_job(&id) {
            Ok(Some(existing)) if existing.requester == peer => return Response::Ack,
            Ok(Some(_)) => {
                return Response::Reject {
                    reason: "job already assigned by another requester".into(),
                }
            }
            Ok(None) => {}
            Err(e) => {
                return Response::Reject {
                    reason: format!("worker database: {e}"),
                }
            }
        }
        let (addrs, deadline_ms, requester_eth) = self
            .seen
            .lock()
            .ok()
            .and_then(|s| s.get(&id).cloned())
            .filter(|(requester, ..)| *requester == peer)
            .map(|(_, addrs, deadline, eth)| (addrs, deadline, eth))
            .unwrap_or((Vec::new(), a.commit_by_ms + 60_000, None));
        if let Some(why) = self.refuse(&peer, &a.spec, a.commit_by_ms) {
            return Response::Reject { reason: why };
        }
        let job = WorkerJob {
            spec: a.spec,
            requester: peer,
            replica: a.replica,
            phase: WorkerPhase::Running,
            result: None,
            receipt: None,
            deadline_ms,
            requester_addrs: addrs,
            commit_by_ms: a.commit_by_ms,
            receipt_ms: 0,
            requester_eth,
            detail: RunDetail::default(),
        };
        if let Err(e) = self.shared.db.save_worker_job(&id, &job) {
            return Response::Reject {
                reason: format!("worker database: {e}"),
            };
        }
        info!(job = %id, requester = %peer, replica = a.replica, "assigned");
        self.spawn_run(id, job);
        Response::Ack
    }

    /// Fetches, runs, stores and commits, in a task of its own.
    fn spawn_run(&self, id: JobId, job: WorkerJob) {
        if self.policy.conduct == Conduct::SilentAfterAccept {
            return;
        }
        let me = self.clone();
        let cancel = self.shared.exec.cancel_token();
        let slot = Arc::new(RunSlot {
            id,
            running: self.running.clone(),
        });
        // Held until the task is in the table, so that the task cannot free its place before it is taken.
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let token = cancel.clone();
        let task = tokio::spawn(async move {
            match me.run_job(id, &job, &token, slot).await {
                Ok(job) => me.send_commitment(id, job).await,
                Err(e) => {
                    me.shared.commit_path.missed(match e {
                        JobRunError::Fetch { .. } | JobRunError::FetchPlugin { .. } => {
                            Miss::FetchFailed
                        }
                        _ => Miss::RunFailed,
                    });
                    warn!(job = %id, error = %e, "job not run")
                }
            }
        });
        running.insert(
            id,
            Running {
                task: task.abort_handle(),
                cancel,
            },
        );
    }

    async fn run_job(
        &self,
        id: JobId,
        job: &WorkerJob,
        cancel: &CancelToken,
        slot: Arc<RunSlot>,
    ) -> Result<WorkerJob, JobRunError> {
        let node = &self.shared.node;
        let left = Duration::from_millis(job.commit_by_ms.saturating_sub(now_ms()).max(500));
        let fetching = std::time::Instant::now();
        debug!(job = %id, "fetching code and input");
        for cid in [job.spec.code, job.spec.input] {
            node.fetch_dag_from(cid, &[job.requester], left)
                .await
                .map_err(|source| JobRunError::Fetch {
                    cid,
                    source: Box::new(source),
                })?;
        }
        if let Some(plugin) = job.spec.plugin {
            if self.shared.exec.plugin(&plugin).is_none() {
                let bytes = node.get_block(plugin, left).await.map_err(|source| {
                    JobRunError::FetchPlugin {
                        cid: plugin,
                        source: Box::new(source),
                    }
                })?;
                self.shared.exec.add_plugin(Plugin::from_bytes(bytes));
            }
        }
        let (store, exec, spec) = (
            node.store().clone(),
            self.shared.exec.clone(),
            job.spec.clone(),
        );
        let conduct = self.policy.conduct;
        if let Conduct::Slow { delay_ms } = conduct {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        debug!(job = %id, "running");
        let path = &self.shared.commit_path;
        path.record(Step::Fetch, fetching.elapsed());
        let me = node.peer_id();
        let forgery = self.forgery(&id, &job.requester);
        let started = std::time::Instant::now();
        let cancel = cancel.clone();
        let shared = self.shared.clone();
        let (output, fuel_used, status, detail) = tokio::task::spawn_blocking(move || {
            // This run keeps the job's place in the running table until it has stopped.
            let _slot = slot;
            shared.commit_path.record(Step::Queue, started.elapsed());
            let running = std::time::Instant::now();
            let code = read_file(&store, &spec.code)?;
            let input = read_file(&store, &spec.input)?;
            let code = load_code(spec.kind, &code)?;
            let limits = limits_of(&spec);
            let outcome = exec.run_cancellable(&code, &input, &limits, &cancel)?;
            if outcome.status == jobmesh_exec::Status::Cancelled {
                return Err(JobRunError::Cancelled);
            }
            let mut detail = run_detail(&outcome, &limits);
            detail.stderr_cid = crate::stderr_log::keep(&store, &outcome.stderr, &limits)
                .map_err(JobRunError::StoreOutput)?;
            let mut output = outcome.output;
            match forgery {
                Forgery::Colluding => output.extend_from_slice(COLLUDING_SUFFIX),
                Forgery::Own => {
                    output.extend_from_slice(format!(" (corrupted on {me})").as_bytes())
                }
                Forgery::None => {}
            }
            let root = store
                .add_file(&output[..], &Profile::KUBO)
                .map_err(|e| JobRunError::StoreOutput(Box::new(e)))?
                .root;
            let status = outcome.status.name().to_string();
            shared.commit_path.record(Step::Run, running.elapsed());
            Ok::<_, JobRunError>((root, outcome.fuel_used, status, detail))
        })
        .await??;
        self.shared
            .exec_metrics
            .record(fuel_used, started.elapsed().as_secs_f64(), &status);
        let salt: [u8; 32] = rand::random();
        info!(job = %id, %output, fuel_used, %status, ms = started.elapsed().as_millis() as u64, "ran job");
        let mut job = job.clone();
        job.phase = WorkerPhase::Committed;
        job.result = Some((output.to_bytes(), fuel_used, status, salt));
        job.detail = detail;
        // Written before the commitment leaves this node, so a restart can still reveal.
        self.shared.db.save_worker_job(&id, &job)?;
        Ok(job)
    }

    /// What this worker's conduct returns for job `id` of `requester` in place of the real output.
    fn forgery(&self, id: &JobId, requester: &PeerId) -> Forgery {
        match self.policy.conduct {
            Conduct::WrongOutput => Forgery::Colluding,
            Conduct::Faulty => Forgery::Own,
            Conduct::Saboteur(s) => {
                let paid = self
                    .shared
                    .db
                    .payer_credit(requester)
                    .map_or(0, |c| c.receipts);
                s.forgery(id, &self.shared.node.peer_id().to_bytes(), paid)
            }
            _ => Forgery::None,
        }
    }

    /// Sends the commitment, retrying until the commitment deadline.
    async fn send_commitment(&self, id: JobId, job: WorkerJob) {
        let Some((output, fuel_used, status, salt)) = &job.result else {
            return;
        };
        let Ok(output) = Cid::try_from(output.as_slice()) else {
            return;
        };
        let me = self.shared.node.peer_id();
        let commitment = commitment_hash(&output, *fuel_used, status, &job.detail, salt, &me);
        let request = Request::Commitment(Commitment {
            job_id: id,
            commitment,
        });
        let addrs = parse_addrs(&job.requester_addrs);
        let sending = std::time::Instant::now();
        loop {
            match self
                .shared
                .ask(job.requester, addrs.clone(), &request)
                .await
            {
                Ok(Response::Ack) => {
                    self.shared
                        .commit_path
                        .record(Step::Deliver, sending.elapsed());
                    return;
                }
                other => debug!(job = %id, ?other, "commitment not taken; retrying"),
            }
            if now_ms() + 500 >= job.commit_by_ms {
                self.shared.commit_path.missed(Miss::Undelivered);
                warn!(job = %id, "commitment not delivered by its deadline");
                return;
            }
            if self.shared.is_stopped() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The requester asks to open the commitment.
    pub(crate) fn on_reveal_request(&self, peer: PeerId, id: JobId) -> Response {
        let job = match self.shared.db.worker_job(&id) {
            Ok(Some(job)) if job.requester == peer => job,
            _ => {
                return Response::Reject {
                    reason: "no commitment for this job".into(),
                }
            }
        };
        let Some((output, fuel_used, status, salt)) = job.result.clone() else {
            return Response::Reject {
                reason: "not committed yet".into(),
            };
        };
        let Ok(output) = Cid::try_from(output.as_slice()) else {
            return Response::Reject {
                reason: "corrupt result record".into(),
            };
        };
        let detail = Box::new(job.detail.clone());
        if job.phase == WorkerPhase::Committed {
            let mut job = job;
            job.phase = WorkerPhase::Revealed;
            let _ = self.shared.db.save_worker_job(&id, &job);
        }
        Response::Reveal(Reveal {
            job_id: id,
            output,
            fuel_used,
            status,
            salt,
            detail,
        })
    }

    /// The requester's verdict on this worker's replica.
    pub(crate) fn on_receipt(&self, peer: PeerId, receipt: Receipt) -> Response {
        let id = receipt.job_id;
        let Ok(Some(mut job)) = self.shared.db.worker_job(&id) else {
            return Response::Reject {
                reason: "unknown job".into(),
            };
        };
        if job.requester != peer {
            return Response::Reject {
                reason: "not this job's requester".into(),
            };
        }
        self.stop_running(&id);
        info!(job = %id, accepted = receipt.accepted, owed_wei = receipt.owed_wei, reason = %receipt.reason, "receipt");
        // A repeated receipt changes nothing: the requester owes each job once.
        if job.receipt.is_some() {
            return Response::Ack;
        }
        job.phase = WorkerPhase::Done;
        job.receipt = Some((receipt.accepted, receipt.owed_wei));
        job.receipt_ms = now_ms();
        let owed = if receipt.accepted {
            receipt.owed_wei
        } else {
            0
        };
        if let Err(e) = self.shared.db.save_receipt(&id, &job, owed) {
            warn!(job = %id, error = %e, "cannot record a receipt");
        }
        // The requester has pinned the output if it accepted it; this node no longer needs to keep it.
        if let Some((output, ..)) = &job.result {
            if let Ok(cid) = Cid::try_from(output.as_slice()) {
                let _ = self.shared.node.store().unpin(&cid);
            }
        }
        Response::Ack
    }

    /// After a restart: run again what was running, re-send commitments not yet revealed.
    pub(crate) fn resume(&self) -> Result<(), DbError> {
        let now = now_ms();
        for (id, job) in self.shared.db.worker_jobs()? {
            if job.deadline_ms <= now {
                continue;
            }
            match job.phase {
                WorkerPhase::Running => {
                    info!(job = %id, "running an interrupted job again");
                    self.spawn_run(id, job);
                }
                WorkerPhase::Committed => {
                    let me = self.clone();
                    tokio::spawn(async move { me.send_commitment(id, job).await });
                }
                WorkerPhase::Revealed | WorkerPhase::Done => {}
            }
        }
        Ok(())
    }
}

fn parse_addrs(list: &[String]) -> Vec<Multiaddr> {
    list.iter().filter_map(|a| a.parse().ok()).collect()
}

/// What a run says about how it ended: the failure in words (empty when it ended ok) and its stderr.
fn run_detail(outcome: &jobmesh_exec::Outcome, limits: &Limits) -> RunDetail {
    let message = match outcome.status {
        jobmesh_exec::Status::Ok => String::new(),
        ref failed => failed.describe(limits),
    };
    RunDetail::new(&message, &outcome.stderr, limits.stderr_bytes)
}
