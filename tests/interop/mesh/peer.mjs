// A Helia 7 node with js-libp2p gossipsub, for jobmesh's interop tests. Loopback only: no bootstrap, no
// routers, no peer discovery; bitswap is the only block broker. Driven by JSON lines on stdin:
//   {"cmd":"dial","addr":…} {"cmd":"add","path":…} {"cmd":"cat","cid":…,"out":…}
//   {"cmd":"sub","topic":…} {"cmd":"pub","topic":…,"data":…} {"cmd":"peers"} {"cmd":"stop"}
// and answers one JSON line per command ({"ok":…} or {"error":…}); received gossip is printed as
// {"msg":{"topic","data","from"}}. The first line printed is {"peerId","addrs"}.
import { readFile, writeFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { createHeliaLight } from 'helia'
import { withLibp2pLight } from '@helia/libp2p'
import { withBitswap } from '@helia/bitswap'
import { unixfs } from '@helia/unixfs'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { gossipsub } from '@libp2p/gossipsub'
import { MemoryBlockstore } from 'blockstore-core'
import { MemoryDatastore } from 'datastore-core'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'

const out = (v) => process.stdout.write(JSON.stringify(v) + '\n')

const helia = withBitswap(withLibp2pLight(createHeliaLight({
  blockstore: new MemoryBlockstore(),
  datastore: new MemoryDatastore()
}), {
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  peerDiscovery: [],
  services: {
    identify: identify(),
    ping: ping(),
    pubsub: gossipsub({ allowPublishToZeroTopicPeers: false, emitSelf: false, heartbeatInterval: 200 })
  }
}))
await helia.start()
const libp2p = helia.libp2p
const fs = unixfs(helia)
libp2p.services.pubsub.addEventListener('message', (evt) => {
  const m = evt.detail
  out({ msg: { topic: m.topic, data: new TextDecoder().decode(m.data), from: m.from?.toString() } })
})
out({ peerId: libp2p.peerId.toString(), addrs: libp2p.getMultiaddrs().map(String) })

const rl = createInterface({ input: process.stdin })
for await (const line of rl) {
  let c
  try {
    c = JSON.parse(line)
    if (c.cmd === 'dial') {
      await libp2p.dial(multiaddr(c.addr))
      out({ ok: true })
    } else if (c.cmd === 'add') {
      // jobmesh's default profile = kubo's `--cid-version=1`.
      const cid = await fs.addBytes(await readFile(c.path), {
        cidVersion: 1, rawLeaves: true,
        chunker: fixedSize({ chunkSize: 262144 }), layout: balanced({ maxChildrenPerNode: 174 })
      })
      out({ ok: cid.toString() })
    } else if (c.cmd === 'cat') {
      const parts = []
      for await (const chunk of fs.cat(CID.parse(c.cid), { signal: AbortSignal.timeout(60000) })) parts.push(chunk)
      await writeFile(c.out, Buffer.concat(parts))
      out({ ok: parts.reduce((n, p) => n + p.length, 0) })
    } else if (c.cmd === 'sub') {
      libp2p.services.pubsub.subscribe(c.topic)
      out({ ok: true })
    } else if (c.cmd === 'pub') {
      const r = await libp2p.services.pubsub.publish(c.topic, new TextEncoder().encode(c.data))
      out({ ok: r.recipients.length })
    } else if (c.cmd === 'peers') {
      out({ ok: libp2p.getPeers().map(String), topicPeers: c.topic ? libp2p.services.pubsub.getSubscribers(c.topic).map(String) : [] })
    } else if (c.cmd === 'stop') {
      out({ ok: true })
      break
    } else {
      out({ error: `unknown command ${c.cmd}` })
    }
  } catch (e) {
    out({ error: String(e?.message ?? e) })
  }
}
await helia.stop()
process.exit(0)
