#!/usr/bin/env node
// Prints the root CID the JavaScript reference importer gives a directory tree under a jobmesh profile: what
// `ipfs add -r --cid-version=1 <dir>` gives under the kubo profile (the directory itself is the root).
// usage: node dir-cid.mjs [--hash sha2-256|blake3] <kubo|helia|v0> <dir>
import { createReadStream, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { die, importerOptions, loadImporter, openBlockstore, parseCommon } from './lib.mjs'

const usage = 'node dir-cid.mjs [--hash sha2-256|blake3] <kubo|helia|v0> <dir>'
const { hash, blockstore: spec, args: [profile, dir] } = parseCommon(usage, 2)

/** Every file and directory below `root`, parents first, as importer entries named relative to `root`. */
function * entries (root, at = root) {
  for (const name of readdirSync(at).sort()) {
    const full = join(at, name)
    const path = relative(root, full)
    if (statSync(full).isDirectory()) {
      yield { path }
      yield * entries(root, full)
    } else {
      yield { path, content: createReadStream(full, { highWaterMark: 1 << 20 }) }
    }
  }
}

try {
  const lib = await loadImporter(hash)
  const blockstore = await openBlockstore(spec)
  const options = importerOptions(lib, profile, true)
  let root
  for await (const entry of lib.importer(entries(dir), blockstore, options)) root = entry
  if (root == null) die('the importer produced nothing')
  process.stdout.write(`${root.cid}\n`)
} catch (err) {
  die(err.message)
}
