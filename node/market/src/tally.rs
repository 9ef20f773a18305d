//! Choosing workers for a job and deciding its result: pure functions of offers, reputations and reveals.

use std::collections::{BTreeMap, HashSet};

use cid::Cid;
use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};

use crate::messages::{Reveal, RunDetail};

/// Offers from peers whose reputation is below this are ignored.
pub const MIN_REPUTATION: i64 = -20;

/// A worker's offer as the requester weighs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The worker.
    #[serde(with = "crate::wire_ids::peer")]
    pub peer: PeerId,
    /// Its price in wei per million fuel.
    pub price_wei_per_mfuel: u64,
    /// Its reputation in this requester's table.
    pub reputation: i64,
}

/// How many of a job's `slots` go by record (a majority): [`select_workers`] fills them with the best records,
/// and the requester waits for that many offers from workers with a record.
pub fn slots_by_record(slots: usize) -> usize {
    slots / 2 + 1
}

/// Picks up to `slots` distinct workers, none of them in `exclude`.
///
/// A majority of the slots ([`slots_by_record`]) goes to the best record: highest reputation, then lowest price, then a
/// tiebreak drawn from `seed`. The remaining minority is drawn at random (from `seed`) among the other
/// candidates, so new workers earn a record — but a crowd of fresh identities can never fill a majority while
/// enough workers with a record are offering. The draw takes candidates without a bad record (reputation ≥ 0)
/// first: a worker that missed its deadlines is explored again only when nobody else is offering (a silent
/// identity that accepts work and never answers otherwise cost a commitment timeout in every job that drew it).
pub fn select_workers(
    candidates: &[Candidate],
    exclude: &HashSet<PeerId>,
    slots: usize,
    seed: &[u8; 32],
) -> Vec<PeerId> {
    let tiebreak = |peer: &PeerId| {
        let mut h = blake3::Hasher::new_keyed(seed);
        h.update(&peer.to_bytes());
        *h.finalize().as_bytes()
    };
    let mut seen = HashSet::new();
    let mut pool: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| {
            c.reputation >= MIN_REPUTATION && !exclude.contains(&c.peer) && seen.insert(c.peer)
        })
        .collect();
    pool.sort_by_key(|c| {
        (
            std::cmp::Reverse(c.reputation),
            c.price_wei_per_mfuel,
            tiebreak(&c.peer),
        )
    });
    let by_record = slots_by_record(slots).min(slots).min(pool.len());
    let mut chosen: Vec<PeerId> = pool[..by_record].iter().map(|c| c.peer).collect();
    let mut rest: Vec<&Candidate> = pool[by_record..].to_vec();
    rest.sort_by_key(|c| (c.reputation < 0, tiebreak(&c.peer)));
    chosen.extend(rest.iter().take(slots - by_record).map(|c| c.peer));
    chosen
}

/// The accepted result of a job and who agreed with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The output block.
    #[serde(with = "crate::wire_ids::cid")]
    pub output: Cid,
    /// Fuel every agreeing replica consumed.
    pub fuel_used: u64,
    /// The run's status name.
    pub status: String,
    /// Workers whose reveal is the verdict.
    #[serde(with = "crate::wire_ids::peers")]
    pub agreeing: Vec<PeerId>,
    /// Workers that revealed something else.
    #[serde(with = "crate::wire_ids::peers")]
    pub disagreeing: Vec<PeerId>,
    /// Why the run failed, as every agreeing replica revealed it (empty for a run that ended ok).
    #[serde(default)]
    pub detail: RunDetail,
}

/// A strict majority of the `assigned` replicas agreeing on (output, fuel, status, detail), if there is one.
/// Reveals must already be checked against their commitments; a worker counts once.
pub fn tally(assigned: usize, reveals: &[(PeerId, Reveal)]) -> Option<Verdict> {
    type Key<'a> = (Vec<u8>, u64, &'a str, [u8; 32]);
    let mut groups: BTreeMap<Key, (&RunDetail, Vec<PeerId>)> = BTreeMap::new();
    let mut counted = HashSet::new();
    for (peer, reveal) in reveals {
        if counted.insert(*peer) {
            groups
                .entry((
                    reveal.output.to_bytes(),
                    reveal.fuel_used,
                    reveal.status.as_str(),
                    reveal.detail.digest(),
                ))
                .or_insert_with(|| (&*reveal.detail, Vec::new()))
                .1
                .push(*peer);
        }
    }
    let ((output, fuel_used, status, _), (detail, agreeing)) =
        groups.iter().max_by_key(|(_, (_, peers))| peers.len())?;
    if agreeing.len() * 2 <= assigned {
        return None;
    }
    let disagreeing = counted
        .iter()
        .filter(|p| !agreeing.contains(p))
        .copied()
        .collect();
    Some(Verdict {
        output: Cid::try_from(output.as_slice()).expect("CID bytes round trip"),
        fuel_used: *fuel_used,
        status: status.to_string(),
        agreeing: agreeing.clone(),
        disagreeing,
        detail: (*detail).clone(),
    })
}

/// What a replica earns: fuel × price per million fuel, rounded up to the wei.
pub fn owed_wei(fuel_used: u64, price_wei_per_mfuel: u64) -> u128 {
    (fuel_used as u128 * price_wei_per_mfuel as u128).div_ceil(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{cid, peers};

    fn reveal(output: &[u8], fuel: u64) -> Reveal {
        Reveal {
            job_id: crate::messages::JobId([0; 32]),
            output: cid(output),
            fuel_used: fuel,
            status: "ok".into(),
            salt: [0; 32],
            detail: Box::default(),
        }
    }

    #[test]
    fn the_verdict_carries_the_detail_the_majority_revealed_and_a_different_detail_disagrees() {
        let p = peers(3);
        let failed = |stderr: &[u8]| Reveal {
            status: "js_exception".into(),
            detail: Box::new(RunDetail::new(
                "uncaught JavaScript exception: Error: no",
                stderr,
                1024,
            )),
            ..reveal(b"", 10)
        };
        let v = tally(
            3,
            &[
                (p[0], failed(b"log\n")),
                (p[1], failed(b"forged\n")),
                (p[2], failed(b"log\n")),
            ],
        )
        .unwrap();
        assert_eq!(v.detail.stderr, b"log\n");
        assert_eq!(v.disagreeing, vec![p[1]]);
        assert!(v.detail.message.contains("Error: no"));
        // Same output, fuel and status, three different stderrs: no majority.
        assert!(tally(
            3,
            &[
                (p[0], failed(b"a")),
                (p[1], failed(b"b")),
                (p[2], failed(b"c")),
            ],
        )
        .is_none());
    }

    #[test]
    fn majority_needs_more_than_half_of_the_assigned() {
        let p = peers(3);
        let good = reveal(b"a", 10);
        let v = tally(
            3,
            &[
                (p[0], good.clone()),
                (p[1], good.clone()),
                (p[2], reveal(b"b", 10)),
            ],
        )
        .unwrap();
        assert_eq!(v.agreeing.len(), 2);
        assert_eq!(v.disagreeing, vec![p[2]]);
        assert_eq!(v.output, good.output);
        // one of three assigned is not a majority, even if nobody disagrees
        assert!(tally(3, &[(p[0], good.clone())]).is_none());
        // same output but different fuel is a disagreement
        assert!(tally(3, &[(p[0], good.clone()), (p[1], reveal(b"a", 11))]).is_none());
        // a worker revealing twice counts once
        assert!(tally(3, &[(p[0], good.clone()), (p[0], good)]).is_none());
    }

    #[test]
    fn sybil_crowd_never_fills_a_majority_of_slots() {
        let honest = peers(3);
        let sybils = peers(200);
        let mut candidates: Vec<Candidate> = sybils
            .iter()
            .map(|p| Candidate {
                peer: *p,
                price_wei_per_mfuel: 1,
                reputation: 0,
            })
            .collect();
        candidates.extend(honest.iter().map(|p| Candidate {
            peer: *p,
            price_wei_per_mfuel: 50,
            reputation: 5,
        }));
        for seed in 0..200u8 {
            let chosen = select_workers(&candidates, &HashSet::new(), 3, &[seed; 32]);
            assert_eq!(chosen.len(), 3);
            let from_record = chosen.iter().filter(|p| honest.contains(p)).count();
            assert!(
                from_record >= 2,
                "seed {seed}: {from_record} of 3 with a record"
            );
            let distinct: HashSet<_> = chosen.iter().collect();
            assert_eq!(distinct.len(), 3);
        }
    }

    /// One offer from each of `peers` at price 1, none with a record yet.
    fn new_candidates(peers: &[PeerId]) -> Vec<Candidate> {
        peers
            .iter()
            .map(|x| Candidate {
                peer: *x,
                price_wei_per_mfuel: 1,
                reputation: 0,
            })
            .collect()
    }

    #[test]
    fn selection_skips_excluded_and_disreputable_and_is_seeded() {
        let p = peers(6);
        let mut c = new_candidates(&p);
        c[0].reputation = MIN_REPUTATION - 1;
        let exclude: HashSet<PeerId> = [p[1]].into();
        for seed in 0..50u8 {
            let chosen = select_workers(&c, &exclude, 3, &[seed; 32]);
            assert!(!chosen.contains(&p[0]) && !chosen.contains(&p[1]));
            assert_eq!(chosen, select_workers(&c, &exclude, 3, &[seed; 32]));
        }
        // new workers get picked by some seeds: not always the same three
        let picks: HashSet<Vec<PeerId>> = (0..50u8)
            .map(|s| select_workers(&c, &exclude, 3, &[s; 32]))
            .collect();
        assert!(picks.len() > 1);
        // fewer candidates than slots: take what there is
        assert_eq!(
            select_workers(&c[..3], &HashSet::new(), 5, &[0; 32]).len(),
            2
        );
    }

    #[test]
    fn exploration_skips_workers_with_a_bad_record_while_others_offer() {
        let p = peers(8);
        let mut c = new_candidates(&p);
        // Two proven workers take the majority; two timed out (TIMEOUT_FLOOR-like scores), four are new.
        c[0].reputation = 3;
        c[1].reputation = 2;
        c[2].reputation = -2;
        c[3].reputation = -8;
        let late = [p[2], p[3]];
        let mut explored = HashSet::new();
        for seed in 0..200u8 {
            let chosen = select_workers(&c, &HashSet::new(), 3, &[seed; 32]);
            assert_eq!(&chosen[..2], &[p[0], p[1]]);
            assert!(
                !late.contains(&chosen[2]),
                "seed {seed}: explored a late worker"
            );
            explored.insert(chosen[2]);
        }
        // Every new worker is explored by some seed.
        assert_eq!(explored, p[4..].iter().copied().collect());
        // With only late workers left to explore, they are still used.
        let chosen = select_workers(&c[..4], &HashSet::new(), 3, &[7; 32]);
        assert_eq!(chosen.len(), 3);
        assert!(late.contains(&chosen[2]));
    }

    #[test]
    fn pay_rounds_up_to_the_wei() {
        assert_eq!(owed_wei(0, 1000), 0);
        assert_eq!(owed_wei(1, 1), 1);
        assert_eq!(owed_wei(2_000_000, 3), 6);
        assert_eq!(
            owed_wei(u64::MAX, u64::MAX),
            (u64::MAX as u128 * u64::MAX as u128).div_ceil(1_000_000)
        );
    }
}
