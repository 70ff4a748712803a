/* A station's page of the validation browser (templates/validation/station.html): per split, the
   observed and product series (Chart.js line chart) and their scatter with the 1:1 line. */
(function () {
  "use strict";
  const script = document.currentScript;
  const el = document.getElementById("station-series");
  if (!el) return;
  const series = JSON.parse(el.textContent);
  window.validationCharts = [];
  document.querySelectorAll("canvas.series-chart").forEach((canvas) => {
    const s = series[Number(canvas.dataset.index)];
    const datasets = [
      { label: `${script.dataset.observed} (${s.units})`, data: s.observed, borderColor: "#b0401f",
        backgroundColor: "#b0401f", showLine: false, pointRadius: 2 },
      { label: `${script.dataset.estimated}: ${s.estimate}`, data: s.estimated, borderColor: "#1f5fa8",
        pointRadius: 0, borderWidth: 1.5, spanGaps: false },
    ];
    if (s.is_validation) {
      datasets.push({ label: script.dataset.held, data: s.observed.map((v, i) => (s.is_validation[i] ? v : null)),
        borderColor: "#000", backgroundColor: "#000", showLine: false, pointRadius: 3, pointStyle: "crossRot" });
    }
    window.validationCharts.push(new Chart(canvas, {
      type: "line", data: { labels: s.time, datasets },
      options: { animation: false, maintainAspectRatio: false, scales: { x: { ticks: { maxTicksLimit: 12 } } } },
    }));
  });
  document.querySelectorAll("canvas.scatter-chart").forEach((canvas) => {
    const s = series[Number(canvas.dataset.index)];
    const points = s.scatter.map(([x, y]) => ({ x, y }));
    const all = s.scatter.flat();
    const lo = all.length ? Math.min(...all) : 0;
    const hi = all.length ? Math.max(...all) : 1;
    window.validationCharts.push(new Chart(canvas, {
      type: "scatter",
      data: { datasets: [
        { label: `${script.dataset.observed} / ${script.dataset.estimated}`, data: points, backgroundColor: "#1f5fa8", pointRadius: 2 },
        { label: script.dataset.oneToOne, data: [{ x: lo, y: lo }, { x: hi, y: hi }], type: "line", borderColor: "#555",
          borderDash: [4, 3], pointRadius: 0, borderWidth: 1 },
      ] },
      options: { animation: false, maintainAspectRatio: false, scales: {
        x: { min: lo, max: hi, title: { display: true, text: `${script.dataset.observed} (${s.units})` } },
        y: { min: lo, max: hi, title: { display: true, text: `${script.dataset.estimated} (${s.units})` } } } },
    }));
  });
})();
