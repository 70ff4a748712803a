/* The dataset page's map preview (templates/maps/_dataset_section.html).

   A Leaflet map (plate carrée, Natural Earth land beneath and its outline above, no tiles) showing one
   time step of the chosen variable of the latest version as an image overlay from the portal's own
   renderer (/api/datasets/<id>/map.png, the same images as the WMS at /wms/), with a legend in the
   variable's units (map/legend.json). The date field and the slider choose the time step. A click on
   a cell asks the point endpoint (/api/datasets/<id>/point/, CSV) for that cell's series and draws it
   with Chart.js, naming the cell's centre, with a link to download the same CSV. */
(function () {
  "use strict";
  const config_el = document.getElementById("map-config");
  if (!config_el) return;
  const script = document.currentScript;
  const config = JSON.parse(config_el.textContent);
  const form = document.getElementById("map-controls");
  const text = {};
  document.querySelectorAll("#map-text [data-msg]").forEach((el) => { text[el.dataset.msg] = el.textContent.trim(); });
  const fill = (template, values) => template.replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));
  const api = `/api/datasets/${encodeURIComponent(config.dataset)}`;
  const MAX = 2048;

  form.addEventListener("submit", (e) => e.preventDefault());
  const layerSelect = form.elements.namedItem("layer");
  const dateInput = form.elements.namedItem("date");
  const slider = form.elements.namedItem("step");
  const shown = document.getElementById("map-shown");

  const map = portalLand.baseMap("map-preview-map", script.dataset.land, { maxZoom: 12 });
  map.createPane("outline").style.zIndex = 450;
  map.getPane("outline").style.pointerEvents = "none";
  if (typeof topojson !== "undefined") {
    fetch(script.dataset.land).then((r) => r.json()).then((topo) => {
      L.geoJSON(portalLand.planar(topo, {}), { pane: "outline", interactive: false,
                style: { color: "#333", weight: 0.7, fill: false } }).addTo(map);
    });
  }

  let overlay = null;
  let marker = null;
  let chart = null;
  const layer = () => config.layers[Number(layerSelect.value) || 0];
  const step = () => Number(slider.value);

  function imageSize(l) {
    const [w, s, e, n] = l.bbox;
    const aspect = (e - w) / (n - s);
    let width = Math.min(MAX, Math.max(360, Math.round(e - w) * 4));
    let height = Math.round(width / aspect);
    if (height > MAX) { height = MAX; width = Math.round(height * aspect); }
    return [width, Math.max(1, height)];
  }

  function mapUrl() {
    const l = layer();
    const [width, height] = imageSize(l);
    const params = new URLSearchParams({ variable: l.variable, file: l.file, version: String(config.version),
                                         time: l.times[step()], bbox: l.bbox.join(","), width: String(width),
                                         height: String(height) });
    return `${api}/map.png?${params}`;
  }

  function drawLegend() {
    const l = layer();
    const params = new URLSearchParams({ variable: l.variable, file: l.file, version: String(config.version) });
    fetch(`${api}/map/legend.json?${params}`).then((r) => r.json()).then((legend) => {
      const box = document.getElementById("map-legend");
      box.replaceChildren();
      const title = document.createElement("strong");
      title.textContent = `${legend.label}${legend.units ? ` [${legend.units}]` : ""}`;
      box.append(title);
      if (legend.kind === "categorical") {
        legend.categories.forEach((c) => {
          const item = document.createElement("span");
          const swatch = document.createElement("span");
          swatch.className = "swatch";
          swatch.style.background = c.colour;
          item.append(swatch, `${c.meaning} (${c.value})`);
          box.append(item);
        });
      } else {
        const fmt = (v) => Number(v.toPrecision(3)).toString();
        const bar = document.createElement("span");
        bar.className = "bar";
        bar.style.background = `linear-gradient(to right, ${legend.stops.map((s) => s[1]).join(", ")})`;
        const lo = document.createElement("span");
        const hi = document.createElement("span");
        lo.textContent = fmt(legend.vmin);
        hi.textContent = fmt(legend.vmax);
        box.append(lo, bar, hi);
      }
      box.dataset.units = legend.units;
    });
  }

  function drawMap() {
    const l = layer();
    const time = l.times[step()];
    dateInput.value = time.slice(0, 10);
    shown.textContent = fill(text.shown, { time: time });
    const bounds = L.latLngBounds([[l.bbox[1], l.bbox[0]], [l.bbox[3], l.bbox[2]]]);
    if (overlay) overlay.setUrl(mapUrl());
    else overlay = L.imageOverlay(mapUrl(), bounds, { opacity: 0.9, className: "map-data" }).addTo(map);
  }

  function chooseLayer(fit) {
    const l = layer();
    slider.max = String(l.times.length - 1);
    slider.value = String(l.times.length - 1);
    dateInput.min = l.times[0].slice(0, 10);
    dateInput.max = l.times[l.times.length - 1].slice(0, 10);
    if (overlay) { overlay.remove(); overlay = null; }
    drawMap();
    drawLegend();
    if (fit) map.fitBounds(L.latLngBounds([[l.bbox[1], l.bbox[0]], [l.bbox[3], l.bbox[2]]]), { padding: [4, 4] });
  }

  function parseCsv(body) {
    const lines = body.trim().split(/\r?\n/);
    const header = lines[0].split(",");
    const rows = lines.slice(1).map((line) => line.split(","));
    return { header, rows };
  }

  function showSeries(latlng) {
    const l = layer();
    let lon = latlng.lng;
    while (lon > 180) lon -= 360;
    while (lon < -180) lon += 360;
    const params = new URLSearchParams({ lon: lon.toFixed(4), lat: latlng.lat.toFixed(4), variables: l.variable,
                                         file: l.file, version: String(config.version), f: "csv" });
    const url = `${api}/point/?${params}`;
    const box = document.getElementById("map-series");
    const cell = document.getElementById("map-series-cell");
    box.hidden = false;
    fetch(url).then((r) => (r.ok ? r.text() : Promise.reject(r))).then((body) => {
      const { header, rows } = parseCsv(body);
      const col = (name) => header.findIndex((h) => h === name || h.startsWith(`${name} [`));
      const [t, la, lo, v] = [col("time"), col("lat"), col("lon"), col(l.variable)];
      const units = (header[v].match(/\[(.*)\]/) || [null, ""])[1];
      const centre = [Number(rows[0][la]), Number(rows[0][lo])];
      cell.textContent = fill(text.cell, { lat: centre[0], lon: centre[1], variable: l.label, units: units });
      cell.dataset.lat = centre[0];
      cell.dataset.lon = centre[1];
      const link = document.getElementById("map-series-download");
      link.href = url;
      link.setAttribute("download", `${config.dataset}_${l.variable}_${centre[0]}_${centre[1]}.csv`);
      if (marker) marker.remove();
      marker = L.circleMarker(centre, { radius: 5, color: "#b0401f", weight: 2, fill: false, pane: "outline" }).addTo(map);
      const data = {
        labels: rows.map((r) => r[t].slice(0, 10)),
        datasets: [{ label: `${l.variable} [${units}]`, data: rows.map((r) => (r[v] === "" ? null : Number(r[v]))),
                     borderColor: "#1f5fa8", pointRadius: rows.length < 3 ? 3 : 0, borderWidth: 1.2, spanGaps: false }],
      };
      if (chart) chart.destroy();
      chart = new Chart(document.getElementById("map-series-chart"), {
        type: "line", data: data,
        options: { animation: false, maintainAspectRatio: false, scales: { y: { title: { display: true, text: units } } } },
      });
      window.portalMapChart = chart;
    }).catch(() => { cell.textContent = text.failed; });
  }

  layerSelect.addEventListener("change", () => chooseLayer(false));
  slider.addEventListener("input", drawMap);
  dateInput.addEventListener("change", () => {
    const times = layer().times;
    const day = dateInput.value;
    let i = times.findIndex((x) => x.slice(0, 10) >= day);
    if (i < 0) i = times.length - 1;
    slider.value = String(i);
    drawMap();
  });
  map.on("click", (e) => showSeries(e.latlng));
  chooseLayer(true);
})();
