//! The admission rules and the judgement of challenges.

use libp2p_identity::Keypair;

use super::*;
use crate::messages::seal;
use crate::testkit::cid;

const T0: u64 = 1_000_000;

fn accepted(job: JobId) -> Accepted {
    Accepted {
        job_id: job,
        receipt: cid(b"receipt"),
        output: cid(b"forged output"),
        status: "ok".into(),
        fuel_used: 1_000,
        accepted_ms: T0,
    }
}

fn challenge(job: JobId) -> Challenge {
    Challenge {
        job_id: job,
        receipt: cid(b"receipt"),
        output: cid(b"true output"),
        status: "ok".into(),
        fuel_used: 1_000,
    }
}

fn lookup(job: &JobId) -> Option<Accepted> {
    (job.0[0] != 0xff).then(|| accepted(*job))
}

#[test]
fn a_signed_challenge_in_the_window_is_admitted_once() {
    let key = Keypair::generate_ed25519();
    let mut gate = ChallengeGate::new(DEFAULT_CHALLENGE_WINDOW_MS);
    let job = JobId([1; 32]);
    let sealed = seal(&key, &challenge(job));
    let (who, c, a) = gate.admit(&sealed, lookup, T0 + 10).unwrap();
    assert_eq!(
        (who, c, a),
        (key.public().to_peer_id(), challenge(job), accepted(job))
    );
    // The same bytes again (a replay), or a second challenge by the same challenger: refused.
    assert!(matches!(
        gate.admit(&sealed, lookup, T0 + 20),
        Err(ChallengeError::Duplicate(_))
    ));
    let mut other = challenge(job);
    other.fuel_used += 1;
    assert!(matches!(
        gate.admit(&seal(&key, &other), lookup, T0 + 30),
        Err(ChallengeError::Duplicate(_))
    ));
    // Another challenger may still challenge the job.
    let key2 = Keypair::generate_ed25519();
    assert!(gate
        .admit(&seal(&key2, &challenge(job)), lookup, T0 + 40)
        .is_ok());
}

#[test]
fn forged_oversized_unknown_late_or_undisputed_challenges_are_refused() {
    let key = Keypair::generate_ed25519();
    let mut gate = ChallengeGate::new(60_000);
    let job = JobId([2; 32]);
    // A forged challenge: the signed body altered after signing.
    let mut forged = seal(&key, &challenge(job));
    // fuel_used 1000 is CBOR 0x19 0x03 0xe8 in the signed body: make it 1001.
    let at = forged
        .windows(3)
        .position(|w| w == [0x19, 0x03, 0xe8])
        .expect("the fuel in the body")
        + 2;
    forged[at] ^= 1;
    assert!(matches!(
        gate.admit(&forged, lookup, T0),
        Err(ChallengeError::Message(_))
    ));
    let mut big = challenge(job);
    big.status = "x".repeat(2 * MAX_CHALLENGE_BYTES);
    assert!(matches!(
        gate.admit(&seal(&key, &big), lookup, T0),
        Err(ChallengeError::Message(MessageError::TooLarge { .. }))
    ));
    let unknown = JobId([0xff; 32]);
    let err = gate
        .admit(&seal(&key, &challenge(unknown)), lookup, T0)
        .unwrap_err();
    assert!(matches!(err, ChallengeError::UnknownJob(_)));
    assert_eq!(err.to_string().lines().count(), 1);
    let mut wrong = challenge(job);
    wrong.receipt = cid(b"another receipt");
    assert!(matches!(
        gate.admit(&seal(&key, &wrong), lookup, T0),
        Err(ChallengeError::WrongReceipt { .. })
    ));
    assert!(matches!(
        gate.admit(&seal(&key, &challenge(job)), lookup, T0 + 60_001),
        Err(ChallengeError::WindowClosed(_))
    ));
    let mut same = challenge(job);
    same.output = accepted(job).output;
    assert!(matches!(
        gate.admit(&seal(&key, &same), lookup, T0),
        Err(ChallengeError::NoDispute)
    ));
    // None of the refusals used the challenger's slot: a valid challenge still gets in.
    assert!(gate.admit(&seal(&key, &challenge(job)), lookup, T0).is_ok());
}

#[test]
fn a_challenger_gets_a_few_re_runs_an_hour() {
    let key = Keypair::generate_ed25519();
    let mut gate = ChallengeGate::new(u64::MAX / 2);
    for i in 0..CHALLENGES_PER_HOUR as u8 {
        let sealed = seal(&key, &challenge(JobId([10 + i; 32])));
        assert!(gate.admit(&sealed, lookup, T0 + u64::from(i)).is_ok());
    }
    let next = seal(&key, &challenge(JobId([50; 32])));
    assert!(matches!(
        gate.admit(&next, lookup, T0 + 100),
        Err(ChallengeError::RateLimited(_))
    ));
    assert!(gate.admit(&next, lookup, T0 + 3_600_000).is_ok());
}

#[test]
fn the_re_run_decides() {
    let job = JobId([3; 32]);
    let (a, c) = (accepted(job), challenge(job));
    assert_eq!(judge(&a, &c, (&c.output, "ok", 1_000)), Resolution::Upheld);
    assert_eq!(
        judge(&a, &c, (&a.output, "ok", 1_000)),
        Resolution::Rejected
    );
    // Same output, other fuel: the accepted result is not reproduced either.
    assert_eq!(
        judge(&a, &c, (&a.output, "ok", 999)),
        Resolution::Inconclusive
    );
}
