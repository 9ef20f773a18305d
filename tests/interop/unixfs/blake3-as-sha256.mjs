// Stands in for 'multiformats/hashes/sha2' inside the importer when --hash blake3 (see blake3-hooks.mjs).
export { blake3 as sha256 } from './lib.mjs'
