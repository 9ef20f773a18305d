//! `jobmesh node start`'s verification flags (issue 21): how this node's requester decides a result is right.

use anyhow::Result;
use clap::Args;
use jobmesh_contracts::alloy::primitives::Address;
use jobmesh_node::market::credibility::DEFAULT_ERROR_RATE;
use jobmesh_node::market::verification::{VerificationPolicy, DEFAULT_SPOT_CHECK_RATE};

/// The verification policy of this node's requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Verification {
    /// A strict majority of a job's replicas (3 by default): today's behaviour.
    Majority,
    /// Plain M-first voting: add replicas until one output has M votes (M from the fault and error rates).
    MFirst,
    /// Sarmenta's credibility-based voting with spot-checks and stake (docs/protocol.md, "Credibility").
    Credibility,
}

/// Verification flags of `jobmesh node start`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// As a requester: how results are verified.
    #[arg(long, value_name = "POLICY", value_enum, default_value_t = Verification::Majority)]
    pub verification: Verification,
    /// As a requester: the assumed upper bound on the share of saboteurs among (staked) workers, in [0.05, 0.5).
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    pub assumed_fault_rate: f64,
    /// As a requester verifying by credibility: the probability that an assignment is a spot-check, in [0, 0.5].
    #[arg(long, value_name = "Q", default_value_t = DEFAULT_SPOT_CHECK_RATE)]
    pub spot_check_rate: f64,
    /// As a requester: the target error rate of a job that names none (`job submit --error-rate`).
    #[arg(long, value_name = "EPSILON", default_value_t = DEFAULT_ERROR_RATE)]
    pub default_error_rate: f64,
    /// As a requester: the stake contract whose active stakes are credited to offers (claims are checked on
    /// the chain of --rpc-url). Without it, claimed stakes are ignored.
    #[arg(long, value_name = "ADDRESS")]
    pub stake_contract: Option<Address>,
}

impl VerifyArgs {
    /// The policy the flags describe.
    pub fn policy(&self) -> Result<VerificationPolicy> {
        let name = match self.verification {
            Verification::Majority => "majority",
            Verification::MFirst => "m-first",
            Verification::Credibility => "credibility",
        };
        Ok(VerificationPolicy::from_name(
            name,
            self.assumed_fault_rate,
            self.spot_check_rate,
            self.default_error_rate,
        )?)
    }

    /// The stake contract's address, as the market configuration carries it.
    pub fn stake_contract(&self) -> Option<[u8; 20]> {
        self.stake_contract.map(|a| a.into_array())
    }
}
