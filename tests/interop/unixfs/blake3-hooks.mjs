// Module-resolution hook (node:module register): gives ipfs-unixfs-importer's persist.js a blake3 hasher where
// it imports `sha256` from 'multiformats/hashes/sha2'. Nothing else is redirected. See lib.mjs.
export async function resolve (specifier, context, nextResolve) {
  if (specifier === 'multiformats/hashes/sha2' &&
      context.parentURL?.endsWith('/ipfs-unixfs-importer/dist/src/utils/persist.js')) {
    return { url: new URL('./blake3-as-sha256.mjs', import.meta.url).href, shortCircuit: true }
  }
  return nextResolve(specifier, context)
}
