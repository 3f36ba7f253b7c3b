// rollouts dashboard: live updates pushed by the server (SSE) and the charts (uPlot).
// Without JavaScript the overview refreshes itself (meta refresh) and actions use confirmation pages.
(function () {
  "use strict";
  const charts = {};
  window.dashboardCharts = charts;
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";

  function setLive(text) {
    const live = document.getElementById("live");
    if (live) live.textContent = text;
  }

  function showErrors(errors) {
    const box = document.getElementById("errors");
    if (!box) return;
    box.replaceChildren(...(errors || []).map((message) => {
      const p = document.createElement("p");
      p.className = "banner"; p.setAttribute("role", "alert"); p.textContent = "⚠ " + message;
      return p;
    }));
  }

  function width(el) { return Math.max(320, (el.parentElement || el).clientWidth - 16); }

  function draw(id, series, data, threshold) {
    const el = document.getElementById(id);
    if (!el) return;
    if (charts[id]) { charts[id].destroy(); delete charts[id]; }
    el.replaceChildren();
    // one point (or several within a minute) still gets a readable minute on each side
    const xs = data[0].filter((x) => x !== null);
    const lo = Math.min(...xs), hi = Math.max(...xs);
    const x = xs.length && hi - lo < 60 ? { time: true, range: [lo - 60, hi + 60] } : { time: true };
    const opts = {
      width: width(el), height: 220, series: series,
      scales: { x: x },
      axes: [{ stroke: css("--muted"), grid: { stroke: css("--line") } }, { stroke: css("--muted"), grid: { stroke: css("--line") } }],
    };
    const chart = new uPlot(opts, data, el);
    chart.threshold = threshold;
    charts[id] = chart;
  }

  function drawAll(data) {
    const w = data.weight;
    if (w && document.getElementById("weight")) {
      draw("weight", [{}, { label: "set weight", stroke: css("--run"), width: 2, paths: uPlot.paths.stepped({ align: 1 }) },
                          { label: "actual weight", stroke: css("--ok"), dash: [6, 4], width: 2, paths: uPlot.paths.stepped({ align: 1 }) }],
           [w.x, w.set, w.actual], null);
    }
    for (const m of data.metrics || []) {
      const series = [{}, { label: "value", stroke: css("--run"), width: 2, points: { show: true, size: 6 } },
        { label: "failing", stroke: css("--bad"), width: 0, paths: () => null,
          points: { show: true, size: 12, fill: css("--bad"), stroke: css("--bad") } }];
      let rows = [m.x, m.values, m.failing];
      if (m.threshold) {
        series.push({ label: "threshold: " + m.condition, stroke: css("--warn"), dash: [8, 4], width: 2, points: { show: false } });
        rows.push(m.threshold);
        if (m.x.length && m.x[m.x.length - 1] - m.x[0] < 60) {
          // within a minute: the threshold still spans the chart (a line needs two ends)
          const t = m.threshold[0], lo = m.x[0] - 60, hi = m.x[m.x.length - 1] + 60;
          rows = [[lo, ...m.x, hi], [null, ...m.values, null], [null, ...m.failing, null], [t, ...m.threshold, t]];
        }
      }
      draw(m.id, series, rows, m.threshold ? m.threshold[0] : null);
    }
  }

  function stream(url, event, handle) {
    if (!window.EventSource) return;
    const source = new EventSource(url);
    source.addEventListener(event, (e) => { handle(JSON.parse(e.data)); setLive("live · updated " + new Date().toLocaleTimeString()); });
    source.addEventListener("open", () => setLive("live"));
    source.addEventListener("error", () => setLive("reconnecting…"));
  }

  function overview(table) {
    const body = document.getElementById("rows");
    stream(table.dataset.stream, "rows", (msg) => {
      for (const [id, html] of msg.upsert) {
        const old = document.getElementById(id);
        if (old) old.outerHTML = html; else body.insertAdjacentHTML("beforeend", html);
      }
      for (const id of msg.remove) { const old = document.getElementById(id); if (old) old.remove(); }
      const count = document.getElementById("count"); if (count) count.textContent = String(msg.count);
      const empty = document.getElementById("empty"); if (empty && msg.count) empty.remove();
      showErrors(msg.errors);
    });
    const q = document.getElementById("q");
    document.addEventListener("keydown", (e) => {
      if (e.key === "/" && document.activeElement !== q) { e.preventDefault(); q.focus(); }
    });
  }

  function detail(root) {
    const dataEl = document.getElementById("chart-data");
    if (dataEl) drawAll(JSON.parse(dataEl.textContent));
    stream(root.dataset.stream, "detail", (msg) => {
      if (msg.gone) { setLive("this Rollout was deleted"); return; }
      for (const [id, html] of Object.entries(msg.sections)) {
        const old = document.getElementById(id);
        if (old) old.outerHTML = html;
      }
      drawAll(msg.charts);
      showErrors(msg.errors);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const table = document.getElementById("rollouts");
    if (table) overview(table);
    const root = document.getElementById("detail");
    if (root) detail(root);
  });
})();
