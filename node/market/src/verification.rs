//! How a requester decides that a job's result is right (issue 21; docs/protocol.md, "Credibility"): the node's
//! [`VerificationPolicy`] and the per-job rule built on the arithmetic of [`crate::credibility`].
//!
//! - [`VerificationPolicy::Majority`] — today's behaviour and the default: a fixed number of replicas, a strict
//!   majority of them agreeing.
//! - [`VerificationPolicy::MFirst`] — plain M-first voting: add replicas until one output has `m` votes.
//! - [`VerificationPolicy::Credibility`] — Sarmenta's credibility-based voting with spot-checks: start with as
//!   few replicas as the assigned workers' credibility allows, add one while the best agreeing group's
//!   credibility is below `1 − ε`.
//!
//! Pure: no clock, network or disk.

use serde::{Deserialize, Serialize};

use crate::credibility::{
    self, Assumptions, CredibilityError, DEFAULT_ERROR_RATE, DEFAULT_MIN_STAKE_WEI,
    DEFAULT_SABOTEUR_SHARE, DEFAULT_UNSTAKED_SHARE,
};

/// Replicas of the default [`VerificationPolicy::Majority`] (today's default).
pub const DEFAULT_REPLICAS: u8 = 3;
/// The default spot-check rate `q`: one assignment in ten is a spot-check (Sarmenta's experiments use
/// `q = 0.1`). It costs about 0.11 extra executions per real one (`q/(1 − q)`), and at the rate a busy worker is
/// assigned it earns the few passed spot-checks that let two staked workers agree at ε = 10⁻³ (3 each:
/// `1 − 0.1/(0.9·3·e) = 0.986`, two of them `1 − 2.6·10⁻⁴`); one worker alone needs 41.
pub const DEFAULT_SPOT_CHECK_RATE: f64 = 0.1;
/// The smallest target error rate a job may ask for (one in a billion).
pub const MIN_ERROR_RATE: f64 = 1e-9;
/// The largest target error rate a job may ask for.
pub const MAX_ERROR_RATE: f64 = 0.5;
/// The largest spot-check rate (a requester spot-checking every assignment does no real work).
pub const MAX_SPOT_CHECK_RATE: f64 = 0.5;
/// The most replicas M-first voting may require.
pub const MAX_M: u8 = crate::messages::MAX_REPLICAS;

/// Why a verification setting was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerificationError {
    /// The credibility arithmetic refused an input (a share or a rate out of range).
    #[error(transparent)]
    Credibility(#[from] CredibilityError),
    /// A job's target error rate outside [`MIN_ERROR_RATE`]..=[`MAX_ERROR_RATE`].
    #[error("error rate {0} is not between {MIN_ERROR_RATE} and {MAX_ERROR_RATE}")]
    ErrorRate(f64),
    /// A spot-check rate outside `0..=`[`MAX_SPOT_CHECK_RATE`].
    #[error("spot-check rate {0} is not between 0 and {MAX_SPOT_CHECK_RATE}")]
    SpotCheckRate(f64),
    /// An assumed saboteur share below 0.05 (the lowest the measurements use; the default is 0.1), or not below ½.
    #[error("assumed fault rate {0} is not in [0.05, 0.5)")]
    FaultRate(f64),
    /// A replica or vote count out of `1..=15`.
    #[error("{what} must be between 1 and {MAX_M}, not {value}")]
    Count {
        /// Which count.
        what: &'static str,
        /// Its value.
        value: u8,
    },
    /// An unknown policy name.
    #[error("unknown verification {0:?} (majority, m-first or credibility)")]
    UnknownPolicy(String),
}

/// The parameters of credibility-based verification.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CredibilityParams {
    /// The node's default target error rate ε of a job (a job may carry its own): [`DEFAULT_ERROR_RATE`].
    pub error_rate: f64,
    /// The assumed upper bound `f` on the share of saboteurs among staked workers: 0.1 by default.
    pub assumed_fault_rate: f64,
    /// The probability `q` that an assignment is a spot-check: [`DEFAULT_SPOT_CHECK_RATE`].
    pub spot_check_rate: f64,
    /// With no record of anyone, give the majority of a job's credibility only to staked workers: an unstaked
    /// identity then has the prior share ½ (no evidence either way); without it, every identity gets `f`.
    pub stake_required_for_cold_start: bool,
    /// The smallest verified stake that counts (0.01 ETH by default).
    pub min_stake_wei: u128,
}

impl Default for CredibilityParams {
    fn default() -> Self {
        Self {
            error_rate: DEFAULT_ERROR_RATE,
            assumed_fault_rate: DEFAULT_SABOTEUR_SHARE,
            spot_check_rate: DEFAULT_SPOT_CHECK_RATE,
            stake_required_for_cold_start: true,
            min_stake_wei: DEFAULT_MIN_STAKE_WEI,
        }
    }
}

impl CredibilityParams {
    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), VerificationError> {
        check_error_rate(self.error_rate)?;
        check_fault_rate(self.assumed_fault_rate)?;
        if !(0.0..=MAX_SPOT_CHECK_RATE).contains(&self.spot_check_rate) {
            return Err(VerificationError::SpotCheckRate(self.spot_check_rate));
        }
        Ok(())
    }

    /// The assumptions the credibility arithmetic works under (blacklisting on: a failed spot-check excludes a
    /// worker from this requester's jobs for good).
    pub fn assumptions(&self) -> Assumptions {
        Assumptions {
            f: self.assumed_fault_rate,
            f_unstaked: if self.stake_required_for_cold_start {
                DEFAULT_UNSTAKED_SHARE.max(self.assumed_fault_rate)
            } else {
                self.assumed_fault_rate
            },
            blacklisting: true,
            min_stake_wei: self.min_stake_wei,
        }
    }
}

/// Checks a job's target error rate.
pub fn check_error_rate(epsilon: f64) -> Result<f64, VerificationError> {
    if (MIN_ERROR_RATE..=MAX_ERROR_RATE).contains(&epsilon) {
        Ok(epsilon)
    } else {
        Err(VerificationError::ErrorRate(epsilon))
    }
}

/// Checks an assumed saboteur share: never below 0.05 (the lowest of the curve; the default is 0.1),
/// below ½ (at ½ agreement proves nothing).
pub fn check_fault_rate(f: f64) -> Result<f64, VerificationError> {
    if (0.05..0.5).contains(&f) {
        Ok(f)
    } else {
        Err(VerificationError::FaultRate(f))
    }
}

/// A target error rate in parts per billion, the form a job spec carries it in (integers keep the spec's
/// encoding, and so its id, exact).
pub fn error_rate_to_ppb(epsilon: f64) -> Result<u32, VerificationError> {
    Ok((check_error_rate(epsilon)? * 1e9).round() as u32)
}

/// A job spec's error rate in parts per billion, as a rate.
pub fn error_rate_from_ppb(ppb: u32) -> f64 {
    f64::from(ppb) / 1e9
}

/// How a node's requester verifies results.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum VerificationPolicy {
    /// A strict majority of a fixed number of replicas (a job's own `replicas` overrides `replicas`).
    Majority {
        /// Replicas of a job that names none.
        replicas: u8,
    },
    /// Plain M-first voting: replicas are added until one output has `m` votes.
    MFirst {
        /// Votes needed.
        m: u8,
    },
    /// Credibility-based voting with spot-checks and stake.
    Credibility(CredibilityParams),
}

impl Default for VerificationPolicy {
    /// Today's behaviour, until the credibility policy is proven: a majority of [`DEFAULT_REPLICAS`].
    fn default() -> Self {
        VerificationPolicy::Majority {
            replicas: DEFAULT_REPLICAS,
        }
    }
}

impl VerificationPolicy {
    /// The policy named `name` (`majority`, `m-first`, `credibility`) with saboteur share `f`, spot-check rate
    /// `q` and default error rate `epsilon`; `m-first` gets the M that meets `epsilon` ([`plain_m_first_votes`]).
    pub fn from_name(
        name: &str,
        f: f64,
        q: f64,
        epsilon: f64,
    ) -> Result<VerificationPolicy, VerificationError> {
        let policy = match name {
            "majority" => VerificationPolicy::default(),
            "m-first" => VerificationPolicy::MFirst {
                m: plain_m_first_votes(check_fault_rate(f)?, check_error_rate(epsilon)?)?,
            },
            "credibility" => VerificationPolicy::Credibility(CredibilityParams {
                error_rate: epsilon,
                assumed_fault_rate: f,
                spot_check_rate: q,
                ..CredibilityParams::default()
            }),
            other => return Err(VerificationError::UnknownPolicy(other.to_string())),
        };
        policy.validate()?;
        Ok(policy)
    }

    /// The policy's name on the command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            VerificationPolicy::Majority { .. } => "majority",
            VerificationPolicy::MFirst { .. } => "m-first",
            VerificationPolicy::Credibility(_) => "credibility",
        }
    }

    /// Checks the policy's parameters.
    pub fn validate(&self) -> Result<(), VerificationError> {
        let count = |what, value: u8| {
            if (1..=MAX_M).contains(&value) {
                Ok(())
            } else {
                Err(VerificationError::Count { what, value })
            }
        };
        match self {
            VerificationPolicy::Majority { replicas } => count("replicas", *replicas),
            VerificationPolicy::MFirst { m } => count("m", *m),
            VerificationPolicy::Credibility(p) => p.validate(),
        }
    }

    /// The credibility parameters, under the credibility policy.
    pub fn credibility(&self) -> Option<&CredibilityParams> {
        match self {
            VerificationPolicy::Credibility(p) => Some(p),
            _ => None,
        }
    }
}

/// The M of plain M-first voting (accept the first output M workers return, even after disagreements) that
/// meets `epsilon` unconditionally against colluding saboteurs of share `f`: the least M with
/// [`credibility::m_first_error_rate`]` ≤ ε` — 5 at f = 0.1, ε = 10⁻³ (M = 4 errs 2.7·10⁻³). The unanimous
/// form, [`credibility::m_first_votes`], needs only 4, but accepting only unanimous groups is credibility-based
/// voting without spot-checks, not M-first voting.
pub fn plain_m_first_votes(f: f64, epsilon: f64) -> Result<u8, VerificationError> {
    (1..=MAX_M)
        .find(|&m| credibility::m_first_error_rate(f, u32::from(m)) <= epsilon)
        .ok_or(VerificationError::Credibility(
            CredibilityError::Unreachable { f, epsilon },
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_policy_defaults_names_and_bounds() {
        assert_eq!(
            VerificationPolicy::default(),
            VerificationPolicy::Majority { replicas: 3 }
        );
        let c = CredibilityParams::default();
        assert_eq!(
            (c.error_rate, c.assumed_fault_rate, c.spot_check_rate),
            (1e-3, 0.1, 0.1)
        );
        assert!(c.validate().is_ok());
        // The plain M-first baseline at f = 0.1, ε = 10⁻³ is M = 5 (M = 4 errs 2.7·10⁻³ > 10⁻³).
        assert_eq!(plain_m_first_votes(0.1, 1e-3).unwrap(), 5);
        assert_eq!(
            VerificationPolicy::from_name("m-first", 0.1, 0.1, 1e-3).unwrap(),
            VerificationPolicy::MFirst { m: 5 }
        );
        let p = VerificationPolicy::from_name("credibility", 0.2, 0.05, 1e-4).unwrap();
        assert_eq!(p.name(), "credibility");
        assert_eq!(p.credibility().unwrap().assumed_fault_rate, 0.2);
        assert_eq!(
            VerificationPolicy::from_name("vote", 0.1, 0.1, 1e-3),
            Err(VerificationError::UnknownPolicy("vote".into()))
        );
        // Out of range: f below the floor or at ½, q above ½, ε of 0 or above ½, zero replicas.
        for (f, q, e) in [(0.01, 0.1, 1e-3), (0.5, 0.1, 1e-3), (0.1, 0.6, 1e-3)] {
            assert!(VerificationPolicy::from_name("credibility", f, q, e).is_err());
        }
        assert!(check_error_rate(0.0).is_err() && check_error_rate(0.6).is_err());
        assert!(VerificationPolicy::Majority { replicas: 0 }
            .validate()
            .is_err());
        // The spec's integer form round-trips.
        assert_eq!(error_rate_to_ppb(1e-3).unwrap(), 1_000_000);
        assert_eq!(error_rate_from_ppb(1_000_000), 1e-3);
        assert!(error_rate_to_ppb(1e-12).is_err());
        // Cold start: unstaked identities get the prior ½ only when stake is required.
        assert_eq!(c.assumptions().f_unstaked, 0.5);
        let open = CredibilityParams {
            stake_required_for_cold_start: false,
            ..c
        };
        assert_eq!(open.assumptions().f_unstaked, 0.1);
    }
}
