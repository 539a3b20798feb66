// Submits forms marked `data-autosubmit` as soon as the page is ready: the OAuth form_post
// answer and the callback bounce. Loaded as a file because the CSP allows no inline script;
// without JavaScript the form's visible button does the same.
"use strict";

(() => {
  const submitAll = () => {
    for (const form of document.querySelectorAll("form[data-autosubmit]")) {
      if (form.dataset.autosubmitted) {
        continue;
      }
      form.dataset.autosubmitted = "1";
      // The prototype's submit: a field named "submit" would shadow form.submit.
      HTMLFormElement.prototype.submit.call(form);
    }
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", submitAll, { once: true });
  } else {
    submitAll();
  }
})();
