// The job page: poll the job's API status until it is done, failed, cancelled or expired; cancel and retry.
(function () {
  "use strict";
  const root = document.getElementById("job");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const csrf = (document.cookie.match(/csrftoken=([^;]+)/) || [])[1] || "";
  function size(n) {
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return n.toFixed(i ? 1 : 0) + " " + units[i];
  }
  function show(job) {
    $("job-status").textContent = job.status;
    root.dataset.status = job.status;
    $("job-progress").value = job.progress;
    $("job-percent").textContent = Math.round(job.progress * 100) + " %";
    const live = job.status === "queued" || job.status === "running";
    $("job-cancel").hidden = !live;
    $("job-error-row").hidden = job.status !== "failed" && job.status !== "cancelled";
    $("job-error").textContent = job.error || "";
    $("job-result-row").hidden = job.status !== "done";
    if (job.status === "done") {
      $("job-download").href = job.download_url;
      $("job-download").textContent = job.result_name;
      $("job-size").textContent = size(job.size);
      $("job-sha256").textContent = job.sha256;
      $("job-expires").textContent = new Date(job.expires_at).toISOString().slice(0, 16).replace("T", " ") + " UTC";
      const sep = job.script_url.indexOf("?") < 0 ? "?" : "&";
      $("job-script-curl").href = job.script_url + sep + "tool=curl";
      $("job-script-wget").href = job.script_url + sep + "tool=wget";
    }
    return live;
  }
  function poll() {
    fetch(root.dataset.statusUrl, {headers: {Accept: "application/json"}})
      .then((r) => r.json())
      .then((job) => { if (show(job)) setTimeout(poll, 1000); })
      .catch(() => setTimeout(poll, 3000));
  }
  $("job-cancel").addEventListener("click", function () {
    $("job-cancel").disabled = true;
    fetch(root.dataset.cancelUrl, {method: "POST", headers: {"X-CSRFToken": csrf, Accept: "application/json"}})
      .then((r) => r.json().then((body) => ({ok: r.ok, body: body})))
      .then((answer) => {
        $("job-cancel").disabled = false;
        $("job-cancel-error").hidden = answer.ok;
        $("job-cancel-error").textContent = answer.ok ? "" : (answer.body.detail || "");
        if (answer.ok) show(answer.body);
      });
  });
  $("job-retry").addEventListener("click", function () {
    fetch(root.dataset.retryUrl, {method: "POST", headers: {"X-CSRFToken": csrf, Accept: "application/json"}})
      .then((r) => r.json()).then((job) => { show(job); poll(); });
  });
  poll();
})();
