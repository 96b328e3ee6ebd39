// Small behaviours the server-rendered pages need; everything else is htmx attributes.
"use strict";

// Event log level filters: each checkbox shows or hides one level, without a round trip.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || !box.dataset.level) return;
  const log = document.getElementById(box.dataset.log);
  if (log) log.classList.toggle(`hide-${box.dataset.level}`, !box.checked);
});

// A followed event log stays scrolled to its end while new lines arrive, unless the reader
// scrolled up to read something.
document.addEventListener("htmx:beforeSwap", () => {
  for (const log of document.querySelectorAll(".log[data-follow]")) {
    log.dataset.atEnd = String(log.scrollHeight - log.scrollTop - log.clientHeight < 40);
  }
});
document.addEventListener("htmx:afterSettle", () => {
  for (const log of document.querySelectorAll(".log[data-follow]")) {
    if (log.dataset.atEnd !== "false") log.scrollTop = log.scrollHeight;
  }
});

// A log fetch that failed (a restart, a blip) is tried again instead of the log going quiet.
for (const name of ["htmx:responseError", "htmx:sendError"]) {
  document.addEventListener(name, (event) => {
    const elt = event.detail.elt;
    if (elt && elt.classList && elt.classList.contains("more")) htmx.trigger(elt, "retry");
  });
}

// Live refreshes ("every Ns") pause while the tab is hidden: nobody reads them, and each
// costs the server a few API calls.
document.addEventListener("htmx:confirm", (event) => {
  const trigger = event.detail.elt.getAttribute("hx-trigger") || "";
  if (document.hidden && trigger.startsWith("every")) event.preventDefault();
});
