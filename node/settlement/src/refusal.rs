//! Why a payee refuses a lottery notice: one typed reason per check in `Settler::accept`. The reason's text is
//! what the payer reads in the notice's `Reject` answer, so each message names the check that failed.

use jobmesh_contracts::lottery::LotteryError;
use jobmesh_contracts::SettlementError;
use jobmesh_market::db::DbError;
use jobmesh_market::runner::RunError;
use jobmesh_store::Cid;
use libp2p_identity::PeerId;

/// Why a lottery notice was not taken as payment.
#[derive(Debug, thiserror::Error)]
pub enum NoticeRefusal {
    /// The same lottery was refused before; the stored reason is given again.
    #[error("{0}")]
    RefusedBefore(String),
    /// This node's ledger could not be read or written.
    #[error("the payee's ledger: {0}")]
    Ledger(#[from] DbError),
    /// The lottery file could not be fetched from the payer.
    #[error("cannot fetch the lottery file {file}: {source}")]
    Fetch {
        /// The file the notice names.
        file: Cid,
        /// What the mesh said.
        #[source]
        source: Box<jobmesh_p2p::Error>,
    },
    /// The fetched file could not be read back from the store.
    #[error("cannot read the lottery file: {0}")]
    Read(#[from] RunError),
    /// The blocking read task did not finish.
    #[error("the lottery file's read task failed: {0}")]
    ReadTask(#[from] tokio::task::JoinError),
    /// The file is not a lottery's JSON.
    #[error("not a lottery file: {0}")]
    NotALottery(#[from] serde_json::Error),
    /// The file is a lottery, but not the one the notice names.
    #[error("the file is not the lottery the notice names")]
    WrongFile,
    /// The peer that sent the notice ran no job here.
    #[error("{sender} owes this node nothing: it ran no job for it")]
    NothingOwed {
        /// The notice's sender.
        sender: PeerId,
    },
    /// The lottery's payer is not the settlement address the sender announced with its jobs.
    #[error("the lottery's payer {payer} is not the address {sender} announced")]
    ForeignPayer {
        /// The payer address inside the lottery.
        payer: jobmesh_contracts::alloy::primitives::Address,
        /// The notice's sender.
        sender: PeerId,
    },
    /// The lottery is malformed or has no leaf for this node.
    #[error("{0}")]
    Lottery(#[source] Box<LotteryError>),
    /// This node's address has no leaf in a lottery it would otherwise accept.
    #[error("the lottery has no leaf for this node")]
    NoLeaf,
    /// The chain could not be read.
    #[error("cannot read the chain: {0}")]
    Chain(#[source] Box<SettlementError>),
    /// The lottery is not committed on chain.
    #[error("the lottery is not committed on chain")]
    NotOnChain,
    /// The lottery pays too little or draws too late; it was kept as refused and the debt stays open.
    #[error("refused as payment: {0}")]
    NotPayment(Box<LotteryError>),
    /// The notice's secret names a lottery this node does not hold.
    #[error("unknown lottery")]
    UnknownLottery,
}

impl From<LotteryError> for NoticeRefusal {
    fn from(e: LotteryError) -> Self {
        NoticeRefusal::Lottery(Box::new(e))
    }
}

impl From<SettlementError> for NoticeRefusal {
    fn from(e: SettlementError) -> Self {
        NoticeRefusal::Chain(Box::new(e))
    }
}
