// After a failed submit (issue 23): move the keyboard's focus to what went wrong, so that a
// screen reader reads it and Tab goes on from there. The page's error summary if it has one
// (a form's "Nothing was saved..." alert or an error flash), else the first invalid field.
// Loaded by both houses' layouts as a file: the CSP allows no inline script.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const summary = document.querySelector("main .flash-error, main [data-error-summary]");
  if (summary) {
    if (!summary.hasAttribute("tabindex")) summary.setAttribute("tabindex", "-1");
    summary.focus();
    return;
  }
  const invalid = document.querySelector('main [aria-invalid="true"]');
  if (invalid) invalid.focus();
});
