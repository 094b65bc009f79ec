// Small canvas charts (no library): a P&L line and price candles with entry/exit markers.

function setup(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 600, h = canvas.clientHeight || Number(canvas.getAttribute("height")) || 200;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px system-ui, sans-serif";
  return { ctx, w, h };
}

function scale(lo, hi, a, b) {
  const span = hi - lo || 1;
  return (v) => a + (v - lo) / span * (b - a);
}

function axisLabels(ctx, lo, hi, h, w, pad) {
  ctx.fillStyle = "#8a93a6";
  ctx.textAlign = "right";
  ctx.fillText(fmt(hi), w - 4, pad + 8);
  ctx.fillText(fmt(lo), w - 4, h - pad);
}

function fmt(v) {
  return Math.abs(v) >= 1000 ? Math.round(v).toLocaleString() : (Math.round(v * 100) / 100).toString();
}

export function drawLine(canvas, points) {
  const { ctx, w, h } = setup(canvas);
  if (points.length < 2) return;
  const pad = 12;
  let lo = Infinity, hi = -Infinity;
  for (const p of points) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); }
  lo = Math.min(lo, 0); hi = Math.max(hi, 0);
  const x = scale(points[0][0], points[points.length - 1][0], pad, w - 60);
  const y = scale(lo, hi, h - pad, pad);
  ctx.strokeStyle = "#3a4256"; ctx.beginPath(); ctx.moveTo(pad, y(0)); ctx.lineTo(w - 60, y(0)); ctx.stroke();
  ctx.strokeStyle = points[points.length - 1][1] >= 0 ? "#e5484d" : "#3e8ef7";
  ctx.lineWidth = 1.5; ctx.beginPath();
  points.forEach((p, i) => (i ? ctx.lineTo(x(p[0]), y(p[1])) : ctx.moveTo(x(p[0]), y(p[1]))));
  ctx.stroke();
  axisLabels(ctx, lo, hi, h, w, pad);
}

// bars: [ts, o, h, l, c, v]; markers: [ts, price, side, qty]
export function drawCandles(canvas, bars, markers) {
  const { ctx, w, h } = setup(canvas);
  if (!bars.length) { ctx.fillStyle = "#8a93a6"; ctx.fillText("…", w / 2, h / 2); return; }
  const pad = 14;
  let lo = Infinity, hi = -Infinity;
  for (const b of bars) { lo = Math.min(lo, b[3]); hi = Math.max(hi, b[2]); }
  const t0 = bars[0][0], t1 = bars[bars.length - 1][0];
  const x = scale(t0, t1 === t0 ? t0 + 1 : t1, pad, w - 60);
  const y = scale(lo, hi, h - pad, pad);
  const bw = Math.max(1, Math.min(8, (w - 80) / bars.length * 0.6));
  for (const b of bars) {
    const up = b[4] >= b[1];
    ctx.strokeStyle = ctx.fillStyle = up ? "#e5484d" : "#3e8ef7";   // KRX colours: red up, blue down
    ctx.beginPath(); ctx.moveTo(x(b[0]), y(b[2])); ctx.lineTo(x(b[0]), y(b[3])); ctx.stroke();
    const top = y(Math.max(b[1], b[4])), bot = y(Math.min(b[1], b[4]));
    ctx.fillRect(x(b[0]) - bw / 2, top, bw, Math.max(1, bot - top));
  }
  for (const m of markers) {
    if (m[0] < t0) continue;
    const mx = x(Math.min(m[0], t1)), my = y(m[1]), buy = m[2] === "buy";
    ctx.fillStyle = buy ? "#ff9f1a" : "#a86bff";
    ctx.beginPath();
    if (buy) { ctx.moveTo(mx, my + 4); ctx.lineTo(mx - 6, my + 14); ctx.lineTo(mx + 6, my + 14); }
    else { ctx.moveTo(mx, my - 4); ctx.lineTo(mx - 6, my - 14); ctx.lineTo(mx + 6, my - 14); }
    ctx.fill();
  }
  axisLabels(ctx, lo, hi, h, w, pad);
}
