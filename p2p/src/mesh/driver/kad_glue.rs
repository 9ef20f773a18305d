//! Kademlia glue: provide and lookup results, and announcing again what this node provides once the
//! routing table gets its first peers.

use std::time::Duration;

use libp2p::kad;
use tracing::{debug, info};

use crate::Error;

use super::Driver;

/// How often the routing table is refreshed (a Kademlia bootstrap) while the node has peers.
pub(super) const DHT_REFRESH: Duration = Duration::from_secs(300);

impl Driver {
    /// Peers in the Kademlia routing table.
    pub(super) fn routing_table_len(&mut self) -> usize {
        self.swarm
            .behaviour_mut()
            .kad
            .kbuckets()
            .map(|k| k.num_entries())
            .sum()
    }

    /// The routing table changed: if it was empty, announce again what this node provides (a root added while
    /// the node was alone was announced to nobody, and the periodic re-provide may be hours away).
    pub(super) fn on_routing_updated(&mut self) {
        if !self.dht_empty || self.routing_table_len() == 0 {
            return;
        }
        self.dht_empty = false;
        use libp2p::kad::store::RecordStore as _;
        let kad = &mut self.swarm.behaviour_mut().kad;
        let keys: Vec<kad::RecordKey> = kad.store_mut().provided().map(|r| r.key.clone()).collect();
        if !keys.is_empty() {
            info!(
                records = keys.len(),
                "first DHT peers: announcing what this node provides"
            );
        }
        // A few at a time (a node that provides every block of its pins may hold millions of keys).
        self.reannounce.clear();
        self.reannounce.extend(keys);
        self.reannounce_more();
    }

    /// Starts announcements from `reannounce` while fewer than [`crate::PROVIDE_CONCURRENCY`] run.
    pub(super) fn reannounce_more(&mut self) {
        let kad = &mut self.swarm.behaviour_mut().kad;
        while self.reannouncing.len() < crate::PROVIDE_CONCURRENCY {
            let Some(key) = self.reannounce.pop_front() else {
                break;
            };
            match kad.start_providing(key) {
                Ok(q) => {
                    self.reannouncing.insert(q);
                }
                Err(e) => debug!(error = %e, "cannot re-provide"),
            }
        }
    }

    pub(super) fn on_kad(&mut self, id: kad::QueryId, result: kad::QueryResult, last: bool) {
        match result {
            kad::QueryResult::StartProviding(res) => {
                if self.reannouncing.remove(&id) {
                    debug!(
                        ok = res.is_ok(),
                        left = self.reannounce.len(),
                        "re-announced a record"
                    );
                    self.reannounce_more();
                }
                if let Some((cid, r)) = self.provides.remove(&id) {
                    match res {
                        Ok(_) => {
                            debug!(%cid, "provided on the DHT");
                            let _ = r.send(Ok(()));
                        }
                        Err(e) => {
                            debug!(%cid, error = %e, "providing reached no peer");
                            let _ = r.send(Err(Error::Dht(crate::DhtFailure::Announce(e))));
                        }
                    }
                }
            }
            kad::QueryResult::RepublishProvider(res) => {
                debug!(ok = res.is_ok(), "re-provided a record");
            }
            kad::QueryResult::GetProviders(res) => {
                let me = *self.swarm.local_peer_id();
                let mut new = Vec::new();
                if let Some((cid, found, _)) = self.finds.get_mut(&id) {
                    if let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = &res {
                        for p in providers {
                            if *p != me && found.insert(*p) {
                                debug!(%cid, provider = %p, "found provider");
                                new.push(*p);
                            }
                        }
                    }
                }
                for p in new {
                    if !self.peers.contains_key(&p) {
                        let _ = self.swarm.dial(p);
                    }
                }
                if last {
                    if let Some((_, found, Some(r))) = self.finds.remove(&id) {
                        let _ = r.send(found.into_iter().collect());
                    }
                }
            }
            kad::QueryResult::Bootstrap(res) if last => {
                debug!(ok = res.is_ok(), "DHT bootstrap finished");
            }
            _ => {}
        }
    }
}
