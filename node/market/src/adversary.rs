//! Adversaries injected by tests and the simulator (`jobmesh simnet --saboteurs`): what a dishonest worker returns
//! instead of the output it computed. Pure decisions over the job, the worker and what it has earned: no clock,
//! network or randomness beyond a seed, so a run is reproducible.
//!
//! The [`Saboteur`] is Sarmenta's ("Sabotage-tolerance mechanisms for volunteer computing systems", 2002): it
//! behaves honestly until a requester trusts it (it has been paid for `trusted_after` results by that
//! requester), then returns a wrong output on a seeded share of that requester's jobs. Colluding saboteurs all
//! forge the *same* wrong output ([`Forgery::Colluding`], the one `Conduct::WrongOutput` returns) on the *same*
//! jobs — the strongest attack on a vote — while lone ones each forge their own on jobs of their own choosing.

use crate::messages::JobId;

/// The suffix every colluding forger appends to the real output: all of them return the same bytes.
pub const COLLUDING_SUFFIX: &[u8] = b" (forged)";

/// What a worker returns in place of the real output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forgery {
    /// The output it computed.
    None,
    /// The real output followed by [`COLLUDING_SUFFIX`]: the same wrong bytes as every other colluding forger.
    Colluding,
    /// A wrong output of its own (naming the worker), which no other worker repeats.
    Own,
}

/// A saboteur: honest until trusted, then wrong at a seeded rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Saboteur {
    /// Results a requester must have paid for (receipts with an amount owed) before this worker cheats it.
    pub trusted_after: u64,
    /// Share of the requester's later jobs it cheats on, in parts per million.
    pub rate_ppm: u32,
    /// Seed of the choice of jobs.
    pub seed: u64,
    /// Whether it colludes: forges the colluders' common output, on the jobs every colluder picks.
    pub collude: bool,
}

impl Saboteur {
    /// What it returns for job `id`, run as `worker` for a requester that has paid it for `paid` results.
    /// Deterministic: a keyed hash of the seed and the job (and, for a lone saboteur, the worker) picks the jobs.
    pub fn forgery(&self, id: &JobId, worker: &[u8], paid: u64) -> Forgery {
        if paid < self.trusted_after || !self.picks(id, worker) {
            return Forgery::None;
        }
        if self.collude {
            Forgery::Colluding
        } else {
            Forgery::Own
        }
    }

    /// Whether job `id` is one it cheats on (once trusted).
    fn picks(&self, id: &JobId, worker: &[u8]) -> bool {
        let mut h = blake3::Hasher::new();
        h.update(b"jobmesh saboteur");
        h.update(&self.seed.to_le_bytes());
        h.update(&id.0);
        if !self.collude {
            h.update(worker);
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(&h.finalize().as_bytes()[..8]);
        let draw = u64::from_le_bytes(word) % 1_000_000;
        draw < u64::from(self.rate_ppm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u8) -> impl Iterator<Item = JobId> {
        (0..n).map(|i| JobId([i; 32]))
    }

    #[test]
    fn honest_until_trusted_then_cheats_on_about_its_rate() {
        let s = Saboteur {
            trusted_after: 5,
            rate_ppm: 300_000,
            seed: 7,
            collude: true,
        };
        assert!(ids(200).all(|id| s.forgery(&id, b"w", 4) == Forgery::None));
        let cheated = ids(200)
            .filter(|id| s.forgery(id, b"w", 5) == Forgery::Colluding)
            .count();
        assert!((40..=80).contains(&cheated), "{cheated} of 200 at 30 %");
    }

    #[test]
    fn colluders_cheat_on_the_same_jobs_and_lone_saboteurs_on_their_own() {
        let c = Saboteur {
            trusted_after: 0,
            rate_ppm: 500_000,
            seed: 1,
            collude: true,
        };
        let lone = Saboteur {
            collude: false,
            ..c
        };
        let picks = |s: &Saboteur, w: &[u8]| -> Vec<bool> {
            ids(100)
                .map(|id| s.forgery(&id, w, 0) != Forgery::None)
                .collect()
        };
        assert_eq!(picks(&c, b"a"), picks(&c, b"b"));
        assert_ne!(picks(&lone, b"a"), picks(&lone, b"b"));
        assert!(ids(100).all(|id| lone.forgery(&id, b"a", 0) != Forgery::Colluding));
        assert_eq!(picks(&c, b"a"), picks(&c, b"a"), "deterministic");
    }
}
