// Shared by the scripts in this directory: jobmesh's UnixFS profiles expressed as options of the JavaScript
// reference importer (ipfs-unixfs-importer), argument parsing, a blake3 multihash hasher, and block checks.
//
// The importer hard-codes sha2-256 (dist/src/utils/persist.js imports `sha256` from 'multiformats/hashes/sha2'
// and has no hasher option). For `--hash blake3` we register a module-resolution hook (blake3-hooks.mjs) that
// hands persist.js a blake3 hasher under that name: the importer's own chunking, layout and node encoding run
// unchanged, only the multihash differs. The importer is therefore imported lazily, after the hook is in place.
import { register } from 'node:module'
import { parseArgs } from 'node:util'
import { createBLAKE3 } from 'hash-wasm'
import { from } from 'multiformats/hashes/hasher'
import { sha256 } from 'multiformats/hashes/sha2'
import { identity } from 'multiformats/hashes/identity'
import { equals } from 'multiformats/bytes'

/** jobmesh `--profile` name → the importer's shape parameters. Must match store/'s profiles exactly. */
export const PROFILES = {
  // `ipfs add --cid-version=1` (kubo): CIDv1, raw leaves, 256 KiB chunks, balanced, 174 links per node.
  kubo: { cidVersion: 1, rawLeaves: true, chunkSize: 262_144, maxChildrenPerNode: 174 },
  // Helia's current default (the importer's 'unixfs-v1-2025' profile): 1 MiB chunks, 1024 links per node.
  helia: { cidVersion: 1, rawLeaves: true, chunkSize: 1_048_576, maxChildrenPerNode: 1024 },
  // CIDv0 (`Qm…`): dag-pb UnixFS `file` leaves, 256 KiB chunks, 174 links per node.
  v0: { cidVersion: 0, rawLeaves: false, chunkSize: 262_144, maxChildrenPerNode: 174 }
}

const blake3Wasm = await createBLAKE3()
/** The blake3 multihash (0x1e, 32-byte digest), on hash-wasm's WebAssembly BLAKE3. */
export const blake3 = from({
  name: 'blake3',
  code: 0x1e,
  encode: (bytes) => {
    blake3Wasm.init()
    blake3Wasm.update(bytes)
    return blake3Wasm.digest('binary')
  }
})

/** Multihash code → hasher, for checking that a block's bytes hash to its CID. */
export const HASHERS = { [sha256.code]: sha256, [blake3.code]: blake3, [identity.code]: identity }

/** Fails with one line on stderr and exit code 1 (no stack trace for expected errors). */
export function die (message) {
  process.stderr.write(`error: ${message}\n`)
  process.exit(1)
}

/** Parses `[--hash sha2-256|blake3] [--blockstore memory|fs:DIR|null] <profile> <args...>`. */
export function parseCommon (usage, nArgs, { profile = true } = {}) {
  let parsed
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { hash: { type: 'string', default: 'sha2-256' }, blockstore: { type: 'string', default: 'memory' } }
    })
  } catch (err) {
    die(`${err.message}\nusage: ${usage}`)
  }
  const { values, positionals } = parsed
  if (positionals.length !== nArgs) die(`expected ${nArgs} arguments, got ${positionals.length}\nusage: ${usage}`)
  if (!['sha2-256', 'blake3'].includes(values.hash)) die(`unknown --hash ${values.hash} (sha2-256 or blake3)`)
  if (profile) {
    if (!(positionals[0] in PROFILES)) die(`unknown profile ${positionals[0]} (kubo, helia or v0)`)
    if (values.hash === 'blake3' && PROFILES[positionals[0]].cidVersion === 0) die('CIDv0 is sha2-256 only')
  }
  return { hash: values.hash, blockstore: values.blockstore, args: positionals }
}

/** Loads the reference importer, with blake3 substituted for sha2-256 when asked (see the header). */
export async function loadImporter (hash) {
  if (hash === 'blake3') register('./blake3-hooks.mjs', import.meta.url)
  const { importer } = await import('ipfs-unixfs-importer')
  const { fixedSize } = await import('ipfs-unixfs-importer/chunker')
  const { balanced } = await import('ipfs-unixfs-importer/layout')
  return { importer, fixedSize, balanced }
}

/** The importer's options for a profile; `wrapWithDirectory` for a tree whose root is the wrapping directory. */
export function importerOptions (lib, profile, wrapWithDirectory) {
  const p = PROFILES[profile]
  return {
    cidVersion: p.cidVersion,
    rawLeaves: p.rawLeaves,
    leafType: 'file',
    reduceSingleLeafToSelf: true,
    wrapWithDirectory,
    chunker: lib.fixedSize({ chunkSize: p.chunkSize }),
    layout: lib.balanced({ maxChildrenPerNode: p.maxChildrenPerNode })
  }
}

/** Imports one file (an async iterable of bytes) with a profile; returns the root entry. */
export async function importFile (lib, profile, content, blockstore) {
  const options = importerOptions(lib, profile, false)
  let root
  for await (const entry of lib.importer([{ content }], blockstore, options)) root = entry
  if (root == null) die('the importer produced nothing')
  return root
}

/** Opens the blockstore named by `--blockstore`: memory (blockstore-core), fs:DIR (blockstore-fs), or null. */
export async function openBlockstore (spec) {
  if (spec === 'memory') {
    const { MemoryBlockstore } = await import('blockstore-core/memory')
    return new MemoryBlockstore()
  }
  if (spec === 'null') {
    // Keeps nothing: for measuring the importer alone.
    return { put: async (cid) => cid, has: async () => false }
  }
  if (spec.startsWith('fs:')) {
    const { FsBlockstore } = await import('blockstore-fs')
    const store = new FsBlockstore(spec.slice(3))
    await store.open()
    return store
  }
  die(`unknown --blockstore ${spec} (memory, fs:DIR or null)`)
}

/** Concatenates the chunks a blockstore-core 7 `get` yields. */
export async function getBlock (blockstore, cid) {
  const parts = []
  for await (const part of blockstore.get(cid)) parts.push(part)
  return parts.length === 1 ? parts[0] : Buffer.concat(parts)
}

/** Throws unless `bytes` hash to `cid`'s multihash. */
export async function verifyBlock (cid, bytes) {
  const hasher = HASHERS[cid.multihash.code]
  if (hasher == null) throw new Error(`block ${cid}: unsupported multihash code 0x${cid.multihash.code.toString(16)}`)
  const digest = await hasher.digest(bytes)
  if (!equals(digest.bytes, cid.multihash.bytes)) throw new Error(`block ${cid}: bytes do not match its CID`)
}
