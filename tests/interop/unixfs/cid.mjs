#!/usr/bin/env node
// Prints the root CID the JavaScript reference importer gives a file under a jobmesh profile.
// usage: node cid.mjs [--hash sha2-256|blake3] [--blockstore memory|fs:DIR|null] <kubo|helia|v0> <file>
import { createReadStream } from 'node:fs'
import { die, importFile, loadImporter, openBlockstore, parseCommon } from './lib.mjs'

const usage = 'node cid.mjs [--hash sha2-256|blake3] [--blockstore memory|fs:DIR|null] <kubo|helia|v0> <file>'
const { hash, blockstore: spec, args: [profile, file] } = parseCommon(usage, 2)
try {
  const lib = await loadImporter(hash)
  const blockstore = await openBlockstore(spec)
  const root = await importFile(lib, profile, createReadStream(file, { highWaterMark: 1 << 20 }), blockstore)
  process.stdout.write(`${root.cid}\n`)
  await blockstore.close?.()
} catch (err) {
  die(err.message)
}
