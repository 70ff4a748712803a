/* The subset download form of the dataset page (templates/catalog/_subset_form.html).

   A Leaflet map (plate carrée, Natural Earth land, no tiles) with Leaflet-Geoman buttons to draw a
   box or a polygon, or to place a point; the text inputs beside it are kept in sync both ways, so
   a box can also be typed (min lon > max lon crosses the antimeridian). Whenever the request
   changes, the API is asked for a size estimate (`estimate=1`, no data read) and the form says
   what will happen: a direct download, a job, or a refusal. On submit the request is checked the
   same way; a direct answer is then downloaded by the browser (an attachment), a large one starts
   a job (202) and the browser goes to the job's page. A 400 names the field at fault next to it. */
(function () {
  "use strict";
  const form = document.getElementById("subset-form");
  if (!form) return;
  const script = document.currentScript;
  const readJSON = (id) => JSON.parse(document.getElementById(id).textContent);
  const grids = readJSON("subset-grids");
  const kinds = readJSON("subset-kinds");
  const text = {};
  document.querySelectorAll("#subset-text [data-msg]").forEach((el) => { text[el.dataset.msg] = el.textContent.trim(); });
  const fill = (template, values) => template.replace(/\{(\w+)\}/g, (m, k) => (k in values ? values[k] : m));
  const input = (name) => form.elements.namedItem(name);
  const estimateLine = document.getElementById("subset-estimate");
  const errorBox = document.getElementById("subset-error");
  const submit = form.querySelector("button[type=submit]");
  const BBOX = ["min_lon", "min_lat", "max_lon", "max_lat"];
  // which inputs a field named by the API stands for (marked invalid with it)
  const FIELD_INPUTS = { bbox: BBOX, polygon: ["polygon"], time: ["start", "end"], lon: ["lon"], lat: ["lat"],
                         format: ["f"], f: ["f"], file: ["file"] };

  const kind = () => input("kind").value;
  const region = () => (kind() === "point" ? "point" : input("region").value);
  const grid = () => grids.find((g) => g.file === input("file").value) || grids[0];
  const gridBlock = () => form.querySelector(`.subset-grid[data-file="${CSS.escape(grid().file)}"]`);
  const round = (v) => String(Number(v.toFixed(2)));  // map positions to 0.01 degree (about 1 km)

  // ------------------------------------------------------------------ map

  const map = portalLand.baseMap("subset-map", script.dataset.land, { repeatEast: true, maxZoom: 12 });
  const language = (document.documentElement.lang || "en").toLowerCase();
  map.pm.setLang(language.startsWith("zh") ? "zh" : "en");
  const PATH = { color: "#b0401f", weight: 2, fillOpacity: 0.12 };
  map.pm.setGlobalOptions({ continueDrawing: false, snappable: false, pathOptions: PATH, templineStyle: PATH,
                            hintlineStyle: { ...PATH, dashArray: "4 4" } });
  let extentLayer = null;
  let shape = null;  // the one drawn or typed region / point

  function showExtent() {
    const g = grid();
    if (extentLayer) extentLayer.remove();
    const bounds = L.latLngBounds([[g.lat[0], g.lon[0]], [g.lat[1], g.lon[1]]]);
    extentLayer = L.rectangle(bounds, { color: "#1f5fa8", weight: 1, fill: false, dashArray: "4 3",
                                        interactive: false, pmIgnore: true }).addTo(map);
    map.fitBounds(bounds, { padding: [4, 4] });
  }

  function controls() {
    const point = kind() === "point";
    if (map.pm.controlsVisible()) map.pm.removeControls();
    map.pm.addControls({ position: "topleft", drawMarker: false, drawCircleMarker: point, drawPolyline: false,
                         drawRectangle: !point, drawPolygon: !point, drawCircle: false, drawText: false,
                         editMode: false, dragMode: false, cutPolygon: false, removalMode: true, rotateMode: false });
  }

  function setShape(layer) {
    if (shape && shape !== layer) shape.remove();
    shape = layer;
    if (!layer) return;
    layer.addTo(map);
    layer.on("pm:edit", () => { fromShape(layer); changed(); });
    layer.on("pm:remove", () => {  // removed with the eraser button: no region (the whole grid) or no point
      if (shape !== layer) return;
      shape = null;
      (region() === "bbox" ? BBOX : region() === "polygon" ? ["polygon"] : ["lon", "lat"])
        .forEach((name) => { input(name).value = ""; });
      changed();
    });
    layer.pm.enable({ draggable: true, allowSelfIntersection: false });
  }

  // ------------------------------------------------------------------ map -> inputs

  function normalLon(lon) {
    return ((((lon + 180) % 360) + 360) % 360) - 180;
  }

  function fromShape(layer) {
    if (layer instanceof L.Rectangle) {
      const b = layer.getBounds();
      const width = Math.min(b.getEast() - b.getWest(), 360);
      let west = normalLon(b.getWest());
      let east = west + width;
      if (width >= 360) [west, east] = [-180, 180];
      else if (east > 180) east -= 360;  // across the antimeridian: min_lon > max_lon
      const values = [west, Math.max(b.getSouth(), -90), east, Math.min(b.getNorth(), 90)];
      BBOX.forEach((name, i) => { input(name).value = round(values[i]); });
      input("region").value = "bbox";
    } else if (layer instanceof L.Polygon) {
      let ring = layer.getLatLngs()[0].map((p) => [p.lng, Math.max(-90, Math.min(90, p.lat))]);
      const lons = ring.map((p) => p[0]);
      const shift = Math.min(...lons) < -180 ? 360 : Math.max(...lons) > 360 ? -360 : 0;
      ring = ring.map(([lon, lat]) => [lon + shift, lat]);
      ring.push(ring[0]);
      input("polygon").value = `POLYGON((${ring.map(([lon, lat]) => `${round(lon)} ${round(lat)}`).join(", ")}))`;
      input("region").value = "polygon";
    } else if (layer.getLatLng) {
      const p = layer.getLatLng();
      input("lon").value = round(normalLon(p.lng));
      input("lat").value = round(p.lat);
    }
    showRegion();
  }

  map.on("pm:create", (e) => {
    setShape(e.layer);
    fromShape(e.layer);
    changed();
  });

  // ------------------------------------------------------------------ inputs -> map

  const number = (name) => {
    const v = input(name).value.trim();
    return v === "" || !Number.isFinite(Number(v)) ? null : Number(v);
  };

  function parseWKT(wkt) {
    const m = /^\s*POLYGON\s*\(\s*\(([^()]+)\)\s*\)\s*$/i.exec(wkt);
    if (!m) return null;
    const ring = m[1].split(",").map((pair) => pair.trim().split(/\s+/).map(Number));
    if (ring.length < 4 || ring.some((p) => p.length !== 2 || !p.every(Number.isFinite))) return null;
    return ring;
  }

  function toShape() {
    let layer = null;
    const style = PATH;
    if (region() === "bbox") {
      const v = BBOX.map(number);
      if (v.every((x) => x !== null) && v[1] <= v[3]) {
        const east = v[2] < v[0] ? v[2] + 360 : v[2];
        layer = L.rectangle([[v[1], v[0]], [v[3], east]], style);
      }
    } else if (region() === "polygon") {
      const ring = parseWKT(input("polygon").value);
      if (ring) layer = L.polygon(ring.slice(0, -1).map(([lon, lat]) => [lat, lon]), style);
    } else {
      const lon = number("lon");
      const lat = number("lat");
      if (lon !== null && lat !== null) layer = L.circleMarker([lat, lon], { ...style, radius: 6 });
    }
    setShape(layer);
  }

  function showRegion() {
    const k = kind();
    form.querySelectorAll("[data-kinds]").forEach((el) => { el.hidden = !el.dataset.kinds.split(" ").includes(k); });
    form.querySelectorAll("[data-region]").forEach((el) => { el.hidden = el.dataset.region !== input("region").value; });
  }

  function showKind() {
    showRegion();
    const allowed = kinds[kind()];
    const select = input("f");
    Array.from(select.options).forEach((o) => { o.hidden = o.disabled = !allowed.includes(o.value); });
    if (!allowed.includes(select.value)) select.value = allowed[0];
    controls();
    toShape();
  }

  function showGrid() {
    const g = grid();
    form.querySelectorAll(".subset-grid").forEach((el) => { el.hidden = el.dataset.file !== g.file; });
    ["start", "end"].forEach((name, i) => {
      const el = input(name);
      el.min = g.time[0];
      el.max = g.time[1];
      el.value = g.time[i];
    });
    showExtent();
  }

  // ------------------------------------------------------------------ requests

  function query(estimate) {
    const p = new URLSearchParams();
    const k = kind();
    if (k === "point") {
      p.set("lon", input("lon").value.trim());
      p.set("lat", input("lat").value.trim());
    } else if (region() === "bbox") {
      const v = BBOX.map((name) => input(name).value.trim());
      if (v.some((x) => x !== "")) p.set("bbox", v.join(","));
    } else if (input("polygon").value.trim()) {
      p.set("polygon", input("polygon").value.trim());
    }
    const start = input("start").value;
    const end = input("end").value;
    if (start || end) p.set("time", `${start}/${end}`);
    p.set("variables", variables().join(","));
    p.set("f", input("f").value);
    p.set("version", form.dataset.version);
    p.set("file", grid().file);
    if (estimate) p.set("estimate", "1");
    return `${form.dataset.api}${k}/?${p.toString()}`;
  }

  function variables() {
    return Array.from(gridBlock().querySelectorAll("input[name=variables]:checked")).map((el) => el.value);
  }

  // a problem the form can name before asking the server: {field, detail} or null
  function incomplete() {
    if (kind() === "point" && (input("lon").value.trim() === "" || input("lat").value.trim() === "")) {
      return { field: input("lon").value.trim() === "" ? "lon" : "lat", detail: text.need_point };
    }
    if (kind() === "area" && !query(false).match(/[?&](bbox|polygon)=/)) {
      return { field: region(), detail: text.need_region };
    }
    if (variables().length === 0) return { field: "variables", detail: text.need_variable };
    return null;
  }

  // the API's answer as {status, json} (json null when the body is not JSON, e.g. a file or an HTML 404)
  async function ask(url) {
    const r = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    const type = r.headers.get("Content-Type") || "";
    let json = null;
    if (type.includes("json") && !type.includes("coverage")) json = await r.json();
    else await r.arrayBuffer();  // drained, not aborted
    return { status: r.status, json, location: r.headers.get("Location") };
  }

  function humanBytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
  }

  function clearErrors() {
    errorBox.hidden = true;
    errorBox.textContent = "";
    form.querySelectorAll(".field-error").forEach((el) => { el.hidden = true; el.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  }

  function showError(field, detail) {
    field = field || "";
    const name = field === "f" ? "format" : field;
    const label = text[`field-${name}`];
    let message = String(detail || "");
    if (name && message.startsWith(`${name}: `)) message = message.slice(name.length + 2);
    const line = name ? `${label ? `${label} (${name})` : name}: ${message}` : message;
    errorBox.textContent = line;
    errorBox.hidden = false;
    const slot = form.querySelector(`.field-error[data-field="${CSS.escape(name)}"]`);
    if (slot) {
      slot.textContent = line;
      slot.hidden = false;
    }
    (FIELD_INPUTS[name] || []).forEach((n) => { const el = input(n); if (el && el.setAttribute) el.setAttribute("aria-invalid", "true"); });
    if (name === "variables") gridBlock().querySelectorAll("input").forEach((el) => el.setAttribute("aria-invalid", "true"));
  }

  // what the estimate says will happen, as a line of text
  function describe(answer) {
    const size = fill(text.estimate, { size: humanBytes(answer.estimated_bytes) });
    if (answer.mode === "job") return `${size} – ${text.job}`;
    if (answer.mode === "refused") return `${size} – ${fill(text.refused, { detail: answer.detail || "" })}`;
    return `${size} – ${text.direct}`;
  }

  let sequence = 0;
  async function estimate() {
    const mine = ++sequence;
    clearErrors();
    estimateLine.classList.remove("refused");
    const problem = incomplete();
    if (problem) {
      estimateLine.textContent = text.incomplete;
      return;
    }
    estimateLine.textContent = text.estimating;
    let answer;
    try {
      answer = await ask(query(true));
    } catch (err) {
      if (mine === sequence) estimateLine.textContent = fill(text.failed, { status: "–" });
      return;
    }
    if (mine !== sequence) return;  // the request has changed meanwhile
    const { status, json } = answer;
    if (status === 200 && json && typeof json.estimated_bytes === "number") {
      estimateLine.textContent = describe(json);
      estimateLine.classList.toggle("refused", json.mode === "refused");
    } else if (json && json.detail && status === 413) {  // above the job limit
      estimateLine.textContent = fill(text.refused, { detail: json.detail });
      estimateLine.classList.add("refused");
    } else if (json && json.detail && (status === 400 || status === 403)) {
      estimateLine.textContent = "";
      showError(json.field, json.detail);
    } else if (status === 200 || status === 404) {
      estimateLine.textContent = text.unavailable;  // an API without estimates for this kind (yet)
    } else {
      estimateLine.textContent = fill(text.failed, { status });
    }
  }

  let timer = null;
  function changed() {
    clearTimeout(timer);
    timer = setTimeout(estimate, 350);
  }

  // the file name a Content-Disposition header gives (RFC 6266: filename* first), or null
  function filenameOf(header) {
    if (!header) return null;
    const star = header.match(/filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/);
    if (star) return decodeURIComponent(star[1].trim());
    const plain = header.match(/filename\s*=\s*"?([^";]+)"?/);
    return plain ? plain[1].trim() : null;
  }

  // fetch a direct answer, and save it only once it has fully arrived: a request that fails
  // shows its error beside the form instead of a download that never comes
  async function download(url) {
    const r = await fetch(url, { credentials: "same-origin" });
    if (!r.ok) {
      const type = r.headers.get("Content-Type") || "";
      const json = type.includes("json") ? await r.json().catch(() => ({})) : {};
      return { ok: false, status: r.status, json };
    }
    const blob = await r.blob();
    const name = filenameOf(r.headers.get("Content-Disposition")) || "download";
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    a.hidden = true;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    return { ok: true, name, size: blob.size };
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearTimeout(timer);
    sequence += 1;  // a pending estimate must not overwrite what the submission shows
    clearErrors();
    const problem = incomplete();
    if (problem) {
      showError(problem.field, problem.detail);
      return;
    }
    submit.disabled = true;
    estimateLine.textContent = text.checking;
    try {
      const checked = await ask(query(true));
      const json = checked.json || {};
      if (checked.status !== 200) {
        estimateLine.textContent = "";
        showError(json.field, json.detail || fill(text.failed, { status: checked.status }));
        return;
      }
      if (typeof json.estimated_bytes === "number") estimateLine.textContent = describe(json);
      if (json.mode === "refused") {
        estimateLine.classList.add("refused");
        showError(json.field, json.detail);
        return;
      }
      if (json.mode === "job") {
        estimateLine.textContent = text.starting;
        const started = await ask(query(false));
        const job = started.json || {};
        if (started.status === 202 && (job.page_url || started.location)) {
          window.location.assign(job.page_url || started.location);
          return;
        }
        if (started.status !== 200) {
          showError(job.field, job.detail || fill(text.failed, { status: started.status }));
          return;
        }
      }
      estimateLine.textContent = text.downloading;
      const got = await download(query(false));  // a direct answer, saved once it has arrived
      if (!got.ok) {
        estimateLine.textContent = "";
        showError(got.json.field, got.json.detail || fill(text.failed, { status: got.status }));
        return;
      }
      estimateLine.textContent = fill(text.saved, { name: got.name, size: humanBytes(got.size) });
    } catch (err) {
      showError("", fill(text.failed, { status: "–" }));
    } finally {
      submit.disabled = false;
    }
  });

  // ------------------------------------------------------------------ wiring

  form.addEventListener("change", (ev) => {
    const name = ev.target.name;
    if (name === "kind") showKind();
    else if (name === "region") { showRegion(); toShape(); }
    else if (name === "file") showGrid();
    changed();
  });
  form.addEventListener("input", (ev) => {
    const name = ev.target.name;
    if (BBOX.includes(name) || name === "polygon" || name === "lon" || name === "lat") {
      toShape();
      changed();
    }
  });

  showGrid();
  showKind();
  changed();
  window.portalSubset = { map, query, estimate: () => estimate(), shape: () => shape };
})();
