// The policy pages. No inline script: the Content-Security-Policy forbids it.
(function () {
  "use strict";
  // "Preview this change" opens the review page: a plain form submission to its
  // formaction, not an htmx swap of the settings section. Stopping the submit event
  // on its way down (capture phase) keeps it from htmx's listener on the form.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (button && button.hasAttribute("data-full-page")) {
      event.stopPropagation();
    }
  }, true);

  // A row saved with its Save button says when its value is changed but not saved yet.
  function markDirty(event) {
    var form = event.target && event.target.form;
    if (form && form.hasAttribute("data-explicit-save")) {
      form.classList.add("is-dirty");
    }
  }
  document.addEventListener("input", markDirty, true);
  document.addEventListener("change", markDirty, true);
})();
