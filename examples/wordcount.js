// wordcount.js: reads {"text": "..."} as JSON, writes the 10 most frequent words as JSON.
// Run: jobmesh job run-local examples/wordcount.js --input examples/wordcount.input.json

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

function writeOutput(text) {
  Javy.IO.writeSync(1, new TextEncoder().encode(text));
}

const { text } = JSON.parse(readInput());
const counts = new Map();
for (const word of text.toLowerCase().match(/[a-z']+/g) || []) {
  counts.set(word, (counts.get(word) || 0) + 1);
}
const top = [...counts.entries()]
  .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
  .slice(0, 10)
  .map(([word, count]) => ({ word, count }));
writeOutput(JSON.stringify({ words: counts.size, top }) + "\n");
