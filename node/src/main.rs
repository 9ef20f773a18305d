//! `jobmesh`: the command-line entry point. Thin on purpose: it parses and dispatches to `jobmesh_node`.

fn main() -> std::process::ExitCode {
    jobmesh_node::cli::run()
}
