//! The JSON-RPC backend against a real anvil (npm `@foundry-rs/anvil-linux-amd64`, installed by
//! `scripts/setup.d/30-chain.sh`), started on 127.0.0.1 with Sepolia's chain id and killed at the end.

use std::time::Duration;

use jobmesh_contracts::alloy::primitives::{B256, U256};
use jobmesh_contracts::alloy::signers::local::PrivateKeySigner;
use jobmesh_contracts::anvil::{Anvil, DEV_KEYS};
use jobmesh_contracts::lottery;
use jobmesh_contracts::rpc::RpcSettlement;
use jobmesh_contracts::{
    runtime_code_matches, DeployParams, LotteryState, ParamsError, Settlement, SettlementError,
};

const SEPOLIA: u64 = 11_155_111;

fn key(i: usize) -> PrivateKeySigner {
    DEV_KEYS[i].parse().unwrap()
}

#[tokio::test]
async fn rpc_backend_end_to_end_on_anvil() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let anvil = Anvil::start(SEPOLIA).expect("anvil (run scripts/setup.d/30-chain.sh)");
        let url = anvil.url();

        // A wrong chain id is refused before anything is sent.
        let err = RpcSettlement::deploy(&url, 1, key(0), DeployParams::default())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                SettlementError::WrongChain {
                    expected: 1,
                    actual: SEPOLIA
                }
            ),
            "{err}"
        );

        // A claim window beyond even the EIP-2935 history is refused before anything is sent (typed).
        let too_long = DeployParams {
            claim_window: 8192,
            ..DeployParams::default()
        };
        let err = RpcSettlement::deploy(&url, SEPOLIA, key(0), too_long)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                SettlementError::Params(ParamsError::ClaimWindowBeyondLookback {
                    claim_window: 8192,
                    lookback: 8191
                })
            ),
            "{err}"
        );
        // anvil has the EIP-2935 history: a claim window above BLOCKHASH's 256 blocks is fine.
        let params = DeployParams {
            withdraw_delay: 5,
            claim_window: 400,
            min_draw_delay: 1,
        };
        let (payer, deploy) = RpcSettlement::deploy(&url, SEPOLIA, key(0), params)
            .await
            .unwrap();
        assert!(deploy.gas_used > 0);
        let code = payer.code_at(payer.contract()).await.unwrap();
        assert!(
            runtime_code_matches(&code),
            "deployed runtime code is our artifact's"
        );
        assert_eq!(payer.params().await.unwrap(), params);

        let payees: Vec<RpcSettlement> = futures_join(&url, payer.contract()).await;
        payer.deposit(U256::from(10u64.pow(18))).await.unwrap();
        let owed: Vec<_> = payees
            .iter()
            .enumerate()
            .map(|(i, p)| (p.sender(), U256::from(1000 * (i + 1))))
            .collect();

        // Lottery 1: claimed right after the draw (BLOCKHASH).
        let head = payer.block_number().await.unwrap();
        let (s1, s2) = (B256::repeat_byte(0x51), B256::repeat_byte(0x52));
        let l1 =
            lottery::build(payer.sender(), 0, &owed, head + 3, lottery::secret_hash(s1)).unwrap();
        payer.commit(&l1.description).await.unwrap();
        assert_eq!(
            payer.lottery_state(&l1.description).await.unwrap(),
            LotteryState::Pending
        );
        let err = payees[0]
            .claim(&l1.description, &l1.leaves[0], &l1.proof(0), s1)
            .await
            .unwrap_err();
        assert_eq!(err.revert_name(), Some("DrawNotReached"), "{err}");
        anvil.mine(3).await.unwrap();
        let h = payer
            .draw_hash(&l1.description)
            .await
            .unwrap()
            .expect("fresh hash");
        let win = l1.winner(h, s1).unwrap();
        let loser = (win + 1) % 3;
        let err = payees[loser]
            .claim(&l1.description, &l1.leaves[loser], &l1.proof(loser), s1)
            .await
            .unwrap_err();
        assert_eq!(err.revert_name(), Some("NotWinner"), "{err}");
        payees[win]
            .claim(&l1.description, &l1.leaves[win], &l1.proof(win), s1)
            .await
            .unwrap();
        let err = payees[win]
            .claim(&l1.description, &l1.leaves[win], &l1.proof(win), s1)
            .await
            .unwrap_err();
        assert_eq!(err.revert_name(), Some("AlreadySettled"), "{err}");
        assert_eq!(
            payer.account(payees[win].sender()).await.unwrap().balance,
            l1.description.total
        );

        // Lottery 2: claimed (with claimAndWithdraw) 300 blocks after its draw, past BLOCKHASH's 256: the EIP-2935
        // history serves it.
        let head = payer.block_number().await.unwrap();
        let l2 =
            lottery::build(payer.sender(), 1, &owed, head + 2, lottery::secret_hash(s2)).unwrap();
        payer.commit(&l2.description).await.unwrap();
        anvil.mine(302).await.unwrap();
        let h = payer
            .draw_hash(&l2.description)
            .await
            .unwrap()
            .expect("EIP-2935 history serves old hashes");
        let win = l2.winner(h, s2).unwrap();
        // This one is pushed to the winner's wallet: only the winner may ask for that.
        let other = (win + 1) % 3;
        let err = payees[other]
            .claim_and_withdraw(&l2.description, &l2.leaves[win], &l2.proof(win), s2)
            .await
            .unwrap_err();
        assert_eq!(err.revert_name(), Some("NotPayee"), "{err}");
        let me = payees[win].sender();
        let (wallet, deposit) = (
            payees[win].eth_balance(me).await.unwrap(),
            payer.account(me).await.unwrap().balance,
        );
        let r = payees[win]
            .claim_and_withdraw(&l2.description, &l2.leaves[win], &l2.proof(win), s2)
            .await
            .unwrap();
        assert!(r.gas_price > 0, "anvil charges for gas");
        assert_eq!(
            payees[win].eth_balance(me).await.unwrap(),
            wallet + l2.description.total - r.fee(),
            "the prize, less the claim's fee, is in the winner's wallet"
        );
        assert_eq!(payer.account(me).await.unwrap().balance, deposit);
        let err = payees[win]
            .claim_and_withdraw(&l2.description, &l2.leaves[win], &l2.proof(win), s2)
            .await
            .unwrap_err();
        assert_eq!(err.revert_name(), Some("AlreadySettled"), "{err}");

        // Events list what the payer committed.
        let committed = payer.committed_by(payer.sender(), 0).await.unwrap();
        assert_eq!(committed, vec![l1.description, l2.description]);

        // Time-locked withdrawal of the remaining free balance.
        let free = payer.account(payer.sender()).await.unwrap().balance;
        payer.request_withdrawal(free).await.unwrap();
        let err = payer.withdraw().await.unwrap_err();
        assert_eq!(err.revert_name(), Some("WithdrawalLocked"), "{err}");
        anvil.mine(5).await.unwrap();
        payer.withdraw().await.unwrap();
        assert_eq!(
            payer.account(payer.sender()).await.unwrap().balance,
            U256::ZERO
        );
    })
    .await
    .expect("anvil test finished within 120 s");
}

async fn futures_join(
    url: &str,
    contract: jobmesh_contracts::alloy::primitives::Address,
) -> Vec<RpcSettlement> {
    let mut out = Vec::new();
    for i in 1..4 {
        out.push(
            RpcSettlement::connect(url, SEPOLIA, Some(key(i)), contract)
                .await
                .unwrap(),
        );
    }
    out
}
