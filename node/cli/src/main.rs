//! `jobmesh`: the command line. Owns argument parsing and printing only: [`cli`] (global options, the
//! subcommand tree, errors at the edge) and one module per command group in [`commands`]; each command turns
//! its arguments into typed configs and calls the libraries (`jobmesh_node` for a node's lifecycle and API
//! client, `jobmesh_simnet` for `jobmesh simnet`, the store, exec and contracts crates).
//!
//! Must not touch: market, settlement or network logic, the API server or a node's lifecycle; nothing below
//! this crate prints.

#[cfg_attr(feature = "system-allocator", allow(dead_code))]
mod alloc;
mod cli;
mod commands;
mod context;

/// mimalloc instead of glibc's malloc: a node (and a hundred simulated ones) allocates small buffers from many
/// threads, and glibc's `_int_malloc` was the hottest symbol of a 100-node simulation's profile; with mimalloc
/// 100 nodes × 300 jobs took 117 instead of 211 CPU-seconds (BENCHMARKS.md, "Simulator"). Allocations of
/// 1 MiB and more are mapped from the OS directly ([`alloc::LargeMapped`]).
/// (Build with `--features system-allocator` to profile the heap with tools that hook `malloc`, e.g. heaptrack.)
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: alloc::LargeMapped<mimalloc::MiMalloc> = alloc::LargeMapped(mimalloc::MiMalloc);

/// mimalloc option ids (`mi_option_e` in the bundled `mimalloc.h`, v2.x).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Hands freed memory back to the OS at once and commits arena memory as it is touched: with mimalloc's
/// defaults 100 nodes × 300 jobs peaked at 3.2 GiB resident, with these 2.6 GiB.
fn tune_allocator() {
    if cfg!(feature = "system-allocator") {
        return;
    }
    // SAFETY: plain option setters of the allocator, called once at start before any other thread exists.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

fn main() -> std::process::ExitCode {
    tune_allocator();
    cli::run()
}
