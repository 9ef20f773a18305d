//! Credibility-based fault tolerance (Sarmenta, "Sabotage-tolerance mechanisms for volunteer computing
//! systems", FGCS 18(4), 2002): the arithmetic a requester uses to decide how many replicas a job needs.
//! Pure functions over numbers: no clock, network, disk or randomness. The rule, its assumptions and the theorem
//! it relies on are in docs/protocol.md, "Credibility".
//!
//! - A **worker's credibility** is a lower bound on the probability that a result it returns is correct, given
//!   the evidence the requester holds about it ([`Evidence`]) and an assumed upper bound `f` on the share of
//!   saboteurs ([`Assumptions`]): `1 − f` with no spot-check passed; after `k` passed, `1 − f/((1 − f)·k·e)` when
//!   caught saboteurs are blacklisted, `1 − f/k` when they are not; `0` once a spot-check failed.
//! - A **result group** is the set of workers that returned the same output. With colluding saboteurs (they all
//!   return the same wrong output), group `a` is correct iff all its members are good and every other group's
//!   members are bad; its credibility is that event's probability given that the groups look as they do
//!   ([`group_credibility`]).
//! - A job's result is **accepted** once the best group's credibility reaches `1 − ε`; until then the requester
//!   adds a replica ([`decide`]).
//!
//! Stake enters as the prior: a worker whose stake reaches [`Assumptions::min_stake_wei`] is one of the
//! population the bound `f` is assumed for; an unstaked identity gets [`Assumptions::f_unstaked`] (½ by
//! default: a fresh unstaked identity is no evidence either way, so any number of them changes no group's
//! credibility — a Sybil crowd must stake per identity to matter).

/// Euler's number: Sarmenta's bound `max_s s·(1 − s)^k ≤ 1/(k·e)` on the errors a saboteur can slip through `k`
/// spot-checks.
const E: f64 = std::f64::consts::E;

/// The default target error rate ε of a job: at most one wrong result accepted per thousand (docs/protocol.md,
/// "Credibility", explains the choice).
pub const DEFAULT_ERROR_RATE: f64 = 1e-3;
/// The default assumed share of saboteurs among staked workers (the floor: never assume less).
pub const DEFAULT_SABOTEUR_SHARE: f64 = 0.1;
/// The default prior share of saboteurs among unstaked identities: ½, i.e. an unstaked identity with no
/// spot-check passed is no evidence at all.
pub const DEFAULT_UNSTAKED_SHARE: f64 = 0.5;
/// The default smallest stake that counts: 0.01 ETH.
pub const DEFAULT_MIN_STAKE_WEI: u128 = 10_000_000_000_000_000;
/// The largest M [`m_first_votes`] searches (beyond it the answer is "unreachable").
const MAX_VOTES: u32 = 64;

/// Why credibility arithmetic refused its inputs.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum CredibilityError {
    /// A saboteur share outside (0, 1).
    #[error("saboteur share {0} is not in (0, 1)")]
    SaboteurShare(f64),
    /// A target error rate outside (0, 1).
    #[error("error rate {0} is not in (0, 1)")]
    ErrorRate(f64),
    /// No number of agreeing votes of credibility `1 − f` reaches `1 − ε` (needs f < ½), within 64.
    #[error("no M-first vote reaches error rate {epsilon} with saboteur share {f}")]
    Unreachable {
        /// The saboteur share.
        f: f64,
        /// The target error rate.
        epsilon: f64,
    },
}

/// What one requester knows about one worker. Counters saturate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    /// Results of this worker that agreed with the result accepted for their job.
    pub agreed: u32,
    /// Results of this worker that disagreed with the result accepted for their job.
    pub disagreed: u32,
    /// Spot-checks (jobs whose answer the requester knew) this worker answered correctly.
    pub spot_checks_passed: u32,
    /// Spot-checks this worker answered wrongly.
    pub spot_checks_failed: u32,
    /// The worker's active stake, in wei, as last read from the stake contract for its node.
    pub stake_wei: u128,
}

impl Evidence {
    /// Whether the worker is blacklisted by this requester: it failed a spot-check (for good).
    pub fn is_blacklisted(&self) -> bool {
        self.spot_checks_failed > 0
    }

    /// Applies one change.
    pub fn apply(&mut self, change: EvidenceChange) {
        match change {
            EvidenceChange::Vote { agreed } => self.record_vote(agreed),
            EvidenceChange::SpotCheck { passed } => self.record_spot_check(passed),
            EvidenceChange::Stake { wei } => self.stake_wei = wei,
        }
    }

    /// Records a spot-check's outcome.
    pub fn record_spot_check(&mut self, passed: bool) {
        let n = if passed {
            &mut self.spot_checks_passed
        } else {
            &mut self.spot_checks_failed
        };
        *n = n.saturating_add(1);
    }

    /// Records whether a result agreed with the one accepted for its job. Agreement is kept as evidence for
    /// reputation and reports, but does not raise credibility: colluding saboteurs agree with each other, so
    /// only spot-checks (answers the requester knew) are evidence a saboteur cannot forge.
    pub fn record_vote(&mut self, agreed: bool) {
        let n = if agreed {
            &mut self.agreed
        } else {
            &mut self.disagreed
        };
        *n = n.saturating_add(1);
    }
}

/// One new piece of evidence about a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EvidenceChange {
    /// Its result agreed (or not) with the one accepted for its job.
    Vote {
        /// Whether it agreed.
        agreed: bool,
    },
    /// It passed (or failed) a spot-check.
    SpotCheck {
        /// Whether it passed.
        passed: bool,
    },
    /// Its active stake as just read from the stake contract.
    Stake {
        /// The stake in wei (0: none, or the claim did not hold).
        wei: u128,
    },
}

/// The requester's assumptions.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Assumptions {
    /// Upper bound on the share of saboteurs among staked workers.
    pub f: f64,
    /// Prior share of saboteurs among unstaked identities.
    pub f_unstaked: f64,
    /// Whether a worker caught by a spot-check is blacklisted (by this requester) for good.
    pub blacklisting: bool,
    /// The smallest stake that puts a worker in the staked population.
    pub min_stake_wei: u128,
}

impl Default for Assumptions {
    fn default() -> Self {
        Self {
            f: DEFAULT_SABOTEUR_SHARE,
            f_unstaked: DEFAULT_UNSTAKED_SHARE,
            blacklisting: true,
            min_stake_wei: DEFAULT_MIN_STAKE_WEI,
        }
    }
}

impl Assumptions {
    /// Checks that both shares lie in (0, 1).
    pub fn validate(&self) -> Result<(), CredibilityError> {
        share(self.f)?;
        share(self.f_unstaked)?;
        Ok(())
    }

    /// The saboteur share assumed for a worker with this evidence: `f` if staked enough, else `f_unstaked`.
    pub fn prior_share(&self, ev: &Evidence) -> f64 {
        if ev.stake_wei >= self.min_stake_wei && ev.stake_wei > 0 {
            self.f
        } else {
            self.f_unstaked
        }
    }

    /// The worker's credibility: 0 after a failed spot-check (the requester never trusts it again), else
    /// [`spot_check_credibility`] from its prior share and the spot-checks it passed.
    pub fn worker_credibility(&self, ev: &Evidence) -> f64 {
        if ev.spot_checks_failed > 0 {
            return 0.0;
        }
        spot_check_credibility(
            self.prior_share(ev),
            ev.spot_checks_passed,
            self.blacklisting,
        )
    }
}

fn share(f: f64) -> Result<f64, CredibilityError> {
    if f > 0.0 && f < 1.0 {
        Ok(f)
    } else {
        Err(CredibilityError::SaboteurShare(f))
    }
}

fn rate(epsilon: f64) -> Result<f64, CredibilityError> {
    if epsilon > 0.0 && epsilon < 1.0 {
        Ok(epsilon)
    } else {
        Err(CredibilityError::ErrorRate(epsilon))
    }
}

/// Sarmenta's credibility of a worker that passed `k` spot-checks, with saboteur share `f`:
/// `1 − f` for `k = 0`; else `1 − f/((1 − f)·k·e)` with blacklisting and `1 − f/k` without, never below
/// `1 − f` (passing spot-checks never makes a worker less credible than a stranger).
pub fn spot_check_credibility(f: f64, k: u32, blacklisting: bool) -> f64 {
    if k == 0 {
        return 1.0 - f;
    }
    let k = f64::from(k);
    let error = if blacklisting {
        f / ((1.0 - f) * k * E)
    } else {
        f / k
    };
    1.0 - error.min(f)
}

/// Sarmenta's credibility of result group `a` among `groups` (each the credibilities of the workers that
/// returned one output): `P_T(G_a)·Π_{i≠a} P_F(G_i) / (Π_j P_F(G_j) + Σ_j P_T(G_j)·Π_{i≠j} P_F(G_i))`, where
/// `P_T(G) = Π_{w∈G} Cr(w)` (all good) and `P_F(G) = Π_{w∈G} (1 − Cr(w))` (all bad). The first term of the
/// denominator is "every group is wrong" — what colluding saboteurs returning one wrong output look like.
/// 0 for an unknown index or when no configuration is possible.
pub fn group_credibility<G: AsRef<[f64]>>(groups: &[G], a: usize) -> f64 {
    if a >= groups.len() {
        return 0.0;
    }
    let pt = |g: &[f64]| g.iter().product::<f64>();
    let pf = |g: &[f64]| g.iter().map(|c| 1.0 - c).product::<f64>();
    let falses: Vec<f64> = groups.iter().map(|g| pf(g.as_ref())).collect();
    let others_false = |j: usize| -> f64 {
        falses
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != j)
            .map(|(_, p)| p)
            .product()
    };
    let term = |j: usize| pt(groups[j].as_ref()) * others_false(j);
    let all_wrong: f64 = falses.iter().product();
    let denominator = all_wrong + (0..groups.len()).map(term).sum::<f64>();
    if denominator > 0.0 {
        term(a) / denominator
    } else {
        0.0
    }
}

/// What to do with a job's results so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Accept group `group`'s output: its credibility reached `1 − ε`.
    Accept {
        /// Index of the accepted group.
        group: usize,
        /// Its credibility.
        credibility: f64,
    },
    /// Assign one more replica: the best group (if any) is below `1 − ε`.
    AddReplica {
        /// Index of the most credible group so far, if there is a group.
        best: Option<usize>,
        /// Its credibility (0 with no results).
        credibility: f64,
    },
}

/// Accepts the most credible group if its credibility reaches `1 − ε`, else asks for another replica.
pub fn decide<G: AsRef<[f64]>>(groups: &[G], epsilon: f64) -> Result<Decision, CredibilityError> {
    let epsilon = rate(epsilon)?;
    let best = (0..groups.len())
        .map(|a| (a, group_credibility(groups, a)))
        .max_by(|x, y| x.1.total_cmp(&y.1));
    Ok(match best {
        Some((group, credibility)) if credibility >= 1.0 - epsilon => {
            Decision::Accept { group, credibility }
        }
        Some((group, credibility)) => Decision::AddReplica {
            best: Some(group),
            credibility,
        },
        None => Decision::AddReplica {
            best: None,
            credibility: 0.0,
        },
    })
}

/// How many of `candidates` (worker credibilities, in the order the requester would assign them) must agree for
/// a unanimous result to be accepted at `ε`: the shortest prefix whose group reaches `1 − ε`, or `None` if even
/// all of them do not. This is how many replicas a job starts with.
pub fn replicas_needed(
    candidates: &[f64],
    epsilon: f64,
) -> Result<Option<usize>, CredibilityError> {
    let epsilon = rate(epsilon)?;
    Ok(
        (1..=candidates.len())
            .find(|&n| group_credibility(&[&candidates[..n]], 0) >= 1.0 - epsilon),
    )
}

/// The M of M-first voting that meets `ε` with saboteur share `f` and colluding saboteurs, as credibility-based
/// voting without spot-checks computes it: every worker has credibility `1 − f`, and M agreeing results have
/// group credibility `(1 − f)^M / ((1 − f)^M + f^M)`; M is the least with that `≥ 1 − ε`.
pub fn m_first_votes(f: f64, epsilon: f64) -> Result<u32, CredibilityError> {
    let (f, epsilon) = (share(f)?, rate(epsilon)?);
    (1..=MAX_VOTES)
        .find(|&m| {
            let group = vec![1.0 - f; m as usize];
            group_credibility(&[group], 0) >= 1.0 - epsilon
        })
        .ok_or(CredibilityError::Unreachable { f, epsilon })
}

/// The unconditional error rate of plain M-first voting (accept the first output that M workers return) when a
/// share `f` of workers are colluding saboteurs that always return one wrong output: the chance that M bad
/// results arrive before M good ones, `Σ_{j=0}^{M−1} C(M−1+j, j)·f^M·(1 − f)^j`. It is higher than the
/// conditional `1 − credibility` of a unanimous group, because plain M-first voting also accepts after
/// disagreements (4 against 3), which credibility-based voting does not.
pub fn m_first_error_rate(f: f64, m: u32) -> f64 {
    let mut binomial = 1.0; // C(m − 1 + j, j), updated in the loop
    let mut sum = 0.0;
    for j in 0..m {
        if j > 0 {
            binomial *= f64::from(m - 1 + j) / f64::from(j);
        }
        sum += binomial * (1.0 - f).powi(j as i32);
    }
    sum * f.powi(m as i32)
}

#[cfg(test)]
mod tests {
    //! Values computed by hand from the paper's formulas (e = 2.718281828…).
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) {
        assert!((a - b).abs() <= tolerance, "{a} vs {b}");
    }

    #[test]
    fn credibility_of_a_worker_from_spot_checks() {
        // No spot-check passed: 1 − f = 0.9.
        close(spot_check_credibility(0.1, 0, true), 0.9, 1e-15);
        close(spot_check_credibility(0.1, 0, false), 0.9, 1e-15);
        // k = 10 with blacklisting: f/((1 − f)·k·e) = 0.1/(0.9·10·2.7182818) = 0.1/24.464536 = 0.0040875;
        // credibility 0.9959125.
        close(spot_check_credibility(0.1, 10, true), 0.995_912_5, 1e-7);
        // k = 10 without blacklisting: 1 − f/k = 1 − 0.1/10 = 0.99.
        close(spot_check_credibility(0.1, 10, false), 0.99, 1e-15);
        // k = 1 without blacklisting: 1 − 0.1/1 = 0.9, the stranger's value.
        close(spot_check_credibility(0.1, 1, false), 0.9, 1e-15);
        // f = 0.7, k = 1, blacklisting: 0.7/(0.3·e) = 0.858 > f, so capped at 1 − f = 0.3.
        close(spot_check_credibility(0.7, 1, true), 0.3, 1e-15);
        // One worker alone meets ε = 1e-3 once f/((1 − f)·k·e) ≤ 1e-3, i.e. k ≥ 0.1/(0.9·e·1e-3) = 40.88:
        // k = 41 gives 0.1/100.3046 = 0.000997 (accept), k = 40 gives 0.1/97.8583 = 0.001022 (not yet).
        assert!(spot_check_credibility(0.1, 41, true) >= 0.999);
        assert!(spot_check_credibility(0.1, 40, true) < 0.999);
        // Without blacklisting it takes k ≥ f/ε = 100 (k = 100 is the boundary itself).
        assert!(spot_check_credibility(0.1, 101, false) >= 0.999);
        assert!(spot_check_credibility(0.1, 99, false) < 0.999);
    }

    #[test]
    fn credibility_evidence_stake_and_failed_spot_checks() {
        let a = Assumptions::default();
        let mut staked = Evidence {
            stake_wei: DEFAULT_MIN_STAKE_WEI,
            ..Evidence::default()
        };
        // Staked stranger: 1 − f = 0.9; unstaked stranger: 1 − ½ = 0.5; staked below the minimum: 0.5.
        close(a.worker_credibility(&staked), 0.9, 1e-15);
        close(a.worker_credibility(&Evidence::default()), 0.5, 1e-15);
        let poor = Evidence {
            stake_wei: DEFAULT_MIN_STAKE_WEI - 1,
            ..Evidence::default()
        };
        close(a.worker_credibility(&poor), 0.5, 1e-15);
        // Unstaked, 10 checks passed, blacklisting: 0.5/(0.5·10·e) = 1/27.18 = 0.0367879 → 0.9632121.
        let mut unstaked = Evidence::default();
        for _ in 0..10 {
            unstaked.record_spot_check(true);
        }
        close(a.worker_credibility(&unstaked), 0.963_212_1, 1e-7);
        // Votes are kept but do not move credibility.
        staked.record_vote(true);
        staked.record_vote(false);
        assert_eq!((staked.agreed, staked.disagreed), (1, 1));
        close(a.worker_credibility(&staked), 0.9, 1e-15);
        // One failed spot-check destroys it, however much else there is.
        staked.spot_checks_passed = 1000;
        staked.record_spot_check(false);
        assert_eq!(a.worker_credibility(&staked), 0.0);
        // ... and a group it belongs to is worth nothing.
        assert_eq!(group_credibility(&[vec![0.0, 0.999, 0.999]], 0), 0.0);
        assert!(Assumptions { f: 0.0, ..a }.validate().is_err());
        assert!(Assumptions {
            f_unstaked: 1.0,
            ..a
        }
        .validate()
        .is_err());
        assert!(a.validate().is_ok());
    }

    #[test]
    fn credibility_of_result_groups() {
        // One worker alone: c/((1 − c) + c) = c.
        close(group_credibility(&[vec![0.9]], 0), 0.9, 1e-15);
        // Three agreeing staked strangers: 0.729/(0.729 + 0.001) = 0.9986301.
        close(group_credibility(&[vec![0.9; 3]], 0), 0.998_630_1, 1e-7);
        // Two groups, {0.9, 0.9} vs {0.9}: terms 0.81·0.1 = 0.081 and 0.9·0.01 = 0.009, all wrong 0.01·0.1 =
        // 0.001; total 0.091 → 0.081/0.091 = 0.8901099 and 0.009/0.091 = 0.0989011.
        let g = [vec![0.9, 0.9], vec![0.9]];
        close(group_credibility(&g, 0), 0.890_109_9, 1e-7);
        close(group_credibility(&g, 1), 0.098_901_1, 1e-7);
        assert_eq!(group_credibility(&g, 2), 0.0);
        // A spot-checked worker (k = 41, blacklisting: 0.999003) against two agreeing strangers (0.9, 0.9):
        // t1 = 0.999003·0.01 = 0.00999003, t2 = 0.81·0.000997 = 0.00080756, all wrong 0.000997·0.01 = 0.00000997;
        // total 0.01080756 → 0.9243597.
        let checked = spot_check_credibility(0.1, 41, true);
        close(checked, 0.999_003, 1e-6);
        close(
            group_credibility(&[vec![checked], vec![0.9, 0.9]], 0),
            0.924_36,
            1e-5,
        );
    }

    #[test]
    fn credibility_ignores_any_number_of_unstaked_strangers() {
        // A staked stranger (0.9) against 10 colluding unstaked strangers (0.5 each) returning one wrong output:
        // t1 = 0.9·0.5^10, t2 = 0.5^10·0.1, all wrong 0.1·0.5^10 → 0.9/1.1 = 0.8181818, for 10 or 500 of them.
        for n in [10, 500] {
            let g = [vec![0.9], vec![0.5; n]];
            close(group_credibility(&g, 0), 0.818_181_8, 1e-7);
        }
        // Alone, a unanimous unstaked crowd of any size stays at ½: it is never accepted.
        close(group_credibility(&[vec![0.5; 200]], 0), 0.5, 1e-12);
        assert!(matches!(
            decide(&[vec![0.5; 200]], 0.4).unwrap(),
            Decision::AddReplica { .. }
        ));
    }

    #[test]
    fn credibility_m_first_votes_for_f_and_epsilon() {
        // f = 0.1, ε = 1e-3: M = 3 gives 0.001/(0.729 + 0.001) = 0.00137 > 1e-3; M = 4 gives
        // 0.0001/(0.6561 + 0.0001) = 0.000152 ≤ 1e-3. The M = 4.
        assert_eq!(m_first_votes(0.1, 1e-3).unwrap(), 4);
        // f = 0.2, ε = 1e-2: M = 3 gives 0.008/0.520 = 0.0154; M = 4 gives 0.0016/0.4112 = 0.00389 → 4.
        assert_eq!(m_first_votes(0.2, 1e-2).unwrap(), 4);
        // f = 0.05, ε = 1e-3: M = 2 gives 0.0025/0.905 = 0.00276; M = 3 gives 0.000125/0.8575 = 0.000146 → 3.
        assert_eq!(m_first_votes(0.05, 1e-3).unwrap(), 3);
        // f = 0.1, ε = 1e-4: M = 4 gives 0.000152; M = 5 gives 1e-5/(0.59049 + 1e-5) = 1.69e-5 → 5.
        assert_eq!(m_first_votes(0.1, 1e-4).unwrap(), 5);
        // f ≥ ½: agreement proves nothing.
        assert_eq!(
            m_first_votes(0.5, 1e-3),
            Err(CredibilityError::Unreachable {
                f: 0.5,
                epsilon: 1e-3
            })
        );
        assert_eq!(
            m_first_votes(0.1, 0.0),
            Err(CredibilityError::ErrorRate(0.0))
        );
        assert_eq!(
            m_first_votes(1.5, 0.1),
            Err(CredibilityError::SaboteurShare(1.5))
        );
    }

    #[test]
    fn credibility_plain_m_first_error_rate() {
        // M = 4, f = 0.1: f^4·(1 + 4·0.9 + 10·0.81 + 20·0.729) = 1e-4·27.28 = 0.002728 — plain M-first voting at
        // M = 4 accepts "4 against 3" too, and misses 1e-3 unconditionally.
        close(m_first_error_rate(0.1, 4), 0.002_728, 1e-9);
        // M = 5: 1e-5·(1 + 5·0.9 + 15·0.81 + 35·0.729 + 70·0.6561) = 1e-5·89.092 = 0.00089092.
        close(m_first_error_rate(0.1, 5), 0.000_890_92, 1e-10);
        // M = 1: just f.
        close(m_first_error_rate(0.1, 1), 0.1, 1e-15);
    }

    #[test]
    fn credibility_decides_accept_or_add_a_replica() {
        // Three staked strangers agree: 0.99863 < 0.999 → one more.
        let d = decide(&[vec![0.9; 3]], 1e-3).unwrap();
        let Decision::AddReplica { best, credibility } = d else {
            panic!("{d:?}")
        };
        assert_eq!(best, Some(0));
        close(credibility, 0.998_630_1, 1e-7);
        // Four: 0.6561/0.6562 = 0.9998476 → accept.
        let d = decide(&[vec![0.9; 4]], 1e-3).unwrap();
        let Decision::Accept { group, credibility } = d else {
            panic!("{d:?}")
        };
        assert_eq!(group, 0);
        close(credibility, 0.999_847_6, 1e-7);
        // The accepted group is the most credible one, not the first: {0.9} vs {0.9; 5} (unanimous 5 beat 1):
        // t1 = 0.9·1e-5 = 9e-6, t2 = 0.59049·0.1 = 0.059049, all wrong 1e-6 → group 1 at 0.9998307.
        let d = decide(&[vec![0.9], vec![0.9; 5]], 1e-3).unwrap();
        assert!(matches!(d, Decision::Accept { group: 1, .. }), "{d:?}");
        // Nothing yet: add a replica.
        let none: [Vec<f64>; 0] = [];
        assert_eq!(
            decide(&none, 1e-3).unwrap(),
            Decision::AddReplica {
                best: None,
                credibility: 0.0
            }
        );
        // Replicas to start with: staked strangers need 4; a worker with 41 passed checks needs none beside it.
        assert_eq!(replicas_needed(&[0.9; 6], 1e-3).unwrap(), Some(4));
        assert_eq!(replicas_needed(&[0.9; 3], 1e-3).unwrap(), None);
        let veteran = spot_check_credibility(0.1, 41, true);
        assert_eq!(replicas_needed(&[veteran, 0.9], 1e-3).unwrap(), Some(1));
        // Unstaked strangers never suffice, however many.
        assert_eq!(replicas_needed(&[0.5; 15], 1e-3).unwrap(), None);
    }
}
