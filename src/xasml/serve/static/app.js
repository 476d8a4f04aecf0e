// xasml serve: the beamline page. Plain JavaScript, Plotly.js from the plotly package.
"use strict";
const state = { rows: [], selected: null, status: null, entry: null };
const $ = (id) => document.getElementById(id);
const fmt = (v, d = 2) => (v === null || v === undefined || v === "") ? "–" : (typeof v === "number" ? v.toFixed(d) : String(v));
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
// fields of an answer shown in their own places (the headline, the warnings, the evidence section)
const KNOWN = new Set(["file", "absorbing_element", "prediction", "std", "calibration", "e0", "warnings", "out_of_domain",
  "environment_name", "energy_offset_eV", "alignment_shift_eV", "evidence", "combined", "flagged", "flag_reasons", "status"]);
const PLOTCFG = { responsive: true, displayModeBar: false };
const OPTS = ["mu", "energy_col", "absorbing_element", "edge", "scan", "calibrate", "reference", "e0", "pre1", "pre2", "norm1", "norm2", "nnorm"];

function setStatus(text, isError) { const s = $("status"); s.textContent = text; s.className = isError ? "error" : ""; }

async function api(url, opts) {
  const r = await fetch(url, opts);
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new Error((body && (body.error || body.detail)) || (r.status + " " + r.statusText));
  return body;
}

async function loadStatus() {
  state.status = await api("/api/status");
  const s = state.status, parts = [];
  if (s.watch) parts.push("watching " + s.watch);
  if (s.tiled) parts.push("Tiled " + s.tiled + (s.tiled_error ? " (" + s.tiled_error + ")" : ""));
  parts.push("models: " + (s.models.join(" ") || "loading"));
  $("feeds").textContent = parts.join(" · ");
  const sel = $("opt-reference");
  sel.innerHTML = '<option value="">(file\'s own)</option>' + s.references.map((r) => `<option>${esc(r)}</option>`).join("");
}

async function loadRows() {
  state.rows = await api("/api/rows");
  const tb = $("scan-table").querySelector("tbody");
  tb.innerHTML = state.rows.map((r, n) => {
    const key = r.entry + ":" + r.spectrum;
    const sel = state.selected === key ? " selected" : "";
    if (r.status === "error") {
      return `<tr class="error${sel}" data-key="${key}" data-entry="${r.entry}" data-spectrum="${r.spectrum}"><td>${n + 1}</td>` +
        `<td>${esc(r.label || r.name)}</td><td colspan="5" class="err">${esc(r.error || "error")}</td></tr>`;
    }
    // the combined answer of the model and the measured standards where there is one, else the model's
    const comb = r.combined_oxidation_state !== null && r.combined_oxidation_state !== undefined;
    const v = comb ? r.combined_oxidation_state : r.oxidation_state, sd = comb ? r.combined_sigma : r.oxidation_state_std;
    const os = v === null || v === undefined ? "–" :
      `<span class="os" title="${comb ? "combined; model " + fmt(r.oxidation_state) + " ± " + fmt(r.oxidation_state_std) : "model"}">${fmt(v)}</span>` +
      ` ± <span class="os-std">${fmt(sd)}</span>` + (r.flagged ? ' <span class="tflag" title="flagged: the evidence doubts this answer">⚑</span>' : "");
    return `<tr class="ok${r.flagged ? " flagged" : ""}${sel}" data-key="${key}" data-entry="${r.entry}" data-spectrum="${r.spectrum}"><td>${n + 1}</td>` +
      `<td title="${esc(r.name)}">${esc(r.label || r.name)}</td><td>${esc(r.absorbing_element || "")}</td><td>${os}</td>` +
      `<td>${fmt(r.cn, 1)}</td><td>${esc(r.environment || "–")}</td><td>${r.n_warnings || ""}</td></tr>`;
  }).join("");
  for (const tr of tb.querySelectorAll("tr")) tr.onclick = () => select(+tr.dataset.entry, +tr.dataset.spectrum);
  await loadSeries();
}

async function select(entry, spectrum) {
  state.selected = entry + ":" + spectrum;
  for (const tr of document.querySelectorAll("#scan-table tbody tr")) tr.classList.toggle("selected", tr.dataset.key === state.selected);
  const e = await api("/api/entries/" + entry);
  state.entry = e;
  renderDetail(e, spectrum);
}

function renderDetail(e, index) {
  $("detail").hidden = false;
  const res = e.result, spectra = res.spectra || [];
  const s = spectra[index] || null;
  $("detail-title").textContent = e.name + (spectra.length > 1 && s ? " — " + s.label : "");
  $("detail").dataset.entry = e.id; $("detail").dataset.spectrum = index;
  const err = (s && s.error) || (!s && res.error) || null;
  $("detail-error").hidden = !err; $("detail-error").textContent = err || "";
  const a = (s && s.answers) || {};
  const ox = a.oxidation || {}, cn = a.cn || {}, env = a.coordination || {};
  // headline: the combined oxidation state of the model and the measured standards (the model's beside it)
  const comb = ox.combined && ox.combined.oxidation_state !== null && ox.combined.oxidation_state !== undefined ? ox.combined : null;
  $("answer-os").textContent = fmt(comb ? comb.oxidation_state : ox.prediction);
  $("answer-os-std").textContent = fmt(comb ? comb.sigma : ox.std);
  $("answer-os-source").textContent = comb ? "(combined: " + comb.methods.join(", ") + ")" : (ox.prediction !== undefined ? "(model alone)" : "");
  $("answer-model-os").textContent = fmt(ox.prediction); $("answer-model-os-std").textContent = fmt(ox.std);
  $("flagged").hidden = !ox.flagged;
  const reasons = (ox.flag_reasons || []).slice();
  if (comb && comb.disagree) reasons.push(`the evidence disagrees beyond its σ (χ² ${fmt(comb.chi2)} on ${comb.dof} dof): σ widened ×${fmt(comb.widened_by, 1)}`);
  $("flag-reasons").hidden = !(ox.flagged || reasons.length);
  $("flag-reasons").innerHTML = (ox.flagged ? "<b>FLAGGED</b>: this answer is doubtful" : "<b>note</b>") +
    "<ul>" + reasons.map((w) => `<li>${esc(w)}</li>`).join("") + "</ul>";
  $("answer-cn").textContent = fmt(cn.prediction, 1); $("answer-cn-std").textContent = fmt(cn.std, 1);
  $("answer-env").textContent = env.prediction ? env.prediction + (env.environment_name ? " (" + env.environment_name + ")" : "") : "–";
  $("answer-ood").textContent = fmt(ox.out_of_domain);
  $("answer-e0").textContent = s && s.e0 ? s.e0.toFixed(2) : "–";
  const o = e.options || {};
  for (const k of OPTS) { const el = $("opt-" + k); if (!el) continue; el.value = o[k] !== undefined ? o[k] : (k === "calibrate" ? "auto" : ""); }
  if (s && !s.error) {
    for (const k of ["e0", "pre1", "pre2", "norm1", "norm2", "nnorm"]) $("opt-" + k).placeholder = String(s[k]);
    $("dl-xdi").href = `/api/entries/${e.id}/spectra/${index}/normalized.xdi`;
    $("dl-prj").href = `/api/entries/${e.id}/project.prj`;
  }
  const warns = (s && s.warnings) || [];
  const aerr = (s && s.answer_errors) || {};
  $("warnings").innerHTML = warns.map((w) => `<li>${esc(w)}</li>`).join("") +
    Object.entries(aerr).map(([t, m]) => `<li class="error">${esc(t)}: ${esc(m)}</li>`).join("");
  const cal = (s && s.calibration) || null;
  $("calibration").textContent = cal ? `calibration: ${cal.method}` + (cal.reference ? ` against ${cal.reference}` : "") +
    (cal.shift ? `, shift ${cal.shift.toFixed(2)} eV` : "") + ` (tabulated ${cal.element} ${cal.edge} edge ${cal.tabulated_e0} eV)` +
    (s.mu_source ? ` · μ from ${s.mu_source}` : "") + ` · edge step ${fmt(s.edge_step, 3)}` : "";
  renderEvidence(a, s);
  plotSpectrum(s);
}

function renderValue(v) {
  if (Array.isArray(v)) {
    if (v.length && typeof v[0] === "object" && v[0] !== null) {
      const cols = [...new Set(v.flatMap((x) => Object.keys(x)))].filter((c) => !Array.isArray(v[0][c]));
      return "<table><tr>" + cols.map((c) => `<th>${esc(c)}</th>`).join("") + "</tr>" +
        v.map((x) => "<tr>" + cols.map((c) => `<td>${esc(typeof x[c] === "number" ? +x[c].toFixed(4) : (x[c] ?? ""))}</td>`).join("") + "</tr>").join("") + "</table>";
    }
    return esc(v.length > 12 ? v.slice(0, 12).join(", ") + " …" : v.join(", "));
  }
  if (v && typeof v === "object") {
    return "<ul>" + Object.entries(v).map(([k, x]) => `<li><b>${esc(k)}</b>: ${renderValue(x)}</li>`).join("") + "</ul>";
  }
  return esc(typeof v === "number" ? +v.toFixed(4) : v);
}

const valence = (v) => v === null || v === undefined ? "?" : (+v).toFixed(2).replace(/\.?0+$/, "");
const pm = (x) => x ? `${fmt(x.value !== undefined ? x.value : x.valence)} ± ${fmt(x.sigma)}` : "–";
const table = (head, rows) => "<table><tr>" + head.map((h) => `<th>${esc(h)}</th>`).join("") + "</tr>" +
  rows.map((r) => "<tr>" + r.map((c) => typeof c === "number" ? `<td class="num">${esc(+c.toFixed(4))}</td>` : `<td>${esc(c ?? "–")}</td>`).join("") + "</tr>").join("") + "</table>";

function renderEvidence(answers, s) {
  // the evidence of the measured standards behind the oxidation state (xasml.references), then
  // every other field of the answers that has no place of its own (probabilities, metal evidence, ...)
  const ox = answers.oxidation || {}, ev = ox.evidence;
  let html = "";
  if (ev) {
    const c = ox.combined || {}, cal = c.calibrated || {};
    const lcf = ev.lcf, ep = ev.edge_position, m = ev.model;
    html += '<div id="evidence-lines">' + table(["line of evidence", "oxidation state ± σ (σ calibrated on measured standards)", "how"], [
      ["model", m ? pm(m) : "–", m ? "the shipped model" + (m.out_of_domain !== undefined ? `, out-of-domain ${fmt(m.out_of_domain)}` : "") : "no model answer"],
      ["linear-combination fit", lcf && lcf.valence !== null && lcf.valence !== undefined ? pm(lcf) : "–",
        lcf ? `${lcf.n_standards} standards, ${lcf.n_combinations} combinations of 1-3 fitted` : "no standard of this element and edge"],
      ["edge position", ep ? pm(ep) : "–", ep ? `${ep.measure} = ${fmt(ep.energy)} eV on a line over ${ep.n_standards} standards (${fmt(ep.slope, 3)} per eV)` : "abstains (too few standards)"],
      ["combined", c.oxidation_state !== null && c.oxidation_state !== undefined ? `${fmt(c.oxidation_state)} ± ${fmt(c.sigma)}` : "–",
        (c.methods || []).join(" + ") + (c.dof ? `; χ² ${fmt(c.chi2)} on ${c.dof} dof` + (c.disagree ? ", DISAGREE" : "") : "")],
    ]) + "</div>";
    if (lcf && lcf.best) {
      const b = lcf.best;
      html += `<h4>Linear-combination fit (best of ${lcf.n_combinations}; shift ${fmt(b.shift, 2)} eV, R-factor ${fmt(b.r_factor, 5)}, reduced χ² ${fmt(b.reduced_chi2, 5)})</h4>` +
        '<div id="evidence-lcf">' + table(["standard", "valence", "weight"], b.components.map((x) => [x.compound, valence(x.valence), x.weight])) + "</div>";
      if (lcf.fits && lcf.fits.length > 1) {
        html += "<details><summary>next fits</summary>" + table(["components", "valence", "R-factor"],
          lcf.fits.slice(1, 6).map((f) => [f.components.map((x) => `${x.weight.toFixed(2)} ${x.compound}`).join(" + "), f.valence === null ? "?" : f.valence, f.r_factor])) + "</details>";
      }
    }
    if (ep) html += `<h4>Edge-position valence</h4><div id="evidence-edge">valence ${pm(ep)} from ${esc(ep.measure)} = ${fmt(ep.energy)} eV; ` +
      `line valence = ${fmt(ep.intercept, 2)} + ${fmt(ep.slope, 4)}·E over ${ep.n_standards} standards (residual σ ${fmt(ep.residual_sigma)})</div>`;
    if (ev.nearest && ev.nearest.length) {
      html += "<h4>Nearest standards</h4>" + '<div id="evidence-nearest">' + table(["standard", "formula", "valence", "r", "shift (eV)", "R-factor"],
        ev.nearest.map((n) => [n.compound, n.formula, valence(n.valence), n.similarity, n.shift, n.r_factor])) + "</div>";
    }
  } else if (ox.prediction !== undefined) {
    html = "no evidence of measured standards for this spectrum (computed spectrum, or the evidence could not use it: see the warnings)";
  }
  $("evidence").innerHTML = html || "–";
  let more = "";
  for (const [task, ans] of Object.entries(answers)) {
    const items = Object.entries(ans).filter(([k]) => !KNOWN.has(k)).map(([k, v]) =>
      k === "probabilities" ? [k, Object.fromEntries(Object.entries(v).sort((a, b) => b[1] - a[1]).slice(0, 4))] : [k, v]);
    if (!items.length) continue;
    more += `<h4>${esc(task)}</h4><ul>` + items.map(([k, v]) => `<li><b>${esc(k)}</b>: ${renderValue(v)}</li>`).join("") + "</ul>";
  }
  $("answer-details").innerHTML = more || "–";
}

function overlays(s) {
  // the spectra behind the evidence, on the flattened spectrum: the best linear-combination fit and the nearest standards
  const ec = (s && s.evidence_curves) || {}, out = [];
  if (ec.lcf) out.push({ x: ec.lcf.energy, y: ec.lcf.flat, name: "LCF: " + ec.lcf.label, mode: "lines", line: { color: "#000", dash: "dash", width: 1.5 } });
  for (const n of ec.nearest || []) {
    out.push({ x: n.energy, y: n.flat, name: `${n.compound} (${valence(n.valence)}; r ${fmt(n.similarity, 3)})`, mode: "lines", line: { dash: "dot", width: 1 }, opacity: 0.8 });
  }
  return out;
}

function plotSpectrum(s) {
  if (!s || s.error || !s.curves) { Plotly.purge("plot-raw"); Plotly.purge("plot-norm"); return; }
  const c = s.curves;
  const e0y = c.mu[c.energy.findIndex((x) => x >= s.e0)] ?? null;
  Plotly.react("plot-raw", [
    { x: c.energy, y: c.mu, name: "μ(E)", mode: "lines" },
    { x: c.energy, y: c.pre_edge, name: "pre-edge", mode: "lines", line: { dash: "dash" } },
    { x: c.energy, y: c.post_edge, name: "post-edge", mode: "lines", line: { dash: "dash" } },
    { x: [s.e0], y: [e0y], name: "e0", mode: "markers", marker: { size: 10, symbol: "x" } },
  ], { title: { text: "raw μ(E)", font: { size: 13 } }, margin: { t: 30, r: 10, b: 40, l: 50 }, xaxis: { title: { text: "energy (eV)" } },
       shapes: [{ type: "line", x0: s.e0, x1: s.e0, yref: "paper", y0: 0, y1: 1, line: { color: "#999", dash: "dot" } }] }, PLOTCFG);
  const lo = s.e0 - 40, hi = s.e0 + 120;
  const traces = [
    { x: c.energy, y: c.norm, name: "norm", mode: "lines" },
    { x: c.energy, y: c.flat, name: "flat", mode: "lines" },
  ].concat(overlays(s));
  // the y range of what is inside the energy window (Plotly would scale to the whole scan)
  const ys = traces.flatMap((tr) => tr.y.filter((y, i) => tr.x[i] >= lo && tr.x[i] <= hi && y !== null && isFinite(y)));
  const ymin = Math.min(...ys), ymax = Math.max(...ys), pad = 0.05 * (ymax - ymin || 1);
  Plotly.react("plot-norm", traces, { title: { text: "normalised and flattened, with the evidence", font: { size: 13 } },
       margin: { t: 30, r: 10, b: 40, l: 50 }, legend: { x: 0.01, y: 0.99, bgcolor: "rgba(255,255,255,0.75)", font: { size: 10 } },
       xaxis: { title: { text: "energy (eV)" }, range: [lo, hi] }, yaxis: ys.length ? { range: [ymin - pad, ymax + pad] } : {} }, PLOTCFG);
}

async function loadSeries() {
  const elSel = $("series-element");
  const el = elSel.value || "";
  let d;
  try { d = await api("/api/series" + (el ? "?element=" + encodeURIComponent(el) : "")); } catch (e) { return; }
  elSel.innerHTML = d.elements.map((x) => `<option${x === d.element ? " selected" : ""}>${esc(x)}</option>`).join("");
  const xs = $("series-x"), cur = xs.value;
  xs.innerHTML = '<option value="">scan index</option><option value="__time">analysis time</option>' +
    d.header_fields.map((f) => `<option${f === cur ? " selected" : ""}>${esc(f)}</option>`).join("");
  if (cur === "__time") xs.value = "__time";
  const rows = d.rows;
  const xval = (r) => cur === "" ? r.scan : (cur === "__time" ? new Date(r.analysed_at * 1000) : (r.header[cur] ?? null));
  Plotly.react("plot-series", [{ x: rows.map(xval), y: rows.map((r) => r.oxidation_state), text: rows.map((r) => (r.label || r.name) + (r.flagged ? " FLAGGED" : "")),
    mode: "markers+lines", error_y: { type: "data", array: rows.map((r) => r.oxidation_state_std), visible: true }, name: "oxidation state",
    marker: { color: rows.map((r) => r.flagged ? "#c62828" : "#1f77b4"), size: 8 } }],
    { title: { text: `oxidation state ± σ, combined (${d.element || "–"}; red: flagged)`, font: { size: 13 } }, margin: { t: 30, r: 10, b: 40, l: 50 },
      xaxis: { title: { text: cur === "" ? "scan index" : (cur === "__time" ? "analysis time" : cur) } } }, PLOTCFG);
  if (d.pca) {
    Plotly.react("plot-pca", [{ x: d.pca.scores.map((p) => p[0]), y: d.pca.scores.map((p) => p[1]), text: rows.map((r) => r.label || r.name),
      mode: "markers", marker: { color: rows.map((r) => r.oxidation_state), colorscale: "Viridis", showscale: true } }],
      { title: { text: "PCA of the scans", font: { size: 13 } }, margin: { t: 30, r: 10, b: 40, l: 40 } }, PLOTCFG);
  } else Plotly.purge("plot-pca");
  const f = d.factors || {};
  if (f.pca) {
    const p = f.pca, k = p.ind.map((_, i) => i + 1);
    Plotly.react("plot-ind", [{ x: k, y: p.ind, mode: "markers+lines", name: "IND" },
      { x: [p.n_components], y: [p.ind[p.n_components - 1]], mode: "markers", marker: { size: 12, symbol: "circle-open", color: "#c62828" }, name: "minimum" }],
      { title: { text: `factor analysis: ${p.n_components} component${p.n_components > 1 ? "s" : ""} by IND`, font: { size: 13 } },
        margin: { t: 30, r: 10, b: 40, l: 50 }, showlegend: false, xaxis: { title: { text: "components" }, dtick: 1 }, yaxis: { type: "log", title: { text: "Malinowski IND" } } }, PLOTCFG);
    $("factors").innerHTML = `<b id="factors-n">${p.n_components}</b> independent component${p.n_components > 1 ? "s" : ""} among ${p.spectra.length} ${esc(f.element)} ${esc(f.edge)} scans ` +
      `(Malinowski's IND, ${fmt(f.energy_range[0], 1)}-${fmt(f.energy_range[1], 1)} eV); cumulative variance ${p.variance_fraction.slice(0, 4).map((v) => v.toFixed(4)).join(", ")}` +
      (f.targets && f.targets.length ? "; standards the components reproduce best (target transformation): " +
        f.targets.slice(0, 4).map((t) => `${esc(t.compound)} (R ${t.r_factor.toFixed(4)}${t.spoil !== null ? ", SPOIL " + t.spoil : ""})`).join(", ") : "");
  } else { Plotly.purge("plot-ind"); $("factors").textContent = f.error ? "factor analysis: " + f.error : ""; }
  if (d.domain) {
    Plotly.react("plot-domain", [
      { x: d.domain.training.map((p) => p[0]), y: d.domain.training.map((p) => p[1]), mode: "markers", name: "training", marker: { color: "#bbb", size: 4 } },
      { x: d.domain.scans.map((p) => p[0]), y: d.domain.scans.map((p) => p[1]), mode: "markers", name: "scans", text: rows.map((r) => r.label || r.name), marker: { color: "#d62728", size: 8 } }],
      { title: { text: "domain map (model's training PCA)", font: { size: 13 } }, margin: { t: 30, r: 10, b: 40, l: 40 }, showlegend: false }, PLOTCFG);
  } else Plotly.purge("plot-domain");
}

async function upload(files) {
  const max = (state.status && state.status.limits.max_upload_files) || 20;
  const list = Array.from(files);
  if (list.length > max) setStatus(`only the first ${max} of ${list.length} files are uploaded (--max-upload-files)`, true);
  let last = null;
  for (const f of list.slice(0, max)) {
    setStatus("analysing " + f.name + " …");
    try {
      const e = await api("/api/upload?name=" + encodeURIComponent(f.name), { method: "POST", body: f });
      last = e;
      setStatus(e.status === "ok" ? f.name + " analysed" : e.result.error, e.status !== "ok");
    } catch (err) { setStatus(f.name + ": " + err.message, true); }
  }
  await loadRows();
  if (last) await select(last.id, 0);
}

async function applyOptions(ev) {
  ev.preventDefault();
  const d = $("detail"); const id = +d.dataset.entry, index = +d.dataset.spectrum;
  const opts = {};
  for (const k of OPTS) { const v = $("opt-" + k).value.trim(); if (v !== "" && !(k === "calibrate" && v === "auto")) opts[k] = v; }
  setStatus("analysing again …");
  try {
    const e = await api(`/api/entries/${id}/analyse`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(opts) });
    state.entry = e; renderDetail(e, Math.min(index, (e.result.spectra || [1]).length - 1));
    setStatus(e.status === "ok" ? "analysed with the new options" : e.result.error, e.status !== "ok");
    await loadRows();
  } catch (err) { setStatus(err.message, true); }
}

function connect() {
  const es = new EventSource("/api/events");
  let pending = null;
  es.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ev.type === "status") { setStatus(ev.message, ev.level === "error"); return; }
    if (ev.type === "entry") {
      setStatus(`${ev.name}: ${ev.status === "ok" ? "analysed" : "error"} (${ev.origin})`, ev.status !== "ok");
      clearTimeout(pending);
      pending = setTimeout(async () => {
        await loadRows();
        const d = $("detail");
        if (!d.hidden && +d.dataset.entry === ev.id) await select(ev.id, +d.dataset.spectrum);
      }, 150);
    }
  };
}

function init() {
  const dz = $("drop-zone");
  dz.addEventListener("dragover", (e) => { e.preventDefault(); dz.classList.add("over"); });
  dz.addEventListener("dragleave", () => dz.classList.remove("over"));
  dz.addEventListener("drop", (e) => { e.preventDefault(); dz.classList.remove("over"); upload(e.dataTransfer.files); });
  $("file-input").addEventListener("change", (e) => { upload(e.target.files); e.target.value = ""; });
  $("options").addEventListener("submit", applyOptions);
  $("btn-reset").addEventListener("click", () => { for (const k of OPTS) $("opt-" + k).value = k === "calibrate" ? "auto" : ""; });
  $("series-element").addEventListener("change", loadSeries);
  $("series-x").addEventListener("change", loadSeries);
  loadStatus().then(loadRows).catch((e) => setStatus(e.message, true));
  connect();
}
init();
