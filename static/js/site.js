// Site-wide behaviour. Loaded as a file: the CSP allows no inline script.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Forms that destroy something ask first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  }
});
