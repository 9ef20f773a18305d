// Writes 2 MiB: over a 1 MiB output limit it must stop with output_too_large.
const chunk = new Uint8Array(64 * 1024).fill(65);
for (let i = 0; i < 32; i++) Javy.IO.writeSync(1, chunk);
