#!/usr/bin/env bash
# A NAT testbed of real processes in Linux network namespaces (needs root, `ip` and `nft`).
#
#   internet (bridge) ── pub: bootstrap + relay node, 10.200.0.10
#        ├── r1: NAT (nftables masquerade: keeps ports)     ── home 1, 10.201.1.0/24: 2 requesters
#        ├── r2: NAT (nftables masquerade: keeps ports)     ── home 2, 10.201.2.0/24: 2 workers
#        └── r3: NAT (masquerade fully-random: symmetric)   ── home 3, 10.201.3.0/24: 2 workers
#
# The routers drop what comes in from the WAN unasked, like a home router's firewall; the hosts give up a TCP
# connect after 2 SYN retransmissions (≈ 7 s, Linux's default is ≈ 2 min), so a dial-back to a NATed node fails
# in seconds.
# Every address lives inside the namespaces created here; every namespace name starts with a prefix unique to
# this run, and an EXIT trap stops the nodes and deletes the namespaces, even on failure. Every wait is bounded.
# Checks: reachability (pub public, every home node private), cross-home pairs direct after a hole punch behind
# the port-keeping NATs and relayed where the symmetric NAT is involved, a file added behind one NAT fetched
# behind the others (direct and relayed), jobs submitted from home 1 run and verified by workers behind the
# other NATs. Prints `RESULT key=value` lines for the figures (the test and BENCHMARKS.md read them).
#
# Usage: nat-testbed.sh JOBMESH_BIN [FETCH_MIB] [JOBS]     (defaults: 8 MiB, 4 jobs)
# With JOBMESH_NAT_LOOPBACK=1 it also runs the same jobs on a loopback mesh of the same shape, for comparison.
set -euo pipefail
BIN="$(readlink -f "$1")"
FETCH_MIB="${2:-8}"
JOBS="${3:-4}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
for tool in ip nft jq; do
  command -v "$tool" >/dev/null || { echo "nat-testbed: $tool is missing (scripts/setup.d/60-netns.sh)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "nat-testbed: needs root (network namespaces)" >&2; exit 2; }

P="${JOBMESH_NETNS_PREFIX:-jm$(( $$ % 100000 ))x}"   # unique prefix of this run's namespaces
WORK="$(mktemp -d /tmp/jobmesh-nat.XXXXXX)"
PIDS=()
log() { printf '[nat-testbed %s] %s\n' "$(date +%T)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for n in $(ip netns list | awk '{print $1}' | grep "^$P" || true); do ip netns del "$n" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    for f in "$WORK"/*.log; do [ -e "$f" ] && { echo "---- $f (last 15 lines)" >&2; tail -n 15 "$f" >&2; }; done
  fi
  if [ -n "${JOBMESH_NAT_KEEP_LOGS:-}" ]; then mkdir -p "$JOBMESH_NAT_KEEP_LOGS"; cp "$WORK"/*.log "$JOBMESH_NAT_KEEP_LOGS"/ 2>/dev/null || true; fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT INT TERM

in_ns() { local n="$1"; shift; ip netns exec "$P$n" "$@"; }

# ---- topology ----
ip netns add "${P}inet"
ip -n "${P}inet" link add br0 type bridge
ip -n "${P}inet" link set br0 up
ip -n "${P}inet" link set lo up

# attach NS IFNAME ADDR/LEN: a veth from the internet bridge to NS.
attach_wan() {
  local n="$1" ifname="$2" addr="$3"
  ip -n "${P}inet" link add "p-$n" type veth peer name "$ifname" netns "$P$n"
  ip -n "${P}inet" link set "p-$n" master br0 up
  ip -n "$P$n" addr add "$addr" dev "$ifname"
  ip -n "$P$n" link set "$ifname" up
}

ip netns add "${P}pub"; ip -n "${P}pub" link set lo up
in_ns pub sysctl -qw net.ipv4.tcp_syn_retries=2
attach_wan pub eth0 10.200.0.10/24

HOMES=(1 2 3)
declare -A HOSTS=([1]="a b" [2]="a b" [3]="a b")
for h in "${HOMES[@]}"; do
  r="r$h"
  ip netns add "$P$r"; ip -n "$P$r" link set lo up
  attach_wan "$r" wan0 "10.200.0.1$h/24"
  ip -n "$P$r" link add br0 type bridge
  ip -n "$P$r" addr add "10.201.$h.1/24" dev br0
  ip -n "$P$r" link set br0 up
  in_ns "$r" sysctl -qw net.ipv4.ip_forward=1
  if [ "$h" = 3 ]; then nat="masquerade fully-random"; else nat="masquerade"; fi
  # Like a home router: NAT out, and whatever comes in from the WAN side unasked is dropped (a TCP reset or an
  # ICMP error would abort the SYN a hole punch sends before the other side's SYN opened the mapping, where a
  # dropped SYN is simply sent again, crosses the other one, and the two make one connection).
  in_ns "$r" nft -f - <<NFT
table ip nat {
  chain postrouting { type nat hook postrouting priority srcnat; oifname "wan0" $nat; }
}
table inet fw {
  chain input { type filter hook input priority 0; iifname "wan0" ct state new drop; }
  chain forward { type filter hook forward priority 0; iifname "wan0" ct state new drop; }
}
NFT
  i=0
  for x in ${HOSTS[$h]}; do
    i=$((i + 1)); n="h$h$x"
    ip netns add "$P$n"; ip -n "$P$n" link set lo up
    ip -n "$P$r" link add "l-$x" type veth peer name eth0 netns "$P$n"
    ip -n "$P$r" link set "l-$x" master br0 up
    ip -n "$P$n" addr add "10.201.$h.1$i/24" dev eth0
    ip -n "$P$n" link set eth0 up
    ip -n "$P$n" route add default via "10.201.$h.1"
    in_ns "$n" sysctl -qw net.ipv4.tcp_syn_retries=2
  done
done
log "namespaces up (prefix $P)"
# The NATs hide the homes: the public node cannot reach a home host, nor a home another home.
# reaches NS IP: whether a TCP connection from NS reaches IP at all (a refused port counts: the host answered).
reaches() {
  local err
  err="$(in_ns "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$2/9" 2>&1)" && return 0
  [[ "$err" == *refused* ]]
}
if reaches pub 10.201.1.11; then fail "the public node reaches a home host"; fi
if reaches h2a 10.201.1.11; then fail "home 2 reaches home 1 directly"; fi
reaches h1a 10.200.0.10 || fail "home 1 cannot reach the public node"

# ---- nodes ----
# start NAME PORT [args…]: a jobmesh node in namespace NAME (TCP and QUIC on PORT).
start() {
  local n="$1" port="$2"; shift 2
  mkdir -p "$WORK/$n"
  RUST_LOG="${RUST_LOG:-warn,jobmesh_p2p=info}" in_ns "$n" "$BIN" --data-dir "$WORK/$n" --json node start \
    --listen "/ip4/0.0.0.0/tcp/$port" --listen "/ip4/0.0.0.0/udp/$port/quic-v1" --api 127.0.0.1:5001 "$@" \
    >"$WORK/$n.out" 2>"$WORK/$n.log" &
  PIDS+=($!)
}
# wait_started NAME: the node printed its JSON start line (≤ 30 s); prints its peer id.
wait_started() {
  local n="$1"
  for _ in $(seq 300); do
    if [ -s "$WORK/$n.out" ]; then jq -r .peer_id <"$WORK/$n.out"; return 0; fi
    sleep 0.1
  done
  fail "$n did not start"
}
cli() { local n="$1"; shift; in_ns "$n" "$BIN" --data-dir "$WORK/$n" "$@"; }
# elapsed T0: seconds since T0 (a `date +%s.%N` value).
elapsed() { awk -v t0="$1" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.3f", t1 - t0 }'; }

start pub 4001
PUB="$(wait_started pub)"
BOOT="/ip4/10.200.0.10/tcp/4001/p2p/$PUB"
for h in "${HOMES[@]}"; do
  i=0
  for x in ${HOSTS[$h]}; do
    i=$((i + 1)); role=()
    [ "$h" = 1 ] || role=(--worker --max-jobs 2)
    start "h$h$x" "400$i" --bootstrap "$BOOT" "${role[@]}"
  done
done
declare -A ID
for h in "${HOMES[@]}"; do for x in ${HOSTS[$h]}; do ID[h$h$x]="$(wait_started "h$h$x")"; done; done
log "7 nodes started"

# ---- reachability ----
reach() { cli "$1" --json id | jq -r .Reachability; }
relays() { cli "$1" --json id | jq -r '.Relays | length'; }
deadline=$((SECONDS + 60))
until [ "$(reach pub)" = public ]; do [ $SECONDS -lt $deadline ] || fail "pub: reachability $(reach pub), want public"; sleep 0.5; done
for h in "${HOMES[@]}"; do for x in ${HOSTS[$h]}; do
  n="h$h$x"
  until [ "$(reach "$n")" = private ] && [ "$(relays "$n")" -ge 1 ]; do
    [ $SECONDS -lt $deadline ] || fail "$n: reachability $(reach "$n") with $(relays "$n") relay(s), want private through the relay"
    sleep 0.5
  done
done; done
echo "RESULT reachability_ok=1 reach_seconds=$((SECONDS))"
log "reachability right: pub public, every home node private with a relay reservation"

# ---- cross-home connections: hole punch or relay ----
# kind A B: how A is connected to B now: direct, relayed, or none.
kind() {
  cli "$1" --json swarm peers | jq -r --arg p "${ID[$2]}" '
    [.Peers[] | select(.Peer == $p) | .Connections[] | .Relayed] as $c
    | if ($c | length) == 0 then "none" elif ($c | all(. == false)) then "direct"
      elif ($c | any(. == false)) then "both" else "relayed" end'
}
pairs=()
NODES=(h1a h1b h2a h2b h3a h3b)
for ((i = 0; i < ${#NODES[@]}; i++)); do for ((j = i + 1; j < ${#NODES[@]}; j++)); do
  a="${NODES[$i]}"; b="${NODES[$j]}"
  [ "${a:1:1}" != "${b:1:1}" ] && pairs+=("$a:$b")
done; done
t0=$SECONDS
for pr in "${pairs[@]}"; do
  a="${pr%%:*}"; b="${pr##*:}"
  # A relay reservation that was just made may not carry a circuit yet: retry for a bounded time.
  until cli "$a" swarm connect "$BOOT/p2p-circuit/p2p/${ID[$b]}" >/dev/null 2>>"$WORK/connect.log" \
      || [ "$(kind "$a" "$b")" != none ]; do
    [ $SECONDS -lt $((t0 + 60)) ] || fail "$a cannot reach $b even through the relay"
    sleep 1
  done
done
# Settle: hole punches finish and relayed connections close after their grace period.
direct=0; relayed=0; deadline=$((SECONDS + 45))
while :; do
  direct=0; relayed=0; wrong=""
  for pr in "${pairs[@]}"; do
    a="${pr%%:*}"; b="${pr##*:}"; k="$(kind "$a" "$b")"
    case "$k" in direct) direct=$((direct + 1)) ;; relayed) relayed=$((relayed + 1)) ;; esac
    # Between the two port-preserving NATs the hole punch must work. With the symmetric NAT (home 3) it fails
    # mostly, but not always: the cone side's port is predictable, and a punch from home 3 sometimes lands (seen
    # once in CI-sized runs). There either kind is right; what must hold is a connection, relayed at worst.
    if [[ "$a$b" == *h3* ]]; then want="direct|relayed"; else want=direct; fi
    [[ "$k" =~ ^($want)$ ]] || wrong+=" $a-$b:$k(want $want)"
  done
  [ -z "$wrong" ] && break
  [ $SECONDS -lt $deadline ] || fail "connections not as expected:$wrong"
  sleep 1
done
echo "RESULT pairs=${#pairs[@]} direct=$direct relayed=$relayed connect_seconds=$((SECONDS - t0))"
log "cross-home pairs: $direct direct, $relayed relayed"

punch_stats() {
  # Hole punches between homes (not within one LAN), from the nodes' logs: time from the relayed connection.
  declare -A NAME
  for n in "${NODES[@]}"; do NAME[${ID[$n]}]="$n"; done
  punch_ms=""; failed_punches=0
  for n in "${NODES[@]}"; do
    while read -r peer ms ok; do
      other="${NAME[$peer]:-}"
      [ -n "$other" ] && [ "${other:1:1}" != "${n:1:1}" ] || continue
      if [ "$ok" = ok ]; then punch_ms+="$ms "; else failed_punches=$((failed_punches + 1)); fi
    done < <(sed 's/\x1b\[[0-9;]*m//g' "$WORK/$n.log" | grep -a 'hole punch' | sed -n \
        -e 's/.*hole punch succeeded.* peer=\([^ ]*\) ms=\([0-9]*\).*/\1 \2 ok/p' \
        -e 's/.*hole punch failed.* peer=\([^ ]*\).*/\1 0 failed/p')
  done
  punch_ms="$(tr ' ' '\n' <<<"$punch_ms" | grep . | sort -n | tr '\n' ' ')"
  echo "RESULT hole_punch_ms=[${punch_ms% }] hole_punch_failures=$failed_punches"
}

# ---- a file added behind one NAT, fetched behind the others ----
head -c $((FETCH_MIB << 20)) /dev/urandom >"$WORK/file.bin"
CID="$(cli h1a add "$WORK/file.bin" | tail -n 1)"
for n in h2a h3a; do
  t="$(date +%s.%N)"
  timeout 120 ip netns exec "$P$n" "$BIN" --data-dir "$WORK/$n" cat "$CID" >"$WORK/$n.file" \
    || fail "$n could not fetch $CID"
  secs=$(elapsed "$t")
  cmp -s "$WORK/file.bin" "$WORK/$n.file" || fail "$n fetched different bytes"
  echo "RESULT fetch_${FETCH_MIB}MiB_${n}_seconds=$secs"
done
log "file fetched behind home 2 (direct) and home 3 (symmetric NAT)"

# ---- jobs from home 1, run by workers behind the other NATs ----
run_jobs() {
  local n="$1" tag="$2" lat=()
  for j in $(seq "$JOBS"); do
    echo "{\"text\": \"job $j across NATs $RANDOM\"}" >"$WORK/in$j.json"
    t="$(date +%s.%N)"
    v="$(cli "$n" --json job submit "$ROOT/examples/wordcount.js" --input "$WORK/in$j.json" --replicas 2 \
         --timeout 60s)" || fail "$tag job $j failed: $v"
    lat+=("$(elapsed "$t")")
    [ "$(jq -r .phase <<<"$v")" = verified ] || fail "$tag job $j: $(jq -c . <<<"$v")"
    if [ "$tag" = nat ]; then
      for w in $(jq -r '.agreeing[]' <<<"$v"); do
        case "$w" in "${ID[h1a]}"|"${ID[h1b]}") fail "job $j ran in the requester's home" ;; esac
      done
    fi
  done
  echo "RESULT jobs_${tag}_seconds=[$(printf '%.3f ' "${lat[@]}" | sed 's/ $//')]"
}
run_jobs h1a nat
log "$JOBS jobs verified across NATs"
punch_stats

if [ "${JOBMESH_NAT_LOOPBACK:-0}" = 1 ]; then
  # The same jobs on loopback: every node in one namespace, no NAT, no relay.
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
  ip netns add "${P}lo"; ip -n "${P}lo" link set lo up
  startlo() {
    local n="$1" port="$2"; shift 2
    rm -rf "$WORK/lo$n"; mkdir -p "$WORK/lo$n"
    in_ns lo "$BIN" --data-dir "$WORK/lo$n" --json node start --listen "/ip4/127.0.0.1/tcp/$port" \
      --api "127.0.0.1:$((port + 1000))" "$@" >"$WORK/lo$n.out" 2>"$WORK/lo$n.log" &
    PIDS+=($!)
  }
  startlo pub 4001
  LPUB="$(wait_started lopub)"
  startlo h1a 4011 --bootstrap "/ip4/127.0.0.1/tcp/4001/p2p/$LPUB"
  p=4020
  for n in h2a h2b h3a h3b; do p=$((p + 1)); startlo "$n" "$p" --bootstrap "/ip4/127.0.0.1/tcp/4001/p2p/$LPUB" --worker --max-jobs 2; done
  for n in h1a h2a h2b h3a h3b; do wait_started "lo$n" >/dev/null; done
  cli() { local n="$1"; shift; in_ns lo "$BIN" --data-dir "$WORK/lo$n" "$@"; }
  # As in the NAT run, where the mesh had formed long before the first job: every node connected.
  deadline=$((SECONDS + 30))
  until [ "$(cli h1a --json swarm peers | jq '.Peers | length')" -ge 5 ]; do
    [ $SECONDS -lt $deadline ] || fail "the loopback mesh did not form"
    sleep 0.5
  done
  sleep 5
  run_jobs h1a loopback
fi
echo "RESULT ok=1"
