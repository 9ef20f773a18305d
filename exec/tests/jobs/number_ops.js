// Every arithmetic and comparison operator on every pair of edge-case numbers, one line per pair.
// exec/tests/number_ops.rs runs it in the plugin (patched QuickJS-ng) and in upstream QuickJS-ng and
// expects the same bytes: the interpreter's number fast paths must not change a single result.
function show(v) {
  if (typeof v !== "number") return String(v);
  if (Object.is(v, -0)) return "-0";
  return String(v);
}
// Both int32-tagged and float64-tagged values of the same number: 1.5 * 2 is a float64 3 in QuickJS.
const f = (x) => x * 1.5 / 1.5;
const values = [
  0, -0, 1, -1, 3, f(3), 7, -7, f(-7), 0.5, -2.5, 1 / 3, 2147483647, -2147483648, 2147483648, f(2147483647),
  -2147483649, 1103515245, 9007199254740993, 1e300, -1e-300, 5e-324, 1.7976931348623157e308, NaN, Infinity,
  -Infinity, f(0), 4294967296.5,
  // Integers beyond int32 (the 64-bit integer path of `%`): 2^53 + 2, -2^62, the largest double below 2^63, 2^64.
  9007199254740994, -4611686018427387904, 9223372036854774784, 18446744073709551616, 1e15 + 7,
];
const lines = [];
for (const a of values) {
  for (const b of values) {
    let acc = a;
    acc += b;
    lines.push([
      show(a), show(b), show(a + b), show(a - b), show(a * b), show(a / b), show(a % b), show(acc),
      a < b, a <= b, a > b, a >= b, a == b, a != b, a === b, a !== b,
    ].join(" "));
  }
}
const text = lines.join("\n") + "\n";
if (typeof Javy !== "undefined") Javy.IO.writeSync(1, new TextEncoder().encode(text));
else print(text);
