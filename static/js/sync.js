// My sync pages: small behaviours without inline script (the CSP forbids it).
(function () {
  "use strict";
  // A form marked data-once sends once: a double click does not post twice
  // (the server also refuses a second run; this only spares the round trip).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-once")) return;
    if (form.dataset.sent === "1") { event.preventDefault(); return; }
    form.dataset.sent = "1";
    form.querySelectorAll("button[type=submit]").forEach(function (b) {
      b.setAttribute("aria-disabled", "true");
      b.classList.add("is-sending");
    });
  }, true);
  // The details drawer closes without a round trip.
  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest("[data-drawer-close]");
    if (!close) return;
    var drawer = document.getElementById("drawer");
    if (!drawer) return;
    event.preventDefault();
    drawer.innerHTML = "";
  });
  // On a phone the group tabs scroll sideways: bring the chosen group into view.
  document.addEventListener("DOMContentLoaded", function () {
    var current = document.querySelector(".group-tabs .current");
    var strip = current && current.parentElement;
    if (strip && strip.scrollWidth > strip.clientWidth) {
      strip.scrollLeft = current.offsetLeft - (strip.clientWidth - current.offsetWidth) / 2;
    }
  });
  // Escape closes the drawer too.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var drawer = document.getElementById("drawer");
    if (drawer) drawer.innerHTML = "";
  });
})();
