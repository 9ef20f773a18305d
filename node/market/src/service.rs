//! The running market of a node: the network glue around the pure state machines (`docs/protocol.md`).
//!
//! Owns: the requester's table of live jobs — one actor task feeds offers, answers, commitments, reveals and
//! timer ticks into each [`RequesterJob`], writes the record and the actions' reputation and ledger changes to
//! [`MarketDb`] in one transaction, and only then sends the messages — and the inbound side of the direct
//! protocol, which it dispatches to the requester actor or to the [`worker`](crate::worker).
//! Must not touch: the swarm's internals (it uses [`Mesh`]'s public API only) or the chain: the ledger it fills
//! is settled by the settlement crate (`jobmesh-settlement`), which also receives the lottery notices routed here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jobmesh_exec::Executor;
use jobmesh_p2p::{identity::Keypair, InboundRequest, Mesh, Multiaddr, PeerId};
use jobmesh_store::Cid;
use jobmesh_store::StoreError;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::commit_path::{Miss, Step};
use crate::db::{DbError, MarketDb};
use crate::messages::{
    offer_share_ppm, open, open_from, seal, Assignment, Cancellation, CodeKind, Commitment, Gossip,
    JobAnnouncement, JobId, JobLimits, JobSpec, LotteryNotice, MessageError, Offer, Request,
    Response, Reveal, INVITED_PER_REPLICA, JOBS_TOPIC, MAX_DIRECT_BYTES, MAX_GOSSIP_BYTES,
    MAX_REPLICAS,
};
use crate::requester::{Action, Answer, Phase, RequesterJob, SlotState, ANSWER_TIMEOUT_MS};
use crate::runner::{run_verifier, RunError};
use crate::shared::Core;
pub use crate::shared::{now_ms, AskError};
use crate::worker::{Worker, WorkerPolicy};

/// Why a market operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    /// The job request is out of range.
    #[error("invalid job: {0}")]
    Invalid(String),
    /// No job with this id on this node.
    #[error("no job {0} on this node")]
    UnknownJob(String),
    /// The market database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The node is shutting down.
    #[error("the market has stopped")]
    Stopped,
}

/// Settings of a node's market.
#[derive(Clone, Debug, Default)]
pub struct MarketConfig {
    /// Run jobs for others under this policy (`None`: only submit jobs).
    pub worker: Option<WorkerPolicy>,
    /// The settlement address announced in jobs and offers.
    pub eth_address: Option<[u8; 20]>,
    /// How this node's requester verifies results (default: today's majority of 3).
    pub verification: crate::verification::VerificationPolicy,
    /// The stake contract whose active stakes this node's requester credits to offers (`node start
    /// --stake-contract`; the simulator deploys one on its embedded chain). `None`: claimed stakes are ignored.
    pub stake_contract: Option<[u8; 20]>,
    /// Reads stakes from the chain; the node's launch sets it from `stake_contract` and its settlement chain.
    pub stake_oracle: Option<Arc<dyn crate::stake::StakeOracle>>,
}

/// What a requester asks for.
#[derive(Clone, Debug)]
pub struct JobRequest {
    /// What the code is.
    pub kind: CodeKind,
    /// The Javy plugin (JavaScript jobs).
    pub plugin: Option<Cid>,
    /// The code (a UnixFS file in this node's store).
    pub code: Cid,
    /// The input (a UnixFS file in this node's store).
    pub input: Cid,
    /// Limits every replica runs under.
    pub limits: JobLimits,
    /// Workers that run it.
    pub replicas: u8,
    /// Price in wei per million fuel.
    pub price_wei_per_mfuel: u64,
    /// A verifier job run on (input, output) before the result is accepted.
    pub verifier: Option<Cid>,
    /// Time until the job must be over.
    pub timeout: Duration,
    /// The target error rate ε of the result under credibility-based verification (`None`: the node's default).
    pub error_rate: Option<f64>,
}

impl JobRequest {
    /// Checks what a requester chooses (replicas, fuel, timeout), so a caller can refuse a job before it stores
    /// anything for it; [`Market::submit`] checks the same.
    pub fn check(replicas: u8, max_fuel: u64, timeout: Duration) -> Result<(), MarketError> {
        let invalid = |why: String| Err(MarketError::Invalid(why));
        if replicas == 0 || replicas > MAX_REPLICAS {
            return invalid(format!("replicas must be between 1 and {MAX_REPLICAS}"));
        }
        if max_fuel == 0 {
            return invalid("max_fuel must be positive".into());
        }
        if timeout < Duration::from_secs(1) || timeout > Duration::from_secs(7 * 86_400) {
            return invalid("the timeout must be between 1 s and 7 days".into());
        }
        Ok(())
    }
}

/// What `job status` shows of a job (the API's JSON form of it, too).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobStatus {
    /// The job id (hex).
    pub id: String,
    /// Where it is: announced, committing, revealing, verifying, verified, failed, cancelled, expired.
    pub phase: String,
    /// Whether the phase is terminal.
    pub finished: bool,
    /// Why it is where it is.
    pub reason: String,
    /// Replicas asked for.
    pub replicas: u8,
    /// Offers received.
    pub offers: usize,
    /// Replicas assigned and live, committed, revealed.
    pub assigned: usize,
    /// Commitments received.
    pub committed: usize,
    /// Reveals received.
    pub revealed: usize,
    /// The accepted output (once verified).
    pub output: Option<String>,
    /// Fuel of the accepted result.
    pub fuel_used: Option<u64>,
    /// Status of the accepted result (`ok`, `out_of_fuel`, …).
    pub status: Option<String>,
    /// For a verified result that is a failure (status not `ok`): why, in one line
    /// (`uncaught JavaScript exception: Error: bad input`).
    #[serde(default)]
    pub error: Option<String>,
    /// For a verified failure: the whole message the majority revealed (an exception's message and stack).
    #[serde(default)]
    pub message: Option<String>,
    /// The job's stderr as the majority revealed it (lossy UTF-8, at most the job's `stderr_bytes` and
    /// 16 KiB), if it wrote any.
    #[serde(default)]
    pub stderr: Option<String>,
    /// The CID of the job's whole stderr (up to its `stderr_bytes` and 1 MiB) as the majority revealed it; for a
    /// failed job the requester fetched and pinned it, so `cat` shows it.
    #[serde(default)]
    pub stderr_cid: Option<String>,
    /// Workers in the accepted majority.
    pub agreeing: Vec<String>,
    /// Workers that revealed something else.
    pub disagreeing: Vec<String>,
    /// When it was announced (unix ms).
    pub announced_ms: u64,
    /// Its deadline (unix ms).
    pub deadline_ms: u64,
    /// The input CID.
    pub input: String,
    /// The code CID.
    pub code: String,
    /// What the code is, its plugin and limits: what `job replay` needs to run it again.
    #[serde(default)]
    pub replay: Option<crate::replay::ReplaySpec>,
    /// The job's receipt block (once finished): `jobmesh job verify` checks it anywhere.
    #[serde(default)]
    pub receipt: Option<String>,
}

impl JobStatus {
    /// The view of a requester record.
    pub fn of(job: &RequesterJob) -> JobStatus {
        let (assigned, committed, revealed) = job.progress();
        let accepted = job.phase == Phase::Verified;
        let verdict = job.verdict.as_ref().filter(|_| accepted);
        JobStatus {
            id: job.id.to_hex(),
            phase: job.phase.name().to_string(),
            finished: job.phase.is_terminal(),
            reason: job.reason.clone(),
            replicas: job.spec.replicas,
            offers: job.offers.len(),
            assigned,
            committed,
            revealed,
            output: verdict.map(|v| v.output.to_string()),
            fuel_used: verdict.map(|v| v.fuel_used),
            status: verdict.map(|v| v.status.clone()),
            error: verdict.and_then(failure_line),
            message: verdict
                .map(|v| v.detail.message.clone())
                .filter(|m| !m.is_empty()),
            stderr: verdict
                .filter(|v| !v.detail.stderr.is_empty())
                .map(|v| String::from_utf8_lossy(&v.detail.stderr).into_owned()),
            stderr_cid: verdict.and_then(|v| v.detail.stderr_cid.map(|c| c.to_string())),
            agreeing: verdict
                .map(|v| v.agreeing.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            disagreeing: verdict
                .map(|v| v.disagreeing.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            announced_ms: job.announced_ms,
            deadline_ms: job.deadline_ms,
            input: job.spec.input.to_string(),
            code: job.spec.code.to_string(),
            replay: Some(crate::replay::ReplaySpec::of(&job.spec)),
            receipt: job.receipt.map(|c| c.to_string()),
        }
    }
}

/// The one-line reason of a verdict that is a failure (`None` for `ok`): the first line of its message, or
/// its status name if it revealed none.
fn failure_line(verdict: &crate::tally::Verdict) -> Option<String> {
    if verdict.status == jobmesh_exec::Status::Ok.name() {
        return None;
    }
    let first = verdict.detail.message.lines().next().unwrap_or("").trim();
    Some(if first.is_empty() {
        format!("the job failed: {}", verdict.status)
    } else {
        first.to_string()
    })
}

/// Something that happened to a requester job.
#[derive(Debug)]
enum JobEvent {
    Offer { worker: PeerId, price: u64 },
    Answer { worker: PeerId, answer: Answer },
    Reveal { worker: PeerId, reveal: Reveal },
    Checked { ok: bool, why: String },
}

enum ActorMsg {
    Submit {
        job: Box<RequesterJob>,
        reply: oneshot::Sender<Result<(), MarketError>>,
    },
    Event(JobId, Box<JobEvent>),
    /// A commitment: `recorded` is told once it is on disk (so the worker is acknowledged only then).
    Commitment {
        id: JobId,
        worker: PeerId,
        commitment: [u8; 32],
        recorded: oneshot::Sender<()>,
    },
    Cancel {
        id: JobId,
        reason: String,
        reply: oneshot::Sender<Result<JobStatus, MarketError>>,
    },
}

fn event(id: JobId, event: JobEvent) -> ActorMsg {
    ActorMsg::Event(id, Box::new(event))
}

/// A node's market: submit and follow jobs, and (with a worker policy) run others' jobs. Cheap to clone.
#[derive(Clone)]
pub struct Market {
    inner: Arc<Shared>,
    worker: Option<Worker>,
}

/// What every task of the requester's side shares: the [`Core`] the worker shares too (reached through
/// `Deref`), and the actor's channels.
pub(crate) struct Shared {
    core: Arc<Core>,
    pub(crate) cfg: MarketConfig,
    actor: mpsc::UnboundedSender<ActorMsg>,
    updates: broadcast::Sender<JobStatus>,
    /// The status of every live job as the actor last left it (its record on disk may lag behind by the
    /// steps that are not written at once); finished jobs are read from disk.
    live: std::sync::Mutex<HashMap<JobId, JobStatus>>,
    /// Where lottery notices go once a settlement service takes them ([`Market::take_lottery_notices`]).
    lottery_inbox: std::sync::Mutex<Option<mpsc::Sender<IncomingLottery>>>,
    /// Executions and spot-checks of this requester's finished jobs.
    counters: crate::verification::VerificationCounters,
    /// Stakes read from the chain lately.
    stakes: crate::stake::StakeCache,
}

impl std::ops::Deref for Shared {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

/// A lottery notice from a payer, to be answered (signed) through [`IncomingLottery::answer`].
pub struct IncomingLottery {
    /// Who sent it.
    pub payer: PeerId,
    /// What it says.
    pub notice: LotteryNotice,
    request: InboundRequest,
    key: Keypair,
}

impl IncomingLottery {
    /// Sends the signed answer.
    pub fn answer(self, response: &Response) {
        self.request.respond(seal(&self.key, response));
    }
}

impl Shared {
    /// A worker's credibility at this requester under the credibility policy (0 otherwise: unused).
    fn credibility(&self, worker: &PeerId) -> f64 {
        let Some(params) = self.cfg.verification.credibility() else {
            return 0.0;
        };
        match self.db.evidence(worker) {
            Ok(evidence) => params.assumptions().worker_credibility(&evidence),
            Err(e) => {
                warn!(%worker, error = %e, "cannot read a worker's evidence");
                0.0
            }
        }
    }

    /// A live job's latest status (see [`Shared::live`]).
    fn live_status(&self, id: &JobId) -> Option<JobStatus> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Notes a job's new status for readers and watchers.
    fn publish_status(&self, status: JobStatus, id: JobId) {
        {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            if status.finished {
                live.remove(&id);
            } else {
                live.insert(id, status.clone());
            }
        }
        let _ = self.updates.send(status);
    }

    /// The population an announcement samples: the workers this requester has worked with whose reputation
    /// still lets them in, or the connected peers on the jobs topic if there are more of those (a new
    /// requester knows no worker yet, but a mesh of hundreds still should not all offer on every job).
    async fn known_workers(&self) -> usize {
        let in_good_standing = self
            .db
            .reputations()
            .map(|all| {
                all.iter()
                    .filter(|(_, rep)| *rep >= crate::tally::MIN_REPUTATION)
                    .count()
            })
            .unwrap_or(0);
        let on_topic = self.node.topic_peers(JOBS_TOPIC).await.unwrap_or(0);
        in_good_standing.max(on_topic)
    }

    /// This node's listen addresses as strings (for announcements).
    async fn listen_addrs(&self) -> Vec<String> {
        self.node
            .listen_addrs()
            .await
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    }
}

impl Market {
    /// Starts the market on a running node: joins the jobs topic, takes the node's direct requests, resumes
    /// the jobs recorded in `db` (requester and worker side), and spawns the tasks that drive them.
    pub async fn start(
        node: Mesh,
        db: MarketDb,
        exec: Arc<Executor>,
        cfg: MarketConfig,
    ) -> Result<Market, MarketError> {
        let (actor_tx, actor_rx) = mpsc::unbounded_channel();
        let (updates, _) = broadcast::channel(1024);
        let core = Arc::new(Core {
            node: node.clone(),
            // Messages are signed with the node's own identity.
            key: node.config().keypair.clone(),
            db,
            exec,
            eth_address: cfg.eth_address,
            exec_metrics: Default::default(),
            commit_path: Default::default(),
            stop: tokio::sync::watch::channel(false).0,
        });
        let shared = Arc::new(Shared {
            core: core.clone(),
            cfg,
            actor: actor_tx,
            updates,
            lottery_inbox: std::sync::Mutex::new(None),
            live: std::sync::Mutex::default(),
            counters: Default::default(),
            stakes: Default::default(),
        });
        let worker = shared
            .cfg
            .worker
            .clone()
            .map(|policy| Worker::new(core, policy));
        // Announcements are checked before they are forwarded: well-formed, signed by their requester.
        let validator: jobmesh_p2p::Validator =
            Arc::new(|data: &[u8]| match open::<Gossip>(data, MAX_GOSSIP_BYTES) {
                Ok((signer, Gossip::Announcement(a))) => {
                    a.requester == signer && a.spec.validate().is_ok()
                }
                Ok((_, Gossip::Cancellation(_))) => true,
                Err(_) => false,
            });
        let gossip = node
            .subscribe(JOBS_TOPIC, Some(validator))
            .await
            .map_err(|_| MarketError::Stopped)?;
        if let Some(w) = &worker {
            // Compiling the bundled plugin takes seconds the first time: do it now, not in the first job.
            let exec = shared.exec.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = exec.warm_up(&jobmesh_exec::Plugin::bundled().cid()) {
                    warn!(error = %e, "cannot prepare the bundled Javy plugin");
                }
            });
            w.clone().spawn_gossip(gossip);
            w.resume()?;
        }
        let inbound = node
            .take_inbound_requests()
            .ok_or_else(|| MarketError::Invalid("the node's direct requests are taken".into()))?;
        let live: Vec<RequesterJob> = shared
            .db
            .requester_jobs()?
            .into_iter()
            .filter(|j| !j.phase.is_terminal())
            .collect();
        tokio::spawn(inbound_loop(shared.clone(), worker.clone(), inbound));
        tokio::spawn(Actor::new(shared.clone(), live).run(actor_rx));
        Ok(Market {
            inner: shared,
            worker,
        })
    }

    /// Stops the market as a crash would, minus the data loss: every loop ends, running jobs are aborted,
    /// lottery notices are refused, and its database is released once the last task lets go of it (what is on
    /// disk is what a restart resumes from). Stop the node's swarm too for a full stop.
    pub fn stop(&self) {
        self.inner.stop.send_replace(true);
        *self
            .inner
            .lottery_inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(w) = &self.worker {
            w.abort_all();
        }
    }

    /// Resolves once [`Market::stop`] is called.
    pub async fn stopped(&self) {
        self.inner.stopped().await
    }

    /// What the market's tasks share (`crate::receipt_verify` runs on it).
    pub(crate) fn core(&self) -> &Core {
        &self.inner
    }

    /// The node this market runs on.
    pub fn node(&self) -> &Mesh {
        &self.inner.node
    }

    /// Announces a new job; returns its id at once. Follow it with [`Market::watch`] or [`Market::status`].
    pub async fn submit(&self, req: JobRequest) -> Result<JobId, MarketError> {
        JobRequest::check(req.replicas, req.limits.max_fuel, req.timeout)?;
        let spec = JobSpec {
            kind: req.kind,
            plugin: req.plugin,
            code: req.code,
            input: req.input,
            limits: req.limits,
            engine: jobmesh_exec::ENGINE_ID.to_string(),
            replicas: req.replicas,
            price_wei_per_mfuel: req.price_wei_per_mfuel,
            verifier: req.verifier,
            nonce: rand::random(),
            error_rate_ppb: req
                .error_rate
                .map(crate::verification::error_rate_to_ppb)
                .transpose()
                .map_err(|e| MarketError::Invalid(e.to_string()))?,
        };
        spec.validate()
            .map_err(|e| MarketError::Invalid(e.to_string()))?;
        let invited = self
            .inner
            .db
            .best_recorded(INVITED_PER_REPLICA * usize::from(spec.replicas))?;
        let now = now_ms();
        let mut job =
            RequesterJob::new(spec, now, now + req.timeout.as_millis() as u64).inviting(invited);
        job.rule = crate::verification::JobRule::for_job(&self.inner.cfg.verification, &job.spec);
        let id = job.id;
        let (reply, rx) = oneshot::channel();
        self.inner
            .actor
            .send(ActorMsg::Submit {
                job: Box::new(job),
                reply,
            })
            .map_err(|_| MarketError::Stopped)?;
        rx.await.map_err(|_| MarketError::Stopped)??;
        Ok(id)
    }

    /// The status of a job this node requested.
    pub fn status(&self, id: &JobId) -> Result<JobStatus, MarketError> {
        if let Some(status) = self.inner.live_status(id) {
            return Ok(status);
        }
        self.inner
            .db
            .requester_job(id)?
            .map(|j| JobStatus::of(&j))
            .ok_or_else(|| MarketError::UnknownJob(id.to_hex()))
    }

    /// Every job this node requested, oldest first.
    pub fn list(&self) -> Result<Vec<JobStatus>, MarketError> {
        Ok(self
            .inner
            .db
            .requester_jobs()?
            .iter()
            .map(|job| {
                self.inner
                    .live_status(&job.id)
                    .unwrap_or_else(|| JobStatus::of(job))
            })
            .collect())
    }

    /// Cancels a job that is not over yet (a finished job is returned as it is).
    pub async fn cancel(&self, id: &JobId, reason: &str) -> Result<JobStatus, MarketError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .actor
            .send(ActorMsg::Cancel {
                id: *id,
                reason: reason.to_string(),
                reply,
            })
            .map_err(|_| MarketError::Stopped)?;
        rx.await.map_err(|_| MarketError::Stopped)?
    }

    /// Every change of every job this node requested, as it happens.
    pub fn watch(&self) -> broadcast::Receiver<JobStatus> {
        self.inner.updates.subscribe()
    }

    /// Waits until a job is over (or `timeout` passes) and returns its status.
    pub async fn wait(&self, id: &JobId, timeout: Duration) -> Result<JobStatus, MarketError> {
        let mut rx = self.watch();
        let hex = id.to_hex();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self.status(id)?;
            if status.finished {
                return Ok(status);
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) => return Ok(status),
                Ok(Ok(s)) if s.id == hex && s.finished => return Ok(s),
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) => return Err(MarketError::Stopped),
            }
        }
    }

    /// Jobs this node is fetching or running as a worker right now (0 without a worker policy). A cancelled
    /// job counts until its wasm run has really stopped.
    pub fn running_jobs(&self) -> usize {
        self.worker.as_ref().map_or(0, Worker::running_count)
    }

    /// The job runs this node did as a worker.
    pub fn exec_metrics(&self) -> &crate::exec_metrics::ExecMetrics {
        &self.inner.exec_metrics
    }

    /// Executions and spot-checks of the jobs this node requested, for reports.
    pub fn verification_counters(&self) -> crate::verification::CounterSnapshot {
        self.inner.counters.snapshot()
    }

    /// Where the commit step of jobs spent its time on this node (as requester and as worker).
    pub fn commit_path(&self) -> crate::commit_path::CommitPathSamples {
        self.inner.commit_path.snapshot()
    }

    /// The market database (reputation and ledger).
    pub fn db(&self) -> &MarketDb {
        &self.inner.db
    }

    /// Signs `request`, sends it to `peer` (dialled at `addrs` if not connected) and opens the signed answer.
    pub async fn ask(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: &Request,
    ) -> Result<Response, AskError> {
        self.inner.ask(peer, addrs, request).await
    }

    /// From now on, lottery notices from payers arrive here (before this, or once the receiver is dropped,
    /// they are refused: "this node does not settle").
    pub fn take_lottery_notices(&self) -> mpsc::Receiver<IncomingLottery> {
        let (tx, rx) = mpsc::channel(256);
        *self
            .inner
            .lottery_inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(tx);
        rx
    }
}

/// Dispatches the direct requests other peers send: requester-side messages to the actor, worker-side ones
/// to the worker. Every request gets a signed response; malformed or mis-signed ones are refused.
async fn inbound_loop(
    shared: Arc<Shared>,
    worker: Option<Worker>,
    mut inbound: mpsc::Receiver<InboundRequest>,
) {
    loop {
        let req = tokio::select! {
            _ = shared.stopped() => return,
            req = inbound.recv() => match req {
                Some(req) => req,
                None => return,
            },
        };
        let peer = req.peer;
        let request = match open_from::<Request>(&req.data, MAX_DIRECT_BYTES, &peer) {
            Ok(r) => r,
            Err(e) => {
                debug!(%peer, error = %e, "refused a direct request");
                let reason = match e {
                    MessageError::Version(v) => format!("unsupported protocol version {v}"),
                    e => e.to_string(),
                };
                req.respond(seal(&shared.key, &Response::Reject { reason }));
                continue;
            }
        };
        let response = match request {
            Request::Offer(offer) => {
                if let Some(address) = offer.eth_address {
                    if let Err(e) = shared.db.set_address(&peer, address) {
                        warn!(%peer, error = %e, "cannot record a worker's settlement address");
                    }
                }
                tokio::spawn(forward_offer(shared.clone(), peer, offer));
                Response::Ack
            }
            Request::Commitment(Commitment { job_id, commitment }) => {
                crate::receipt_store::record_commitment(&shared.db, &job_id, &peer, &req.data);
                // Acknowledged once recorded: a worker stops re-sending its commitment at the Ack.
                let (recorded, on_disk) = oneshot::channel();
                let _ = shared.actor.send(ActorMsg::Commitment {
                    id: job_id,
                    worker: peer,
                    commitment,
                    recorded,
                });
                let key = shared.key.clone();
                tokio::spawn(async move {
                    let response = match tokio::time::timeout(Duration::from_secs(5), on_disk).await
                    {
                        Ok(Ok(())) => Response::Ack,
                        _ => Response::Reject {
                            reason: "the commitment was not recorded".into(),
                        },
                    };
                    req.respond(seal(&key, &response));
                });
                continue;
            }
            Request::Assignment(_) | Request::RevealRequest { .. } | Request::Receipt(_) => {
                match &worker {
                    Some(w) => {
                        // The worker flushes its records to disk before answering: that waits on the disk, so
                        // it runs on the blocking pool, not on (and stalling) the runtime's few async threads.
                        let (w, key) = (w.clone(), shared.key.clone());
                        tokio::spawn(async move {
                            let response =
                                tokio::task::spawn_blocking(move || w.on_request(peer, request))
                                    .await
                                    .unwrap_or_else(|e| Response::Reject {
                                        reason: format!("the worker failed: {e}"),
                                    });
                            req.respond(seal(&key, &response));
                        });
                        continue;
                    }
                    None if matches!(request, Request::Receipt(_)) => Response::Ack,
                    None => Response::Reject {
                        reason: "this node does not run jobs".into(),
                    },
                }
            }
            Request::Lottery(notice) => {
                let inbox = shared
                    .lottery_inbox
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let incoming = IncomingLottery {
                    payer: peer,
                    notice,
                    request: req,
                    key: shared.key.clone(),
                };
                match inbox {
                    Some(tx) => match tx.try_send(incoming) {
                        Ok(()) => {}
                        Err(e) => e.into_inner().answer(&Response::Reject {
                            reason: "busy: too many lottery notices".into(),
                        }),
                    },
                    None => incoming.answer(&Response::Reject {
                        reason: "this node does not settle".into(),
                    }),
                }
                continue;
            }
        };
        req.respond(seal(&shared.key, &response));
    }
}

/// Hands an offer to the requester's actor, after crediting the worker's stake when a stake contract is
/// configured (the on-chain stake, never more than the offer claims; recorded as evidence when it changed).
async fn forward_offer(shared: Arc<Shared>, peer: PeerId, offer: Offer) {
    if let (Some(oracle), Some(address)) = (&shared.cfg.stake_oracle, offer.eth_address) {
        let wei = shared
            .stakes
            .credit(oracle.as_ref(), peer, address, offer.stake_wei)
            .await;
        let known = shared.db.evidence(&peer).map(|e| e.stake_wei).unwrap_or(0);
        if wei != known {
            let change = crate::credibility::EvidenceChange::Stake { wei };
            if let Err(e) = shared.db.record_evidence(&peer, change) {
                warn!(%peer, error = %e, "cannot record a worker's stake");
            }
        }
    }
    let _ = shared.actor.send(event(
        offer.job_id,
        JobEvent::Offer {
            worker: peer,
            price: offer.price_wei_per_mfuel,
        },
    ));
}

/// The requester's actor: owns the live jobs, applies events and timers, persists, then acts.
struct Actor {
    shared: Arc<Shared>,
    jobs: HashMap<JobId, RequesterJob>,
    /// Verified results to make spot-checks of (credibility policy).
    answers: crate::requester_rule::KnownAnswers,
}

impl Actor {
    fn new(shared: Arc<Shared>, live: Vec<RequesterJob>) -> Actor {
        let jobs = live.into_iter().map(|j| (j.id, j)).collect();
        Actor {
            shared,
            jobs,
            answers: Default::default(),
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<ActorMsg>) {
        self.resume();
        loop {
            let wake = self
                .jobs
                .values()
                .filter_map(RequesterJob::next_wakeup_ms)
                .min();
            let sleep = async {
                match wake {
                    Some(t) => {
                        let wait = t.saturating_sub(now_ms());
                        tokio::time::sleep(Duration::from_millis(wait)).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.shared.stopped() => return,
                msg = rx.recv() => match msg {
                    Some(msg) => self.on_msg(msg).await,
                    None => return,
                },
                _ = sleep => {
                    // Messages already queued come first: an answer that arrived in time must not lose to its
                    // own timeout because the actor was busy when it came in.
                    while let Ok(msg) = rx.try_recv() {
                        self.on_msg(msg).await;
                    }
                    let now = now_ms();
                    let due: Vec<JobId> = self
                        .jobs
                        .values()
                        .filter(|j| j.next_wakeup_ms().is_some_and(|t| t <= now))
                        .map(|j| j.id)
                        .collect();
                    for id in due {
                        self.step(id, false, |job| job.on_tick(now));
                    }
                }
            }
        }
    }

    /// After a restart: re-publish announcements, re-send unanswered assignments, re-ask for reveals,
    /// re-check results.
    fn resume(&mut self) {
        let now = now_ms();
        let ids: Vec<JobId> = self.jobs.keys().copied().collect();
        for id in ids {
            self.step(id, false, |job| job.on_restart(now));
        }
        for job in self.jobs.values() {
            info!(job = %job.id, phase = job.phase.name(), "resuming job");
            match job.phase {
                Phase::Announced => {
                    let (shared, job) = (self.shared.clone(), job.clone());
                    tokio::spawn(async move {
                        // give the swarm a moment to reconnect to the mesh
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        if let Err(e) = publish_announcement(&shared, &job).await {
                            debug!(job = %job.id, error = %e, "re-announcing failed");
                        }
                    });
                }
                Phase::Revealing => {
                    for slot in job.slots.values() {
                        if matches!(slot.state, crate::requester::SlotState::Committed { .. }) {
                            self.carry_out(
                                job,
                                Action::RequestReveal {
                                    worker: slot.worker,
                                },
                            );
                        }
                    }
                }
                Phase::Verifying => self.carry_out(job, Action::CheckResult),
                _ => {}
            }
        }
    }

    async fn on_msg(&mut self, msg: ActorMsg) {
        match msg {
            ActorMsg::Submit { mut job, reply } => {
                let id = job.id;
                if let Err(e) = self.shared.db.commit_step(&job, &[], true) {
                    let _ = reply.send(Err(e.into()));
                    return;
                }
                match publish_announcement(&self.shared, &job).await {
                    Ok(()) => {
                        info!(job = %id, replicas = job.spec.replicas, "job announced");
                        self.shared.publish_status(JobStatus::of(&job), id);
                        self.jobs.insert(id, *job);
                        let _ = reply.send(Ok(()));
                    }
                    Err(e) => {
                        let actions = job.fail(&format!("no worker reachable: {e}"));
                        let res = self.shared.db.commit_step(&job, &actions, true);
                        self.shared.publish_status(JobStatus::of(&job), id);
                        let _ = reply.send(res.map_err(Into::into).and(Err(MarketError::Invalid(
                            format!("cannot announce the job: no worker reachable ({e})"),
                        ))));
                    }
                }
            }
            ActorMsg::Event(id, event) => {
                let event = *event;
                if !self.jobs.contains_key(&id) {
                    debug!(job = %id, ?event, "event for a job that is not live");
                    return;
                }
                let (reputation, credibility) = match &event {
                    JobEvent::Offer { worker, .. } => (
                        self.shared.db.reputation(worker).unwrap_or(0),
                        self.shared.credibility(worker),
                    ),
                    _ => (0, 0.0),
                };
                let now = now_ms();
                self.step(id, false, move |job| match event {
                    JobEvent::Offer { worker, price } => {
                        job.on_credible_offer(now, worker, price, reputation, credibility)
                    }
                    JobEvent::Answer { worker, answer } => job.on_answer(now, worker, answer),
                    JobEvent::Reveal { worker, reveal } => job.on_reveal(now, worker, reveal),
                    JobEvent::Checked { ok, why } => job.on_verified(ok, &why),
                });
            }
            ActorMsg::Commitment {
                id,
                worker,
                commitment,
                recorded,
            } => {
                let now = now_ms();
                // The worker is acknowledged only once its commitment is on disk.
                if self.step(id, true, |job| job.on_commitment(now, worker, commitment)) {
                    let _ = recorded.send(());
                }
            }
            ActorMsg::Cancel { id, reason, reply } => {
                if self.jobs.contains_key(&id) {
                    self.step(id, false, |job| job.cancel(&reason));
                }
                let status = match self.shared.db.requester_job(&id) {
                    Ok(Some(job)) => Ok(JobStatus::of(&job)),
                    Ok(None) => Err(MarketError::UnknownJob(id.to_hex())),
                    Err(e) => Err(e.into()),
                };
                let _ = reply.send(status);
            }
        }
    }

    /// Applies one state-machine step: persist (record + reputation + ledger, atomically), publish the new
    /// status, then carry out the messages.
    /// Returns false only when a step that had to be written could not be (a job that is over, or not this
    /// node's, has nothing to record).
    ///
    /// A step that sends something, changes the phase, or is `durable` (a commitment about to be acknowledged)
    /// is flushed to disk before anything leaves; the others (an offer noted, an answer or a reveal received)
    /// stay in memory until the next such step writes the whole record. A crash loses only what the restart
    /// asks for again: offers (announced jobs are re-announced), answers (assignments are re-sent, workers
    /// acknowledge a repeat) and reveals (committed workers are asked again).
    fn step(
        &mut self,
        id: JobId,
        durable: bool,
        f: impl FnOnce(&mut RequesterJob) -> Vec<Action>,
    ) -> bool {
        let Some(job) = self.jobs.get_mut(&id) else {
            return true;
        };
        let before = JobStatus::of(job);
        let actions = f(job);
        if job.phase.is_terminal() && job.receipt.is_none() {
            job.receipt = crate::receipt_store::issue(&self.shared, job)
                .map_err(|e| warn!(job = %id, error = %e, "cannot issue the job's receipt"))
                .ok();
        }
        let after = JobStatus::of(job);
        if actions.is_empty() && after == before {
            return true;
        }
        let durable = durable || !actions.is_empty() || after.phase != before.phase;
        if !durable {
            // Nothing leaves and the phase stays: the record is written with the next step that matters.
            self.shared.publish_status(after, id);
            return true;
        }
        if let Err(e) = self.shared.db.commit_step(job, &actions, durable) {
            // Without the record on disk nothing may be sent: the job stays where it was on disk (and is
            // reloaded from there on restart); its timers retry.
            warn!(job = %id, error = %e, "cannot record a job step");
            return false;
        }
        let job = job.clone();
        if job.phase.is_terminal() {
            // Counted before anyone watching the status learns that the job is over.
            self.shared.counters.job_finished(&job);
        }
        self.shared.publish_status(after, id);
        let assigned: Vec<PeerId> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Assign { worker, .. } => Some(*worker),
                _ => None,
            })
            .collect();
        for action in actions {
            self.carry_out(&job, action);
        }
        self.spot_check(&job, &assigned);
        if job.phase.is_terminal() {
            self.learn(&job);
            info!(job = %id, phase = job.phase.name(), reason = %job.reason, "job finished");
            self.jobs.remove(&id);
        }
        true
    }

    /// Under the credibility policy, sends a spot-check (with probability q) to each worker just assigned.
    fn spot_check(&self, job: &RequesterJob, assigned: &[PeerId]) {
        let Some(params) = self.shared.cfg.verification.credibility() else {
            return;
        };
        if assigned.is_empty() {
            return;
        }
        let invited = self
            .shared
            .db
            .best_recorded(INVITED_PER_REPLICA * usize::from(job.spec.replicas))
            .unwrap_or_default();
        let q = params.spot_check_rate;
        for check in job.draw_spot_checks(q, assigned, &self.answers, now_ms(), &invited) {
            let (reply, _) = oneshot::channel();
            let job = Box::new(check);
            let _ = self.shared.actor.send(ActorMsg::Submit { job, reply });
        }
    }

    /// A job is over: keep its result for spot-checks; after a failed spot-check, forget what the worker
    /// vouched for and count it for nothing in the live jobs.
    fn learn(&mut self, job: &RequesterJob) {
        self.answers.record(job);
        if let Some(worker) = job.failed_spot_check() {
            warn!(job = %job.id, %worker, "spot-check failed: worker blacklisted");
            self.answers.purge(&worker);
            for live in self.jobs.values_mut() {
                live.blacklist(&worker);
            }
        }
    }

    /// Sends the message an action asks for, in its own task; answers come back as events.
    fn carry_out(&self, job: &RequesterJob, action: Action) {
        let shared = self.shared.clone();
        let id = job.id;
        match action {
            Action::Assign {
                worker,
                replica,
                commit_by_ms,
            } => {
                let request = Request::Assignment(Box::new(Assignment {
                    job_id: id,
                    replica,
                    commit_by_ms,
                    spec: job.spec.clone(),
                }));
                // An unreachable worker is tried again until its answer is due.
                let answer_by = job
                    .slots
                    .get(&replica)
                    .and_then(|s| match s.state {
                        SlotState::Assigned { at_ms } => Some(at_ms + ANSWER_TIMEOUT_MS),
                        _ => None,
                    })
                    .unwrap_or(0);
                tokio::spawn(async move {
                    let asked = std::time::Instant::now();
                    let answer = loop {
                        match shared.ask(worker, Vec::new(), &request).await {
                            Ok(Response::Ack) => break Answer::Accepted,
                            Ok(Response::Reject { reason }) => break Answer::Declined(reason),
                            Ok(other) => {
                                break Answer::Declined(format!("unexpected answer {other:?}"))
                            }
                            Err(e) if now_ms() + 300 >= answer_by || shared.is_stopped() => {
                                break Answer::Unreachable(e.to_string())
                            }
                            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
                        }
                    };
                    debug!(job = %id, %worker, ?answer, ms = asked.elapsed().as_millis() as u64,
                        "assignment answered");
                    shared.commit_path.record(Step::Answer, asked.elapsed());
                    if matches!(answer, Answer::Unreachable(_)) {
                        shared.commit_path.missed(Miss::Unanswered);
                    }
                    let _ = shared
                        .actor
                        .send(event(id, JobEvent::Answer { worker, answer }));
                });
            }
            Action::RequestReveal { worker } => {
                // Asked again until the reveal timeout (a worker restarting after its commitment reveals from
                // its database once it is back); after that its slot times out in the state machine.
                let until = now_ms() + crate::requester::REVEAL_TIMEOUT_MS;
                tokio::spawn(async move {
                    loop {
                        match shared
                            .ask_sealed(worker, Vec::new(), &Request::RevealRequest { job_id: id })
                            .await
                        {
                            Ok((Response::Reveal(reveal), sealed)) => {
                                crate::receipt_store::record_reveal(
                                    &shared.db, &id, &worker, &sealed,
                                );
                                let _ = shared
                                    .actor
                                    .send(event(id, JobEvent::Reveal { worker, reveal }));
                                return;
                            }
                            other => debug!(job = %id, %worker, ?other, "no reveal yet"),
                        }
                        if now_ms() + 300 >= until || shared.is_stopped() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                });
            }
            Action::SendReceipt { worker, receipt } => {
                tokio::spawn(async move {
                    if let Err(e) = shared
                        .ask(worker, Vec::new(), &Request::Receipt(receipt))
                        .await
                    {
                        debug!(job = %id, %worker, error = %e, "receipt not delivered");
                    }
                });
            }
            Action::CheckResult => {
                let job = job.clone();
                tokio::spawn(async move {
                    let (ok, why) = match check_result(&shared, &job).await {
                        Ok(()) => (true, String::new()),
                        Err(why) => (false, why.to_string()),
                    };
                    let _ = shared.actor.send(event(id, JobEvent::Checked { ok, why }));
                });
            }
            Action::Reannounce => {
                let job = job.clone();
                tokio::spawn(async move {
                    match publish_announcement(&shared, &job).await {
                        Ok(()) => debug!(job = %id, times = job.reannounced, "announced again"),
                        Err(e) => debug!(job = %id, error = %e, "announcing again failed"),
                    }
                });
            }
            Action::PublishCancellation { reason } => {
                tokio::spawn(async move {
                    let gossip = Gossip::Cancellation(Cancellation { job_id: id, reason });
                    if let Err(e) = shared
                        .node
                        .publish(JOBS_TOPIC, seal(&shared.key, &gossip))
                        .await
                    {
                        debug!(job = %id, error = %e, "cancellation not published");
                    }
                });
            }
            // Recorded in the database by `step`.
            Action::Reputation { .. }
            | Action::Evidence { .. }
            | Action::Owe { .. }
            | Action::Finished => {}
        }
    }
}

/// Why an announcement was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The signed announcement is larger than gossip carries.
    #[error("the announcement is {0} bytes, over the {MAX_GOSSIP_BYTES}-byte limit")]
    TooLarge(usize),
    /// The swarm refused it (no peers on the topic, or it stopped).
    #[error(transparent)]
    Swarm(#[from] jobmesh_p2p::Error),
}

/// Why the majority's output was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// No majority was recorded.
    #[error("no verdict to check")]
    NoVerdict,
    /// The output could not be fetched from the workers that agreed on it.
    #[error("cannot fetch the output {cid}: {source}")]
    Fetch {
        /// The output.
        cid: jobmesh_store::Cid,
        /// Why.
        source: Box<jobmesh_p2p::Error>,
    },
    /// The output could not be pinned.
    #[error("cannot pin the output: {0}")]
    Pin(#[source] Box<StoreError>),
    /// The verifier refused the output or could not run.
    #[error(transparent)]
    Verifier(#[from] Box<RunError>),
    /// The blocking task panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

impl From<RunError> for CheckError {
    fn from(e: RunError) -> Self {
        CheckError::Verifier(Box::new(e))
    }
}

/// Publishes a job's announcement on the jobs topic.
async fn publish_announcement(shared: &Shared, job: &RequesterJob) -> Result<(), PublishError> {
    let (listen_addrs, known_workers) = tokio::join!(shared.listen_addrs(), shared.known_workers());
    let announcement = Gossip::Announcement(Box::new(JobAnnouncement {
        spec: job.spec.clone(),
        requester: shared.node.peer_id(),
        eth_address: shared.cfg.eth_address,
        listen_addrs,
        deadline_ms: job.deadline_ms,
        offer_share_ppm: offer_share_ppm(
            job.spec.replicas,
            known_workers,
            job.invited.len(),
            job.reannounced,
        ),
        round: job.reannounced,
        invited: job.invited.clone(),
    }));
    let bytes = seal(&shared.key, &announcement);
    if bytes.len() > MAX_GOSSIP_BYTES {
        return Err(PublishError::TooLarge(bytes.len()));
    }
    Ok(shared.node.publish(JOBS_TOPIC, bytes).await?)
}

/// Fetches and pins the majority's output, then runs the verifier on it if the job has one.
async fn check_result(shared: &Shared, job: &RequesterJob) -> Result<(), CheckError> {
    let verdict = job.verdict.as_ref().ok_or(CheckError::NoVerdict)?;
    let left = job.deadline_ms.saturating_sub(now_ms()).max(1_000);
    shared
        .node
        .fetch_dag_from(
            verdict.output,
            &verdict.agreeing,
            Duration::from_millis(left),
        )
        .await
        .map_err(|source| CheckError::Fetch {
            cid: verdict.output,
            source: Box::new(source),
        })?;
    let store = shared.node.store().clone();
    let output = verdict.output;
    tokio::task::spawn_blocking(move || {
        store.pin(&output).map_err(|e| CheckError::Pin(Box::new(e)))
    })
    .await??;
    crate::stderr_log::fetch_for_failure(&shared.node, verdict, Duration::from_millis(left)).await;
    let Some(verifier) = job.spec.verifier else {
        return Ok(());
    };
    let (store, exec, spec) = (
        shared.node.store().clone(),
        shared.exec.clone(),
        job.spec.clone(),
    );
    Ok(
        tokio::task::spawn_blocking(move || run_verifier(&store, &exec, &spec, &verifier, &output))
            .await??,
    )
}
