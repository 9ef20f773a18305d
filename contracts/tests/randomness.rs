//! The lottery's randomness and the promises around it (issue 18, points 3–5), attacked on the real bytecode
//! in the embedded EVM: a block builder grinding the draw hash, a payer choosing its secret after seeing the
//! hash, a payer that never reveals its secret, a payer paying itself through its own lottery to dodge the
//! withdrawal lock, a losing payee re-rolling a lapsed draw, and deployment parameters that would break a
//! promise.

mod common;

use common::{assert_reverts, eth, secret, secret_of, World};
use jobmesh_contracts::alloy::primitives::{keccak256, Address, B256, U256};
use jobmesh_contracts::alloy::sol_types::SolValue;
use jobmesh_contracts::embedded::EmbeddedSettlement;
use jobmesh_contracts::lottery::{self, Lottery};
use jobmesh_contracts::{
    runtime_code_matches, settlement_artifact, DeployParams, LotteryState, ParamsError, Settlement,
    SettlementError,
};
use rand::{Rng, SeedableRng};

const PARAMS: DeployParams = DeployParams {
    withdraw_delay: 10,
    claim_window: 20,
    min_draw_delay: 1,
};

/// Lotteries the builder attacks, candidate hashes it tries per draw block, and its leaf's share (1 in 10).
const ROUNDS: usize = 1000;
const CANDIDATES: usize = 100;
const HONEST: u64 = 9;
const SYBIL: u64 = 1;

/// The hash a builder picks for a draw block: the first of `CANDIDATES` random ones under which `wins` holds,
/// else the last one tried.
fn grind(rng: &mut impl Rng, wins: impl Fn(B256) -> bool) -> B256 {
    let mut h = B256::ZERO;
    for _ in 0..CANDIDATES {
        h = B256::from(rng.gen::<[u8; 32]>());
        if wins(h) {
            break;
        }
    }
    h
}

#[tokio::test]
async fn a_builder_grinding_the_draw_hash_wins_no_more_than_its_share() {
    // payees[0] is honest (9/10 of each lottery), payees[1] is the builder's Sybil (1/10).
    let w = World::new(31, 2, PARAMS);
    let sybil = w.payees[1];
    w.payer.deposit(eth(1)).await.unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x0061_214d);
    let (mut sybil_wins, mut colluding_wins) = (0usize, 0usize);
    for nonce in 0..ROUNDS as u64 {
        let l = w.lottery(nonce, &[HONEST, SYBIL], 2);
        w.payer.commit(&l.description).await.unwrap();
        // The builder of the draw block tries candidate hashes. Without the secret, the best it can do is
        // aim at the draw the hash alone would give (the old contract's), or at any guessed secret.
        let guess = B256::ZERO;
        let h = grind(&mut rng, |h| l.winner(h, guess) == Some(1));
        w.chain.set_block_hash(l.description.draw_block, h);
        // A builder colluding with the payer knows the secret: it would find a winning hash almost always.
        let colluding = grind(&mut rng, |h| l.winner(h, secret_of(&l)) == Some(1));
        colluding_wins += usize::from(l.winner(colluding, secret_of(&l)) == Some(1));
        w.chain.mine(2);
        // The chain draws from the builder's hash (a claim of any other leaf reverts `NotWinner`).
        let win = l.winner(h, secret_of(&l)).unwrap();
        w.claim(&l, win).await.unwrap();
        sybil_wins += usize::from(l.leaves[win].payee == sybil);
    }
    let total = U256::from((HONEST + SYBIL) * ROUNDS as u64);
    let sybil_income = w.payer.account(sybil).await.unwrap().balance;
    assert_eq!(
        sybil_income,
        U256::from((HONEST + SYBIL) * sybil_wins as u64),
        "every win the Sybil got is in its account"
    );
    assert_eq!(
        sybil_income + w.payer.account(w.payees[0]).await.unwrap().balance,
        total,
        "every lottery paid once"
    );
    // Binomial(1000, 0.1): mean 100, σ ≈ 9.5. Grinding without the secret stays within 4σ of the share; a
    // builder that could steer the draw would win nearly all 1,000 (as the colluding one shows).
    let (n, p) = (ROUNDS as f64, SYBIL as f64 / (HONEST + SYBIL) as f64);
    let bound = n * p + 4.0 * (n * p * (1.0 - p)).sqrt();
    println!("sybil wins {sybil_wins}/{ROUNDS} (bound {bound:.0}); with the payer's secret {colluding_wins}");
    assert!(
        (sybil_wins as f64) <= bound,
        "the builder won {sybil_wins} of {ROUNDS} lotteries with a 10 % leaf"
    );
    assert!((sybil_wins as f64) >= n * p - 4.0 * (n * p * (1.0 - p)).sqrt());
    assert!(colluding_wins > ROUNDS * 99 / 100, "{colluding_wins}");
}

#[tokio::test]
async fn a_payer_choosing_its_secret_after_the_hash_cannot_claim_with_it() {
    let w = World::new(32, 2, PARAMS);
    w.payer.deposit(eth(1)).await.unwrap();
    // Find a lottery whose committed secret makes the honest payee (leaf 0) win.
    let mut nonce = 0;
    let l = loop {
        let l = w.lottery(nonce, &[50, 50], 2);
        if l.winner(w.block_hash(l.description.draw_block), secret_of(&l)) == Some(0) {
            break l;
        }
        nonce += 1;
    };
    w.payer.commit(&l.description).await.unwrap();
    w.chain.mine(2);
    // After the hash is out, the payer looks for a secret that makes its accomplice (leaf 1) win.
    let h = w.block_hash(l.description.draw_block);
    let forged = (0u64..)
        .map(|i| keccak256(i.to_be_bytes()))
        .find(|s| l.winner(h, *s) == Some(1))
        .unwrap();
    let (leaf, proof) = (l.leaves[1], l.proof(1));
    let accomplice = w.client(leaf.payee);
    assert_reverts(
        accomplice
            .claim(&l.description, &leaf, &proof, forged)
            .await,
        "WrongSecret",
    );
    assert_reverts(
        accomplice
            .claim_and_withdraw(&l.description, &leaf, &proof, forged)
            .await,
        "WrongSecret",
    );
    // With the committed secret the accomplice lost, and the honest winner is paid.
    assert_reverts(
        accomplice
            .claim(&l.description, &leaf, &proof, secret_of(&l))
            .await,
        "NotWinner",
    );
    w.claim(&l, 0).await.unwrap();
    assert_eq!(
        w.payer.account(l.leaves[0].payee).await.unwrap().balance,
        U256::from(100)
    );
    assert_eq!(
        w.payer.account(leaf.payee).await.unwrap().balance,
        U256::ZERO
    );
}

/// Claims the share of every leaf of `l` in `leaves`, each sent by the next payee (anyone may send one).
async fn claim_shares(w: &World, l: &Lottery, leaves: std::ops::Range<usize>) {
    for (i, leaf) in l
        .leaves
        .iter()
        .enumerate()
        .filter(|(i, _)| leaves.contains(i))
    {
        let sender = w.payees[(i + 1) % w.payees.len()];
        w.client(sender)
            .claim_share(&l.description, leaf, &l.proof(i))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_payer_that_never_reveals_pays_every_payee_exactly_its_share() {
    let w = World::new(33, 4, PARAMS);
    let me = w.payer.sender();
    w.payer.deposit(U256::from(1000)).await.unwrap();
    let amounts = [100, 200, 300, 50];
    let l = w.lottery(0, &amounts, 2);
    w.payer.commit(&l.description).await.unwrap();
    w.chain.mine(2);
    // No payee ever gets the secret. Within the claim window there is no share to take.
    let (leaf, proof) = (l.leaves[0], l.proof(0));
    let until = l.description.draw_block + PARAMS.claim_window;
    assert_reverts(
        w.payer.claim_share(&l.description, &leaf, &proof).await,
        "ClaimWindowOpen",
    );
    while w.chain.block_number() < until {
        w.chain.mine(1);
    }
    // Past the window: a late claim of the whole lottery (the secret leaked late) is refused...
    let win = w.winner(&l);
    assert_reverts(w.claim(&l, win).await, "ClaimWindowClosed");
    // ...and each payee takes exactly its share, once.
    claim_shares(&w, &l, 0..3).await;
    assert_reverts(
        w.payer.claim_share(&l.description, &leaf, &proof).await,
        "ShareAlreadyPaid",
    );
    claim_shares(&w, &l, 3..4).await;
    for (payee, amount) in w.payees.iter().zip(amounts) {
        assert_eq!(
            w.payer.account(*payee).await.unwrap().balance,
            U256::from(amount)
        );
    }
    // Once every share is paid the lottery is settled.
    assert_reverts(
        w.payer.claim_share(&l.description, &leaf, &proof).await,
        "AlreadySettled",
    );
    // The payer got nothing back; the lottery is settled and its lane free again.
    assert_eq!(
        w.payer.account(me).await.unwrap().balance,
        U256::from(1000 - 650)
    );
    assert_eq!(w.chain.balance(w.contract), U256::from(1000));
    assert_eq!(
        w.payer.lottery_state(&l.description).await.unwrap(),
        LotteryState::Settled
    );
    assert!(!w.payer.lane_pending(me, 0).await.unwrap());
    assert_reverts(w.claim(&l, win).await, "AlreadySettled");
    let again = w.lottery(65_536, &[1, 1], 2);
    w.payer.commit(&again.description).await.unwrap();
}

#[tokio::test]
async fn a_share_claim_cannot_take_more_than_the_lottery() {
    // A payer's malformed tree: two overlapping leaves of 150 in a lottery of 200 (payees refuse such a
    // lottery; the contract still never pays out more than was committed).
    let w = World::new(34, 2, PARAMS);
    w.payer.deposit(U256::from(1000)).await.unwrap();
    let mut l = w.lottery(0, &[100, 100], 2);
    for leaf in l.leaves.iter_mut() {
        leaf.start = U256::ZERO;
        leaf.length = U256::from(150);
    }
    l.description.root = l.tree().root();
    w.payer.commit(&l.description).await.unwrap();
    w.chain.mine(2 + PARAMS.claim_window);
    let c = w.client(w.payees[0]);
    c.claim_share(&l.description, &l.leaves[0], &l.proof(0))
        .await
        .unwrap();
    assert_reverts(
        c.claim_share(&l.description, &l.leaves[1], &l.proof(1))
            .await,
        "InvalidShare",
    );
    assert_eq!(w.chain.balance(w.contract), U256::from(1000));
    assert_eq!(
        w.payer.account(w.payees[0]).await.unwrap().balance,
        U256::from(150)
    );
}

#[tokio::test]
async fn a_payer_cannot_pay_itself_through_its_own_lottery_to_dodge_the_lock() {
    let params = DeployParams {
        min_draw_delay: 3,
        ..PARAMS
    };
    let w = World::new(35, 1, params);
    let me = w.payer.sender();
    w.payer.deposit(eth(5)).await.unwrap();
    let wallet = w.chain.balance(me);
    let own = |nonce: u64, delay: u64| {
        lottery::build(
            me,
            nonce,
            &[(me, eth(5))],
            w.chain.block_number() + delay,
            lottery::secret_hash(secret(nonce)),
        )
        .unwrap()
    };
    // Drawn in the next block (the bypass) or sooner than the minimum delay: refused.
    for delay in [1, 2, 3] {
        assert_reverts(
            w.payer.commit(&own(0, delay).description).await,
            "DrawTooSoon",
        );
    }
    // The commit mined at b + 1 with its draw at b + 1 + 3 is the earliest accepted.
    let l = own(0, 4);
    w.payer.commit(&l.description).await.unwrap();
    w.chain.mine(4);
    let (leaf, proof) = (l.leaves[0], l.proof(0));
    assert_reverts(
        w.payer
            .claim_and_withdraw(&l.description, &leaf, &proof, secret(0))
            .await,
        "PayerIsPayee",
    );
    assert_reverts(
        w.payer
            .claim(&l.description, &leaf, &proof, secret(0))
            .await,
        "PayerIsPayee",
    );
    w.chain.mine(params.claim_window);
    assert_reverts(
        w.payer.claim_share(&l.description, &leaf, &proof).await,
        "PayerIsPayee",
    );
    // Nothing left the contract: the only way out of a free balance is still the time-locked withdrawal.
    assert_eq!(w.chain.balance(me), wallet);
    assert_eq!(w.chain.balance(w.contract), eth(5));
    assert_eq!(
        w.payer.lottery_state(&l.description).await.unwrap(),
        LotteryState::Pending
    );
}

#[tokio::test]
async fn a_losing_payee_cannot_reroll_a_lapsed_draw() {
    // There is no redraw: the claim window ends before BLOCKHASH forgets the draw (256 blocks here).
    let abi = &settlement_artifact().abi;
    for gone in ["redraw", "reclaim", "recordDrawHash"] {
        assert!(!abi.functions.contains_key(gone), "{gone} is still there");
    }
    let w = World::new(36, 2, PARAMS);
    w.payer.deposit(eth(1)).await.unwrap();
    let l = w.lottery(0, &[500, 500], 2);
    w.payer.commit(&l.description).await.unwrap();
    w.chain.mine(2);
    let win = w.winner(&l);
    let lose = 1 - win;
    // The winner is away; the loser waits until the draw hash is out of BLOCKHASH's reach.
    w.chain.mine(300);
    assert_eq!(w.payer.draw_hash(&l.description).await.unwrap(), None);
    assert_reverts(w.claim(&l, lose).await, "ClaimWindowClosed");
    // Whatever hash it could hope for, the claim window is closed: the loser gets its share, no more.
    for i in [lose, win] {
        w.client(l.leaves[i].payee)
            .claim_share(&l.description, &l.leaves[i], &l.proof(i))
            .await
            .unwrap();
        assert_eq!(
            w.payer.account(l.leaves[i].payee).await.unwrap().balance,
            U256::from(500)
        );
    }
}

/// Deploys the contract with raw constructor arguments, skipping the Rust-side checks.
fn deploy_raw(w: &World, args: (U256, U256, U256)) -> Result<Address, SettlementError> {
    let mut code = settlement_artifact().bytecode.to_vec();
    code.extend_from_slice(&args.abi_encode_params());
    w.chain.deploy(w.payees[0], code.into())
}

#[tokio::test]
async fn the_constructor_and_the_deploy_paths_refuse_bad_parameters() {
    let w = World::new(37, 1, PARAMS);
    let u = U256::from;
    let two64 = U256::from(1u128 << 64);
    for (args, error) in [
        ((two64, u(10), u(1)), "WithdrawDelayTooLong"),
        ((U256::MAX, u(10), u(1)), "WithdrawDelayTooLong"),
        ((u(10), u(0), u(1)), "ClaimWindowZero"),
        ((u(10), u(257), u(1)), "ClaimWindowBeyondLookback"),
        ((u(10), u(256), u(0)), "MinDrawDelayInvalid"),
        ((u(10), u(256), two64), "MinDrawDelayInvalid"),
    ] {
        assert_reverts(deploy_raw(&w, args), error);
    }
    // The largest accepted values deploy, and read back unchanged.
    let max = deploy_raw(&w, (two64 - u(1), u(256), two64 - u(1))).unwrap();
    let c = EmbeddedSettlement::new(w.chain.clone(), w.payees[0], max);
    assert_eq!(
        c.params().await.unwrap(),
        DeployParams {
            withdraw_delay: u64::MAX,
            claim_window: 256,
            min_draw_delay: u64::MAX,
        }
    );
    // Its runtime code is our artifact's but for the immutables (the parameters) written into it; any other
    // byte changed is not.
    let code = w.chain.code(max);
    assert_ne!(
        code,
        settlement_artifact().deployed_bytecode,
        "immutables filled in"
    );
    assert!(runtime_code_matches(&code));
    let mut tampered = code.to_vec();
    tampered[0] ^= 1;
    assert!(!runtime_code_matches(&tampered));
    // The Rust deploy path refuses the same before sending anything, with a typed error.
    for (params, expected) in [
        (
            DeployParams {
                claim_window: 0,
                ..PARAMS
            },
            ParamsError::ClaimWindowZero,
        ),
        (
            DeployParams {
                claim_window: 257,
                ..PARAMS
            },
            ParamsError::ClaimWindowBeyondLookback {
                claim_window: 257,
                lookback: 256,
            },
        ),
        (
            DeployParams {
                min_draw_delay: 0,
                ..PARAMS
            },
            ParamsError::MinDrawDelayZero,
        ),
    ] {
        let txs = w.chain.tx_count();
        match w.chain.deploy_settlement(w.payees[0], params) {
            Err(SettlementError::Params(e)) => assert_eq!(e, expected),
            other => panic!("{params:?}: expected {expected:?}, got {other:?}"),
        }
        assert_eq!(w.chain.tx_count(), txs, "nothing was sent");
    }
}
