//! `cargo run -p jobmesh-exec --example init_plugin -- OPTIMIZED.wasm OUT.wasm`: the wizer step of
//! `exec/plugin/build.sh` (see there). Not part of the node: it only reproduces the checked-in plugin.

#[path = "../tests/support/wizer.rs"]
mod wizer;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: init_plugin OPTIMIZED.wasm OUT.wasm");
        return std::process::ExitCode::from(2);
    };
    let result = std::fs::read(input)
        .map_err(|e| format!("cannot read {input}: {e}"))
        .and_then(|bytes| wizer::initialize_plugin(&bytes).map_err(|e| format!("wizer: {e:#}")))
        .and_then(|out| {
            std::fs::write(output, out).map_err(|e| format!("cannot write {output}: {e}"))
        });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
