// The dashboard's own live bits; static/js/parts.js keeps its figures current.
// - Each connection's countdown to its rate-limit reset ticks every second from its data-reset
//   epoch (the server draws it once; this keeps it moving between refreshes), and the card
//   shows the "window reset" note once it is past.
// - Notifications that appear with a refresh are highlighted briefly (.is-new).
// Only text and classes are set: the CSP allows no inline script and no inline style.
"use strict";

(() => {
  const i18n = window.notifySiteI18n;
  const pad = (n) => String(n).padStart(2, "0");

  // "resets in 12:34" (or 1:00:00), then "window reset"; as countdown_text() in Python.
  const countdownText = (seconds) => {
    if (seconds <= 0) {
      return i18n.t("window_reset");
    }
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.floor((seconds % 3600) / 60);
    const secs = seconds % 60;
    const clock = hours ? `${hours}:${pad(minutes)}:${pad(secs)}` : `${minutes}:${pad(secs)}`;
    return i18n.t("resets_in", { clock });
  };

  const tick = () => {
    const now = Date.now() / 1000;
    for (const countdown of document.querySelectorAll(".countdown[data-reset]")) {
      const left = Math.ceil(Number(countdown.dataset.reset) - now);
      const text = countdownText(left);
      if (countdown.textContent !== text) {
        countdown.textContent = text;
      }
      const card = countdown.closest("[data-connection-id]");
      if (card) {
        card.classList.toggle("is-reset", left <= 0);
        const note = card.querySelector('[data-field="reset_note"]');
        if (note) {
          note.hidden = left > 0;
        }
      }
    }
  };

  const rowIds = (root) =>
    new Set(Array.from(root.querySelectorAll("tr[data-notification-id]"), (row) => row.dataset.notificationId));

  const start = () => {
    const root = document.getElementById("dashboard");
    if (!root) {
      return;
    }
    tick();
    window.setInterval(tick, 1000);
    let seen = rowIds(root);
    root.addEventListener("parts:swapped", () => {
      tick(); // at once: the server drew the countdowns as of its own clock
      for (const row of root.querySelectorAll("tr[data-notification-id]")) {
        if (seen.size && !seen.has(row.dataset.notificationId)) {
          row.classList.add("is-new");
        }
      }
      seen = rowIds(root);
    });
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start, { once: true });
  } else {
    start();
  }
})();
