// Copy-to-clipboard buttons: <button data-copy-target="ID"> copies the text of element #ID.
// A file, not an inline script: the CSP allows scripts from this site only.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy-target]")) {
    const id = button.dataset.copyTarget;
    const source = document.getElementById(id);
    const status = document.querySelector(`[data-copy-status="${id}"]`);
    if (!source) {
      continue;
    }
    const say = (text) => {
      if (status) {
        status.textContent = text;
      }
    };
    button.addEventListener("click", async () => {
      const text = source.textContent.trim();
      try {
        await navigator.clipboard.writeText(text);
        say(window.notifySiteI18n.t("copied"));
      } catch {
        // No clipboard access (plain HTTP on another host, or refused): select the text so
        // that Ctrl-C / Cmd-C copies it.
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        say(window.notifySiteI18n.t("copy_selected"));
      }
    });
  }
});
