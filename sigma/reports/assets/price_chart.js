/* SIGMA report: the interactive price chart (uPlot, inlined). Reads the JSON payload that
   sigma/reports/interactive.py writes into #sigma-chart-data and draws three synced panes:
   price (close, high-low band, indicator overlays, trade markers), volume, and the
   indicators that are not on the price's scale. Drag or wheel to zoom, double-click or
   "Reset zoom" to see everything, "Log scale" for the price axis. Nothing is fetched. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("sigma-chart-data").textContent);
  var root = document.getElementById("sigma-chart");
  var logBox = document.getElementById("sigma-log");
  var resetButton = document.getElementById("sigma-reset");
  var palette = ["#f59e0b", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#ea580c"];
  var marks = [
    ["long entry", "long_entry", "#16a34a", "#16a34a"],
    ["short entry", "short_entry", "#dc2626", "#dc2626"],
    ["exit, profit", "exit_win", "#ffffff", "#16a34a"],
    ["exit, loss", "exit_loss", "#ffffff", "#dc2626"]
  ];
  var charts = [];
  var syncing = false;
  var first = data.t[0];
  var last = data.t[data.t.length - 1];

  function number(value, digits) {
    if (value == null) return "—";
    return value.toLocaleString("en-US", {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits
    });
  }

  function width() {
    return Math.max(320, root.clientWidth - 8);
  }

  function line(label, color, digits) {
    return {
      label: label,
      stroke: color,
      width: 1.5,
      value: function (u, v) { return number(v, digits); }
    };
  }

  function setX(min, max) {
    // One zoom for every pane; `syncing` stops the panes echoing it back to each other.
    syncing = true;
    charts.forEach(function (u) { u.setScale("x", { min: min, max: max }); });
    syncing = false;
  }

  function zoomHooks() {
    return {
      setScale: [function (u, key) {
        if (key === "x" && !syncing) setX(u.scales.x.min, u.scales.x.max);
      }],
      ready: [function (u) {
        u.over.addEventListener("wheel", function (event) {
          event.preventDefault();
          var at = u.posToVal(event.offsetX, "x");
          var factor = event.deltaY < 0 ? 0.8 : 1.25;
          var min = Math.max(first, at - (at - u.scales.x.min) * factor);
          var max = Math.min(last, at + (u.scales.x.max - at) * factor);
          if (max > min) setX(min, max);
        }, { passive: false });
      }]
    };
  }

  function options(title, height, series, extra) {
    var opts = {
      title: title,
      width: width(),
      height: height,
      series: [{ label: "time (UTC)", value: "{YYYY}-{MM}-{DD} {HH}:{mm}" }].concat(series),
      scales: { x: { time: true } },
      axes: [{}, { size: 70 }],
      cursor: { drag: { x: true, y: false }, sync: { key: "sigma" } },
      hooks: zoomHooks()
    };
    for (var key in extra) opts[key] = extra[key];
    return opts;
  }

  function logRange(u, min, max) {
    return [min / 1.02, max * 1.02];
  }

  function pricePane(log) {
    var series = [
      line(data.symbol + " close", "#374151", data.digits),
      line("high", "rgba(55,65,81,0.25)", data.digits),
      line("low", "rgba(55,65,81,0.25)", data.digits)
    ];
    var columns = [data.t, data.c, data.h, data.l];
    data.overlays.forEach(function (ind, i) {
      series.push(line(ind.label, palette[i % palette.length], data.digits));
      columns.push(ind.values);
    });
    marks.forEach(function (mark) {
      series.push({
        label: mark[0],
        stroke: mark[3],
        fill: mark[2],
        paths: function () { return null; },
        points: { show: true, size: 9, width: 2, stroke: mark[3], fill: mark[2] },
        value: function (u, v) { return number(v, data.digits); }
      });
      columns.push(data.marks[mark[1]]);
    });
    var opts = options(data.symbol + " price", 360, series, {
      bands: [{ series: [2, 3], fill: "rgba(55,65,81,0.08)" }],
      // A log axis fits the data instead of whole decades, so a narrow range still fills it.
      scales: { x: { time: true }, y: log ? { distr: 3, range: logRange } : { distr: 1 } }
    });
    return new uPlot(opts, columns, root);
  }

  function volumePane() {
    var bars = uPlot.paths.bars({ size: [0.9, 40] });
    var series = [{ label: "volume", stroke: "#64748b", fill: "rgba(100,116,139,0.5)",
      paths: bars, points: { show: false },
      value: function (u, v) { return number(v, 0); } }];
    return new uPlot(options("Volume", 130, series, {}), [data.t, data.v], root);
  }

  function indicatorPane() {
    var series = data.panes.map(function (ind, i) {
      return line(ind.label, palette[(i + data.overlays.length) % palette.length], 4);
    });
    var columns = [data.t].concat(data.panes.map(function (ind) { return ind.values; }));
    return new uPlot(options("Indicators", 160, series, {}), columns, root);
  }

  function build() {
    var range = charts.length ? [charts[0].scales.x.min, charts[0].scales.x.max] : null;
    charts.forEach(function (u) { u.destroy(); });
    charts = [pricePane(logBox.checked), volumePane()];
    if (data.panes.length) charts.push(indicatorPane());
    if (range) setX(range[0], range[1]);
  }

  logBox.addEventListener("change", build);
  resetButton.addEventListener("click", function () { setX(first, last); });
  window.addEventListener("resize", function () {
    charts.forEach(function (u) { u.setSize({ width: width(), height: u.height }); });
  });
  build();
  // The panes, for a script (or a test) that reads what is drawn.
  window.sigmaCharts = function () { return charts.slice(); };
})();
