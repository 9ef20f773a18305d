//! What a payee requires of a lottery from a payer (`docs/settlement.md`, "What a lottery must pay"): the debt it
//! covers, from the worker's own account of that payer ([`PayerCredit`]), and the verdict on a lottery.

use std::time::Duration;

use jobmesh_contracts::alloy::primitives::{Address, U256};
use jobmesh_contracts::lottery::{Lottery, LotteryError, PayeeTerms};

use crate::refusal::NoticeRefusal;
use libp2p_identity::PeerId;

use jobmesh_market::db::{DbError, PayerCredit};

use crate::ledger::Ledger;

/// The rounding a payer may take off each receipt a lottery covers, in wei: a payer that rounds each job's
/// amount (fuel × price / 10⁶) down instead of up is short by less than 1 wei per job.
pub const ROUNDING_PER_RECEIPT_WEI: u128 = 1;

/// The debt a payer's lottery must cover: what its receipts that arrived before the grace window say it owes,
/// less what the lotteries this worker accepted from it paid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoveredDebt {
    /// What the lottery must pay, in wei (0 if the payer paid ahead).
    pub wei: u128,
    /// How many receipts that is (the rounding tolerance is 1 wei per receipt).
    pub receipts: u64,
    /// Receipts with an amount owed that arrived before the grace window, from the start: once the lottery is
    /// accepted, that many are paid.
    pub receipts_before: u64,
}

impl CoveredDebt {
    /// The debt from a payer's account and the receipts (sum, count) that arrived within the grace window.
    pub fn of(credit: &PayerCredit, recent: (u128, u64)) -> CoveredDebt {
        let credited = credit.credited.saturating_sub(recent.0);
        let receipts_before = credit.receipts.saturating_sub(recent.1);
        CoveredDebt {
            wei: credited.saturating_sub(credit.paid),
            receipts: receipts_before.saturating_sub(credit.receipts_paid),
            receipts_before,
        }
    }

    /// What `payer` owes this worker for receipts that arrived more than `grace` before `now_ms`.
    pub fn load(
        db: &dyn Ledger,
        payer: &PeerId,
        now_ms: u64,
        grace: Duration,
    ) -> Result<CoveredDebt, DbError> {
        let since = now_ms.saturating_sub(grace.as_millis() as u64);
        Ok(CoveredDebt::of(
            &db.payer_credit(payer)?,
            db.receipts_since(payer, since)?,
        ))
    }

    /// The terms a lottery is checked against at chain head `head`.
    pub fn terms(&self, head: u64, max_draw_ahead: u64) -> PayeeTerms {
        PayeeTerms {
            owed: U256::from(self.wei),
            tolerance: U256::from(self.receipts) * U256::from(ROUNDING_PER_RECEIPT_WEI),
            current_block: head,
            max_draw_ahead,
        }
    }
}

/// Why a lottery cannot be payment from the peer that sent it, if it cannot: that peer ran no job here, or the
/// lottery's payer is not the settlement address it announced with its jobs (`known`; none recorded — jobs taken
/// before the address was kept — leaves the check to the amount). Otherwise one requester could pass another's
/// lottery off as its own payment.
pub(super) fn foreign(
    lottery: &Lottery,
    sender: &PeerId,
    ran_jobs: bool,
    known: &[[u8; 20]],
) -> Option<NoticeRefusal> {
    let payer = lottery.description.payer;
    if !ran_jobs {
        return Some(NoticeRefusal::NothingOwed { sender: *sender });
    }
    let theirs = known.is_empty() || known.contains(&payer.into_array());
    (!theirs).then_some(NoticeRefusal::ForeignPayer {
        payer,
        sender: *sender,
    })
}

/// The payee's verdict on a well-formed lottery that names it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Payment: this node's leaf.
    Accept(usize),
    /// Not payment (it pays too little or draws too late): this node's leaf, and why.
    Refuse(usize, LotteryError),
}

/// Checks `lottery` as payment of `terms` to `me`. A lottery that is malformed or has no leaf for `me` is an
/// error (it is not recorded); one whose draw block has passed is judged by its amount alone (a notice can
/// arrive late: the payer re-sends it until it is answered).
pub(super) fn judge(
    lottery: &Lottery,
    me: Address,
    terms: &PayeeTerms,
) -> Result<Verdict, NoticeRefusal> {
    let leaf = || lottery.leaf_index(me).ok_or(NoticeRefusal::NoLeaf);
    match lottery.check_payee(me, terms) {
        Ok(leaf) => Ok(Verdict::Accept(leaf)),
        Err(LotteryError::DrawBlockPassed { .. }) => Ok(Verdict::Accept(leaf()?)),
        Err(e @ (LotteryError::Underpaid { .. } | LotteryError::DrawTooFar { .. })) => {
            Ok(Verdict::Refuse(leaf()?, e))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobmesh_contracts::alloy::primitives::B256;
    use jobmesh_contracts::lottery;

    fn credit(credited: u128, paid: u128, receipts: u64, receipts_paid: u64) -> PayerCredit {
        PayerCredit {
            credited,
            paid,
            receipts,
            receipts_paid,
        }
    }

    #[test]
    fn the_debt_is_the_settled_receipts_less_what_was_paid() {
        // 5 receipts for 1,000 wei, 2 of them (400 wei) paid; one (100 wei) arrived within the grace window.
        let debt = CoveredDebt::of(&credit(1_000, 400, 5, 2), (100, 1));
        assert_eq!(
            debt,
            CoveredDebt {
                wei: 500,
                receipts: 2,
                receipts_before: 4
            }
        );
        let terms = debt.terms(7, 10);
        assert_eq!(terms.owed, U256::from(500));
        assert_eq!(terms.tolerance, U256::from(2));
        // A payer that paid ahead (a lottery covered a receipt still on its way) owes nothing now.
        assert_eq!(CoveredDebt::of(&credit(300, 400, 3, 3), (0, 0)).wei, 0);
    }

    #[test]
    fn a_lottery_counts_only_as_payment_from_the_address_its_sender_announced() {
        let (mine, theirs) = (Address::repeat_byte(1), Address::repeat_byte(7));
        let l = lottery::build(
            mine,
            0,
            &[(Address::repeat_byte(2), U256::from(5))],
            9,
            B256::ZERO,
        )
        .unwrap();
        let sender = PeerId::random();
        assert!(foreign(&l, &sender, true, &[mine.into_array()]).is_none());
        assert!(foreign(&l, &sender, true, &[theirs.into_array(), mine.into_array()]).is_none());
        assert!(
            foreign(&l, &sender, true, &[]).is_none(),
            "no address recorded"
        );
        let passed_off = foreign(&l, &sender, true, &[theirs.into_array()]).unwrap();
        assert!(
            matches!(passed_off, NoticeRefusal::ForeignPayer { payer, .. } if payer == mine),
            "{passed_off}"
        );
        assert!(passed_off.to_string().contains("is not the address"));
        let stranger = foreign(&l, &sender, false, &[]).unwrap();
        assert!(
            matches!(stranger, NoticeRefusal::NothingOwed { sender: s } if s == sender),
            "{stranger}"
        );
    }

    #[test]
    fn a_late_notice_is_judged_by_its_amount_and_a_far_draw_is_refused() {
        let me = Address::repeat_byte(2);
        let l = lottery::build(
            Address::repeat_byte(1),
            0,
            &[(me, U256::from(50))],
            20,
            B256::ZERO,
        )
        .unwrap();
        let terms = |owed: u64, head: u64| {
            CoveredDebt {
                wei: owed.into(),
                receipts: 0,
                receipts_before: 1,
            }
            .terms(head, 5)
        };
        assert!(matches!(
            judge(&l, me, &terms(50, 16)),
            Ok(Verdict::Accept(0))
        ));
        assert!(matches!(
            judge(&l, me, &terms(50, 30)),
            Ok(Verdict::Accept(0))
        ));
        assert!(matches!(
            judge(&l, me, &terms(51, 30)),
            Ok(Verdict::Refuse(0, LotteryError::Underpaid { .. }))
        ));
        assert!(matches!(
            judge(&l, me, &terms(50, 14)),
            Ok(Verdict::Refuse(0, LotteryError::DrawTooFar { .. }))
        ));
        assert!(matches!(
            judge(&l, Address::repeat_byte(3), &terms(1, 16)),
            Err(NoticeRefusal::Lottery(_) | NoticeRefusal::NoLeaf)
        ));
    }
}
