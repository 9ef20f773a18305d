//! The compute market (`docs/protocol.md`): messages and their signatures, the requester's job state machine,
//! worker selection and the majority tally, and the sled database of jobs, reputation and the owed ledger.
//!
//! Pure logic and persistence only: the network glue (gossipsub topic, request-response protocol) and the CLI
//! call into this module; nothing here opens a socket or runs a job.

pub mod db;
pub mod messages;
pub mod requester;
pub mod tally;
pub mod wire_ids;
