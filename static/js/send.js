// The send form's live character count. Loaded as a file: the CSP allows no inline script.
// LINE counted characters, not bytes or UTF-16 units: [...text] splits a string into code
// points, so "あ" and "🎉" are one each, as the server counts them.
"use strict";

(() => {
  const i18n = window.notifySiteI18n;
  const countCodePoints = (text) => [...text].length;

  const attach = (counter) => {
    const textarea = document.getElementById(counter.dataset.countFor);
    if (!textarea) {
      return;
    }
    const max = Number(textarea.dataset.maxChars);
    const update = () => {
      const length = countCodePoints(textarea.value);
      counter.textContent = `${length} / ${max}`;
      const over = length > max;
      counter.classList.toggle("over", over);
      counter.title = over ? i18n.t("chars_too_many", { count: i18n.number(length - max) }) : "";
    };
    textarea.addEventListener("input", update);
    update();
  };

  const start = () => {
    for (const counter of document.querySelectorAll("[data-count-for]")) {
      attach(counter);
    }
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start, { once: true });
  } else {
    start();
  }
})();
