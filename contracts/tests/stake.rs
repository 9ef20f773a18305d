//! The stake contract against its real bytecode: in the embedded EVM (every attack must revert with its named
//! error, and a reentrant staker must drain nothing) and on a real anvil through the JSON-RPC backend.

use std::sync::Arc;
use std::time::Duration;

use jobmesh_contracts::alloy::primitives::{keccak256, Address, B256, U256};
use jobmesh_contracts::alloy::signers::local::PrivateKeySigner;
use jobmesh_contracts::alloy::sol_types::{SolCall, SolEvent, SolValue};
use jobmesh_contracts::anvil::{Anvil, DEV_KEYS};
use jobmesh_contracts::embedded::{accounts, EmbeddedChain, EmbeddedSettlement};
use jobmesh_contracts::stake::bindings::attacker::StakeAttacker as A;
use jobmesh_contracts::stake::bindings::Stake as K;
use jobmesh_contracts::stake::{
    node_id, stake_artifact, stake_attacker_artifact, stake_code_matches, StakeClient, StakeParams,
};
use jobmesh_contracts::{error_name, Settlement, SettlementError, TxReceipt};

const PARAMS: StakeParams = StakeParams { unstake_delay: 20 };

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

/// Asserts that `r` is a revert with the custom error `name`.
#[track_caller]
fn assert_reverts<T: std::fmt::Debug>(r: Result<T, SettlementError>, name: &str) {
    match r {
        Err(e) => assert_eq!(
            e.revert_name(),
            Some(name),
            "expected revert {name}, got {e}"
        ),
        Ok(v) => panic!("expected revert {name}, got success {v:?}"),
    }
}

/// A chain with a deployed stake contract and `n` workers funded with 1,000 ETH each.
struct World {
    chain: Arc<EmbeddedChain>,
    stake: StakeClient<EmbeddedSettlement>,
    workers: Vec<Address>,
}

impl World {
    fn new(seed: u64, n: usize) -> Self {
        let chain = EmbeddedChain::new(seed, 31337);
        let all = accounts(&format!("stake-{seed}"), n + 1);
        for a in &all {
            chain.fund(*a, eth(1000));
        }
        let stake = StakeClient::deploy_embedded(chain.clone(), all[0], PARAMS).unwrap();
        Self {
            chain,
            stake,
            workers: all[1..].to_vec(),
        }
    }

    fn worker(&self, i: usize) -> StakeClient<EmbeddedSettlement> {
        self.stake.as_sender(self.workers[i])
    }

    fn held(&self) -> U256 {
        self.chain.balance(self.stake.contract())
    }
}

fn node(i: u8) -> B256 {
    node_id(&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20, i])
}

fn event<E: SolEvent>(r: &TxReceipt) -> E {
    r.logs
        .iter()
        .find_map(|l| E::decode_log(l).ok().map(|e| e.data))
        .unwrap_or_else(|| panic!("no {} event", E::SIGNATURE))
}

#[tokio::test]
async fn stake_unstake_withdraw_pays_exactly_once_with_events() {
    let w = World::new(1, 1);
    let (c, me) = (w.worker(0), w.workers[0]);
    let wallet = w.chain.balance(me);
    let r = c.stake(node(1), eth(3)).await.unwrap();
    let e: K::Staked = event(&r);
    assert_eq!(
        (e.worker, e.node, e.amount, e.total),
        (me, node(1), eth(3), eth(3))
    );
    let r = c.stake(node(1), eth(2)).await.unwrap();
    assert_eq!(event::<K::Staked>(&r).total, eth(5));
    assert_eq!(c.active_stake_for(me, node(1)).await.unwrap(), eth(5));

    let r = c.request_unstake(eth(4)).await.unwrap();
    let e: K::UnstakeRequested = event(&r);
    assert_eq!((e.worker, e.amount), (me, eth(4)));
    assert_eq!(
        e.unlockBlock,
        U256::from(r.block_number + PARAMS.unstake_delay)
    );
    // Requesters stop counting the requested amount at once.
    let a = c.account(me).await.unwrap();
    assert_eq!((a.amount, a.unlocking, a.node), (eth(1), eth(4), node(1)));
    assert_eq!(c.active_stake_for(me, node(1)).await.unwrap(), eth(1));

    w.chain.mine(PARAMS.unstake_delay);
    let r = c.withdraw().await.unwrap();
    let e: K::Unstaked = event(&r);
    assert_eq!((e.worker, e.amount), (me, eth(4)));
    assert_reverts(c.withdraw().await, "NothingUnlocking");
    assert_eq!(
        w.chain.balance(me),
        wallet - eth(1),
        "4 of the 5 ETH came back, once"
    );
    assert_eq!(w.held(), eth(1));
    assert_eq!(c.unstake_delay().await.unwrap(), PARAMS.unstake_delay);
    assert!(stake_code_matches(&w.chain.code(c.contract())));
}

#[tokio::test]
async fn early_unstake_reverts_unstake_locked_until_the_unlock_block() {
    let w = World::new(2, 1);
    let c = w.worker(0);
    c.stake(node(1), eth(2)).await.unwrap();
    let r = c.request_unstake(eth(2)).await.unwrap();
    let unlock = r.block_number + PARAMS.unstake_delay;
    assert_reverts(c.withdraw().await, "UnstakeLocked");
    // The withdrawal mined in block `unlock - 1` is still locked; the one mined in block `unlock` is not.
    while w.chain.block_number() + 2 < unlock {
        w.chain.mine(1);
    }
    assert_reverts(c.withdraw().await, "UnstakeLocked");
    assert_eq!(w.held(), eth(2), "nothing left early");
    w.chain.mine(1);
    let r = c.withdraw().await.unwrap();
    assert_eq!(r.block_number, unlock);
    assert_eq!(w.held(), U256::ZERO);
}

#[tokio::test]
async fn double_unstake_reverts_and_pays_nothing_twice() {
    let w = World::new(3, 2);
    let c = w.worker(0);
    w.worker(1).stake(node(2), eth(7)).await.unwrap();
    c.stake(node(1), eth(4)).await.unwrap();
    c.request_unstake(eth(2)).await.unwrap();
    // A second request while the first is pending (it would restart or double the lock's amount).
    assert_reverts(c.request_unstake(eth(2)).await, "UnstakePending");
    assert_reverts(c.request_unstake(eth(1)).await, "UnstakePending");
    w.chain.mine(PARAMS.unstake_delay);
    c.withdraw().await.unwrap();
    assert_reverts(c.withdraw().await, "NothingUnlocking");
    // The rest may be unstaked in a second round, and no more than the rest.
    assert_reverts(c.request_unstake(eth(3)).await, "ExceedsStake");
    c.request_unstake(eth(2)).await.unwrap();
    w.chain.mine(PARAMS.unstake_delay);
    c.withdraw().await.unwrap();
    assert_reverts(c.withdraw().await, "NothingUnlocking");
    assert_eq!(c.account(w.workers[0]).await.unwrap().amount, U256::ZERO);
    assert_eq!(w.held(), eth(7), "the other worker's stake is intact");
}

#[tokio::test]
async fn unstake_then_restake_keeps_the_two_apart() {
    let w = World::new(4, 1);
    let (c, me) = (w.worker(0), w.workers[0]);
    let wallet = w.chain.balance(me);
    c.stake(node(1), eth(3)).await.unwrap();
    c.request_unstake(eth(3)).await.unwrap();
    // While the old stake unlocks the identity stays bound: no moving it to a fresh node early.
    let err = c.stake(node(2), eth(1)).await.unwrap_err();
    assert_eq!(err.revert_name(), Some("NodeMismatch"), "{err}");
    // Re-staking for the same node is fresh, active stake; the request is unchanged.
    c.stake(node(1), eth(5)).await.unwrap();
    let a = c.account(me).await.unwrap();
    assert_eq!((a.amount, a.unlocking), (eth(5), eth(3)));
    assert_reverts(c.withdraw().await, "UnstakeLocked");
    w.chain.mine(PARAMS.unstake_delay);
    c.withdraw().await.unwrap();
    let a = c.account(me).await.unwrap();
    assert_eq!(
        (a.amount, a.unlocking),
        (eth(5), U256::ZERO),
        "only the request was paid"
    );
    assert_eq!(w.chain.balance(me), wallet - eth(5));
    // Only once everything is out may the stake be bound to another node.
    c.request_unstake(eth(5)).await.unwrap();
    w.chain.mine(PARAMS.unstake_delay);
    c.withdraw().await.unwrap();
    c.stake(node(2), eth(1)).await.unwrap();
    assert_eq!(c.active_stake_for(me, node(2)).await.unwrap(), eth(1));
    assert_eq!(c.active_stake_for(me, node(1)).await.unwrap(), U256::ZERO);
    assert_eq!(w.held(), eth(1));
}

#[tokio::test]
async fn a_stake_cannot_be_claimed_or_moved_by_another_address() {
    let w = World::new(5, 2);
    let (owner, thief) = (w.worker(0), w.worker(1));
    let (a, b) = (w.workers[0], w.workers[1]);
    owner.stake(node(1), eth(10)).await.unwrap();
    // The thief has no stake of its own to unstake or withdraw, whatever node it names.
    assert_reverts(thief.request_unstake(eth(1)).await, "ExceedsStake");
    assert_reverts(thief.withdraw().await, "NothingUnlocking");
    assert_eq!(
        thief.active_stake_for(b, node(1)).await.unwrap(),
        U256::ZERO
    );
    // Staking a little for the owner's node binds the thief's own account, not the owner's stake.
    thief.stake(node(1), U256::from(1)).await.unwrap();
    assert_eq!(
        thief.active_stake_for(b, node(1)).await.unwrap(),
        U256::from(1)
    );
    assert_eq!(owner.active_stake_for(a, node(1)).await.unwrap(), eth(10));
    // An offer from another node paid to the owner's address gets none of the owner's stake.
    assert_eq!(
        owner.active_stake_for(a, node(9)).await.unwrap(),
        U256::ZERO
    );
    // Only the owner can move its stake out, and only to itself.
    let thief_wallet = w.chain.balance(b);
    owner.request_unstake(eth(10)).await.unwrap();
    w.chain.mine(PARAMS.unstake_delay);
    assert_reverts(thief.withdraw().await, "NothingUnlocking");
    owner.withdraw().await.unwrap();
    assert_eq!(w.chain.balance(b), thief_wallet);
    assert_eq!(w.held(), U256::from(1));
}

#[tokio::test]
async fn zero_and_overflowing_amounts_revert() {
    let w = World::new(6, 1);
    let (c, me) = (w.worker(0), w.workers[0]);
    assert_reverts(c.stake(node(1), U256::ZERO).await, "ZeroAmount");
    assert_reverts(c.stake(B256::ZERO, eth(1)).await, "ZeroNode");
    assert_reverts(c.request_unstake(U256::ZERO).await, "ZeroAmount");
    assert_reverts(c.request_unstake(U256::from(1)).await, "ExceedsStake");
    // A uint96 stake is full at 2^96 - 1 wei; one more wei overflows.
    let max96 = (U256::from(1) << 96) - U256::from(1);
    w.chain.fund(me, max96 + eth(1));
    c.stake(node(1), max96).await.unwrap();
    assert_reverts(c.stake(node(1), U256::from(1)).await, "AmountTooLarge");
    assert_eq!(c.account(me).await.unwrap().amount, max96);
    // Amounts beyond uint96 are refused by the client before anything is sent.
    let err = c.request_unstake(max96 + U256::from(1)).await.unwrap_err();
    assert!(matches!(err, SettlementError::Invalid(_)), "{err}");
    // A delay that does not fit the unlock block's uint64 is refused at deployment.
    let mut code = stake_artifact().bytecode.to_vec();
    code.extend_from_slice(&(U256::from(u64::MAX) + U256::from(1),).abi_encode_params());
    let err = w.chain.deploy(me, code.into()).unwrap_err();
    assert_eq!(err.revert_name(), Some("UnstakeDelayTooLong"), "{err}");
}

fn deploy_attacker(w: &World, owner: Address, max_reentries: u64) -> Address {
    let mut code = stake_attacker_artifact().bytecode.to_vec();
    code.extend_from_slice(&(w.stake.contract(), U256::from(max_reentries)).abi_encode_params());
    w.chain.deploy(owner, code.into()).unwrap()
}

fn attacker_call<C: SolCall>(
    w: &World,
    owner: Address,
    attacker: Address,
    call: C,
    value: U256,
) -> Result<TxReceipt, SettlementError> {
    w.chain
        .transact_raw(owner, Some(attacker), call.abi_encode().into(), value)
}

fn attacker_view<C: SolCall>(w: &World, attacker: Address, call: C) -> C::Return {
    let out = w
        .chain
        .view_raw(Address::ZERO, attacker, call.abi_encode().into())
        .unwrap();
    C::abi_decode_returns(&out).unwrap()
}

fn u96(v: U256) -> jobmesh_contracts::alloy::primitives::Uint<96, 2> {
    jobmesh_contracts::alloy::primitives::Uint::<96, 2>::from(v.to::<u128>())
}

#[tokio::test]
async fn reentrant_staker_drains_nothing() {
    let w = World::new(7, 2);
    let owner = w.workers[0];
    w.worker(1).stake(node(2), eth(10)).await.unwrap();
    let attacker = deploy_attacker(&w, owner, 3);
    let stake = A::stakeCall { node_: node(1) };
    attacker_call(&w, owner, attacker, stake, eth(2)).unwrap();
    let request = A::requestUnstakeCall {
        amount: u96(eth(1)),
    };
    attacker_call(&w, owner, attacker, request, U256::ZERO).unwrap();
    w.chain.mine(PARAMS.unstake_delay);
    attacker_call(&w, owner, attacker, A::withdrawCall {}, U256::ZERO).unwrap();

    assert_eq!(
        w.chain.balance(attacker),
        eth(1),
        "exactly the unlocked amount"
    );
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
    let lock = Some("Reentrancy".to_string());
    // withdraw(), requestUnstake(1), stake(): every one meets the lock.
    assert_eq!(failed, vec![lock.clone(), lock.clone(), lock]);
    let a = w.stake.account(attacker).await.unwrap();
    assert_eq!((a.amount, a.unlocking), (eth(1), U256::ZERO));
    assert_eq!(
        w.held(),
        eth(11),
        "the honest stake and the attacker's remaining 1 ETH"
    );
}

#[tokio::test]
async fn a_receiver_refusing_the_payout_keeps_its_request() {
    let w = World::new(8, 1);
    let owner = w.workers[0];
    let attacker = deploy_attacker(&w, owner, 0);
    attacker_call(&w, owner, attacker, A::stakeCall { node_: node(1) }, eth(2)).unwrap();
    let request = A::requestUnstakeCall {
        amount: u96(eth(2)),
    };
    attacker_call(&w, owner, attacker, request, U256::ZERO).unwrap();
    w.chain.mine(PARAMS.unstake_delay);
    attacker_call(
        &w,
        owner,
        attacker,
        A::setRefuseCall { refuse_: true },
        U256::ZERO,
    )
    .unwrap();
    let err = attacker_call(&w, owner, attacker, A::withdrawCall {}, U256::ZERO).unwrap_err();
    assert_eq!(err.revert_name(), Some("TransferFailed"), "{err}");
    // Reverted as a whole: the request is still there and the ETH still held.
    assert_eq!(w.stake.account(attacker).await.unwrap().unlocking, eth(2));
    assert_eq!(w.held(), eth(2));
    attacker_call(
        &w,
        owner,
        attacker,
        A::setRefuseCall { refuse_: false },
        U256::ZERO,
    )
    .unwrap();
    attacker_call(&w, owner, attacker, A::withdrawCall {}, U256::ZERO).unwrap();
    assert_eq!(w.chain.balance(attacker), eth(2));
    assert_eq!(w.held(), U256::ZERO);
}

#[tokio::test]
async fn rpc_stake_backend_end_to_end_on_anvil() {
    const SEPOLIA: u64 = 11_155_111;
    tokio::time::timeout(Duration::from_secs(120), async {
        let anvil = Anvil::start(SEPOLIA).expect("anvil (run scripts/setup.d/30-chain.sh)");
        let url = anvil.url();
        let key = |i: usize| -> PrivateKeySigner { DEV_KEYS[i].parse().unwrap() };
        let err = StakeClient::deploy_rpc(&url, 1, key(0), PARAMS)
            .await
            .unwrap_err();
        assert!(matches!(err, SettlementError::WrongChain { .. }), "{err}");
        let (deployer, receipt) = StakeClient::deploy_rpc(&url, SEPOLIA, key(0), PARAMS)
            .await
            .unwrap();
        assert!(receipt.gas_used > 0);
        let code = deployer
            .backend()
            .code_at(deployer.contract())
            .await
            .unwrap();
        assert!(
            stake_code_matches(&code),
            "deployed runtime code is our artifact's"
        );
        assert_eq!(
            deployer.unstake_delay().await.unwrap(),
            PARAMS.unstake_delay
        );

        let backend = jobmesh_contracts::rpc::RpcSettlement::connect(
            &url,
            SEPOLIA,
            Some(key(1)),
            deployer.contract(),
        )
        .await
        .unwrap();
        let c = StakeClient::new(backend);
        let me = c.sender();
        let peer = keccak256(b"a peer id");
        c.stake(peer, eth(2)).await.unwrap();
        assert_eq!(c.active_stake_for(me, peer).await.unwrap(), eth(2));
        c.request_unstake(eth(2)).await.unwrap();
        assert_eq!(c.active_stake_for(me, peer).await.unwrap(), U256::ZERO);
        assert_reverts(c.withdraw().await, "UnstakeLocked");
        anvil.mine(PARAMS.unstake_delay).await.unwrap();
        let wallet = c.backend().eth_balance(me).await.unwrap();
        let r = c.withdraw().await.unwrap();
        assert!(r.gas_price > 0, "anvil charges for gas");
        assert_eq!(
            c.backend().eth_balance(me).await.unwrap(),
            wallet + eth(2) - r.fee()
        );
        assert_reverts(c.withdraw().await, "NothingUnlocking");
        assert_eq!(
            c.backend().eth_balance(c.contract()).await.unwrap(),
            U256::ZERO
        );
    })
    .await
    .expect("anvil stake test finished within 120 s");
}
