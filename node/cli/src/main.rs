//! `jobmesh`: the command-line entry point. Thin on purpose: it parses and dispatches to `jobmesh_node`, and
//! hands it the simulator (`jobmesh simnet`), which lives in `jobmesh_simnet` because it builds on the node.

fn main() -> std::process::ExitCode {
    jobmesh_node::cli::run_with(jobmesh_simnet::command::run)
}
