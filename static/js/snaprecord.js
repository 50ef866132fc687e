// The Relate panel: picking a search hit or an attendee suggestion fills the form's hidden
// inputs (Name, Related To) or adds a further person; no inline script (CSP).
(function () {
  "use strict";

  function form() { return document.getElementById("relate-form"); }

  function choose(role, id, label) {
    var f = form();
    if (!f) { return; }
    if (role === "other") {
      var list = document.getElementById("others-list");
      if (f.querySelector('input[name="other"][value="' + CSS.escape(id) + '"]')) { return; }
      var li = document.createElement("li");
      var lab = document.createElement("label");
      var box = document.createElement("input");
      box.type = "checkbox"; box.name = "other"; box.value = id; box.checked = true;
      lab.appendChild(box);
      lab.appendChild(document.createTextNode(" " + label));
      li.appendChild(lab);
      list.appendChild(li);
    } else {
      var hidden = f.querySelector('input[name="' + role + '"]');
      var shown = f.querySelector('[data-chosen="' + role + '"]');
      if (hidden) { hidden.value = id; }
      if (shown) { shown.textContent = label || "none"; }
    }
    var results = document.getElementById("results-" + role);
    if (results) { results.textContent = ""; }
    var q = document.getElementById("q-" + role);
    if (q) { q.value = ""; }
  }

  document.addEventListener("click", function (ev) {
    var pick = ev.target.closest("[data-pick]");
    if (pick) {
      ev.preventDefault();
      choose(pick.dataset.pick, pick.dataset.id, pick.dataset.label);
      return;
    }
    var clear = ev.target.closest("[data-clear]");
    if (clear) {
      ev.preventDefault();
      choose(clear.dataset.clear, "", "none");
      return;
    }
    if (ev.target.closest("[data-close-panel]")) {
      var panel = document.getElementById("side-panel");
      if (panel) { panel.textContent = ""; }
    }
  });

  // Enter in a search box must not submit the relate form.
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && ev.target.matches && ev.target.matches("#relate-form input[type=search]")) {
      ev.preventDefault();
    }
  });
})();
