// The jobmesh node dashboard: plain JavaScript, no build step. Talks only to this node's control API.
"use strict";

const $ = (id) => document.getElementById(id);

// A node whose API needs a token is opened as `/#token=<token>` (a fragment never reaches a server or its logs);
// every API call then carries it in the Authorization header, the only place the API takes it from.
const TOKEN = new URLSearchParams(location.hash.slice(1)).get("token");
const withToken = (opts = {}) =>
  TOKEN ? { ...opts, headers: { ...(opts.headers || {}), Authorization: "Bearer " + TOKEN } } : opts;

// Every POST says it is JSON: the API refuses other content types, which is what keeps other web pages out.
async function api(path, opts = {}) {
  const headers = { "content-type": "application/json", ...(opts.headers || {}) };
  const res = await fetch("/api/v0/" + path, withToken({ method: "POST", ...opts, headers }));
  if (!res.ok) {
    let msg = res.status + " " + res.statusText;
    try { msg = (await res.json()).Message || msg; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return res;
}
const apiJson = async (path, opts) => (await api(path, opts)).json();

function short(s, n = 12) { return s && s.length > n + 4 ? s.slice(0, n) + "…" : (s || ""); }
function bytes(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
function row(tbody, cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c;
    tr.appendChild(td);
  }
  tbody.appendChild(tr);
}
function code(text, title) {
  const el = document.createElement("code");
  el.textContent = text;
  if (title) el.title = title;
  return el;
}

// ---- the job form ----------------------------------------------------------------------------------------

async function loadExample() {
  try {
    const ex = await (await fetch("/dashboard/example.json")).json();
    if (!$("source").value) $("source").value = ex.source;
    if (!$("input").value) $("input").value = ex.input;
  } catch (e) { $("form-error").textContent = "cannot load the example: " + e.message; }
}

let stream = null; // the AbortController of the job being followed

// Reads a server-sent event stream through fetch (EventSource cannot send the Authorization header) and calls
// `onData` with each event's data; resolves when the stream ends.
async function readEvents(url, signal, onData) {
  const res = await fetch(url, withToken({ signal }));
  if (!res.ok) throw new Error(res.status + " " + res.statusText);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim());
      if (data.length) onData(data.join("\n"));
    }
  }
}

$("job-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("form-error").textContent = "";
  $("submit").disabled = true;
  const body = {
    source: $("source").value,
    input: $("input").value,
    replicas: Number($("replicas").value),
    max_fuel: Number($("max_fuel").value),
    timeout_ms: Math.round(Number($("timeout").value) * 1000),
    price: Number($("price").value),
  };
  try {
    const { id } = await apiJson("job/submit-js", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    follow(id);
  } catch (e) {
    $("form-error").textContent = e.message;
    $("submit").disabled = false;
  }
});

function follow(id) {
  if (stream) stream.abort();
  $("job").hidden = false;
  $("result").hidden = true;
  $("job-id").textContent = id;
  $("job-phase").textContent = "…";
  $("job-reason").textContent = "";
  for (const li of $("phases").children) li.className = "";
  const ctrl = new AbortController();
  stream = ctrl;
  let finished = false;
  readEvents("/api/v0/job/events?arg=" + encodeURIComponent(id), ctrl.signal, (data) => {
    const s = JSON.parse(data);
    show(s);
    if (s.finished) {
      finished = true;
      ctrl.abort();
      if (stream === ctrl) stream = null;
      $("submit").disabled = false;
      refresh();
    }
  }).catch((e) => {
    if (!finished && stream === ctrl) {
      $("job-reason").textContent = "lost the event stream: " + e.message;
      $("submit").disabled = false;
    }
  });
}

function show(s) {
  const n = s.replicas;
  const steps = {
    announced: [true, ""],
    assigned: [s.assigned > 0, `${s.assigned}/${n}`],
    committed: [s.committed > 0, `${s.committed}/${n}`],
    revealed: [s.revealed > 0, `${s.revealed}/${n}`],
    verified: [s.phase === "verified", ""],
  };
  const failed = s.finished && s.phase !== "verified";
  for (const li of $("phases").children) {
    const [done, count] = steps[li.dataset.step];
    li.className = done ? "done" : (failed && li.dataset.step === "verified" ? "failed" : "");
    const span = li.querySelector("span");
    if (span) span.textContent = count;
  }
  if (failed) $("phases").lastElementChild.textContent = s.phase;
  else $("phases").lastElementChild.textContent = "verified";
  $("job-phase").textContent = s.phase;
  $("job-phase").className = "phase-" + s.phase;
  $("job-reason").textContent = s.reason || "";
  if (s.phase === "verified" && s.output) showResult(s);
}

async function showResult(s) {
  $("result").hidden = false;
  $("out-cid").textContent = s.output;
  $("out-status").textContent = s.status || "";
  $("out-fuel").textContent = s.fuel_used == null ? "" : s.fuel_used.toLocaleString("en");
  $("out-agreeing").textContent = (s.agreeing || []).map((p) => short(p, 16)).join(", ");
  $("out-receipt").textContent = s.receipt || "";
  if (s.receipt) $("receipt-cid").value = s.receipt;
  // A verified failure (out of fuel, exception, …): why, the whole message and the job's stderr.
  $("failure").hidden = !s.error;
  $("out-error").textContent = s.error || "";
  $("out-message").textContent = s.message || "";
  $("out-stderr").textContent = s.stderr || "(none)";
  try {
    const res = await api("cat?arg=" + encodeURIComponent(s.output) + "&timeout=30");
    $("output").textContent = await res.text();
  } catch (e) {
    $("output").textContent = "cannot fetch the output: " + e.message;
  }
}

// ---- receipts: re-run a job here and compare with what its workers signed ---------------------------------

async function verifyReceipt(ev) {
  ev.preventDefault();
  const cid = $("receipt-cid").value.trim();
  if (!cid) return;
  $("verify-result").textContent = "fetching and re-running…";
  try {
    const r = await apiJson("job/verify?arg=" + encodeURIComponent(cid));
    $("verify-result").textContent = [
      (r.matches ? "MATCHES" : "MISMATCH") + " · job " + short(r.job, 16) + " · signed by " + r.signers.join(", "),
      ...r.mismatches,
      `checked in ${r.total_ms.toFixed(1)} ms (re-run ${r.run_ms.toFixed(1)} ms), receipt ${r.receipt_bytes} bytes`,
    ].join("\n");
  } catch (e) {
    $("verify-result").textContent = "cannot verify: " + e.message;
  }
}

// ---- node state --------------------------------------------------------------------------------------------

async function refresh() {
  await Promise.allSettled([refreshJobs(), refreshPeers(), refreshStore(), refreshSettlement()]);
}

async function refreshJobs() {
  const { Jobs } = await apiJson("job/list");
  const tbody = $("jobs");
  tbody.replaceChildren();
  for (const j of (Jobs || []).slice().reverse().slice(0, 20)) {
    const link = document.createElement("a");
    link.href = "#";
    link.textContent = short(j.id);
    link.title = j.id;
    link.onclick = (e) => { e.preventDefault(); follow(j.id); };
    row(tbody, [link, j.phase, String(j.replicas), j.fuel_used == null ? "" : j.fuel_used.toLocaleString("en")]);
  }
  if (!tbody.children.length) row(tbody, ["no jobs yet", "", "", ""]);
}

async function refreshPeers() {
  const [{ Peers }, ledger] = await Promise.all([apiJson("swarm/peers"), apiJson("market/ledger")]);
  const rep = new Map((ledger.Reputation || []).map((r) => [r.peer, r.reputation]));
  const peers = $("peers");
  peers.replaceChildren();
  for (const p of Peers || []) {
    const r = rep.get(p.Peer);
    row(peers, [code(short(p.Peer, 16), p.Peer), p.Direct ? "direct" : "relayed", p.Agent || "",
      r == null ? "—" : JSON.stringify(r)]);
  }
  if (!peers.children.length) row(peers, ["no peers connected", "", "", ""]);
  const owed = $("owed");
  owed.replaceChildren();
  for (const o of ledger.Owed || []) row(owed, [code(short(o.peer, 16), o.peer), o.owed_wei]);
  if (!owed.children.length) row(owed, ["nothing owed", ""]);
}

function eth(wei) {
  const n = Number(wei);
  return n >= 1e15 ? (n / 1e18).toFixed(4) + " ETH" : n.toLocaleString("en") + " wei";
}

async function refreshSettlement() {
  let s;
  try { s = await apiJson("settlement/status"); } catch (_) { return; } // this node does not settle
  $("settle-off").hidden = true;
  $("settle-on").hidden = false;
  $("settle-address").textContent = s.address;
  $("settle-balance").textContent = eth(s.balance);
  $("settle-wallet").textContent = eth(s.wallet);
  $("settle-reserved").textContent = eth(s.reserved);
  $("settle-won").textContent = eth(s.won);
  $("settle-blocked").textContent = s.blocked || "";
  const tbody = $("lotteries");
  tbody.replaceChildren();
  for (const l of (s.lotteries || []).slice(0, 20)) {
    row(tbody, [code(short(l.id, 14), l.id), l.side, l.status, eth(l.total), l.my_share ? eth(l.my_share) : "",
      String(l.draw_block)]);
  }
  if (!tbody.children.length) row(tbody, ["no lotteries yet", "", "", "", "", ""]);
}

async function refreshStore() {
  const s = await (await fetch("/api/v0/repo/stat", withToken())).json();
  $("store-blocks").textContent = s.NumObjects.toLocaleString("en");
  $("store-bytes").textContent = bytes(s.RepoSize);
}

async function start() {
  loadExample();
  $("verify-form").addEventListener("submit", verifyReceipt);
  try {
    const id = await apiJson("id");
    $("node-id").textContent = "node " + id.ID + (id.Reachability ? " · reachability: " + id.Reachability +
      (id.Relays && id.Relays.length ? " (through " + id.Relays.length + " relay(s))" : "") : "");
  } catch (e) { $("node-id").textContent = "node unreachable: " + e.message; }
  refresh();
  setInterval(refresh, 5000);
}

start();
