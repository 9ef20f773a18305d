#!/usr/bin/env node
// Writes the file under <cid> to stdout with the JavaScript reference exporter (ipfs-unixfs-exporter), reading
// blocks from a blockstore-fs directory (as written by `node cid.mjs --blockstore fs:DIR`).
// usage: node cat.mjs --blockstore fs:DIR <cid>
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { exporter } from 'ipfs-unixfs-exporter'
import { CID } from 'multiformats/cid'
import { die, openBlockstore, parseCommon } from './lib.mjs'

const { blockstore: spec, args: [cid] } = parseCommon('node cat.mjs --blockstore fs:DIR <cid>', 1, { profile: false })
try {
  const blockstore = await openBlockstore(spec)
  const entry = await exporter(CID.parse(cid), blockstore)
  await pipeline(Readable.from(entry.content()), process.stdout)
} catch (err) {
  die(err.message)
}
