// cpu-heavy.js: the CPU benchmark job — arithmetic loops, JSON round trips and a small sort.
// Input: {"rounds": N}. Output: a checksum line. Also runs unchanged under qjs and node (see benches/).
// Run: jobmesh job run-local examples/cpu-heavy.js --input examples/cpu-heavy.input.json

function work(rounds) {
  let checksum = 0;
  for (let r = 0; r < rounds; r++) {
    // Arithmetic.
    let x = r;
    for (let i = 0; i < 2000; i++) x = (x * 1103515245 + 12345) % 2147483648;
    checksum = (checksum + x) % 1000000007;
    // JSON round trip.
    const obj = { r, items: [1, 2, 3, x % 97].map((v) => ({ v, s: "item" + v })) };
    const back = JSON.parse(JSON.stringify(obj));
    checksum = (checksum + back.items[3].v) % 1000000007;
    // A small sort.
    const arr = [];
    for (let i = 0; i < 64; i++) arr.push((x + i * 7919) % 1009);
    arr.sort((a, b) => a - b);
    checksum = (checksum + arr[32]) % 1000000007;
  }
  return checksum;
}

function readAll() {
  if (typeof Javy === "undefined") return null;
  const buf = new Uint8Array(65536);
  const n = Javy.IO.readSync(0, buf);
  return new TextDecoder().decode(buf.subarray(0, n));
}

const text = readAll();
const rounds = text ? JSON.parse(text).rounds : (typeof scriptArgs !== "undefined" ? +scriptArgs[1] : +process.argv[2]);
const line = "checksum " + work(rounds) + "\n";
if (typeof Javy !== "undefined") Javy.IO.writeSync(1, new TextEncoder().encode(line));
else if (typeof print === "function" && typeof process === "undefined") print(line.trim());
else process.stdout.write(line);
