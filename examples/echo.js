// echo.js: copies stdin to stdout unchanged. The smallest possible job.
// Run: jobmesh job run-local examples/echo.js --input examples/echo.input.txt
const buf = new Uint8Array(65536);
for (;;) {
  const n = Javy.IO.readSync(0, buf);
  if (n === 0) break;
  Javy.IO.writeSync(1, buf.subarray(0, n));
}
