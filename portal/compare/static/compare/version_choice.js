/* The subset form's version choice: the form's requests carry form.dataset.version (static/js/subset.js). */
(function () {
  "use strict";
  var select = document.getElementById("subset-version");
  var form = document.getElementById("subset-form");
  if (!select || !form) return;
  select.addEventListener("change", function () {
    form.dataset.version = select.value;
  });
})();
