//! The jobmesh node as a library (`jobmesh-node`): the data directory and identity ([`home`]), a running
//! node's assembly ([`launch`]: swarm, market, settlement), its whole life from a `NodeConfig` ([`lifecycle`]:
//! API, signals, token and address files, pin re-announcement, shutdown), the control API, gateway and
//! dashboard with their typed client ([`api`]) Prometheus metrics ([`metrics`]) and the on-chain stake reader requesters credit offers with ([`stake`]). The market ([`market`], `jobmesh-market`) and
//! settlement ([`settlement`], `jobmesh-settlement`) are re-exported so that `jobmesh_node::market::…` paths
//! keep working.
//!
//! Owns: a node's lifecycle and its HTTP API (server and client). It wires the crates below it together
//! (store, exec, p2p, contracts, market, settlement) and owns no block format, VM, contract code, market rule
//! or lottery of its own. Must not touch: the command line (`jobmesh`, `node/cli`): nothing here parses
//! arguments or prints to stdout.

pub mod api;
pub mod home;
pub mod launch;
pub mod lifecycle;
pub mod metrics;
pub mod stake;

pub use jobmesh_market as market;
pub use jobmesh_settlement as settlement;

#[cfg(test)]
mod tests {
    /// The crate's documentation names every module it has (it once said they were still to come).
    #[test]
    fn the_crate_doc_names_every_module() {
        let src = include_str!("lib.rs");
        let doc: String = src.lines().filter(|l| l.starts_with("//!")).collect();
        let modules = src.lines().filter_map(|l| {
            l.strip_prefix("pub mod ").or_else(|| {
                l.strip_prefix("pub use ")
                    .and_then(|u| u.split(" as ").nth(1))
            })
        });
        for module in modules {
            let module = module.trim_end_matches(';');
            assert!(doc.contains(&format!("[`{module}`]")), "{module}");
        }
        assert!(!doc.contains("as their issues land"));
    }
}
