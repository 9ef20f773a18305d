// determinism.js: exercises everything that could differ between machines — Math.random, Date, JSON,
// regular expressions, string and typed-array work, floating point and sorting — and prints a digest.
// The output and the fuel used are identical on every run, thread and machine for the same input.
// Run: jobmesh job run-local examples/determinism.js --input examples/determinism.input.json

function readInput() {
  const chunks = [];
  let total = 0;
  for (;;) {
    const buf = new Uint8Array(65536);
    const n = Javy.IO.readSync(0, buf);
    if (n === 0) break;
    chunks.push(buf.subarray(0, n));
    total += n;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) { all.set(c, at); at += c.length; }
  return new TextDecoder().decode(all);
}

const input = JSON.parse(readInput());
const n = input.n || 1000;

// Randomness: seeded from the job id, so a fixed sequence for a given (code, input, limits).
const randoms = Array.from({ length: 5 }, () => Math.random());

// Time: the clock is fixed.
const now = Date.now();
const date = new Date(now).toISOString();

// Floating point: transcendental functions, accumulation order, NaN handling.
let acc = 0;
for (let i = 1; i <= n; i++) acc += Math.sin(i) * Math.sqrt(i) / Math.log(i + 1) + Math.exp(-i / n);
const nan = [0 / 0, Math.sqrt(-1), Infinity - Infinity].map(String);

// Typed arrays: Float64Array sort, integer overflow wrap in Int32Array, a simple hash over bytes.
const f64 = new Float64Array(n);
for (let i = 0; i < n; i++) f64[i] = Math.random() * 1000 - 500;
f64.sort();
const i32 = new Int32Array([2147483647, -2147483648]);
i32[0] += 1;
const bytes = new TextEncoder().encode(JSON.stringify(input));
let hash = 2166136261;
for (const b of bytes) hash = Math.imul(hash ^ b, 16777619) >>> 0;

// Sorting: objects with ties (sort must be stable), strings with localeCompare-free comparison.
const people = Array.from({ length: 50 }, (_, i) => ({ id: i, age: (i * 37) % 7 }));
people.sort((a, b) => a.age - b.age);
const words = (input.text || "the quick brown fox jumps over the lazy dog").split(/\s+/);
words.sort();

// Regular expressions and strings.
const matches = (input.text || "").match(/\b\w{4,}\b/g) || [];
const replaced = (input.text || "").replace(/[aeiou]/g, (v) => v.toUpperCase());

// JSON round trip of floats and unicode.
const roundTrip = JSON.parse(JSON.stringify({ pi: Math.PI, tiny: 5e-324, s: "h\u00e9llo \u{1F600}" }));

const result = {
  randoms,
  now,
  date,
  acc,
  nan,
  f64: [f64[0], f64[n >> 1], f64[n - 1]],
  i32: Array.from(i32),
  hash,
  stable: people.slice(0, 10).map((p) => p.id),
  words,
  matches: matches.length,
  replaced: replaced.slice(0, 40),
  roundTrip,
  toFixed: (1.005).toFixed(2) + " " + (123.456e10).toString(36),
};
Javy.IO.writeSync(1, new TextEncoder().encode(JSON.stringify(result) + "\n"));
