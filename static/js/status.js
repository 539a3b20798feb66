// Follows the notifications of one send until each is delivered or failed, by polling the
// JSON endpoint named in data-status-url (the CSP allows no inline script, so no inline data).
"use strict";

(() => {
  const POLL_MS = 1500;
  const MAX_BACKOFF_MS = 30000;
  const TERMINAL = new Set(["delivered", "failed"]);
  const i18n = window.notifySiteI18n;

  const setText = (cell, text) => {
    if (!cell) {
      return;
    }
    if (text === null || text === undefined || text === "") {
      const dash = document.createElement("span");
      dash.className = "muted";
      dash.textContent = "—";
      cell.replaceChildren(dash);
    } else {
      cell.textContent = String(text);
    }
  };

  const setFinished = (cell, iso) => {
    if (!cell) {
      return;
    }
    if (!iso) {
      setText(cell, null);
      return;
    }
    cell.replaceChildren(i18n.timeElement(iso, "time"));
  };

  const updateRow = (row, n) => {
    const pill = row.querySelector("[data-field=status]");
    if (pill && pill.textContent !== i18n.status(n.status)) {
      pill.textContent = i18n.status(n.status);
      pill.className = `pill pill-${n.status}`;
    }
    setText(row.querySelector("[data-field=attempts]"), n.attempts);
    setText(row.querySelector("[data-field=last_error]"), n.last_error_text || n.last_error);
    setFinished(row.querySelector("[data-field=finished_at]"), n.finished_at);
  };

  const summarise = (summary, notifications, done) => {
    const count = (status) => notifications.filter((n) => n.status === status).length;
    const failed = count("failed");
    const delivered = i18n.number(count("delivered"));
    if (done) {
      summary.textContent = failed
        ? i18n.t("finished_summary_failed", { delivered, failed: i18n.number(failed) })
        : i18n.t("finished_summary", { delivered });
    } else {
      const finished = notifications.filter((n) => TERMINAL.has(n.status)).length;
      summary.textContent = i18n.t("delivering_progress", {
        finished: i18n.number(finished),
        total: i18n.number(notifications.length),
      });
    }
    summary.classList.toggle("done", done);
    summary.classList.toggle("has-failed", failed > 0);
  };

  const follow = (root) => {
    const url = root.dataset.statusUrl;
    const summary = document.getElementById("status-summary");
    let delay = POLL_MS;

    const poll = async () => {
      let body;
      try {
        const response = await fetch(url, {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
          cache: "no-store",
        });
        if (response.status === 401) {
          summary.textContent = i18n.t("session_ended_status");
          return;
        }
        if (!response.ok) {
          throw new Error(`HTTP ${response.status}`);
        }
        body = await response.json();
      } catch (error) {
        // A restart or a network blip: keep trying, less often.
        delay = Math.min(delay * 2, MAX_BACKOFF_MS);
        summary.textContent = i18n.t("lost_contact_status");
        window.setTimeout(poll, delay);
        return;
      }
      delay = POLL_MS;
      for (const n of body.notifications) {
        const row = root.querySelector(`tr[data-notification-id="${n.id}"]`);
        if (row) {
          updateRow(row, n);
        }
      }
      summarise(summary, body.notifications, body.done);
      root.dataset.done = body.done ? "true" : "false";
      if (!body.done) {
        window.setTimeout(poll, delay);
      }
    };

    window.setTimeout(poll, POLL_MS);
  };

  const start = () => {
    const root = document.querySelector("[data-status-url]");
    if (root && root.dataset.done !== "true") {
      follow(root);
    }
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start, { once: true });
  } else {
    start();
  }
})();
