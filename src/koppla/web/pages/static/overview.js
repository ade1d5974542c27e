// The overview's chart: events per minute by event type, drawn with uPlot from the page's
// embedded JSON, then refreshed every 15 s from the JSON twin (GET /api/v1/overview).
(function () {
  "use strict";
  const COLORS = ["#1f5fbf", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#0b7285",
                  "#e67700", "#5c940d", "#364fc7", "#a61e4d"];
  const REFRESH_MS = 15000;
  let plot = null;
  let shape = "";

  function dataOf(overview) {
    const epm = overview.eventsPerMinute;
    return [epm.minutes, ...epm.series.map((s) => s.counts)];
  }

  function seriesOf(overview) {
    return [{}].concat(overview.eventsPerMinute.series.map((s, i) => ({
      label: s.eventType,
      stroke: COLORS[i % COLORS.length],
      width: 2,
      points: { show: false },
    })));
  }

  function size(box) {
    const width = Math.max(280, box.clientWidth);
    return { width: width, height: width < 600 ? 220 : 300 };
  }

  function draw(overview) {
    const box = document.getElementById("events-chart");
    if (!box || typeof uPlot === "undefined") return;
    const names = overview.eventsPerMinute.series.map((s) => s.eventType).join("\n");
    if (plot && names === shape) {
      plot.setData(dataOf(overview));
      return;
    }
    if (plot) plot.destroy();
    shape = names;
    const options = Object.assign(size(box), {
      series: seriesOf(overview),
      axes: [{}, { label: "events / minute", size: 60 }],
      scales: { x: { time: true } },
      legend: { live: true },
    });
    plot = new uPlot(options, dataOf(overview), box);
    box.dataset.series = String(overview.eventsPerMinute.series.length);
  }

  function refresh() {
    fetch("/api/v1/overview", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : null))
      .then((overview) => { if (overview) draw(overview); })
      .catch(() => {});
  }

  document.addEventListener("DOMContentLoaded", function () {
    const embedded = document.getElementById("overview-data");
    if (!embedded) return;
    draw(JSON.parse(embedded.textContent));
    window.addEventListener("resize", function () {
      const box = document.getElementById("events-chart");
      if (plot && box) plot.setSize(size(box));
    });
    setInterval(refresh, REFRESH_MS);
  });
})();
