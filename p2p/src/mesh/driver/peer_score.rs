//! Misbehaviour penalties and bans of peers that send bad bitswap frames.

use std::time::{Duration, Instant};

use libp2p::PeerId;
use tracing::{debug, info, warn};

use super::Driver;
use crate::mesh::types::NetStats;

/// A peer's misbehaviour penalty: [`OFFENCE_PENALTY`] per offence, halving every [`PENALTY_HALF_LIFE`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Penalty {
    pub(super) value: f64,
    pub(super) at: Instant,
}

impl Penalty {
    /// The penalty decayed to `now`.
    pub(super) fn at(&self, now: Instant) -> f64 {
        let halvings = now.duration_since(self.at).as_secs_f64() / PENALTY_HALF_LIFE.as_secs_f64();
        self.value * 0.5f64.powf(halvings)
    }
}

/// Penalty of one malformed or oversized bitswap frame.
pub(super) const OFFENCE_PENALTY: f64 = 10.0;
/// Penalty at which a peer is banned: five offences within a few seconds, or more spread out (an honest peer
/// sends none).
pub(super) const BAN_PENALTY: f64 = 45.0;
/// How fast a penalty is forgiven.
pub(super) const PENALTY_HALF_LIFE: Duration = Duration::from_secs(60);

impl Driver {
    /// Counts a bad bitswap frame against `peer`; at [`BAN_PENALTY`] the peer is disconnected and refused for
    /// the ban time (through the block list [`Mesh::block_peer`] uses) and dropped from the routing table.
    pub(super) fn on_misbehaviour(&mut self, peer: PeerId, reason: &beetswap::Misbehaviour) {
        NetStats::add(&self.stats.bitswap_misbehaved, 1);
        let now = Instant::now();
        let penalty = self.penalties.get(&peer).map_or(0.0, |p| p.at(now)) + OFFENCE_PENALTY;
        self.penalties.insert(
            peer,
            Penalty {
                value: penalty,
                at: now,
            },
        );
        debug!(%peer, %reason, penalty, "bad bitswap frame");
        if penalty < BAN_PENALTY || self.bans.contains_key(&peer) {
            return;
        }
        warn!(%peer, %reason, ban = ?self.ban_time, "banning a peer that keeps sending bad bitswap frames");
        NetStats::add(&self.stats.peers_banned, 1);
        self.bans.insert(peer, now + self.ban_time);
        let b = self.swarm.behaviour_mut();
        b.blocked.block_peer(peer);
        b.kad.remove_peer(&peer);
    }

    /// Lifts the bans that are over (unless the peer was also blocked through [`Mesh::block_peer`]) and
    /// forgets penalties that decayed away.
    pub(super) fn expire_bans(&mut self, now: Instant) {
        let over: Vec<PeerId> = self
            .bans
            .iter()
            .filter(|(_, until)| now >= **until)
            .map(|(p, _)| *p)
            .collect();
        for peer in over {
            self.bans.remove(&peer);
            if !self.blocked_by_user.contains(&peer) {
                info!(%peer, "ban over");
                self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            }
        }
        self.penalties.retain(|_, p| p.at(now) >= 1.0);
    }
}
