#!/usr/bin/env bash
# Content-store throughput, jobmesh vs the JavaScript reference implementation, side by side in one run.
#
#   scripts/bench-store.sh [SIZE_BYTES] [RUNS]      (defaults: 1 GiB, 3 runs)
#
# Builds the release `jobmesh` into $CARGO_TARGET_DIR (JOBMESH_BIN=<path> uses that binary instead).
#
# For each run, on the same seeded file (AES-256-CTR keystream of seed 1, tests/interop/unixfs/gen.mjs) in a
# fresh temp dir, profile kubo (CIDv1, raw leaves, 256 KiB chunks, 174 links):
#   add  sha2-256:  `jobmesh add` (release build, sled store on disk)
#                   vs ipfs-unixfs-importer into blockstore-fs (blocks as files on disk, like a real add)
#                   and into blockstore-core's MemoryBlockstore (no disk; the faster JS variant)
#   add  blake3:    the same three, the JS importer with hash-wasm's BLAKE3 substituted for its hard-coded
#                   sha2-256 (see tests/interop/unixfs/lib.mjs)
#   cat:            `jobmesh cat` vs ipfs-unixfs-exporter over the blockstore-fs store, both to /dev/null
# Every contender's root CID is checked to be the same. Prints medians (MB/s = 10^6 bytes/s) and the ratios
# jobmesh / JS as a Markdown table for BENCHMARKS.md. The input stays in the page cache for everyone; `sync`
# runs before each timed command. blockstore-fs writes a file per 256 KiB block and never fsyncs; jobmesh appends
# 256 KiB blocks to a pack file and, before it pins, fsyncs the pack and its sled index (so the 1 GiB reaches the
# disk inside the timed add). To compare like with like, the `sync` that makes the JS contender's blocks durable
# is timed right after it ("JS-fs + sync"); the plain JS-fs figure is reported too.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
size="${1:-1073741824}"
runs="${2:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/jobmesh/target}"
js="$root/tests/interop/unixfs"

bash scripts/setup.d/10-js-unixfs.sh
if [ -n "${JOBMESH_BIN:-}" ]; then
  bin="$JOBMESH_BIN" # a prebuilt release binary; no build
else
  cargo build --release --quiet -p jobmesh --bin jobmesh
  bin="$CARGO_TARGET_DIR/release/jobmesh"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/jobmesh-bench-store.XXXXXX")"
trap 'rm -rf "$work"' EXIT
input="$work/input"
node "$js/gen.mjs" "$size" 1 "$input"

# results: "<name> <seconds>" lines
results="$work/results"
: >"$results"

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }

# time_it NAME CMD...: runs CMD with stdout into $work/out, appends its wall time ("NAME s") and its CPU time,
# user + system ("cpu-NAME s"), leaves the output there. CPU time is the steadier figure on a shared machine:
# other processes stretch wall time but not the work a contender does.
time_it() {
  local name="$1"; shift
  local t0 t1
  sync # no contender pays for the previous one's dirty pages
  t0="$EPOCHREALTIME"
  /usr/bin/time -f '%U %S' -o "$work/cpu" "$@" >"${TIME_IT_OUT:-$work/out}"
  t1="$EPOCHREALTIME"
  echo "$name $(elapsed "$t0" "$t1")" >>"$results"
  echo "cpu-$name $(awk '{printf "%.3f", $1 + $2}' "$work/cpu")" >>"$results"
}

# same_cid NAME EXPECTED: the CID in $work/out must be EXPECTED.
same_cid() {
  local got
  got="$(head -n1 "$work/out" | tr -d '[:space:]')"
  if [ "$got" != "$2" ]; then
    echo "error: $1 gave root $got, expected $2" >&2
    exit 1
  fi
}

for run in $(seq 1 "$runs"); do
  echo "run $run/$runs" >&2
  for hash in sha2-256 blake3; do
    # Fresh stores per round, deleted only at the end: ext4 scans recently freed inodes when it creates files, so
    # whoever writes right after a mass deletion pays for it (seen with perf: ext4_create/recently_deleted).
    ours="$work/ours-$run-$hash"
    fsbs="$work/fsbs-$run-$hash"
    time_it "add-jobmesh-$hash" "$bin" --data-dir "$ours" add --profile kubo --hash "$hash" "$input"
    cid="$(head -n1 "$work/out" | tr -d '[:space:]')"
    time_it "add-js-fs-$hash" node "$js/cid.mjs" --hash "$hash" --blockstore "fs:$fsbs" kubo "$input"
    same_cid "JS importer (blockstore-fs, $hash)" "$cid"
    # What it takes to make the JS contender's blocks durable too (jobmesh's add ends with an fsync; blockstore-fs
    # never syncs): the `sync` right after it, timed on its own so both figures come from the same run.
    t0="$EPOCHREALTIME"; sync; t1="$EPOCHREALTIME"
    js_add="$(grep "^add-js-fs-$hash " "$results" | tail -n1 | cut -d' ' -f2)"
    js_sync="$(elapsed "$t0" "$t1")"
    echo "sync-js-fs-$hash $js_sync" >>"$results"
    echo "add-js-fs-durable-$hash $(awk -v a="$js_add" -v b="$js_sync" 'BEGIN {printf "%.3f", a + b}')" >>"$results"
    time_it "add-js-mem-$hash" node "$js/cid.mjs" --hash "$hash" --blockstore memory kubo "$input"
    same_cid "JS importer (memory, $hash)" "$cid"
    if [ "$hash" = sha2-256 ]; then
      TIME_IT_OUT=/dev/null time_it cat-jobmesh "$bin" --data-dir "$ours" cat "$cid"
      TIME_IT_OUT=/dev/null time_it cat-js-fs node "$js/cat.mjs" --blockstore "fs:$fsbs" "$cid"
    fi
  done
done
rm -rf "$work"/ours-* "$work"/fsbs-*

median() { grep "^$1 " "$results" | awk '{print $2}' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mbps() { awk -v s="$size" -v t="$1" 'BEGIN {printf "%.0f", s / t / 1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b / a}'; }

echo
echo "Input: $size bytes, profile kubo, $runs runs, $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
echo
echo "jobmesh's add is durable (fsync before the pin); \"JS-fs + sync\" adds the \`sync\` that makes the JS blocks durable too."
echo
echo "| operation | jobmesh (median s, MB/s) | JS blockstore-fs + sync (median s, MB/s) | JS blockstore-fs (median s, MB/s) | JS memory (median s, MB/s) | jobmesh ÷ JS-fs + sync | jobmesh ÷ JS-fs | jobmesh ÷ JS-memory |"
echo "|---|---|---|---|---|---|---|---|"
for hash in sha2-256 blake3; do
  o="$(median "add-jobmesh-$hash")"; d="$(median "add-js-fs-durable-$hash")"; f="$(median "add-js-fs-$hash")"; m="$(median "add-js-mem-$hash")"
  printf '| add %s | %.2f s, %s MB/s | %.2f s, %s MB/s | %.2f s, %s MB/s | %.2f s, %s MB/s | %s× | %s× | %s× |\n' \
    "$hash" "$o" "$(mbps "$o")" "$d" "$(mbps "$d")" "$f" "$(mbps "$f")" "$m" "$(mbps "$m")" \
    "$(ratio "$o" "$d")" "$(ratio "$o" "$f")" "$(ratio "$o" "$m")"
done
o="$(median cat-jobmesh)"; f="$(median cat-js-fs)"
printf '| cat (sha2-256 DAG) | %.2f s, %s MB/s | — | %.2f s, %s MB/s | — | — | %s× | — |\n' \
  "$o" "$(mbps "$o")" "$f" "$(mbps "$f")" "$(ratio "$o" "$f")"
echo
echo "CPU time (user + system, median s) — the same runs; ratio = JS CPU ÷ jobmesh CPU:"
echo
echo "| operation | jobmesh | JS blockstore-fs | JS memory | JS-fs ÷ jobmesh | JS-memory ÷ jobmesh |"
echo "|---|---|---|---|---|---|"
for hash in sha2-256 blake3; do
  o="$(median "cpu-add-jobmesh-$hash")"; f="$(median "cpu-add-js-fs-$hash")"; m="$(median "cpu-add-js-mem-$hash")"
  printf '| add %s | %.2f s | %.2f s | %.2f s | %s× | %s× |\n' "$hash" "$o" "$f" "$m" "$(ratio "$o" "$f")" "$(ratio "$o" "$m")"
done
o="$(median cpu-cat-jobmesh)"; f="$(median cpu-cat-js-fs)"
printf '| cat (sha2-256 DAG) | %.2f s | %.2f s | — | %s× | — |\n' "$o" "$f" "$(ratio "$o" "$f")"
echo
echo "All runs (seconds):"
sort "$results" | awk '{a[$1]=a[$1] " " $2} END {for (k in a) print "  " k ":" a[k]}' | sort
