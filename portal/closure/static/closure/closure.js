// The water-balance closure chart: residual, P - ET - R and dS/dt of one basin or region (Chart.js).
(function () {
  "use strict";
  const data = document.getElementById("closure-series");
  const canvas = document.getElementById("closure-chart");
  if (!data || !canvas || typeof Chart === "undefined") return;
  const labels = document.currentScript.dataset;
  const s = JSON.parse(data.textContent);
  const line = (label, values, color, width) => ({
    label, data: values, borderColor: color, backgroundColor: color, borderWidth: width, pointRadius: 0, spanGaps: false,
  });
  canvas.chart = new Chart(canvas, {
    type: "line",
    data: {
      labels: s.time,
      datasets: [
        line(labels.residual, s.residual, "#c0392b", 2),
        line(labels.net, s.p_minus_et_minus_r, "#2471a3", 1),
        line(labels.dsdt, s.dsdt, "#239b56", 1),
      ],
    },
    options: {
      animation: false,
      interaction: { mode: "index", intersect: false },
      scales: { y: { title: { display: true, text: labels.units } } },
    },
  });
  canvas.dataset.ready = "1";
})();
