// Drives a jobmesh node's web dashboard in headless Chromium (Debian's /usr/bin/chromium, through
// playwright-core): a syntax error is reported by the form, then a job posted through the page reaches
// "verified" and shows its output, then a job that throws shows why it failed (message, stack, stderr). Prints one JSON line with what the page showed; saves a screenshot.
//
// Usage: node dashboard.mjs <dashboard url> <screenshot.png> [replicas]
// Loopback only: every request the page makes outside the node's own origin fails the run.
import { chromium } from "playwright-core";

const [url, shot, replicas = "2"] = process.argv.slice(2);
if (!url || !shot) {
  console.error("usage: node dashboard.mjs <url> <screenshot.png> [replicas]");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const origin = new URL(url).origin;
const t0 = Date.now();
const step = (what) => console.error(`[browser ${((Date.now() - t0) / 1000).toFixed(2)}s] ${what}`);

// No background traffic: this machine reaches nothing beyond loopback and the package registries.
const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
  timeout: 30_000,
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const foreign = [];
  const pageErrors = [];
  await page.route("**/*", (route) => {
    const u = route.request().url();
    if (u.startsWith(origin + "/")) return route.continue();
    foreign.push(u);
    return route.abort();
  });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  const loadStart = Date.now();
  await page.goto(url, { timeout: 15_000 });
  // The example is loaded into the editor.
  await page.waitForFunction(() => document.getElementById("source").value.includes("Javy.IO"), null,
    { timeout: 10_000 });
  const example = await page.inputValue("#source");
  const loadMs = Date.now() - loadStart;
  step("page loaded");

  // A syntax error is answered by the form, and no job starts.
  await page.fill("#source", "let x = ;\n");
  await page.click("#submit");
  // The node's first compile loads the Javy plugin (seconds in a debug build on a busy machine).
  await page.waitForFunction(() => document.getElementById("form-error").textContent.includes("SyntaxError"),
    null, { timeout: 60_000 });
  const syntaxError = await page.textContent("#form-error");
  step("syntax error shown");

  // The real job.
  await page.fill("#source", example);
  await page.fill("#replicas", replicas);
  await page.fill("#timeout", "60");
  const submitStart = Date.now();
  await page.click("#submit");
  const phases = [];
  await page.waitForSelector("#job:not([hidden])", { timeout: 15_000 });
  const jobId = await page.textContent("#job-id");
  step(`job ${jobId} submitted`);
  const deadline = Date.now() + 90_000;
  for (;;) {
    const phase = await page.textContent("#job-phase");
    if (phases[phases.length - 1] !== phase) phases.push(phase);
    if (["verified", "failed", "expired", "cancelled"].includes(phase)) break;
    if (Date.now() > deadline) throw new Error(`job still ${phase} after 90 s (phases seen: ${phases})`);
    await page.waitForTimeout(50);
  }
  const verifiedMs = Date.now() - submitStart;
  step(`job ${phases[phases.length - 1]}`);
  await page.waitForFunction(() => document.getElementById("output").textContent.length > 0, null,
    { timeout: 30_000 });
  // Let the lists refresh after the job, so the screenshot shows them.
  await page.waitForFunction(() => document.querySelector("#jobs td") && !document.querySelector("#jobs td")
    .textContent.includes("no jobs"), null, { timeout: 10_000 });
  const result = {
    jobId,
    syntaxError,
    phases,
    phase: await page.textContent("#job-phase"),
    steps: await page.$$eval("#phases li", (lis) => lis.map((li) => [li.textContent.trim(), li.className])),
    output: await page.textContent("#output"),
    outputCid: await page.textContent("#out-cid"),
    fuel: await page.textContent("#out-fuel"),
    agreeing: await page.textContent("#out-agreeing"),
    peers: await page.$$eval("#peers tr", (rows) => rows.length),
    storeBlocks: await page.textContent("#store-blocks"),
    lotteries: await page.textContent("section:last-of-type p"),
    foreign,
    pageErrors,
    loadMs,
    verifiedMs,
  };
  await page.screenshot({ path: shot, fullPage: true });
  step("screenshot saved");

  // A job that fails (an uncaught exception after a line on stderr): verified as a failure, and the job view
  // says why, with the stack and the job's stderr.
  await page.fill("#source", "Javy.IO.writeSync(2, new TextEncoder().encode('checking input\\n'));\n" +
    "function inner() { throw new Error('bad input: 42'); }\ninner();\n");
  await page.click("#submit");
  await page.waitForFunction((before) => document.getElementById("job-id").textContent !== before, jobId,
    { timeout: 15_000 });
  await page.waitForSelector("#failure:not([hidden])", { timeout: 90_000 });
  result.failed = {
    phase: await page.textContent("#job-phase"),
    status: await page.textContent("#out-status"),
    error: await page.textContent("#out-error"),
    message: await page.textContent("#out-message"),
    stderr: await page.textContent("#out-stderr"),
  };
  await page.screenshot({ path: shot.replace(/\.png$/, "-failed.png"), fullPage: true });
  step("failed job shown");
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
