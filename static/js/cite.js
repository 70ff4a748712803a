/* "How to cite" box of the detail page (templates/catalog/_cite.html): each button.cite-copy copies
   the text of the element its data-copy names (the formatted citation, BibTeX, RIS) to the
   clipboard. Where the Clipboard API is refused, the text is selected instead for Ctrl+C.
   No inline handlers: the page's Content-Security-Policy allows only the portal's own scripts. */
(function () {
  "use strict";
  const box = document.getElementById("cite");
  if (!box) return;
  const status = box.querySelector(".cite-status");

  function say(text, ok) {
    if (!status) return;
    status.textContent = text || "";
    status.classList.toggle("failed", !ok);
  }

  function select(el) {
    const details = el.closest("details");
    if (details) details.open = true;  // a selection in a closed <details> is invisible
    const range = document.createRange();
    range.selectNodeContents(el);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copied(button, text) {
    box.querySelectorAll("button.cite-copy.copied").forEach((b) => b.classList.remove("copied"));
    button.classList.add("copied");
    box.dataset.copied = button.dataset.copy;
    say(box.dataset.copiedLabel, true);
    return text;
  }

  function fallback(button, source) {
    select(source);
    let done = false;
    try {
      done = document.execCommand("copy");
    } catch (e) {
      done = false;
    }
    if (done) copied(button, source.textContent);
    else say(box.dataset.failedLabel, false);
  }

  box.addEventListener("click", (event) => {
    const button = event.target.closest("button.cite-copy");
    if (!button) return;
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    const text = source.textContent.trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(() => copied(button, text), () => fallback(button, source));
    } else {
      fallback(button, source);
    }
  });
})();
