//! The jobmesh node: the command-line interface ([`cli`], one module per command group in [`commands`]), the
//! data directory and identity ([`home`]), a running node's assembly ([`launch`]: swarm, market, settlement),
//! the market protocol and its ledger ([`market`]), settlement on chain through lotteries ([`settlement`]), the
//! control API, gateway and dashboard ([`api`]) and Prometheus metrics ([`metrics`]).
//!
//! This is the only crate that wires the others together (store, exec, p2p, contracts, lottery). It owns no
//! block format, no VM and no contract code of its own: it calls the crates that do.

pub mod api;
pub mod cli;
pub mod commands;
pub mod home;
pub mod launch;
pub mod market;
pub mod metrics;
pub mod settlement;

#[cfg(test)]
mod tests {
    /// The crate's documentation names every module it has (it once said they were still to come).
    #[test]
    fn the_crate_doc_names_every_module() {
        let src = include_str!("lib.rs");
        let doc: String = src.lines().filter(|l| l.starts_with("//!")).collect();
        for module in src.lines().filter_map(|l| l.strip_prefix("pub mod ")) {
            let module = module.trim_end_matches(';');
            assert!(doc.contains(&format!("[`{module}`]")), "{module}");
        }
        assert!(!doc.contains("as their issues land"));
    }
}
