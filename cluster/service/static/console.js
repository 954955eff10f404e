// The console's charts (cluster/service/console.py), drawn with the vendored Chart.js. Each chart is a
// <figure class="jschart" data-chart="KIND"> holding a <canvas>, its data as JSON in a
// <script type="application/json"> and a table that is the page without JavaScript: once a chart is
// drawn its table folds away (still there, under "as a table").
(function () {
  "use strict";
  if (typeof Chart === "undefined") return; // the library did not load: the tables stay
  var css = getComputedStyle(document.documentElement);
  var color = function (name) { return css.getPropertyValue(name).trim(); };
  var pct = function (x) { return (x * 100).toFixed(2) + "%"; };
  var pctTick = function (x) { return +(x * 100).toFixed(1) + "%"; };
  var usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 0 });
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily; // the page's own
  Chart.defaults.font.size = 11;
  Chart.defaults.color = color("--ink");
  Chart.defaults.animation = false;

  function bars(labels, datasets, tick, label) {
    return {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: {
        indexAxis: "y",
        maintainAspectRatio: false,
        responsive: true,
        scales: {
          x: { ticks: { callback: tick }, grid: { color: color("--line") } },
          y: { grid: { display: false }, ticks: { autoSkip: false } },
        },
        plugins: {
          legend: { position: "top", align: "start", labels: { boxWidth: 12 } },
          tooltip: { callbacks: { label: function (c) { return c.dataset.label + ": " + label(c.parsed.x); } } },
        },
      },
    };
  }

  var kinds = {
    // holdings against the benchmark: {symbols, account, benchmark} (weights, fractions of value)
    weights: function (d) {
      return bars(d.symbols, [
        { label: "account", data: d.account, backgroundColor: color("--acct"), barPercentage: 0.9, categoryPercentage: 0.8 },
        { label: "benchmark", data: d.benchmark, backgroundColor: color("--bench"), barPercentage: 0.9, categoryPercentage: 0.8 },
      ], pctTick, pct);
    },
    // unrealized gain or loss by name: {symbols, gain} (dollars)
    gains: function (d) {
      var c = bars(d.symbols, [{
        label: "unrealized",
        data: d.gain,
        backgroundColor: d.gain.map(function (g) { return g < 0 ? color("--bad") : color("--good"); }),
      }], function (v) { return usd.format(v); }, function (v) { return usd.format(v); });
      c.options.plugins.legend.display = false;
      return c;
    },
  };

  document.querySelectorAll("figure.jschart").forEach(function (figure) {
    var data = JSON.parse(figure.querySelector("script[type='application/json']").textContent);
    var make = kinds[figure.dataset.chart];
    if (!make) return;
    figure.classList.add("drawn"); // shows the canvas's box first: Chart.js sizes the chart to it
    new Chart(figure.querySelector("canvas"), make(data));
    var table = figure.querySelector("details");
    if (table) table.open = false;
  });
})();
