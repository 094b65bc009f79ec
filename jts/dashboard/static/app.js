// JTS dashboard: login, live pages over one WebSocket, operator actions, strategy editor.
// Plain ES module, no build step. All data is written with textContent (never innerHTML).
import { LABELS } from "./i18n.js";
import { drawCandles, drawLine } from "./charts.js";

const $ = (sel) => document.querySelector(sel);
const S = { lang: localStorage.getItem("jts.lang") || document.documentElement.lang || "ko",
  csrf: "", ws: null, seq: -1, retry: 500, page: "overview", chartSymbol: "",
  ov: null, px: {}, orders: [], pos: [], fills: [], alerts: [], pnl: [], perf: [], surge: [],
  stName: "", stTimer: 0, stLastText: "", backtest: false, loggedIn: false };

function t(key) { return (LABELS[S.lang] || LABELS.ko)[key] ?? LABELS.en[key] ?? key; }
function applyLang() {
  document.documentElement.lang = S.lang;
  document.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t(e.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((e) => { e.placeholder = t(e.dataset.i18nPlaceholder); });
  $("#lang").textContent = S.lang === "ko" ? "EN" : "한국어";
  renderAll();
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k === "onclick") e.addEventListener("click", v); else e[k] = v;
  }
  for (const c of kids) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return e;
}
function fillBody(table, rows) { const tb = $(table + " tbody"); tb.replaceChildren(...rows); }
const num = (v) => (v === null || v === undefined || v === "" ? "-" : Number(v).toLocaleString());
const signed = (v) => { const n = Number(v); return (n > 0 ? "+" : "") + n.toLocaleString(); };
const cls = (v) => (Number(v) > 0 ? "up" : Number(v) < 0 ? "down" : "");
const hhmmss = (ms) => new Date(ms).toLocaleTimeString(S.lang === "ko" ? "ko-KR" : "en-GB", { hour12: false });

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") { headers["Content-Type"] = "application/json"; headers["X-CSRF-Token"] = S.csrf; }
  let r;
  try {
    r = await fetch(path, { method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) { return { status: 0, data: { error: String(e) } }; }
  let data = {};
  try { data = await r.json(); } catch (e) { data = {}; }
  if (r.status === 401 && path !== "/api/login") showLogin();
  return { status: r.status, data, offline: r.headers.get("X-JTS-Offline") === "1" };
}

// --- login / session ------------------------------------------------------------------
function showLogin() {
  S.loggedIn = false;
  if (S.ws) { S.ws.onclose = null; S.ws.close(); S.ws = null; }
  $("#login").hidden = false; $("#nav").hidden = true; $("#main").hidden = true;
  for (const b of ["#logout", "#stop-all", "#resume"]) $(b).hidden = true;
  setConn("disconnected");
  $("#password").focus();
}
function showApp() {
  S.loggedIn = true;
  $("#login").hidden = true; $("#nav").hidden = false; $("#main").hidden = false;
  $("#logout").hidden = false; $("#stop-all").hidden = false;
}
async function login(ev) {
  ev.preventDefault();
  $("#login-error").textContent = "";
  const r = await api("POST", "/api/login", { username: $("#username").value, password: $("#password").value });
  if (r.status !== 200) { $("#login-error").textContent = `${t("wrong_login")}: ${r.data.error || r.status}`; return; }
  $("#password").value = "";
  S.csrf = r.data.csrf;
  if (!localStorage.getItem("jts.lang") && r.data.lang) S.lang = r.data.lang;
  showApp(); applyLang(); connect(); loadStrategies();
}
async function logout() {
  await api("POST", "/api/logout", {});
  if ("caches" in window) { try { await caches.delete("jts-snapshot"); } catch (e) { /* ignore */ } }
  showLogin();
}

// --- live data ----------------------------------------------------------------------------
function setConn(state) {
  const c = $("#conn"); c.textContent = t(state); c.className = "pill " + (state === "connected" ? "on" : "off");
  c.dataset.state = state;
}
function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws`);
  S.ws = ws;
  ws.onopen = () => { S.retry = 500; setConn("connected"); $("#offline-note").hidden = true; };
  ws.onmessage = (e) => onMessage(JSON.parse(e.data));
  ws.onclose = async () => {
    setConn("disconnected");
    if (!S.loggedIn) return;
    const r = await api("GET", "/api/session");
    if (r.status === 401) return;
    if (r.status === 0 || r.offline) await offlineSnapshot();
    setTimeout(() => { if (S.loggedIn) connect(); }, S.retry);
    S.retry = Math.min(S.retry * 2, 10000);
  };
}
async function offlineSnapshot() {
  const r = await api("GET", "/api/snapshot");
  if (r.status === 200 && r.data.t === "snapshot") {
    onMessage(r.data);
    $("#offline-note").hidden = false;
    $("#offline-note").textContent = `${t("offline_note")} ${new Date(r.data.ts / 1e6).toLocaleString()}`;
    setConn("offline");
    return true;
  }
  return false;
}
function onMessage(m) {
  if (m.t === "snapshot") {
    Object.assign(S, { ov: m.ov, px: m.px, orders: m.orders, pos: m.pos, fills: m.fills,
      alerts: m.alerts, pnl: m.pnl, perf: m.perf, surge: m.surge, seq: m.seq });
  } else if (m.t === "u") {
    if (S.seq >= 0 && m.seq !== S.seq + 1 && S.ws) { S.ws.close(); return; }   // gap: resync
    S.seq = m.seq; S.ov = Object.assign(S.ov || {}, m.ov); S.orders = m.orders; S.pos = m.pos;
    Object.assign(S.px, m.px);
    if (m.fills.length) S.fills = S.fills.concat(m.fills).slice(-500);
    if (m.alerts.length) S.alerts = S.alerts.concat(m.alerts).slice(-300);
    S.pnl.push(m.pnl); if (S.pnl.length > 4000) S.pnl.shift();
    if (m.perf) S.perf = m.perf;
    if (m.surge) S.surge = m.surge;
  } else return;
  renderAll();
}

// --- rendering ----------------------------------------------------------------------------
function renderAll() {
  if (!S.ov) return;
  renderHeader();
  ({ overview: renderOverview, watch: renderWatch, positions: renderPositions, orders: renderOrders,
     fills: renderFills, charts: renderCharts, alerts: renderAlerts })[S.page]?.();
}
function renderHeader() {
  const st = S.ov.trading_state;
  const h = $("#hdr-state"); h.textContent = `${t(S.ov.mode)} · ${t(st)}`; h.className = "pill state-" + st;
  h.dataset.state = st;
  $("#resume").hidden = st === "active";
}
function renderOverview() {
  const o = S.ov, p = o.pnl || {};
  $("#ov-mode").textContent = t(o.mode);
  $("#ov-state").textContent = t(o.trading_state); $("#ov-state").dataset.state = o.trading_state;
  $("#ov-reason").textContent = o.trading_reason || "";
  $("#ov-pnl").textContent = signed(p.total); $("#ov-pnl").className = cls(p.total);
  $("#ov-pnl-detail").textContent = `${t("realized")} ${signed(p.realized)} · ${t("unrealized")} ${signed(p.unrealized)} · ${t("fees")} ${num(p.fees)}`;
  $("#ov-equity").textContent = num(p.equity); $("#ov-cash").textContent = `cash ${num(p.cash)}`;
  $("#ov-orders").textContent = `${o.orders.open} ${t("open")} / ${o.fills} ${t("fills")}`;
  $("#ov-rejects").textContent = `${t("rejected")}: risk ${o.orders.risk_rejected} · broker ${o.orders.broker_rejected}`;
  $("#ov-time").textContent = (o.market_time || "").replace("T", " ").slice(0, 19);
  $("#ov-ticks").textContent = `${num(o.ticks)} ${t("ticks")}`;
  const rows = (o.feeds || []).map((f) => el("tr", {}, el("td", {}, f.name), el("td", {}, t("feed")),
    el("td", { class: f.stale ? "bad" : "good" }, f.stale ? t("stale") : t("ok")),
    el("td", {}, `${num(f.ticks)} ${t("ticks")}, ${f.last_tick_age_s ?? "-"} s`)));
  for (const b of o.brokers || []) rows.push(el("tr", {}, el("td", {}, `${b.name} (${b.account})`), el("td", {}, t("broker")),
    el("td", { class: b.connected ? "good" : "bad" }, b.connected ? t("connected_b") : t("down")), el("td", {}, "")));
  fillBody("#health", rows);
  $("#ratelimits").replaceChildren(...(o.rate_limits || []).map((r) => {
    const pct = r.limit ? Math.min(100, Math.round(r.used / r.limit * 100)) : 0;
    const bar = el("div", { class: "fill" }); bar.style.width = pct + "%";
    return el("div", { class: "meter" }, el("span", {}, `${r.name}: ${r.used}/${r.limit} (${pct}%)`), el("div", { class: "bar" }, bar));
  }));
  drawLine($("#pnl-chart"), S.pnl.map((q) => [q[0], q[1]]));
}
function renderWatch() {
  const f = $("#watch-filter").value.trim();
  const syms = Object.keys(S.px).sort().filter((s) => !f || s.includes(f));
  fillBody("#watch", syms.map((s) => { const [last, chg] = S.px[s];
    return el("tr", { "data-symbol": s }, el("td", {}, s), el("td", { class: "price" }, num(last)),
      el("td", { class: cls(chg) }, `${chg > 0 ? "+" : ""}${chg.toFixed(2)}%`)); }));
  fillBody("#surge", S.surge.map((c) => el("tr", { "data-symbol": c.symbol }, el("td", {}, c.symbol),
    el("td", {}, num(c.last)), el("td", { class: cls(c.move_pct) }, `${c.move_pct}%`), el("td", {}, `×${c.volume_ratio}`))));
}
function renderPositions() {
  fillBody("#positions", S.pos.map((p) => el("tr", { "data-symbol": p.symbol }, el("td", {}, p.symbol),
    el("td", {}, num(p.quantity)), el("td", {}, num(p.avg_price)), el("td", {}, num(p.last)),
    el("td", { class: cls(p.unrealized) }, signed(p.unrealized)))));
}
function renderOrders() {
  fillBody("#orders", S.orders.map((o) => el("tr", { "data-coid": o.coid }, el("td", {}, o.coid),
    el("td", {}, o.symbol), el("td", { class: o.side === "buy" ? "up" : "down" }, t(o.side)),
    el("td", {}, `${num(o.filled)}/${num(o.qty)}`), el("td", {}, o.limit ? num(o.limit) : t("market")),
    el("td", {}, o.status),
    el("td", {}, el("button", { class: "cancel", type: "button", onclick: () => cancelOrder(o.coid) }, t("cancel_order"))))));
}
function renderFills() {
  fillBody("#fills", S.fills.slice().reverse().slice(0, 200).map((f) => el("tr", { "data-trade": f.trade_id },
    el("td", {}, hhmmss(f.ts)), el("td", {}, f.symbol), el("td", { class: f.side === "buy" ? "up" : "down" }, t(f.side)),
    el("td", {}, num(f.qty)), el("td", {}, num(f.price)), el("td", {}, num(f.fees)), el("td", {}, f.strategy))));
}
async function renderCharts() {
  const sel = $("#chart-symbol"), syms = Object.keys(S.px).sort();
  if (sel.options.length !== syms.length) {
    sel.replaceChildren(...syms.map((s) => el("option", { value: s }, s)));
    if (!S.chartSymbol) S.chartSymbol = S.pos[0]?.symbol || S.fills[S.fills.length - 1]?.symbol || syms[0] || "";
    sel.value = S.chartSymbol;
  }
  fillBody("#perf", S.perf.map((p) => el("tr", { "data-strategy": p.name }, el("td", {}, p.name),
    el("td", { class: p.enabled === false ? "bad" : "good" }, p.enabled === false ? `${t("disabled")} ${p.error || ""}` : t("enabled")),
    el("td", {}, num(p.trades)), el("td", {}, p.win_rate === null ? "-" : `${p.win_rate}%`),
    el("td", { class: cls(p.pnl) }, signed(p.pnl)), el("td", {}, `${p.entries ?? "-"}/${p.exits ?? "-"}`))));
  if (!S.chartSymbol || renderCharts.busy) return;
  renderCharts.busy = true;
  const r = await api("GET", `/api/chart/${encodeURIComponent(S.chartSymbol)}`);
  renderCharts.busy = false;
  if (r.status === 200) drawCandles($("#price-chart"), r.data.bars, r.data.markers);
}
function renderAlerts() {
  $("#alerts").replaceChildren(...S.alerts.slice().reverse().map((a) => el("li", { class: "lvl-" + a.level, "data-kind": a.kind },
    el("time", {}, hhmmss(a.ts)), el("b", {}, a.kind), " ", a.message)));
}

// --- operator actions ---------------------------------------------------------------------------
async function cancelOrder(coid) {
  const r = await api("POST", `/api/orders/${encodeURIComponent(coid)}/cancel`, {});
  $("#o-result").textContent = r.status === 200 ? `${coid}: ${r.data.status}` : (r.data.error || r.status);
}
async function placeOrder(ev) {
  ev.preventDefault();
  const type = $("#o-type").value;
  const body = { symbol: $("#o-symbol").value.trim(), side: $("#o-side").value, type, quantity: $("#o-qty").value };
  if (type === "limit") body.limit_price = $("#o-price").value;
  const r = await api("POST", "/api/orders", body);
  $("#o-result").textContent = r.status === 200 ? "✓" : (r.data.error || String(r.status));
}
function openKill() { $("#kill-result").textContent = ""; $("#kill-flatten").checked = false; $("#kill-modal").showModal(); }
async function confirmKill(ev) {
  ev.preventDefault();
  const btn = $("#kill-confirm"); btn.disabled = true;
  const r = await api("POST", "/api/kill", { confirm: true, flatten: $("#kill-flatten").checked });
  btn.disabled = false;
  if (r.status !== 200) { $("#kill-result").textContent = r.data.error || String(r.status); return; }
  $("#kill-modal").close();
  if (S.ov) { S.ov.trading_state = r.data.trading_state; renderHeader(); }
  pushLocalAlert(`${t("stopped")}: ${t("cancelled_n")} ${r.data.cancelled}, ${t("closing_n")} ${r.data.closing_orders}`);
}
async function resume() {
  const r = await api("POST", "/api/resume", {});
  if (r.status === 200 && S.ov) { S.ov.trading_state = r.data.trading_state; renderHeader(); }
}
function pushLocalAlert(message) {
  S.alerts.push({ ts: Date.now(), kind: "dashboard", level: "warning", message }); renderAll();
}

// --- strategies ---------------------------------------------------------------------------------
async function loadStrategies() {
  const r = await api("GET", "/api/strategies");
  if (r.status !== 200) return;
  S.backtest = r.data.backtest;
  const sel = $("#st-list");
  sel.replaceChildren(...r.data.strategies.map((s) => el("option", { value: s.name }, s.version ? `${s.name} (v${s.version})` : s.name)));
  if (!S.stName && r.data.strategies.length) S.stName = r.data.strategies[0].name;
  sel.value = S.stName;
  if (S.stName && !$("#st-editor").value) await loadStrategy(S.stName);
}
async function loadStrategy(name) {
  S.stName = name;
  const r = await api("GET", `/api/strategies/${encodeURIComponent(name)}`);
  if (r.status !== 200) { $("#st-status").textContent = r.data.error; return; }
  $("#st-editor").value = r.data.text;
  $("#st-status").textContent = r.data.version ? `v${r.data.version}` : r.data.source;
  $("#st-diff").textContent = ""; $("#st-report").hidden = true;
  await validateNow(); await loadVersions();
}
function showValidation(d) {
  const box = $("#st-errors");
  box.replaceChildren();
  box.className = d.ok ? "good" : "error";
  if (d.ok) box.append(el("div", { class: "ok-line" }, `✓ ${t("valid")} (${d.summary.indicators.join(", ")})`));
  for (const e of d.errors || []) {
    const where = e.line ? `line ${e.line}${e.col ? `, col ${e.col}` : ""}: ` : "";
    box.append(el("div", { class: "err-line", "data-line": e.line ?? "", "data-col": e.col ?? "" }, where + e.message + (e.hint ? ` — ${e.hint}` : "")));
    if (e.source) box.append(el("pre", {}, e.source));
  }
  for (const w of d.warnings || []) box.append(el("div", { class: "warn" }, w));
  if (d.ok) renderParams(d.summary.params, d.summary.param_ranges); else $("#st-params").replaceChildren();
}
function renderParams(params, ranges) {
  $("#st-params").replaceChildren(...Object.entries(params).map(([k, v]) => {
    const r = ranges[k] || {};
    const inp = el("input", { type: "number", value: v, step: r.step ?? "any", "data-param": k });
    if (r.min !== undefined && r.min !== null) inp.min = r.min;
    if (r.max !== undefined && r.max !== null) inp.max = r.max;
    inp.addEventListener("change", () => setParam(k, Number(inp.value)));
    return el("label", { class: "param" }, el("span", {}, k), inp);
  }));
}
async function setParam(k, v) {
  const r = await api("POST", `/api/strategies/${encodeURIComponent(S.stName)}/params`, { text: $("#st-editor").value, params: { [k]: v } });
  if (r.status === 200) { $("#st-editor").value = r.data.text; S.stLastText = r.data.text; showValidation(r.data); }
  else $("#st-errors").textContent = r.data.error;
}
async function validateNow() {
  const text = $("#st-editor").value;
  S.stLastText = text;
  const r = await api("POST", `/api/strategies/${encodeURIComponent(S.stName)}/validate`, { text });
  if (text !== $("#st-editor").value) return;           // stale answer
  if (r.status === 200) showValidation(r.data);
  else { $("#st-errors").className = "error"; $("#st-errors").textContent = r.data.error || String(r.status); }
}
function onEdit() { clearTimeout(S.stTimer); S.stTimer = setTimeout(validateNow, 300); }
async function saveVersion() {
  const r = await api("POST", `/api/strategies/${encodeURIComponent(S.stName)}/versions`, { text: $("#st-editor").value, message: $("#st-message").value });
  if (r.status === 200) { $("#st-status").textContent = `${t("saved")} ${r.data.version.version}`; $("#st-status").dataset.version = r.data.version.version; await loadVersions(); }
  else if (r.data.errors) showValidation(r.data);
  else $("#st-status").textContent = r.data.error || String(r.status);
}
async function loadVersions() {
  const r = await api("GET", `/api/strategies/${encodeURIComponent(S.stName)}/versions`);
  const vs = r.status === 200 ? r.data.versions : [];
  const latest = vs.length ? vs[vs.length - 1].version : 0;
  $("#st-versions").replaceChildren(...vs.slice().reverse().map((v) => el("li", { "data-version": v.version },
    `v${v.version} · ${new Date(v.ts).toLocaleString()} · ${v.author} · ${v.message || ""} `,
    el("button", { type: "button", onclick: () => viewVersion(v.version) }, t("view")),
    v.version !== latest ? el("button", { type: "button", onclick: () => diffVersions(v.version, latest) }, t("diff")) : "")));
}
async function viewVersion(v) {
  const r = await api("GET", `/api/strategies/${encodeURIComponent(S.stName)}/versions/${v}`);
  if (r.status === 200) { $("#st-editor").value = r.data.text; await validateNow(); }
}
async function diffVersions(a, b) {
  const r = await api("GET", `/api/strategies/${encodeURIComponent(S.stName)}/diff?a=${a}&b=${b}`);
  $("#st-diff").textContent = r.status === 200 ? (r.data.diff || "(no changes)") : r.data.error;
}
async function runBacktest() {
  $("#st-bt-result").textContent = "…";
  const r = await api("POST", `/api/strategies/${encodeURIComponent(S.stName)}/backtest`, { text: $("#st-editor").value });
  if (r.status === 501) { $("#st-bt-result").textContent = `${t("no_backtest")}: ${r.data.error}`; return; }
  if (r.status !== 200) { $("#st-bt-result").textContent = r.data.error || "invalid strategy"; if (r.data.errors) showValidation(r.data); return; }
  const id = encodeURIComponent(r.data.report_id);
  const rep = await api("GET", `/api/reports/${id}`);
  $("#st-bt-result").replaceChildren(el("a", { id: "st-report-link", href: `/api/reports/${id}/html`,
    target: "_blank", rel: "noopener" }, `${t("report")} ${r.data.report_id}`));
  $("#st-report").hidden = false;
  $("#st-report").textContent = JSON.stringify(rep.data.data, null, 2);
}

// --- wiring --------------------------------------------------------------------------------------
function showPage(p) {
  S.page = p;
  document.querySelectorAll("#nav button").forEach((b) => b.classList.toggle("active", b.dataset.page === p));
  document.querySelectorAll(".page").forEach((s) => { s.hidden = s.id !== "page-" + p; });
  if (p === "strategies") loadStrategies();
  renderAll();
}
async function boot() {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js").then(() => { document.body.dataset.sw = "registered"; })
      .catch((e) => { document.body.dataset.sw = "failed: " + e; });
  }
  $("#login-form").addEventListener("submit", login);
  $("#logout").addEventListener("click", logout);
  $("#lang").addEventListener("click", () => { S.lang = S.lang === "ko" ? "en" : "ko"; localStorage.setItem("jts.lang", S.lang); applyLang(); });
  $("#nav").addEventListener("click", (e) => { if (e.target.dataset.page) showPage(e.target.dataset.page); });
  $("#stop-all").addEventListener("click", openKill);
  $("#kill-confirm").addEventListener("click", confirmKill);
  $("#kill-cancel").addEventListener("click", (e) => { e.preventDefault(); $("#kill-modal").close(); });
  $("#resume").addEventListener("click", resume);
  $("#order-form").addEventListener("submit", placeOrder);
  $("#watch-filter").addEventListener("input", renderWatch);
  $("#chart-symbol").addEventListener("change", (e) => { S.chartSymbol = e.target.value; renderCharts(); });
  $("#st-list").addEventListener("change", (e) => loadStrategy(e.target.value));
  $("#st-reload").addEventListener("click", () => loadStrategy(S.stName));
  $("#st-editor").addEventListener("input", onEdit);
  $("#st-save").addEventListener("click", saveVersion);
  $("#st-backtest").addEventListener("click", runBacktest);
  applyLang();
  const r = await api("GET", "/api/session");
  if (r.status === 200 && !r.offline) {
    S.csrf = r.data.csrf;
    if (!localStorage.getItem("jts.lang") && r.data.lang) { S.lang = r.data.lang; applyLang(); }
    showApp(); connect(); loadStrategies();
  } else if ((r.status === 0 || r.offline) && await offlineSnapshot()) {
    S.loggedIn = false; showApp();
  } else showLogin();
}
boot();
