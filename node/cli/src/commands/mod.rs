//! One module per group of subcommands. Each defines its clap arguments and a `run` function that takes the
//! shared [`crate::context::Context`]. Add a group by adding a module here and a variant in `cli::Command`.

pub mod init;
pub mod job;
pub mod job_market;
pub mod net;
pub mod node;
pub mod settle;
pub mod simnet;
pub mod simnet_run;
pub mod store;
pub mod verify_args;
