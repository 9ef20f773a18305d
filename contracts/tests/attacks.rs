//! Attacks against the real contract bytecode in the embedded EVM: each must revert with its named error, and
//! a reentrant attacker (The DAO's pattern) must drain nothing.

mod common;

use common::{assert_reverts, eth, secret, World};
use jobmesh_contracts::alloy::primitives::{Address, Bytes, B256, U256};
use jobmesh_contracts::alloy::sol_types::{SolCall, SolEvent, SolValue};
use jobmesh_contracts::bindings::attacker::ReentrantAttacker as A;
use jobmesh_contracts::bindings::attacker::Settlement as AS;
use jobmesh_contracts::bindings::Settlement as S;
use jobmesh_contracts::lottery::{self, Description, Leaf, Lottery};
use jobmesh_contracts::{
    attacker_artifact, error_name, DeployParams, LotteryState, Settlement, SettlementError,
    SettlementErrors,
};

const PARAMS: DeployParams = DeployParams {
    withdraw_delay: 10,
    claim_window: 50,
    min_draw_delay: 1,
};

#[tokio::test]
async fn double_claim_reverts_already_settled() {
    let w = World::new(1, 4, PARAMS);
    w.payer.deposit(eth(1)).await.unwrap();
    let l = w.lottery(0, &[10, 20, 30, 40], 2);
    w.payer.commit(&l.description).await.unwrap();
    w.chain.mine(2);
    let win = w.winner(&l);
    w.claim(&l, win).await.unwrap();
    assert_reverts(w.claim(&l, win).await, "AlreadySettled");
    // Submitted by someone else, too.
    let leaf = l.leaves[win];
    assert_reverts(
        w.payer
            .claim(&l.description, &leaf, &l.proof(win), secret(0))
            .await,
        "AlreadySettled",
    );
    assert_eq!(
        w.payer.lottery_state(&l.description).await.unwrap(),
        LotteryState::Settled
    );
}

#[tokio::test]
async fn forged_or_mismatched_proof_reverts_invalid_proof() {
    let w = World::new(2, 5, PARAMS);
    w.payer.deposit(eth(1)).await.unwrap();
    let l = w.lottery(0, &[1, 2, 3, 4, 5], 2);
    w.payer.commit(&l.description).await.unwrap();
    w.chain.mine(2);
    let win = w.winner(&l);
    let leaf = l.leaves[win];
    let c = w.client(leaf.payee);
    for (d, bad_leaf, proof, error) in bad_claims(&l, win) {
        assert_reverts(c.claim(&d, &bad_leaf, &proof, secret(d.nonce)).await, error);
    }
    // An outsider claiming with a leaf of its own.
    let outsider = Leaf {
        payee: Address::repeat_byte(9),
        ..leaf
    };
    assert_reverts(
        c.claim(&l.description, &outsider, &l.proof(win), secret(0))
            .await,
        "InvalidProof",
    );
    // The genuine claim still works afterwards.
    c.claim(&l.description, &leaf, &l.proof(win), secret(0))
        .await
        .unwrap();
}

/// Claims of the winning leaf `win` that must fail, whatever the claim function, with the error each gets: a
/// random sibling path, another leaf's proof, a widened interval (the whole lottery) with the genuine proof,
/// and a description that was never committed (a different total).
fn bad_claims(l: &Lottery, win: usize) -> Vec<(Description, Leaf, Vec<B256>, &'static str)> {
    let (d, leaf, proof) = (l.description, l.leaves[win], l.proof(win));
    let forged = proof.iter().map(|_| B256::repeat_byte(0xab)).collect();
    let other = l.proof((win + 1) % l.leaves.len());
    let wide = Leaf {
        start: U256::ZERO,
        length: d.total,
        ..leaf
    };
    let mut fake = d;
    fake.total += U256::from(1);
    vec![
        (d, leaf, forged, "InvalidProof"),
        (d, leaf, other, "InvalidProof"),
        (d, wide, proof.clone(), "InvalidProof"),
        (fake, leaf, proof, "UnknownLottery"),
    ]
}

#[tokio::test]
async fn non_winner_claim_reverts_not_winner() {
    let w = World::new(3, 6, PARAMS);
    w.payer.deposit(eth(1)).await.unwrap();
    let l = w.lottery(7, &[5, 5, 5, 5, 5, 5], 3);
    w.payer.commit(&l.description).await.unwrap();
    w.chain.mine(3);
    let win = w.winner(&l);
    for i in (0..l.leaves.len()).filter(|&i| i != win) {
        assert_reverts(w.claim(&l, i).await, "NotWinner");
    }
    w.claim(&l, win).await.unwrap();
}

#[tokio::test]
async fn claim_before_draw_reverts_draw_not_reached() {
    let w = World::new(4, 3, PARAMS);
    w.payer.deposit(eth(1)).await.unwrap();
    let l = w.lottery(0, &[1, 1, 1], 5);
    w.payer.commit(&l.description).await.unwrap();
    for i in 0..3 {
        assert_reverts(w.claim(&l, i).await, "DrawNotReached");
    }
    // A claim mined in the draw block itself cannot see that block's hash: still not reached.
    while w.chain.block_number() + 1 < l.description.draw_block {
        w.chain.mine(1);
    }
    assert_reverts(w.claim(&l, 0).await, "DrawNotReached");
    w.chain.mine(1);
    w.claim(&l, w.winner(&l)).await.unwrap();
}

#[tokio::test]
async fn commit_exceeding_free_deposit_reverts() {
    let w = World::new(5, 2, PARAMS);
    w.payer.deposit(U256::from(100)).await.unwrap();
    let l = w.lottery(0, &[60, 41], 2);
    assert_reverts(w.payer.commit(&l.description).await, "ExceedsFreeBalance");
    // Two lotteries that fit one at a time but not together.
    let a = w.lottery(1, &[30, 30], 2);
    let b = w.lottery(2, &[20, 21], 2);
    assert_reverts(
        w.payer.commit_many(&[a.description, b.description]).await,
        "ExceedsFreeBalance",
    );
    w.payer.commit(&a.description).await.unwrap();
    assert_reverts(w.payer.commit(&b.description).await, "ExceedsFreeBalance");
    assert_eq!(
        w.payer.account(w.payer.sender()).await.unwrap().balance,
        U256::from(40)
    );
    // A draw block that is not in the future, and a busy lane.
    let past = w.lottery(3, &[1, 1], 0);
    assert_reverts(w.payer.commit(&past.description).await, "DrawTooSoon");
    let same_lane = w.lottery(1 + 65_536, &[1, 1], 2);
    assert_reverts(w.payer.commit(&same_lane.description).await, "LaneBusy");
}

#[tokio::test]
async fn withdrawal_of_reserved_value_reverts() {
    let w = World::new(6, 2, PARAMS);
    let me = w.payer.sender();
    w.payer.deposit(U256::from(1000)).await.unwrap();
    let l = w.lottery(0, &[400, 400], 5);
    w.payer.commit(&l.description).await.unwrap();
    // 800 is reserved: only 200 is free.
    assert_reverts(
        w.payer.request_withdrawal(U256::from(201)).await,
        "ExceedsFreeBalance",
    );
    // Request while free, then commit the value away before the unlock: the withdrawal must fail.
    w.payer.request_withdrawal(U256::from(200)).await.unwrap();
    let l2 = w.lottery(1, &[100, 100], 5);
    w.payer.commit(&l2.description).await.unwrap();
    assert_reverts(w.payer.withdraw().await, "WithdrawalLocked");
    w.chain.mine(PARAMS.withdraw_delay);
    assert_reverts(w.payer.withdraw().await, "ExceedsFreeBalance");
    assert_eq!(w.payer.account(me).await.unwrap().balance, U256::ZERO);
    assert_eq!(w.chain.balance(w.contract), U256::from(1000));
    // No request at all.
    assert_reverts(
        w.client(w.payees[0]).withdraw().await,
        "NoWithdrawalRequested",
    );
}

#[tokio::test]
async fn time_locked_withdrawal_pays_exactly_once() {
    let w = World::new(7, 1, PARAMS);
    let me = w.payer.sender();
    let before = w.chain.balance(me);
    w.payer.deposit(U256::from(500)).await.unwrap();
    let r = w.payer.request_withdrawal(U256::from(300)).await.unwrap();
    let acct = w.payer.account(me).await.unwrap();
    assert_eq!(acct.unlock_block, r.block_number + PARAMS.withdraw_delay);
    assert_reverts(w.payer.withdraw().await, "WithdrawalLocked");
    w.chain.mine(PARAMS.withdraw_delay);
    w.payer.withdraw().await.unwrap();
    assert_reverts(w.payer.withdraw().await, "NoWithdrawalRequested");
    assert_eq!(w.chain.balance(me), before - U256::from(200));
    assert_eq!(w.chain.balance(w.contract), U256::from(200));
}

/// Deploys the attacker against the world's contract; returns its address.
fn deploy_attacker(w: &World, owner: Address, max_reentries: u64) -> Address {
    let mut code = attacker_artifact().bytecode.to_vec();
    code.extend_from_slice(&(w.contract, U256::from(max_reentries)).abi_encode_params());
    w.chain.deploy(owner, code.into()).unwrap()
}

fn attacker_call<C: SolCall>(w: &World, owner: Address, attacker: Address, call: C, value: U256) {
    w.chain
        .transact_raw(owner, Some(attacker), call.abi_encode().into(), value)
        .unwrap();
}

fn attacker_view<C: SolCall>(w: &World, attacker: Address, call: C) -> C::Return {
    let out = w
        .chain
        .view_raw(Address::ZERO, attacker, call.abi_encode().into())
        .unwrap();
    C::abi_decode_returns(&out).unwrap()
}

#[tokio::test]
async fn reentrant_withdrawer_drains_nothing() {
    let w = World::new(8, 1, PARAMS);
    let owner = w.payees[0];
    // An honest depositor whose money the attacker would like to take.
    w.payer.deposit(eth(10)).await.unwrap();
    let attacker = deploy_attacker(&w, owner, 3);
    attacker_call(&w, owner, attacker, A::depositCall {}, eth(1));
    attacker_call(
        &w,
        owner,
        attacker,
        A::requestWithdrawalCall {
            amount: alloy_u96(eth(1)),
        },
        U256::ZERO,
    );
    w.chain.mine(PARAMS.withdraw_delay);
    attacker_call(&w, owner, attacker, A::withdrawCall {}, U256::ZERO);

    assert_eq!(
        w.chain.balance(attacker),
        eth(1),
        "attacker got exactly its own deposit"
    );
    assert_eq!(
        w.chain.balance(w.contract),
        eth(10),
        "the honest deposit is intact"
    );
    assert!(
        attacker_view(&w, attacker, A::reentriesCall {}) >= U256::from(1),
        "it did try to re-enter"
    );
    assert_eq!(
        attacker_view(&w, attacker, A::reentrySuccessesCall {}),
        U256::ZERO
    );
    let last: Bytes = attacker_view(&w, attacker, A::lastRevertCall {});
    let name = error_name(&last);
    assert!(
        matches!(
            name.as_deref(),
            Some("Reentrancy") | Some("ExceedsFreeBalance")
        ),
        "re-entry reverted with {name:?}"
    );
    assert_eq!(w.payer.account(attacker).await.unwrap().balance, U256::ZERO);
}

/// A one-leaf lottery of `prize` paying `payee` (it wins for sure), committed and drawn, as the attacker's ABI
/// types.
async fn sure_win(w: &World, payee: Address, prize: U256) -> (Lottery, AS::Lottery, AS::Leaf) {
    let l = lottery::build(
        w.payer.sender(),
        0,
        &[(payee, prize)],
        w.chain.block_number() + 2,
        lottery::secret_hash(secret(0)),
    )
    .unwrap();
    w.payer.commit(&l.description).await.unwrap();
    w.chain.mine(2);
    let sol_lottery = AS::Lottery {
        payer: l.description.payer,
        nonce: l.description.nonce,
        total: alloy_u96(l.description.total),
        root: l.description.root,
        drawBlock: l.description.draw_block,
        secretHash: l.description.secret_hash,
    };
    let leaf = l.leaves[0];
    let sol_leaf = AS::Leaf {
        payee: leaf.payee,
        start: alloy_u96(leaf.start),
        length: alloy_u96(leaf.length),
    };
    (l, sol_lottery, sol_leaf)
}

#[tokio::test]
async fn reentrant_payee_drains_nothing() {
    let w = World::new(9, 1, PARAMS);
    let owner = w.payees[0];
    let attacker = deploy_attacker(&w, owner, 5);
    w.payer.deposit(eth(10)).await.unwrap();
    // The attacker is the only payee of a 2-ETH lottery: it wins for sure.
    let (_, sol_lottery, sol_leaf) = sure_win(&w, attacker, eth(2)).await;
    attacker_call(
        &w,
        owner,
        attacker,
        A::claimCall {
            lottery: sol_lottery.clone(),
            leaf: sol_leaf.clone(),
            proof: vec![],
            secret: secret(0),
        },
        U256::ZERO,
    );
    // Claiming twice through the attacker fails like any double claim.
    let again = A::claimCall {
        lottery: sol_lottery,
        leaf: sol_leaf,
        proof: vec![],
        secret: secret(0),
    };
    let err = w
        .chain
        .transact_raw(owner, Some(attacker), again.abi_encode().into(), U256::ZERO)
        .unwrap_err();
    assert_eq!(err.revert_name(), Some("AlreadySettled"));

    attacker_call(
        &w,
        owner,
        attacker,
        A::requestWithdrawalCall {
            amount: alloy_u96(eth(2)),
        },
        U256::ZERO,
    );
    w.chain.mine(PARAMS.withdraw_delay);
    attacker_call(&w, owner, attacker, A::withdrawCall {}, U256::ZERO);
    assert_eq!(w.chain.balance(attacker), eth(2), "exactly the prize");
    assert_eq!(
        w.chain.balance(w.contract),
        eth(8),
        "the payer's remaining deposit is intact"
    );
    assert_eq!(
        attacker_view(&w, attacker, A::reentrySuccessesCall {}),
        U256::ZERO
    );
    assert_eq!(
        w.payer.account(w.payer.sender()).await.unwrap().balance,
        eth(8)
    );
}

fn alloy_u96(v: U256) -> jobmesh_contracts::alloy::primitives::Uint<96, 2> {
    jobmesh_contracts::alloy::primitives::Uint::<96, 2>::from(v.to::<u128>())
}

#[tokio::test]
async fn committed_lotteries_are_listed_from_events() {
    let w = World::new(12, 2, PARAMS);
    w.payer.deposit(eth(1)).await.unwrap();
    let a = w.lottery(0, &[1, 2], 2);
    let b = w.lottery(1, &[3, 4], 3);
    w.payer.commit(&a.description).await.unwrap();
    w.payer.commit_many(&[b.description]).await.unwrap();
    assert_eq!(
        w.payer.committed_by(w.payer.sender(), 0).await.unwrap(),
        vec![a.description, b.description]
    );
    assert!(w
        .payer
        .committed_by(w.payees[0], 0)
        .await
        .unwrap()
        .is_empty());
}

// ------------------------------------------------------------------------------------- claimAndWithdraw

#[tokio::test]
async fn claim_and_withdraw_pays_the_winners_wallet_exactly_once() {
    let w = World::new(13, 4, PARAMS);
    w.payer.deposit(eth(1)).await.unwrap();
    let l = w.lottery(0, &[10, 20, 30, 40], 2);
    w.payer.commit(&l.description).await.unwrap();
    w.chain.mine(2);
    let win = w.winner(&l);
    let winner = l.leaves[win].payee;
    let wallet = w.chain.balance(winner);
    let r = w.claim_and_withdraw(&l, win).await.unwrap();
    // Gas is free on the embedded chain: the wallet grows by exactly the prize.
    assert_eq!(r.fee(), U256::ZERO);
    assert_eq!(w.chain.balance(winner), wallet + U256::from(100));
    assert_eq!(w.payer.account(winner).await.unwrap().balance, U256::ZERO);
    assert_eq!(w.chain.balance(w.contract), eth(1) - U256::from(100));
    assert_eq!(
        w.payer.lottery_state(&l.description).await.unwrap(),
        LotteryState::Settled
    );
    // The same event as a credited claim.
    let claimed = r
        .logs
        .iter()
        .find_map(|log| S::LotteryClaimed::decode_log(log).ok())
        .expect("LotteryClaimed");
    assert_eq!(
        (claimed.id, claimed.winner, claimed.amount),
        (l.id(), winner, U256::from(100))
    );
    // Once only, whichever way it is asked again.
    assert_reverts(w.claim_and_withdraw(&l, win).await, "AlreadySettled");
    assert_reverts(w.claim(&l, win).await, "AlreadySettled");
    assert_eq!(w.chain.balance(winner), wallet + U256::from(100));
}

#[tokio::test]
async fn claim_then_claim_and_withdraw_reverts_already_settled() {
    let w = World::new(14, 3, PARAMS);
    w.payer.deposit(eth(1)).await.unwrap();
    let l = w.lottery(0, &[5, 6, 7], 2);
    w.payer.commit(&l.description).await.unwrap();
    w.chain.mine(2);
    let win = w.winner(&l);
    let winner = l.leaves[win].payee;
    let wallet = w.chain.balance(winner);
    w.claim(&l, win).await.unwrap();
    assert_reverts(w.claim_and_withdraw(&l, win).await, "AlreadySettled");
    assert_eq!(w.chain.balance(winner), wallet, "nothing pushed");
    assert_eq!(
        w.payer.account(winner).await.unwrap().balance,
        U256::from(18),
        "credited once"
    );
    assert_eq!(w.chain.balance(w.contract), eth(1));
}

#[tokio::test]
async fn claim_and_withdraw_by_anyone_but_the_payee_reverts_not_payee() {
    let w = World::new(15, 3, PARAMS);
    w.payer.deposit(eth(1)).await.unwrap();
    let l = w.lottery(0, &[5, 6, 7], 2);
    w.payer.commit(&l.description).await.unwrap();
    w.chain.mine(2);
    let win = w.winner(&l);
    let leaf = l.leaves[win];
    let proof = l.proof(win);
    let other = l.leaves[(win + 1) % l.leaves.len()].payee;
    for caller in [w.payer.sender(), other] {
        let err = w
            .client(caller)
            .claim_and_withdraw(&l.description, &leaf, &proof, secret(0))
            .await
            .unwrap_err();
        assert_eq!(err.revert_name(), Some("NotPayee"), "{err}");
        let SettlementError::Reverted {
            decoded: Some(decoded),
            ..
        } = err
        else {
            panic!("not a decoded revert: {err}")
        };
        assert_eq!(
            *decoded,
            SettlementErrors::NotPayee(S::NotPayee {
                caller,
                payee: leaf.payee
            })
        );
    }
    // Another payee's leaf, claimed by that payee but not won by it, is NotWinner, not NotPayee.
    let loser = (win + 1) % l.leaves.len();
    assert_reverts(w.claim_and_withdraw(&l, loser).await, "NotWinner");
    // Nothing moved; the winner still gets it.
    assert_eq!(w.chain.balance(w.contract), eth(1));
    w.claim_and_withdraw(&l, win).await.unwrap();
    assert_eq!(w.chain.balance(w.contract), eth(1) - U256::from(18));
}

#[tokio::test]
async fn claim_and_withdraw_checks_like_claim() {
    let w = World::new(16, 5, PARAMS);
    w.payer.deposit(eth(1)).await.unwrap();
    let l = w.lottery(0, &[1, 2, 3, 4, 5], 4);
    w.payer.commit(&l.description).await.unwrap();
    // Before the draw.
    for i in 0..l.leaves.len() {
        assert_reverts(w.claim_and_withdraw(&l, i).await, "DrawNotReached");
    }
    w.chain.mine(4);
    let win = w.winner(&l);
    let leaf = l.leaves[win];
    let c = w.client(leaf.payee);
    for (d, bad_leaf, proof, error) in bad_claims(&l, win) {
        assert_reverts(
            c.claim_and_withdraw(&d, &bad_leaf, &proof, secret(d.nonce))
                .await,
            error,
        );
    }
    // Every loser, with its own genuine leaf and proof.
    for i in (0..l.leaves.len()).filter(|&i| i != win) {
        assert_reverts(w.claim_and_withdraw(&l, i).await, "NotWinner");
    }
    assert_eq!(w.chain.balance(w.contract), eth(1));
    w.claim_and_withdraw(&l, win).await.unwrap();
    assert_eq!(w.chain.balance(w.contract), eth(1) - U256::from(15));
}

#[tokio::test]
async fn reentrant_payee_of_claim_and_withdraw_drains_nothing() {
    let w = World::new(17, 1, PARAMS);
    let owner = w.payees[0];
    let attacker = deploy_attacker(&w, owner, 5);
    // The attacker holds a deposit of its own too, so that a re-entered withdrawal request succeeds.
    attacker_call(&w, owner, attacker, A::depositCall {}, eth(1));
    w.payer.deposit(eth(10)).await.unwrap();
    let (l, sol_lottery, sol_leaf) = sure_win(&w, attacker, eth(1)).await;
    attacker_call(
        &w,
        owner,
        attacker,
        A::claimAndWithdrawCall {
            lottery: sol_lottery,
            leaf: sol_leaf,
            proof: vec![],
            secret: secret(0),
        },
        U256::ZERO,
    );
    // The outer call succeeded and paid exactly the prize; every re-entry from the receive hook failed:
    // withdraw and claimAndWithdraw meet the lock, the credited claim meets the settled lane.
    assert_eq!(w.chain.balance(attacker), eth(1), "exactly the prize");
    assert_eq!(
        attacker_view(&w, attacker, A::receivedCall {}),
        eth(1),
        "paid once"
    );
    assert_eq!(
        attacker_view(&w, attacker, A::reentriesCall {}),
        U256::from(1)
    );
    assert_eq!(
        attacker_view(&w, attacker, A::reentrySuccessesCall {}),
        U256::ZERO
    );
    let failed: Vec<Option<String>> = attacker_view(&w, attacker, A::failedReentriesCall {})
        .iter()
        .map(|s| error_name(s.as_slice()))
        .collect();
    let named = |n: &str| Some(n.to_string());
    assert_eq!(
        failed,
        vec![
            named("Reentrancy"),     // withdraw()
            named("Reentrancy"),     // requestWithdrawal() succeeded, then withdraw()
            named("Reentrancy"),     // claimAndWithdraw()
            named("AlreadySettled"), // claim()
        ]
    );
    assert_eq!(
        w.payer.lottery_state(&l.description).await.unwrap(),
        LotteryState::Settled
    );
    // The books: the payer's 10 ETH less the prize, plus the attacker's own 1 ETH deposit, untouched.
    assert_eq!(w.chain.balance(w.contract), eth(10));
    assert_eq!(w.payer.account(attacker).await.unwrap().balance, eth(1));
    assert_eq!(
        w.payer.account(w.payer.sender()).await.unwrap().balance,
        eth(9)
    );
}

#[tokio::test]
async fn payee_refusing_the_transfer_reverts_transfer_failed_and_can_still_claim() {
    let w = World::new(18, 1, PARAMS);
    let owner = w.payees[0];
    let attacker = deploy_attacker(&w, owner, 5);
    w.payer.deposit(eth(10)).await.unwrap();
    let (l, sol_lottery, sol_leaf) = sure_win(&w, attacker, eth(2)).await;
    attacker_call(
        &w,
        owner,
        attacker,
        A::setRefuseCall { refuse_: true },
        U256::ZERO,
    );
    let push = A::claimAndWithdrawCall {
        lottery: sol_lottery.clone(),
        leaf: sol_leaf.clone(),
        proof: vec![],
        secret: secret(0),
    };
    let err = w
        .chain
        .transact_raw(owner, Some(attacker), push.abi_encode().into(), U256::ZERO)
        .unwrap_err();
    assert_eq!(err.revert_name(), Some("TransferFailed"), "{err}");
    // Reverted as a whole: still pending, nothing moved.
    assert_eq!(
        w.payer.lottery_state(&l.description).await.unwrap(),
        LotteryState::Pending
    );
    assert_eq!(w.chain.balance(w.contract), eth(10));
    // A payee that cannot take ETH claims into its deposit account instead.
    attacker_call(
        &w,
        owner,
        attacker,
        A::claimCall {
            lottery: sol_lottery,
            leaf: sol_leaf,
            proof: vec![],
            secret: secret(0),
        },
        U256::ZERO,
    );
    assert_eq!(w.payer.account(attacker).await.unwrap().balance, eth(2));
    assert_eq!(w.chain.balance(w.contract), eth(10));
}
