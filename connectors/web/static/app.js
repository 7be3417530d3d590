// anode-twin web view. One script for every page: it keeps the lines' data from the server's
// event stream (a snapshot, then changes) and draws the page the path names. No inline
// scripts or styles anywhere (the Content-Security-Policy forbids them); every text from the
// server goes through esc() before it reaches innerHTML.
"use strict";
(() => {
  const PAGE = location.pathname.replace(/^\/+/, "").split("/")[0] || "line";
  const STALE_MS = 3000;        // no event for this long: the page says "stale"
  const MAX_POINTS = 3000;      // per trend series kept in the page (memory stays flat)
  const MAX_ROWS = 200;
  const CHART_MS = 500;         // least time between two redraws of a trend chart
  const chartDrawn = new Map();
  const LOG_FLOOR = 1e-6;       // a log axis starts here at the lowest (0 has no logarithm)
  const STATES = ["working", "setup", "blocked", "starved", "idle", "down"];
  const FLOW = ["melter", "mill", "oxidizer", "coater", "sputter", "lab"];

  let me = { user: null, role: null, csrf: null, anonymous_read: true, read_only: false };
  let data = { lines: {} };
  let lastMsg = 0;
  let everConnected = false;
  let es = null;
  let dirty = true;
  let structure = "";
  const charts = new Map();
  let message = null;           // {ok, text} of the last write
  let refetching = false;

  const $ = (sel, root = document) => root.querySelector(sel);
  const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const nm = (x) => x == null ? "–" : (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  const pct = (x) => x == null ? "–" : `${(100 * x).toFixed(0)} %`;
  const clock = (t) => {
    if (t == null) return "–";
    const s = Math.floor(t), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
  };
  const cookie = (name) => {
    const m = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    return m ? decodeURIComponent(m.slice(name.length + 1)) : "";
  };
  const kv = (obj) => Object.entries(obj || {}).filter(([k, v]) => k !== "predicted_nm" && v != null)
    .map(([k, v]) => `${esc(k)} ${typeof v === "number" ? esc(+v.toPrecision(4)) : esc(v)}`).join(", ");
  const cls = (x) => String(x).replace(/[^A-Za-z0-9_-]/g, "_");

  async function post(path, body) {
    const r = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": me.csrf || "" },
      body: JSON.stringify(body || {}),
    });
    let j = {};
    try { j = await r.json(); } catch (e) { /* empty body */ }
    return { status: r.status, ok: r.ok, text: j.message || j.error || r.statusText };
  }

  // -- the event stream -----------------------------------------------------------------
  function connect() {
    if (es) es.close();
    es = new EventSource("/api/events");
    const on = (name, fn) => es.addEventListener(name, (ev) => {
      lastMsg = Date.now();
      everConnected = true;
      if (fn) fn(JSON.parse(ev.data));
      dirty = true;
    });
    on("snapshot", (m) => { data = m; structure = ""; });
    on("tick", null);
    on("station", applyStation);
    on("batch", (m) => {
      const line = data.lines[m.line]; if (!line) return;
      const i = line.batches.findIndex((b) => b.unit_id === m.batch.unit_id);
      if (i >= 0) line.batches[i] = m.batch; else line.batches.push(m.batch);
      if (line.batches.length > MAX_ROWS) line.batches.splice(0, line.batches.length - MAX_ROWS);
    });
    on("audit", (m) => {
      const line = data.lines[m.line]; if (!line) return;
      const last = line.audit.length ? line.audit[line.audit.length - 1].seq : -1;
      const fresh = m.new.filter((a) => a.seq > last);  // the snapshot may hold some already
      line.audit.push(...fresh);
      if (line.audit.length > MAX_ROWS) line.audit.splice(0, line.audit.length - MAX_ROWS);
      line.proposals = m.proposals;
      for (const a of fresh) {
        const r = line.running[a.loop];
        if (r && r.batch_id === a.batch_id) r.actions.push(a);
      }
    });
    on("alarms", (m) => { const l = data.lines[m.line]; if (l) l.alarms = m.alarms; });
    on("line", (m) => {
      const l = data.lines[m.line]; if (!l) return;
      for (const k of ["stations", "buffers", "plcs", "live", "plant_time_s", "live_from_s"]) l[k] = m[k];
      l.status = m.live ? "live" : l.status;
    });
    on("calibration", (m) => { const l = data.lines[m.line]; if (l) l.calibration = m.calibration; });
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
      dirty = true;
    };
  }

  function applyStation(m) {
    const line = data.lines[m.line]; if (!line) return;
    let r = line.running[m.path];
    if (!r || r.batch_id !== m.batch_id) {
      // A new batch on this tool: its plan comes with the next snapshot.
      r = line.running[m.path] = { path: m.path, batch_id: m.batch_id, trend: {}, predictions: [],
        actions: [], setpoints: {}, sp_profile: null, step: m.state };
      refetch();
    }
    if (m.state) r.step = m.state;
    if ("sp_profile" in m) { r.sp_profile = m.sp_profile; chartDrawn.delete(m.path); }
    if (m.prediction) push(r.predictions, m.prediction);
    const add = (name, t, v) => {
      const s = r.trend[name] || (r.trend[name] = { t_s: [], v: [] });
      const lastT = s.t_s.length ? s.t_s[s.t_s.length - 1] : -Infinity;
      if (t < lastT) return;  // already in the snapshot
      if (t === lastT) { s.v[s.v.length - 1] = v; return; }
      s.t_s.push(t); s.v.push(v);
      if (s.t_s.length > MAX_POINTS) { s.t_s.splice(0, s.t_s.length - MAX_POINTS); s.v.splice(0, s.v.length - MAX_POINTS); }
    };
    for (const [t, temp, po2, ph2o] of m.rows) {
      add("temperature_c", t, temp); add("po2_atm", t, po2); add("ph2o_atm", t, ph2o);
    }
    for (const [t, name, v] of m.samples) add(name, t, v);
  }

  function push(arr, x) {
    arr.push(x);
    if (arr.length > MAX_POINTS) arr.splice(0, arr.length - MAX_POINTS);
  }

  async function refetch() {
    if (refetching) return;
    refetching = true;
    try {
      const r = await fetch("/api/snapshot", { credentials: "same-origin" });
      if (r.ok) {
        const snap = await r.json();
        for (const [name, l] of Object.entries(snap.lines)) {
          if (data.lines[name]) data.lines[name].running = l.running;
        }
        structure = ""; dirty = true;
      }
    } finally { refetching = false; }
  }

  function checkStale() {
    const el = $("#conn");
    const age = Date.now() - lastMsg;
    const readOnly = Object.values(data.lines).length > 0 &&
      Object.values(data.lines).every((l) => l.read_only);
    let state, label;
    if (!everConnected) { state = "connecting"; label = "connecting…"; }
    else if (age > STALE_MS) { state = "stale"; label = `stale: no update for ${Math.round(age / 1000)} s`; }
    else if (readOnly) { state = "finished"; label = "finished run (read-only)"; }
    else { state = "live"; label = "live"; }
    if (el.dataset.state !== state || el.textContent !== label) {
      el.dataset.state = state; el.className = `conn ${state}`; el.textContent = label;
      document.body.classList.toggle("stale", state === "stale");
    }
    const unacked = Object.values(data.lines).reduce((n, l) => n + (l.alarms || [])
      .filter((a) => !a.acked).length, 0);
    $("#alarm-count").textContent = unacked ? String(unacked) : "";
  }

  // -- pages ----------------------------------------------------------------------------
  function render() {
    if (!dirty) return;
    dirty = false;
    const page = $("#page");
    const fn = { line: renderLine, running: renderRunning, batches: renderBatches,
      control: renderControl, alarms: renderAlarms, calibration: renderCalibration }[PAGE];
    if (fn) fn(page);
  }

  function lines() { return Object.values(data.lines); }

  function msgHtml() {
    return message ? `<div class="msg ${message.ok ? "ok" : "err"}" id="msg">${esc(message.text)}</div>` : "";
  }

  // Replace an element's content only when the markup changed (a redraw at every event would
  // detach the buttons under the operator's pointer).
  const drawn = new WeakMap();
  function setHtml(el, html) {
    if (drawn.get(el) === html) return;
    drawn.set(el, html);
    el.innerHTML = html;
  }

  // Line: the mimic of each line.
  function renderLine(page) {
    destroyCharts();
    const html = lines().map((l) => {
      const byKind = {};
      for (const s of l.stations || []) (byKind[s.kind] = byKind[s.kind] || []).push(s);
      const buffers = Object.fromEntries((l.buffers || []).map((b) => [b.path.split(".").pop(), b]));
      const stages = [];
      for (const kind of FLOW) {
        if (!byKind[kind]) continue;
        stages.push(`<div class="stage">${byKind[kind].map(stationHtml).join("")}</div>`);
        const b = buffers[`${kind}_out`];
        if (b) stages.push(bufferHtml(b));
        else stages.push(`<div class="arrow">→</div>`);
      }
      if (stages.length) stages.pop();
      const rework = buffers.rework ? `<p class="muted">rework queue: ${esc(buffers.rework.level)}</p>` : "";
      const plcs = (l.plcs || []).map((p) => `<span class="plc" data-endpoint="${esc(p.endpoint)}" data-state="${esc(p.state)}"><span class="dot ${esc(p.state)}"></span>${esc(p.endpoint)} ${esc(p.state)} <span class="muted">${esc(p.url)} (${esc(p.stations.join(", "))})</span></span>`).join("");
      return `<section class="card" id="line-${cls(l.name)}">
        <h2>${esc(l.name)} <span class="muted">${esc(l.form)} · ${esc(l.status)} · plant time ${clock(l.plant_time_s)}${l.time_factor ? ` · ${esc(l.time_factor)}×` : ""}</span></h2>
        <div class="mimic">${stages.join("")}</div>${rework}
        <div class="plcs">${plcs || `<span class="muted">${l.read_only ? "finished run: no PLC connection" : "no PLC in this line (every station simulated)"}</span>`}</div>
        <p class="legend-note">${STATES.map((s) => `<span class="state state-${s}">${s}</span>`).join(" ")} · <span class="badge plc">PLC</span> runs on its PLC · <span class="badge sim">sim</span> simulated by the twin</p>
      </section>`;
    }).join("");
    setHtml(page, html || '<p class="muted">waiting for the twin…</p>');
  }

  function stationHtml(s) {
    const src = s.source === "plc" ? '<span class="badge plc">PLC</span>' : '<span class="badge sim">sim</span>';
    return `<div class="station ${s.source === "plc" ? "plc" : ""}" id="st-${cls(s.path)}" data-state="${esc(s.state)}" data-source="${esc(s.source)}">
      <div class="name">${esc(s.path.split(".").pop())}${src}</div>
      <span class="state state-${esc(s.state)}">${esc(s.state)}</span>
      <div class="muted">${esc(s.batch_id || "")}</div></div>`;
  }

  function bufferHtml(b) {
    const cap = b.capacity || 0;
    const share = cap ? Math.min(1, b.level / cap) : 0;
    const w = `w${Math.round(share * 10) * 10}`;
    return `<div class="buffer" id="buf-${cls(b.path)}" data-level="${esc(b.level)}">
      <div class="bar ${cap && b.level >= cap ? "full" : ""}"><span class="${w}"></span></div>
      ${esc(b.level)}/${cap ? esc(cap) : "∞"}${b.held ? ` · ${esc(b.held)} held` : ""}</div>`;
  }

  // Running batch: the trends and the evolving prediction of each tool's batch.
  function renderRunning(page) {
    const items = [];
    for (const l of lines()) for (const r of Object.values(l.running || {})) items.push([l, r]);
    const key = items.map(([l, r]) => `${l.name}|${r.path}|${r.batch_id}`).join(";");
    if (key !== structure) {
      structure = key;
      destroyCharts();
      page.innerHTML = items.length ? items.map(([l, r]) => `
        <section class="card" id="run-${cls(r.path)}" data-batch="${esc(r.batch_id)}">
          <h2>${esc(r.path)} · batch ${esc(r.batch_id)} <span class="muted step"></span></h2>
          <div class="row"><div>predicted final thickness
            <div class="pred-big" id="pred-${cls(r.path)}"></div>
            <div class="muted interval"></div></div>
            <div class="muted">internal band ${nm(l.band_nm[0])}–${nm(l.band_nm[1])} nm · release window ${nm(l.spec_nm[0])}–${nm(l.spec_nm[1])} nm · aim ${nm(l.aim_nm)} nm<br>setpoints: <span class="sp"></span></div></div>
          <div class="chart" id="c-pred-${cls(r.path)}"></div>
          <div class="chart" id="c-temp-${cls(r.path)}"></div>
          <div class="chart" id="c-gas-${cls(r.path)}"></div>
          <h3>in-step actions</h3><div class="actions"></div>
        </section>`).join("") : '<p class="muted">no batch on a furnace or sputter tool yet</p>';
    }
    for (const [l, r] of items) updateRunning(l, r);
  }

  function bandClass(l, x) {
    if (x == null) return "";
    if (x < l.spec_nm[0] || x > l.spec_nm[1]) return "outspec";
    return x < l.band_nm[0] || x > l.band_nm[1] ? "outband" : "inband";
  }

  function updateRunning(l, r) {
    const sec = document.getElementById(`run-${cls(r.path)}`);
    if (!sec) return;
    const last = r.predictions[r.predictions.length - 1];
    const pred = $(`#pred-${cls(r.path)}`, sec);
    const text = last ? `${nm(last.mean_nm)} nm` : "–";
    if (pred.textContent !== text) pred.textContent = text;
    pred.className = `pred-big ${bandClass(l, last && last.mean_nm)}`;
    pred.dataset.mean = last ? String(last.mean_nm) : "";
    pred.dataset.count = String(r.predictions.length);
    $(".interval", sec).textContent = last ? `interval ${nm(last.lower_nm)}–${nm(last.upper_nm)} nm (${pct(l.interval_level)})${last.reliability != null ? ` · reliability ${last.reliability.toFixed(2)}` : ""}` : "no prediction yet";
    $(".step", sec).textContent = r.step ? `· ${r.step}` : "";
    $(".sp", sec).textContent = kv(r.setpoints) || "–";
    setHtml($(".actions", sec), r.actions.length ? `<table><tr><th>time</th><th>kind</th><th>before</th><th>after</th><th>result</th><th>why</th></tr>${r.actions.map((a) => `<tr><td>${clock(a.sim_time_s)}</td><td>${esc(a.kind)}</td><td>${kv(a.before)}</td><td>${kv(a.after)}</td><td>${esc(a.result)}</td><td>${esc(a.reason)}</td></tr>`).join("")}</table>` : '<p class="muted">none</p>');
    // The numbers follow every event; the charts at most CHART_MS apart (redrawing three
    // charts of up to 3000 points on each of 20 events a second cost half a core at 2400x).
    const now = performance.now();
    if (now - (chartDrawn.get(r.path) || 0) >= CHART_MS) {
      chartDrawn.set(r.path, now);
      drawPred(l, r);
      drawTemp(r);
      drawGas(r);
    } else {
      dirty = true;  // draw them on a later frame
    }
  }

  function chartWidth(el) { return Math.max(400, (el.parentElement.clientWidth || 900) - 8); }

  function chart(id, opts, d) {
    const el = document.getElementById(id);
    if (!el || typeof uPlot === "undefined") return;
    let c = charts.get(id);
    if (c && c.root.parentElement !== el) { c.destroy(); c = null; }
    if (!c) {
      c = new uPlot({ width: chartWidth(el), height: 200, ...opts }, d, el);
      charts.set(id, c);
    } else {
      c.setData(d);
    }
  }

  function destroyCharts() {
    for (const c of charts.values()) c.destroy();
    charts.clear();
  }

  const timeAxis = { values: (u, ticks) => ticks.map((t) => clock(t)) };

  function drawPred(l, r) {
    const p = r.predictions;
    if (!p.length) return;
    const x = p.map((q) => q.t_s);
    const k = (v) => x.map(() => v);
    chart(`c-pred-${cls(r.path)}`, {
      title: "predicted final thickness, nm (log scale)",
      scales: { x: { time: false }, y: { distr: 3, range: (u, lo, hi) => [Math.max(Math.min(lo ?? 1, l.band_nm[0]) * 0.8, 0.01), Math.max(hi ?? 10, l.band_nm[1]) * 1.25] } },
      axes: [timeAxis, {}],
      series: [{}, { label: "predicted", stroke: "#1849a9", width: 2 },
        { label: "lower", stroke: "#84adff", dash: [4, 4] }, { label: "upper", stroke: "#84adff", dash: [4, 4] },
        { label: "band", stroke: "#2e9e4f" }, { label: "band", stroke: "#2e9e4f" },
        { label: "spec 1 nm", stroke: "#d92d20" }, { label: "spec 100 nm", stroke: "#d92d20" }],
    }, [x, ...["mean_nm", "lower_nm", "upper_nm"].map((k) => p.map((q) => (q[k] > 0 ? q[k] : null))),
      k(l.band_nm[0]), k(l.band_nm[1]), k(l.spec_nm[0]), k(l.spec_nm[1])]);
  }

  function joined(series) {
    // [[t, v], ...] per series → one aligned x axis (uPlot.join fills gaps with null).
    const tables = series.filter((s) => s && s.t_s.length).map((s) => [s.t_s, s.v]);
    return tables.length ? uPlot.join(tables) : null;
  }

  function drawTemp(r) {
    const t = r.trend.temperature_c, sp = r.sp_profile;
    const main = t || r.trend.film_nm || r.trend.substrate_temperature_c;
    if (!main || typeof uPlot === "undefined") return;
    const isTemp = !!t;
    const series = isTemp && sp ? [t, { t_s: sp.t_s, v: sp.temperature_c }] : [main];
    const d = joined(series);
    if (!d) return;
    chart(`c-temp-${cls(r.path)}`, {
      title: isTemp ? "temperature, °C: actual (zone mean) and setpoint" : "film, nm",
      scales: { x: { time: false } }, axes: [timeAxis, {}],
      series: [{}, { label: isTemp ? "actual °C" : "film nm", stroke: "#d92d20", width: 2 },
        ...(series.length > 1 ? [{ label: "setpoint °C", stroke: "#101828", dash: [6, 4] }] : [])],
    }, d);
  }

  const GAS = [["po2_atm", "pO2 atm"], ["ph2o_atm", "pH2O atm"], ["pressure_mtorr", "pressure mTorr"],
    ["ar_sccm", "Ar sccm"], ["o2_sccm", "O2 sccm"]];

  function drawGas(r) {
    const have = GAS.filter(([k]) => r.trend[k] && r.trend[k].t_s.length);
    if (!have.length || typeof uPlot === "undefined") return;
    // A log axis takes positive values only: a zero reading (gas off) is a gap, and the axis
    // never reaches below LOG_FLOOR (a 1e-94 reading made uPlot build a huge tick array).
    const d = joined(have.map(([k]) => r.trend[k]));
    if (!d) return;
    for (let i = 1; i < d.length; i++) d[i] = d[i].map((v) => (v != null && v > 0 ? Math.max(v, LOG_FLOOR) : null));
    const colours = ["#7a5af8", "#0e9384", "#e07b00", "#3b7dd8", "#c11574"];
    chart(`c-gas-${cls(r.path)}`, {
      title: "gas", scales: { x: { time: false }, y: { distr: 3, range: (u, lo, hi) => [Math.max(lo ?? LOG_FLOOR, LOG_FLOOR), Math.max(hi ?? 1, LOG_FLOOR * 10)] } }, axes: [timeAxis, {}],
      series: [{}, ...have.map(([, label], i) => ({ label, stroke: colours[i], width: 1.5 }))],
    }, d);
  }

  // Batches: recent release units.
  function renderBatches(page) {
    destroyCharts();
    const rows = [];
    for (const l of lines()) for (const b of l.batches || []) rows.push([l, b]);
    rows.sort((a, b) => (b[1].end_s ?? 0) - (a[1].end_s ?? 0));
    const html = `<h2>Batches</h2><table id="batches"><tr><th>batch</th><th>tool</th><th>ended</th>
      <th>predicted nm</th><th>interval nm</th><th>reliability</th><th>lab nm</th><th>decision</th><th>rule</th><th>control</th><th>records</th></tr>
      ${rows.slice(0, MAX_ROWS).map(([l, b]) => `<tr id="batch-${cls(b.unit_id)}" data-pred="${esc(b.pred_nm)}" data-decision="${esc(b.decision)}">
        <td>${esc(b.unit_id)}</td><td>${esc(b.path)}${b.live ? ' <span class="badge plc">PLC</span>' : ""}</td><td>${clock(b.end_s)}</td>
        <td class="num ${bandClass(l, b.pred_nm)}">${nm(b.pred_nm)}</td><td class="num">${nm(b.lower_nm)}–${nm(b.upper_nm)}</td>
        <td class="num">${b.reliability == null ? "–" : b.reliability.toFixed(2)}</td>
        <td class="num">${nm(b.lab_nm)}${b.lab_inside === false ? " ⚠" : ""}</td>
        <td class="decision-${esc(b.decision)}">${esc(b.decision)}</td><td title="${esc(b.reason)}">${esc(b.rule)}</td>
        <td>${esc(b.ctrl_state)}</td>
        <td>${["release", "scrap", "rework"].includes(b.decision) || b.lab_nm != null ? `<a href="/api/lines/${encodeURIComponent(l.name)}/report/${encodeURIComponent(b.unit_id)}" target="_blank" rel="noopener">report</a> · <a href="/api/lines/${encodeURIComponent(l.name)}/certificate/${encodeURIComponent(b.unit_id)}" target="_blank" rel="noopener">certificate</a>` : '<span class="muted">after the decision</span>'}</td></tr>`).join("")}
      </table>`;
    setHtml(page, html);
  }

  // Control: open proposals (accept / reject with a confirmation) and the audit trail.
  function renderControl(page) {
    destroyCharts();
    const may = !!me.may_decide;
    const props = [], audit = [];
    for (const l of lines()) {
      for (const p of l.proposals || []) props.push([l, p]);
      for (const a of l.audit || []) audit.push([l, a]);
    }
    audit.sort((a, b) => (b[1].sim_time_s ?? 0) - (a[1].sim_time_s ?? 0));
    const predicted = (p, side) => {
      const v = (p.predicted_nm && p.predicted_nm[side]) ?? (p[side] && p[side].predicted_nm);
      return v == null ? "–" : `${nm(v)} nm`;
    };
    const hint = may ? "" : `<p class="muted">${me.read_only ? "a finished run is read-only" : me.user ? `${esc(me.user)} (${esc(me.role)}) may not decide: the operator role is needed` : "log in as an operator to decide"}</p>`;
    const adv = audit.filter(([, a]) => a.kind === "proposal" && a.result === "advice").slice(0, 10);
    const advHtml = adv.length ? `<h2>Advice during the step</h2><p class="muted">The twin does not act on these: trim the hold on the furnace's own HMI if you agree.</p>
      <table id="advice"><tr><th>time</th><th>batch</th><th>now</th><th>advised</th><th>why</th></tr>${adv.map(([, a]) => `<tr data-proposal="${esc(a.proposal_id)}"><td>${clock(a.sim_time_s)}</td><td>${esc(a.batch_id)}</td><td>${kv(a.before)} (${predicted(a, "before")})</td><td>${kv(a.after)} (${predicted(a, "after")})</td><td>${esc(a.reason)}</td></tr>`).join("")}</table>` : "";
    // Sections drawn apart: a new audit record must not redraw the buttons under the pointer.
    const parts = sections(page, "control", ["ctl-msg", "ctl-props", "ctl-advice", "ctl-audit"]);
    setHtml(parts[0], msgHtml());
    setHtml(parts[1], `<h2>Open proposals</h2>${hint}
      ${props.length ? `<table id="proposals"><tr><th>proposal</th><th>batch</th><th>setpoints now</th><th>proposed</th><th>predicted now</th><th>predicted after</th><th>why</th><th></th></tr>
      ${props.map(([l, p]) => `<tr data-proposal="${esc(p.proposal_id)}">
        <td>${esc(p.proposal_id)}</td><td>${esc(p.batch_id)}</td><td>${kv(p.before)}</td><td>${kv(p.after)}</td>
        <td class="num">${predicted(p, "before")}</td><td class="num">${predicted(p, "after")}</td><td>${esc(p.reason)}</td>
        <td><button class="primary" data-act="accept" data-line="${esc(l.name)}" data-id="${esc(p.proposal_id)}" ${may ? "" : "disabled"}>Accept</button>
            <button class="danger" data-act="reject" data-line="${esc(l.name)}" data-id="${esc(p.proposal_id)}" ${may ? "" : "disabled"}>Reject</button></td></tr>`).join("")}</table>`
        : '<p class="muted" id="no-proposals">no open proposal</p>'}`);
    setHtml(parts[2], advHtml);
    setHtml(parts[3], `<h2>Audit trail</h2><table id="audit"><tr><th>time</th><th>loop</th><th>batch</th><th>kind</th><th>before</th><th>after</th><th>who</th><th>result</th><th>why</th></tr>
      ${audit.slice(0, MAX_ROWS).map(([, a]) => `<tr data-kind="${esc(a.kind)}" data-proposal="${esc(a.proposal_id)}"><td>${clock(a.sim_time_s)}</td><td>${esc(a.loop)}</td><td>${esc(a.batch_id)}</td><td>${esc(a.kind)}</td>
        <td>${kv(a.before)}</td><td>${kv(a.after)}</td><td>${esc(a.who)}</td><td>${esc(a.result)}</td><td>${esc(a.reason)}</td></tr>`).join("")}</table>`);
  }

  // The page's fixed sections (made once per page), each redrawn on its own.
  function sections(page, name, ids) {
    if (page.dataset.sections !== name) {
      page.dataset.sections = name;
      drawn.delete(page);
      page.innerHTML = ids.map((id) => `<div id="${id}"></div>`).join("");
    }
    return ids.map((id) => document.getElementById(id));
  }

  // Alarms: active, cleared but unacknowledged, and history.
  function renderAlarms(page) {
    destroyCharts();
    const all = [];
    for (const l of lines()) for (const a of l.alarms || []) all.push([l, a]);
    const may = !!me.may_ack;
    const table = (id, rows, ack) => rows.length ? `<table id="${id}"><tr><th>#</th><th>station</th><th>alarm</th><th>message</th><th>severity</th><th>raised</th><th>cleared</th><th>state</th><th>acknowledged</th><th></th></tr>
      ${rows.map(([l, a]) => `<tr class="alarm-${esc(a.state)}" data-alarm="${esc(a.alarm_id)}" data-state="${esc(a.state)}">
        <td>${esc(a.alarm_id)}</td><td>${esc(a.station || a.source)}</td><td>${esc(a.kind)}</td><td>${esc(a.message)}</td><td class="num">${esc(a.severity)}</td>
        <td>${a.raised_at ? esc(new Date(a.raised_at * 1000).toLocaleTimeString()) : "–"}</td>
        <td>${a.cleared_at ? esc(new Date(a.cleared_at * 1000).toLocaleTimeString()) : ""}</td><td>${esc(a.state)}</td>
        <td>${a.acked ? `${esc(a.acknowledged_by)} ${esc(new Date(a.acknowledged_at * 1000).toLocaleTimeString())}` : ""}</td>
        <td>${ack && !a.acked ? `<button data-act="ack" data-line="${esc(l.name)}" data-id="${esc(a.alarm_id)}" ${may ? "" : "disabled"}>Acknowledge</button>` : ""}</td></tr>`).join("")}</table>`
      : `<p class="muted" id="${id}">none</p>`;
    const active = all.filter(([, a]) => a.active);
    const unacked = all.filter(([, a]) => !a.active && !a.acked);
    const closed = all.filter(([, a]) => !a.active && a.acked).reverse();
    const hint = may ? "" : `<p class="muted">${me.read_only ? "a finished run is read-only" : "acknowledging needs the operator role"}</p>`;
    const parts = sections(page, "alarms", ["al-msg", "al-active", "al-unacked", "al-closed"]);
    setHtml(parts[0], `${msgHtml()}${hint}`);
    setHtml(parts[1], `<h2>Active</h2>${table("alarms-active", active, true)}`);
    setHtml(parts[2], `<h2>Cleared, not acknowledged</h2>${table("alarms-unacked", unacked, true)}`);
    setHtml(parts[3], `<h2>Cleared and acknowledged</h2>${table("alarms-closed", closed, false)}`);
  }

  // Calibration: VM against lab over time, coverage so far, learnt parameters.
  function renderCalibration(page) {
    const ls = lines();
    const key = "cal:" + ls.map((l) => l.name).join(",");
    if (structure !== key) {
      structure = key;
      destroyCharts();
      page.innerHTML = ls.map((l) => `<section class="card" id="cal-${cls(l.name)}"><h2>${esc(l.name)}</h2>
        <div class="coverage"></div><div class="chart" id="c-cal-${cls(l.name)}"></div>
        <h3>learnt parameters</h3><div class="params"></div></section>`).join("");
    }
    for (const l of ls) {
      const sec = document.getElementById(`cal-${cls(l.name)}`);
      const c = l.calibration;
      if (!sec || !c) continue;
      const cov = c.coverage;
      setHtml($(".coverage", sec), `<p id="coverage-${cls(l.name)}" data-n="${esc(cov.n)}" data-inside="${esc(cov.inside)}">lab results inside the predicted ${pct(c.level)} lab interval:
        <b>${cov.n ? `${esc(cov.inside)} of ${esc(cov.n)} (${pct(cov.share)})` : "none yet"}</b>
        ${cov.interval ? ` · 95 % confidence ${pct(cov.interval[0])}–${pct(cov.interval[1])}` : ""} · nominal ${pct(c.level)}</p>`);
      const rows = Object.entries(c.latest || {});
      setHtml($(".params", sec), rows.length ? `<table class="kv"><tr><th>loop</th><th>after batch</th><th>at</th><th>values</th><th>updates</th></tr>${rows.map(([loop, p]) => `<tr><td>${esc(loop)}</td><td>${esc(p.batch_id)}</td><td>${clock(p.t_s)}</td><td>${kv(Object.fromEntries(Object.entries(p).filter(([k]) => !["t_s", "batch_id"].includes(k))))}</td><td>${esc((c.parameters[loop] || []).length)}</td></tr>`).join("")}</table>` : '<p class="muted">no calibration update yet (the plant file\'s calibration holds)</p>');
      const pts = c.points.filter((p) => p.t_s != null);
      if (pts.length && typeof uPlot !== "undefined") {
        chart(`c-cal-${cls(l.name)}`, {
          title: "virtual metrology against the lab, nm",
          scales: { x: { time: false }, y: { distr: 3 } }, axes: [timeAxis, {}],
          series: [{}, { label: "predicted", stroke: "#1849a9", width: 0, points: { show: true, size: 7 } },
            { label: "lab", stroke: "#d92d20", width: 0, points: { show: true, size: 7 } },
            { label: "lab interval low", stroke: "#84adff", width: 0, points: { show: true, size: 4 } },
            { label: "lab interval high", stroke: "#84adff", width: 0, points: { show: true, size: 4 } }],
        }, [pts.map((p) => p.t_s), pts.map((p) => p.pred_nm), pts.map((p) => p.lab_nm),
          pts.map((p) => p.lower_nm), pts.map((p) => p.upper_nm)]);
      }
    }
  }

  // -- writes ---------------------------------------------------------------------------
  function confirmThen(title, body, okLabel, action) {
    const dlg = $("#confirm");
    $("#confirm-title").textContent = title;
    $("#confirm-body").innerHTML = body;
    $("#confirm-ok").textContent = okLabel;
    dlg.returnValue = "";
    dlg.addEventListener("close", async () => {
      if (dlg.returnValue !== "ok") return;
      const r = await action();
      message = { ok: r.ok, text: `${r.status === 200 ? "" : `refused (${r.status}): `}${r.text}` };
      dirty = true;
    }, { once: true });
    dlg.showModal();
  }

  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-act]");
    if (!b || b.disabled) return;
    const line = b.dataset.line, id = b.dataset.id;
    if (b.dataset.act === "accept" || b.dataset.act === "reject") {
      const accept = b.dataset.act === "accept";
      const l = data.lines[line];
      const p = (l.proposals || []).find((q) => q.proposal_id === id) || {};
      confirmThen(`${accept ? "Accept" : "Reject"} proposal ${id}?`,
        `<p>batch ${esc(p.batch_id)} on ${esc(p.loop)}</p><p>setpoints now: ${kv(p.before)}<br>proposed: <b>${kv(p.after)}</b></p><p>${esc(p.reason)}</p>
         <p class="muted">${accept ? "The new setpoints are written to the tool when the batch starts; the audit trail records your name." : "The batch runs on its current setpoints."}</p>`,
        accept ? "Accept and write" : "Reject",
        () => post(`/api/lines/${encodeURIComponent(line)}/decide`, { proposal_id: id, accept }));
    } else if (b.dataset.act === "ack") {
      confirmThen(`Acknowledge alarm ${id}?`, `<p>The acknowledgement is recorded under your name.</p>`,
        "Acknowledge", () => post(`/api/lines/${encodeURIComponent(line)}/alarms/${encodeURIComponent(id)}/ack`));
    }
  });

  // -- who ------------------------------------------------------------------------------
  function renderWho() {
    const w = $("#who");
    if (me.user) {
      w.innerHTML = `${esc(me.user)} (${esc(me.role)}) <button id="logout">Log out</button>`;
      $("#logout").addEventListener("click", async () => {
        await post("/api/logout");
        location.reload();
      });
    } else if (me.logins) {
      w.innerHTML = `<a href="/login?next=${encodeURIComponent(location.pathname)}" id="login-link">Log in</a>`;
    } else {
      w.innerHTML = '<span class="muted">read-only (no users configured)</span>';
    }
  }

  function renderLogin() {
    $("#nav").hidden = true;
    $("#conn").hidden = true;
    $("#page").innerHTML = `<section class="card"><h2>Log in</h2>
      <form class="login" id="login-form"><label for="user">user</label><input id="user" name="user" autocomplete="username" required>
      <label for="password">password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
      <p><button class="primary" type="submit">Log in</button></p><div id="login-error" class="msg err" hidden></div></form></section>`;
    $("#login-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const r = await fetch("/api/login", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": cookie("anode_login_csrf") },
        body: JSON.stringify({ user: $("#user").value, password: $("#password").value }),
      });
      if (r.ok) {
        const next = new URLSearchParams(location.search).get("next") || "/line";
        location.href = next.startsWith("/") && !next.startsWith("//") ? next : "/line";
      } else {
        const j = await r.json().catch(() => ({}));
        const e = $("#login-error"); e.hidden = false; e.textContent = j.error || r.statusText;
      }
    });
  }

  async function main() {
    for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === PAGE);
    if (PAGE === "login") { renderLogin(); return; }
    try {
      me = await (await fetch("/api/me", { credentials: "same-origin" })).json();
    } catch (e) { /* the server is down: the stream retries, the page shows it */ }
    if (!me.user && !me.anonymous_read) {
      location.href = `/login?next=${encodeURIComponent(location.pathname)}`;
      return;
    }
    renderWho();
    connect();
    setInterval(checkStale, 250);
    const frame = () => { render(); requestAnimationFrame(frame); };
    requestAnimationFrame(frame);
    // A page hidden in a background tab draws nothing (no animation frames) but keeps its data.
    document.addEventListener("visibilitychange", () => { dirty = true; });
  }

  main();
})();
