// The study page: plot, front table and trials, from the JSON API; polls while it runs.
"use strict";
const CONFIG = JSON.parse(document.body.dataset.config);
const API = "/v1/studies/" + encodeURIComponent(CONFIG.name);
const PRIMARY = CONFIG.primary;
// Front-noise keys (seeds, metric_std, tied_with) are shown when a row has them.
const FRONT_COLUMNS = ["number", "method", "params", "learning_rate", PRIMARY, "metric_std",
  "seeds", "tied_with", "trainable_params", "trainable_pct", "peak_memory_bytes",
  "train_seconds"];
const TRIAL_COLUMNS = ["number", "method", "params", "learning_rate", "status", "reason",
  PRIMARY, "trainable_params", "trainable_pct", "peak_memory_bytes", "train_seconds",
  "is_pareto"];
const PAGE = 100;
const state = { offset: 0, total: 0, nTrials: -1, status: null };

async function getJSON(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(url + ": HTTP " + r.status);
  return r.json();
}

function fmt(key, v) {
  if (v === null || v === undefined) return "";
  if (key === "peak_memory_bytes") return (v / 2 ** 20).toFixed(1) + " MiB";
  if (key === "trainable_params") return v.toLocaleString("en");
  if (key === "trainable_pct") return v.toPrecision(3) + "%";
  if (key === "is_pareto") return v ? "*" : "";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
  if (typeof v === "object") {
    return Array.isArray(v) ? v.join(",")
      : Object.entries(v).map(([k, x]) => k + "=" + (Array.isArray(x) ? x.join(",") : x)).join(" ");
  }
  return String(v);
}

function fillTable(table, columns, rows) {
  const cols = columns.filter((c) => rows.length === 0 || rows.some((r) => c in r));
  const head = document.createElement("tr");
  for (const c of cols) {
    const th = document.createElement("th");
    th.textContent = c === "peak_memory_bytes" ? "peak memory" : c;
    head.append(th);
  }
  table.tHead.replaceChildren(head);
  const body = [];
  for (const r of rows) {
    const tr = document.createElement("tr");
    tr.dataset.number = r.number;
    for (const c of cols) {
      const td = document.createElement("td");
      td.dataset.key = c;
      td.dataset.value = JSON.stringify(r[c] === undefined ? null : r[c]);
      td.textContent = fmt(c, r[c]);
      if (typeof r[c] === "number") td.className = "num";
      tr.append(td);
    }
    body.push(tr);
  }
  table.tBodies[0].replaceChildren(...body);
}

async function allCompleted() {
  const out = [];
  let cursor = "";
  for (;;) {
    const page = await getJSON(API + "/trials?status=completed&limit=10000" + cursor);
    out.push(...page.items);
    if (page.next_after === null) return out;
    cursor = "&after=" + page.next_after;
  }
}

async function drawPlot(front) {
  const trials = (await allCompleted()).filter(
    (t) => t[PRIMARY] !== null && t.trainable_params !== null);
  const byMethod = new Map();
  for (const t of trials) {
    if (!byMethod.has(t.method)) byMethod.set(t.method, []);
    byMethod.get(t.method).push(t);
  }
  const traces = [...byMethod.entries()].map(([method, ts]) => ({
    // WebGL only for big studies: SVG works everywhere (headless browsers included)
    type: trials.length > 5000 ? "scattergl" : "scatter", mode: "markers", name: method,
    meta: "trials",
    x: ts.map((t) => t.trainable_params), y: ts.map((t) => t[PRIMARY]),
    customdata: ts.map((t) => t.number),
    hovertemplate: "#%{customdata} " + method + "<br>%{x:,} params<br>" + PRIMARY +
      " %{y:.4f}<extra></extra>",
    marker: { size: 7, opacity: 0.75 },
  }));
  traces.push({
    type: "scatter", mode: "markers", name: "Pareto front", meta: "front",
    x: front.map((t) => t.trainable_params), y: front.map((t) => t[PRIMARY]),
    customdata: front.map((t) => t.number),
    hovertemplate: "front #%{customdata}<extra></extra>",
    marker: { size: 13, color: "rgba(0,0,0,0)", line: { width: 2, color: "#d32f2f" } },
  });
  const layout = {
    margin: { t: 24, r: 16 }, hovermode: "closest",
    xaxis: { title: { text: "trainable parameters" }, type: "log" },
    yaxis: { title: { text: PRIMARY } },
  };
  await Plotly.react("plot", traces, layout, { displaylogo: false, responsive: true });
}

async function loadTrials() {
  const status = document.getElementById("f-status").value;
  const method = document.getElementById("f-method").value;
  let url = API + "/trials?limit=" + PAGE + "&offset=" + state.offset;
  if (status) url += "&status=" + encodeURIComponent(status);
  if (method) url += "&method=" + encodeURIComponent(method);
  const page = await getJSON(url);
  state.total = page.total;
  fillTable(document.getElementById("trials"), TRIAL_COLUMNS, page.items);
  const last = Math.min(page.offset + page.items.length, page.total);
  document.getElementById("page").textContent =
    page.total ? (page.offset + 1) + "–" + last + " of " + page.total : "none";
  document.getElementById("prev").disabled = page.offset === 0;
  document.getElementById("next").disabled = page.next_offset === null;
}

async function loadAll() {
  const front = await getJSON(API + "/front");
  fillTable(document.getElementById("front"), FRONT_COLUMNS, front);
  await drawPlot(front);
  await loadTrials();
}

async function poll() {
  const study = await getJSON(API);
  const budget = (study.budget && study.budget.trials) || study.n_trials || 1;
  const bar = document.getElementById("bar");
  bar.max = budget;
  bar.value = Math.min(study.n_trials, budget);
  document.getElementById("count").textContent =
    study.n_trials + "/" + budget + " trials, " + study.n_completed + " completed";
  const status = document.getElementById("status");
  status.textContent = study.status;
  status.className = "status " + study.status;
  document.getElementById("total").textContent = "(" + study.n_trials + ")";
  const changed = study.n_trials !== state.nTrials;
  state.nTrials = study.n_trials;
  if (changed) await loadAll();
  return study.status === "running";
}

function options(select, values) {
  for (const v of values) select.append(new Option(v, v));
  select.addEventListener("change", () => { state.offset = 0; loadTrials(); });
}

async function main() {
  options(document.getElementById("f-status"), CONFIG.statuses);
  options(document.getElementById("f-method"), CONFIG.methods);
  document.getElementById("prev").onclick = () => {
    state.offset = Math.max(0, state.offset - PAGE); loadTrials();
  };
  document.getElementById("next").onclick = () => { state.offset += PAGE; loadTrials(); };
  let running = await poll();
  document.body.dataset.ready = "1";
  while (running) {
    await new Promise((done) => setTimeout(done, 2000));
    try { running = await poll(); } catch (e) { console.error(e); }
  }
}

main().catch((e) => {
  document.body.dataset.error = String(e);
  console.error(e);
});
