//! UnixFS import and export throughput (`cargo bench -p jobmesh-store`).
//!
//! `import/*` hashes and lays out 64 MiB without storing it (the CPU ceiling of `jobmesh add`);
//! `add/*` and `cat` go through the on-disk store. The side-by-side comparison with the JavaScript importer is
//! `scripts/bench-store.sh`.

#![allow(clippy::result_large_err)] // StoreError carries a CID inline; fine on cold paths.

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use jobmesh_store::unixfs::{self, Profile};
use jobmesh_store::{HashAlg, Store};

const SIZE: usize = 64 * 1024 * 1024;

fn data() -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..SIZE / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let bytes = data();
    let mut group = c.benchmark_group("unixfs");
    group
        .sample_size(10)
        .throughput(Throughput::Bytes(SIZE as u64));
    for hash in [HashAlg::Sha2_256, HashAlg::Blake3] {
        let profile = Profile::KUBO.with_hash(hash).unwrap();
        group.bench_with_input(BenchmarkId::new("import", hash), &profile, |b, p| {
            b.iter(|| unixfs::import(bytes.as_slice(), p, |_, _| Ok(())).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("add", hash), &profile, |b, p| {
            b.iter_batched(
                || tempfile::tempdir().unwrap(),
                |dir| {
                    let store = Store::open(dir.path()).unwrap();
                    store.add_file(bytes.as_slice(), p).unwrap();
                    dir
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let root = store
        .add_file(bytes.as_slice(), &Profile::KUBO)
        .unwrap()
        .root;
    group.bench_function("cat", |b| {
        b.iter(|| unixfs::cat(&store, &root, &mut std::io::sink()).unwrap())
    });
    group.finish();
}

/// Every benchmark of this file, with criterion's command-line settings (what `criterion_group!` generates,
/// written out so that it has documentation).
pub fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
}

criterion_main!(benches);
