//! [`GossipTrace`]: how fast and how completely gossip spreads between the nodes of one process.
//!
//! Simulations hand one trace to every node they start ([`crate::Config::gossip_trace`]); each node notes the
//! messages it publishes and the ones delivered to it (after validation), keyed by gossipsub's message id (the
//! author's PeerId and sequence number, the same on every node). Real nodes run without one.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use libp2p::gossipsub::MessageId;
use libp2p::PeerId;
use serde::Serialize;

/// Publication and delivery times of gossip, shared by the nodes of one process.
#[derive(Debug, Default)]
pub struct GossipTrace {
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
    /// Since when each live node runs (its latest start: a restart starts it again).
    live_since: HashMap<PeerId, Instant>,
    /// First deliveries to nodes that started after the message was published.
    caught_up: u64,
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
    /// Deliveries to nodes that started (or restarted) after the message was published — gossip catching a
    /// newcomer up. Counted apart: they are not in `delivered`, the ratio or the latencies.
    pub caught_up: u64,
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

    fn node_started(&self, peer: PeerId, at: Instant) {
        let mut st = self.state.lock().expect("trace lock");
        st.live_since.insert(peer, at);
    }

    fn node_stopped(&self, peer: PeerId, started: Instant) {
        let mut st = self.state.lock().expect("trace lock");
        // A restarted node that is up again before its old swarm task ended keeps its new start.
        if st.live_since.get(&peer) == Some(&started) {
            st.live_since.remove(&peer);
        }
    }

    pub(crate) fn published(&self, id: MessageId) {
        let mut st = self.state.lock().expect("trace lock");
        st.expected += st.live_since.len().saturating_sub(1) as u64;
        st.published.insert(id, Instant::now());
    }

    pub(crate) fn delivered(&self, id: &MessageId, to: PeerId) {
        let now = Instant::now();
        let mut st = self.state.lock().expect("trace lock");
        let Some(at) = st.published.get(id).copied() else {
            return;
        };
        if !st.delivered.insert((id.clone(), to)) {
            st.redelivered += 1;
        } else if st.live_since.get(&to).is_none_or(|since| *since > at) {
            st.caught_up += 1;
        } else {
            st.latencies_us
                .push(now.saturating_duration_since(at).as_micros() as u64);
        }
    }

    /// Share of the expected deliveries (each publication to every other node live then) that arrived within
    /// `limit` of their publication: what Ethereum's "98 % of blocks within 4 s" measures. 0 when none expected.
    pub fn share_within(&self, limit: std::time::Duration) -> f64 {
        let st = self.state.lock().expect("trace lock");
        let limit_us = limit.as_micros() as u64;
        let within = st.latencies_us.iter().filter(|&&us| us <= limit_us).count();
        if st.expected == 0 {
            0.0
        } else {
            within as f64 / st.expected as f64
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
            caught_up: st.caught_up,
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
pub(crate) struct LiveNode(pub(crate) Arc<GossipTrace>, PeerId, Instant);

impl LiveNode {
    pub(crate) fn new(trace: Arc<GossipTrace>, peer: PeerId) -> Self {
        let started = Instant::now();
        trace.node_started(peer, started);
        Self(trace, peer, started)
    }
}

impl Drop for LiveNode {
    fn drop(&mut self) {
        self.0.node_stopped(self.1, self.2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_to_nodes_started_after_the_publication_are_counted_apart() {
        let trace = Arc::new(GossipTrace::new());
        let (a, b, late) = (PeerId::random(), PeerId::random(), PeerId::random());
        let _a = LiveNode::new(trace.clone(), a);
        let restarted = LiveNode::new(trace.clone(), b);
        let id = MessageId::new(b"announcement");
        trace.published(id.clone());
        trace.delivered(&id, b);
        trace.delivered(&id, b);
        // `b` restarts and gossip brings it the message again; a newcomer gets it too.
        drop(restarted);
        let _b = LiveNode::new(trace.clone(), b);
        let _late = LiveNode::new(trace.clone(), late);
        trace.delivered(&id, late);
        let report = trace.report();
        assert_eq!(
            (report.delivered, report.redelivered, report.caught_up),
            (1, 1, 1),
            "{report:?}"
        );
        assert_eq!(report.delivery_ratio, 1.0, "one other node was up: b");
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        assert_eq!(p50_p95_p99(&[]), [0.0; 3]);
        assert_eq!(p50_p95_p99(&[7.0]), [7.0; 3]);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(p50_p95_p99(&hundred), [51.0, 95.0, 99.0]);
    }
}
