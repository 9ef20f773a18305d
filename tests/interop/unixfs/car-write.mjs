#!/usr/bin/env node
// Imports a file with the reference importer under a jobmesh profile and writes it as a CARv1 (@ipld/car), its
// blocks in depth-first order from the root, each once. Prints the root CID.
// usage: node car-write.mjs [--hash sha2-256|blake3] <kubo|helia|v0> <file> <out.car>
import { createReadStream, createWriteStream } from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import * as dagPb from '@ipld/dag-pb'
import { CarWriter } from '@ipld/car/writer'
import { die, getBlock, importFile, loadImporter, openBlockstore, parseCommon } from './lib.mjs'

const usage = 'node car-write.mjs [--hash sha2-256|blake3] <kubo|helia|v0> <file> <out.car>'
const { hash, args: [profile, file, out] } = parseCommon(usage, 3)
try {
  const lib = await loadImporter(hash)
  const blockstore = await openBlockstore('memory')
  const root = await importFile(lib, profile, createReadStream(file, { highWaterMark: 1 << 20 }), blockstore)
  const { writer, out: carBytes } = CarWriter.create([root.cid])
  const written = pipeline(Readable.from(carBytes), createWriteStream(out))
  const seen = new Set()
  const visit = async (cid) => {
    const key = cid.toString()
    if (seen.has(key)) return
    seen.add(key)
    const bytes = await getBlock(blockstore, cid)
    await writer.put({ cid, bytes })
    if (cid.code === dagPb.code) {
      for (const link of dagPb.decode(bytes).Links) await visit(link.Hash)
    }
  }
  await visit(root.cid)
  await writer.close()
  await written
  process.stdout.write(`${root.cid}\n`)
} catch (err) {
  die(err.message)
}
