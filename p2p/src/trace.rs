//! [`GossipTrace`]: how fast and how completely gossip spreads between the nodes of one process.
//!
//! Simulations hand one trace to every node they start ([`crate::Config::gossip_trace`]); each node notes the
//! messages it publishes and the ones delivered to it (after validation), keyed by gossipsub's message id (the
//! author's PeerId and sequence number, the same on every node). Real nodes run without one.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use libp2p::gossipsub::MessageId;
use libp2p::PeerId;
use serde::Serialize;

/// Publication and delivery times of gossip, shared by the nodes of one process.
#[derive(Debug, Default)]
pub struct GossipTrace {
    live_nodes: AtomicUsize,
    state: Mutex<TraceState>,
}

#[derive(Debug, Default)]
struct TraceState {
    /// When each traced message was published.
    published: HashMap<MessageId, Instant>,
    /// Deliveries expected: for each publication, the other nodes live at that moment.
    expected: u64,
    /// Publication → delivery of every first delivery to a node, in microseconds.
    latencies_us: Vec<u64>,
    /// Which node got which message.
    delivered: HashSet<(MessageId, PeerId)>,
    /// Deliveries of a message a node already had (once gossipsub's duplicate cache forgot it: very late gossip).
    redelivered: u64,
}

/// What a [`GossipTrace`] saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GossipReport {
    /// Messages published by traced nodes.
    pub published: u64,
    /// Deliveries to traced nodes of those messages (each node counted once per message).
    pub delivered: u64,
    /// Deliveries of a message to a node that already had it (gossip so late that the node forgot it).
    pub redelivered: u64,
    /// `delivered` over the other nodes live when each message was published: 1.0 is full delivery.
    pub delivery_ratio: f64,
    /// Publication → delivery latency percentiles (p50, p95, p99), in milliseconds.
    pub latency_ms: [f64; 3],
}

impl GossipTrace {
    /// An empty trace.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn node_started(&self) {
        self.live_nodes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn node_stopped(&self) {
        self.live_nodes.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn published(&self, id: MessageId) {
        let others = self.live_nodes.load(Ordering::Relaxed).saturating_sub(1) as u64;
        let mut st = self.state.lock().expect("trace lock");
        st.expected += others;
        st.published.insert(id, Instant::now());
    }

    pub(crate) fn delivered(&self, id: &MessageId, to: PeerId) {
        let now = Instant::now();
        let mut st = self.state.lock().expect("trace lock");
        let Some(at) = st.published.get(id).copied() else {
            return;
        };
        if st.delivered.insert((id.clone(), to)) {
            st.latencies_us
                .push(now.saturating_duration_since(at).as_micros() as u64);
        } else {
            st.redelivered += 1;
        }
    }

    /// What was seen so far.
    pub fn report(&self) -> GossipReport {
        let st = self.state.lock().expect("trace lock");
        let mut lat_ms: Vec<f64> = st.latencies_us.iter().map(|&us| us as f64 / 1e3).collect();
        lat_ms.sort_by(f64::total_cmp);
        GossipReport {
            published: st.published.len() as u64,
            delivered: lat_ms.len() as u64,
            redelivered: st.redelivered,
            delivery_ratio: if st.expected == 0 {
                0.0
            } else {
                lat_ms.len() as f64 / st.expected as f64
            },
            latency_ms: p50_p95_p99(&lat_ms),
        }
    }
}

/// The 50th, 95th and 99th percentiles of sorted values (nearest rank; zeros when there are none).
pub fn p50_p95_p99(sorted: &[f64]) -> [f64; 3] {
    [0.50, 0.95, 0.99].map(|p| {
        if sorted.is_empty() {
            0.0
        } else {
            sorted[((sorted.len() - 1) as f64 * p).round() as usize]
        }
    })
}

/// Counts a node as live in a trace from its start until its swarm task ends.
#[derive(Debug)]
pub(crate) struct LiveNode(pub(crate) Arc<GossipTrace>);

impl LiveNode {
    pub(crate) fn new(trace: Arc<GossipTrace>) -> Self {
        trace.node_started();
        Self(trace)
    }
}

impl Drop for LiveNode {
    fn drop(&mut self) {
        self.0.node_stopped();
    }
}

#[cfg(test)]
mod tests {
    use super::p50_p95_p99;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        assert_eq!(p50_p95_p99(&[]), [0.0; 3]);
        assert_eq!(p50_p95_p99(&[7.0]), [7.0; 3]);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(p50_p95_p99(&hundred), [51.0, 95.0, 99.0]);
    }
}
