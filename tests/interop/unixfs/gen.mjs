#!/usr/bin/env node
// Writes <bytes> pseudo-random bytes from <seed> to <out>: the AES-256-CTR keystream (key = sha256 of the
// seed's decimal text, zero IV), reproducible everywhere and fast enough for GiB-sized benchmark inputs.
// usage: node gen.mjs <bytes> <seed> <out>
import { createCipheriv, createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { die } from './lib.mjs'

const [bytesArg, seed, out] = process.argv.slice(2)
if (out == null || !/^\d+$/.test(bytesArg)) die('usage: node gen.mjs <bytes> <seed> <out>')
const key = createHash('sha256').update(String(seed)).digest()
const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
const stream = createWriteStream(out)
const zeros = Buffer.alloc(1 << 20)
let left = Number(bytesArg)
while (left > 0) {
  const n = Math.min(left, zeros.length)
  if (!stream.write(cipher.update(zeros.subarray(0, n)))) await new Promise(resolve => stream.once('drain', resolve))
  left -= n
}
await new Promise((resolve, reject) => stream.end(err => (err ? reject(err) : resolve())))
