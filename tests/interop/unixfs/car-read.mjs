#!/usr/bin/env node
// Reads a CAR (v1 or v2) with @ipld/car, checks that every block hashes to its CID (sha2-256, blake3, identity),
// and reassembles the UnixFS file under its single root with ipfs-unixfs-exporter into <out>. Prints the root.
// usage: node car-read.mjs <file.car> <out>
import { createReadStream, createWriteStream } from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CarBlockIterator } from '@ipld/car/iterator'
import { exporter } from 'ipfs-unixfs-exporter'
import { die, openBlockstore, parseCommon, verifyBlock } from './lib.mjs'

const usage = 'node car-read.mjs <file.car> <out>'
const { args: [car, out] } = parseCommon(usage, 2, { profile: false })
try {
  const blocks = await CarBlockIterator.fromIterable(createReadStream(car, { highWaterMark: 1 << 20 }))
  const roots = await blocks.getRoots()
  if (roots.length !== 1) throw new Error(`expected one root in ${car}, found ${roots.length}`)
  const blockstore = await openBlockstore('memory')
  for await (const { cid, bytes } of blocks) {
    await verifyBlock(cid, bytes)
    await blockstore.put(cid, bytes)
  }
  const entry = await exporter(roots[0], blockstore)
  if (entry.type !== 'file' && entry.type !== 'raw') throw new Error(`root ${roots[0]} is a ${entry.type}, not a file`)
  await pipeline(Readable.from(entry.content()), createWriteStream(out))
  process.stdout.write(`${roots[0]}\n`)
} catch (err) {
  die(err.message)
}
