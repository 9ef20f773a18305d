//! Link shaping for libp2p's memory transport: round-trip time, loss and bandwidth between simulated nodes.
//!
//! The memory transport delivers bytes the instant they are written, so a simulator built on it measures one
//! process, not a network. A node given [`Links`] (see [`crate::Config::links`]) wraps every connection it
//! *dials* in a delaying pipe; connections it accepts are left alone, since the memory transport's listener
//! sees only an ephemeral dial port and could not tell who called. The dialer's pipe therefore carries the whole
//! path in both directions: what it writes leaves after its uplink had time to send it and arrives half a round
//! trip later; what the other side wrote reaches it half a round trip (and the other side's uplink time) later.
//!
//! Loss on a reliable stream is not a missing byte but a late one: each 1,448-byte segment of a write is lost
//! with the path's loss probability and sent again, a segment followed by three more in the same write after one
//! round trip (fast retransmit on three duplicate ACKs), a tail segment after a retransmission timeout of
//! RTT + 200 ms (Linux's minimum RTO over a steady RTT), doubling on every further loss of the same segment.
//! Bytes stay in order: a write is never delivered before the one written before it (head-of-line blocking).
//! Bandwidth is a node's uplink, shared by all its connections; downlinks are not modelled.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::mpsc;
use futures::future::Either;
use futures::io::{AsyncReadExt as _, AsyncWriteExt as _};
use futures::{Sink, SinkExt as _, Stream, StreamExt as _};
use libp2p::core::transport::memory::Channel;
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use tracing::warn;

/// Where a simulated node's connections go: what the path to each other node looks like.
pub trait Links: Send + Sync + fmt::Debug {
    /// The path from this node to the node listening on memory port `port`; `None` leaves it unshaped.
    fn path_to(&self, port: u64) -> Option<Path>;
}

/// One dialed connection's path.
#[derive(Debug, Clone)]
pub struct Path {
    /// Round-trip time between the two nodes.
    pub rtt: Duration,
    /// Probability that a segment is lost (0 ≤ loss < 1).
    pub loss: f64,
    /// Seed of this connection's loss draws.
    pub seed: u64,
    /// The dialer's uplink (what it writes).
    pub up: Arc<Uplink>,
    /// The listener's uplink (what it writes back).
    pub down: Arc<Uplink>,
}

/// A node's uplink: its bandwidth, shared by every connection it has.
#[derive(Debug)]
pub struct Uplink {
    bits_per_s: Option<u64>,
    free_at: Mutex<Option<Instant>>,
}

impl Uplink {
    /// An uplink sending `bits_per_s` (`None`: without limit).
    pub fn new(bits_per_s: Option<u64>) -> Uplink {
        Uplink {
            bits_per_s: bits_per_s.filter(|b| *b > 0),
            free_at: Mutex::new(None),
        }
    }

    /// Queues `bytes` at `now`; returns when their last bit has left.
    fn send(&self, bytes: usize, now: Instant) -> Instant {
        let Some(bps) = self.bits_per_s else {
            return now;
        };
        let mut free = self.free_at.lock().unwrap_or_else(|e| e.into_inner());
        let start = free.map_or(now, |f| f.max(now));
        let done = start + Duration::from_secs_f64(bytes as f64 * 8.0 / bps as f64);
        *free = Some(done);
        done
    }
}

/// TCP's usual segment payload over Ethernet (1,500-byte MTU, IPv4 and TCP headers with timestamps).
const SEGMENT: usize = 1_448;
/// Linux's minimum retransmission timeout.
const MIN_RTO: Duration = Duration::from_millis(200);
/// Losses of one segment in a row counted at most (the next try always arrives).
const MAX_RETRIES: u32 = 6;
/// Bytes a pipe holds in flight per direction before it stops taking more (a TCP window's worth).
const WINDOW: usize = 4 << 20;
/// Chunks queued between the connection and its pipe.
const CHANNEL: usize = 32;

/// When each write of one direction is delivered.
struct Schedule {
    path: Path,
    uplink: Arc<Uplink>,
    rng: StdRng,
    last: Option<Instant>,
}

impl Schedule {
    fn new(path: &Path, dialer_side: bool) -> Schedule {
        let uplink = if dialer_side { &path.up } else { &path.down };
        Schedule {
            uplink: uplink.clone(),
            rng: StdRng::seed_from_u64(path.seed ^ u64::from(dialer_side)),
            path: path.clone(),
            last: None,
        }
    }

    /// When `bytes` written at `now` reach the other end.
    fn deliver_at(&mut self, bytes: usize, now: Instant) -> Instant {
        let sent = self.uplink.send(bytes, now);
        let at = sent + self.path.rtt / 2 + self.loss_delay(bytes);
        let at = self.last.map_or(at, |l| l.max(at));
        self.last = Some(at);
        at
    }

    /// The extra time lost segments of a `bytes`-long write take (the slowest segment's).
    fn loss_delay(&mut self, bytes: usize) -> Duration {
        if self.path.loss <= 0.0 {
            return Duration::ZERO;
        }
        let segments = bytes.div_ceil(SEGMENT).max(1);
        let rto = self.path.rtt + MIN_RTO;
        let mut worst = Duration::ZERO;
        for s in 0..segments {
            let fast = segments - s > 3;
            let mut extra = Duration::ZERO;
            let mut tries = 0;
            while tries < MAX_RETRIES && self.rng.gen_bool(self.path.loss.min(0.99)) {
                extra += if fast && tries == 0 {
                    self.path.rtt
                } else {
                    rto * 2u32.pow(tries)
                };
                tries += 1;
            }
            worst = worst.max(extra);
        }
        worst
    }
}

/// The connection as libp2p's upgrades see it: the memory channel itself, or the app's end of a delaying pipe.
pub(crate) type LinkIo = Either<Channel<Vec<u8>>, rw_stream_sink::RwStreamSink<PipeEnd>>;

/// Wraps a memory-transport connection this node dialed in a pipe shaped as `links` says (left as it is when
/// accepted, or when there is no link model or no path).
pub(crate) fn shape(
    io: Channel<Vec<u8>>,
    point: &ConnectedPoint,
    links: Option<&dyn Links>,
) -> LinkIo {
    let (Some(links), ConnectedPoint::Dialer { address, .. }) = (links, point) else {
        return Either::Left(io);
    };
    let Some(Protocol::Memory(port)) = address.iter().next() else {
        return Either::Left(io);
    };
    let Some(path) = links.path_to(port) else {
        return Either::Left(io);
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        warn!("no tokio runtime for the link model: the connection is not shaped");
        return Either::Left(io);
    };
    let (to_net, from_app) = mpsc::channel(CHANNEL);
    let (to_app, from_net) = mpsc::channel(CHANNEL);
    runtime.spawn(pipe(io, from_app, to_app, path));
    Either::Right(rw_stream_sink::RwStreamSink::new(PipeEnd {
        tx: to_net,
        rx: from_net,
    }))
}

/// Carries one connection both ways with the path's delays, until both directions are closed.
async fn pipe(
    io: Channel<Vec<u8>>,
    from_app: mpsc::Receiver<Vec<u8>>,
    to_app: mpsc::Sender<Vec<u8>>,
    path: Path,
) {
    let (read, write) = io.split();
    // One read buffer per connection; each chunk is copied out at its size (a queue of small messages must not
    // hold a whole buffer each).
    let from_net = futures::stream::unfold(
        (read, vec![0u8; 64 << 10]),
        |(mut read, mut buf)| async move {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => None,
                Ok(n) => Some((buf[..n].to_vec(), (read, buf))),
            }
        },
    );
    let out = carry(from_app, write.into_sink(), Schedule::new(&path, true));
    let back = carry(Box::pin(from_net), to_app, Schedule::new(&path, false));
    futures::future::join(out, back).await;
}

/// Moves chunks from `src` to `dst`, each at the time `schedule` gives it; closes `dst` once `src` ended and
/// everything was delivered. Stops taking chunks while [`WINDOW`] bytes are in flight.
async fn carry<S, K, E>(mut src: S, mut dst: K, mut schedule: Schedule)
where
    S: Stream<Item = Vec<u8>> + Unpin,
    K: Sink<Vec<u8>, Error = E> + Unpin,
{
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut in_flight = 0usize;
    let mut open = true;
    loop {
        let Some(head) = queue.front().map(|(t, _)| *t) else {
            if !open {
                let _ = dst.close().await;
                return;
            }
            match src.next().await {
                Some(chunk) => {
                    let at = schedule.deliver_at(chunk.len(), Instant::now());
                    in_flight += chunk.len();
                    queue.push_back((at, chunk));
                }
                None => open = false,
            }
            continue;
        };
        tokio::select! {
            chunk = src.next(), if open && in_flight < WINDOW => match chunk {
                Some(chunk) => {
                    let at = schedule.deliver_at(chunk.len(), Instant::now());
                    in_flight += chunk.len();
                    queue.push_back((at, chunk));
                }
                None => open = false,
            },
            _ = tokio::time::sleep_until(head) => {
                let (_, chunk) = queue.pop_front().expect("a head");
                in_flight -= chunk.len();
                if dst.send(chunk).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The application's end of a delaying pipe: chunks it writes go to the pipe, chunks the pipe delivers come out.
pub struct PipeEnd {
    tx: mpsc::Sender<Vec<u8>>,
    rx: mpsc::Receiver<Vec<u8>>,
}

impl Stream for PipeEnd {
    type Item = io::Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_next_unpin(cx).map(|c| c.map(Ok))
    }
}

fn closed(_: mpsc::SendError) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the link pipe is closed")
}

impl Sink<Vec<u8>> for PipeEnd {
    type Error = io::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tx.poll_ready(cx).map_err(closed)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Vec<u8>) -> io::Result<()> {
        self.tx.start_send(item).map_err(closed)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tx.poll_flush_unpin(cx).map_err(closed)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tx.poll_close_unpin(cx).map_err(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(rtt_ms: u64, loss: f64, bps: Option<u64>) -> Path {
        Path {
            rtt: Duration::from_millis(rtt_ms),
            loss,
            seed: 7,
            up: Arc::new(Uplink::new(bps)),
            down: Arc::new(Uplink::new(bps)),
        }
    }

    #[test]
    fn a_write_arrives_half_a_round_trip_later_and_never_before_the_previous_one() {
        let now = Instant::now();
        let mut s = Schedule::new(&path(100, 0.0, None), true);
        assert_eq!(s.deliver_at(10, now), now + Duration::from_millis(50));
        assert_eq!(s.deliver_at(10, now), now + Duration::from_millis(50));
    }

    #[test]
    fn an_uplink_is_shared_and_spaces_writes_by_their_size() {
        let now = Instant::now();
        // 8 Mbit/s: 1 MB takes a second.
        let p = path(0, 0.0, Some(8_000_000));
        let mut a = Schedule::new(&p, true);
        let mut b = Schedule::new(&p, true);
        assert_eq!(a.deliver_at(1_000_000, now), now + Duration::from_secs(1));
        assert_eq!(b.deliver_at(1_000_000, now), now + Duration::from_secs(2));
    }

    #[test]
    fn loss_delays_by_retransmissions_and_is_the_same_for_the_same_seed() {
        let now = Instant::now();
        let lossy = |seed| {
            let mut p = path(100, 0.1, None);
            p.seed = seed;
            let mut s = Schedule::new(&p, true);
            (0..200)
                .map(|i| {
                    s.deliver_at(100, now + Duration::from_secs(i)) - (now + Duration::from_secs(i))
                })
                .collect::<Vec<_>>()
        };
        let run = lossy(1);
        assert_eq!(run, lossy(1));
        let late = run
            .iter()
            .filter(|d| **d > Duration::from_millis(50))
            .count();
        assert!(
            (5..60).contains(&late),
            "{late} of 200 single-segment writes late at 10 % loss"
        );
        assert!(run.iter().all(|d| *d >= Duration::from_millis(50)));
        assert!(
            run.iter().any(|d| *d >= Duration::from_millis(50 + 300)),
            "a tail loss waits RTT + 200 ms"
        );
    }
}
