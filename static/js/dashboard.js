// The dashboard's live parts: a countdown to each connection's rate-limit reset, ticking
// every second from its data-reset epoch, and fresh figures from the page's JSON every 15 s
// (data-json-url; the chart is re-fetched from data-chart-url when the hourly counts change).
// The CSP allows no inline script and no inline style: everything here sets text, classes
// and SVG attributes. Keep the data-field names in step with templates/dashboard/_parts.html.
"use strict";

(() => {
  const POLL_MS = 15000;
  const MAX_BACKOFF_MS = 120000;
  // At or below this share of its limit a gauge turns amber (services/dashboard.py: LOW_FRACTION).
  const LOW_FRACTION = 0.2;

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

  // A time as the page's "when" filter writes it, in the user's locale and time zone.
  const utcTime = (iso) => i18n.timeElement(iso, "minute");

  const muted = (text) => {
    const span = document.createElement("span");
    span.className = "muted";
    span.textContent = text;
    return span;
  };

  const field = (root, name) => root.querySelector(`[data-field="${name}"]`);

  // ---------------------------------------------------------------- countdowns

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
        const past = left <= 0;
        card.classList.toggle("is-reset", past);
        const note = field(card, "reset_note");
        if (note) {
          note.hidden = !past;
        }
      }
    }
  };

  // ---------------------------------------------------------------- connections

  const updateGauge = (gauge, remaining, limit) => {
    if (!gauge) {
      return;
    }
    const known = remaining !== null && limit !== null && limit > 0;
    let level = "unknown";
    let percent = 0;
    if (known) {
      percent = Math.round((1000 * Math.min(Math.max(remaining, 0), limit)) / limit) / 10;
      level = remaining <= 0 ? "empty" : remaining <= limit * LOW_FRACTION ? "low" : "ok";
    }
    for (const name of ["ok", "low", "empty", "unknown"]) {
      gauge.classList.toggle(`gauge-${name}`, name === level);
    }
    gauge.querySelector(".gauge-value").setAttribute("stroke-dasharray", `${percent} 100`);
    field(gauge, "remaining").textContent = i18n.number(remaining);
    field(gauge, "limit").textContent = i18n.number(limit);
    if (known) {
      gauge.setAttribute("aria-valuemax", String(limit));
      gauge.setAttribute("aria-valuenow", String(remaining));
    } else {
      gauge.removeAttribute("aria-valuemax");
      gauge.removeAttribute("aria-valuenow");
    }
  };

  const updateConnection = (card, c) => {
    const pill = field(card, "status");
    pill.textContent = i18n.status(c.status);
    pill.className = `pill pill-${c.status}`;
    for (const status of ["active", "unreachable", "revoked", "error"]) {
      card.classList.toggle(`status-${status}`, status === c.status);
    }
    const detail = field(card, "status_detail");
    detail.textContent = c.status_detail_text || c.status_detail || "";
    detail.hidden = !c.status_detail;
    const unreachable = field(card, "unreachable_note");
    if (unreachable) {
      unreachable.hidden = c.status !== "unreachable";
    }
    const actions = field(card, "actions");
    if (actions && c.status === "revoked") {
      actions.hidden = true;
    }

    const rate = c.rate_limit;
    updateGauge(card.querySelector("[data-gauge=calls]"), rate.remaining, rate.limit);
    updateGauge(card.querySelector("[data-gauge=images]"), rate.image_remaining, rate.image_limit);

    const countdown = field(card, "countdown");
    if (countdown) {
      if (rate.reset === null) {
        delete countdown.dataset.reset;
        countdown.textContent = i18n.t("reset_time_unknown");
      } else {
        countdown.dataset.reset = String(rate.reset);
      }
    }
    const resetAt = field(card, "reset_at");
    if (resetAt) {
      resetAt.replaceChildren(...(rate.reset_at ? i18n.tNodes("at_time", { time: utcTime(rate.reset_at) }) : []));
    }
    const checked = field(card, "checked");
    if (checked) {
      if (rate.checked_at) {
        const by = document.createElement("span");
        by.className = "hint";
        const call = document.createElement("span");
        call.dataset.field = "checked_by";
        call.textContent = rate.checked_by || i18n.t("unknown");
        by.append(...i18n.tNodes("checked_by", { kind: call }));
        checked.replaceChildren(utcTime(rate.checked_at), " ", by);
      } else {
        checked.replaceChildren(muted(i18n.t("never")));
      }
    }
  };

  // ---------------------------------------------------------------- notifications

  const fillRow = (row, n) => {
    row.dataset.notificationId = String(n.id);
    field(row, "connection").textContent = n.connection.label;
    field(row, "excerpt").textContent = n.excerpt;
    const pill = field(row, "status");
    pill.textContent = i18n.status(n.status);
    pill.className = `pill pill-${n.status}`;
    field(row, "attempts").textContent = String(n.attempts);
    const error = field(row, "last_error");
    if (n.last_error) {
      error.textContent = n.last_error_text || n.last_error;
    } else {
      error.replaceChildren(muted("—"));
    }
    field(row, "created_at").replaceChildren(utcTime(n.created_at));
  };

  const updateNotifications = (notifications) => {
    const body = document.getElementById("recent-rows");
    const template = document.getElementById("notification-row-template");
    if (!body || !template) {
      return;
    }
    const known = new Set(
      Array.from(body.querySelectorAll("tr[data-notification-id]"), (row) => row.dataset.notificationId),
    );
    const rows = notifications.map((n) => {
      const row = template.content.querySelector("tr").cloneNode(true);
      fillRow(row, n);
      if (known.size && !known.has(String(n.id))) {
        row.classList.add("is-new");
      }
      return row;
    });
    body.replaceChildren(...rows);
    document.getElementById("recent-empty").hidden = rows.length > 0;
    document.getElementById("recent-table").hidden = rows.length === 0;
  };

  // ---------------------------------------------------------------- chart

  const hourlyKey = (hourly) =>
    JSON.stringify([hourly.hours, hourly.delivered, hourly.failed, hourly.pending]);

  const updateChart = async (root, hourly) => {
    const totals = {
      total_delivered: hourly.delivered,
      total_failed: hourly.failed,
      total_pending: hourly.pending,
    };
    const legend = document.getElementById("sends-legend");
    for (const [name, values] of Object.entries(totals)) {
      field(legend, name).textContent = i18n.number(values.reduce((a, b) => a + b, 0));
    }
    field(legend, "pending_item").hidden = !hourly.pending.some((v) => v > 0);

    const frame = document.getElementById("sends-chart");
    if (![hourly.delivered, hourly.failed, hourly.pending].flat().some((v) => v > 0)) {
      const empty = document.createElement("p");
      empty.className = "chart-empty";
      empty.textContent = i18n.t("no_notifications_24h");
      frame.replaceChildren(empty);
      return;
    }
    const response = await fetch(root.dataset.chartUrl, {
      credentials: "same-origin",
      cache: "no-store",
    });
    if (!response.ok) {
      throw new Error(`HTTP ${response.status}`);
    }
    // Our own server-rendered fragment (charts.py escapes every text), parsed inertly.
    const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
    if (!parsed.body.querySelector("svg.chart, .chart-empty")) {
      throw new Error("the chart fragment has no chart");
    }
    frame.replaceChildren(...Array.from(parsed.body.childNodes, (node) => document.importNode(node, true)));
  };

  // ---------------------------------------------------------------- polling

  const start = () => {
    const root = document.getElementById("dashboard");
    if (!root) {
      return;
    }
    tick();
    window.setInterval(tick, 1000);

    const head = document.querySelector(".dash-head");
    const updated = document.getElementById("dashboard-updated");
    const shownConnections = Array.from(
      root.querySelectorAll("[data-connection-id]"),
      (card) => card.dataset.connectionId,
    ).join(",");
    const chartFrame = document.getElementById("sends-chart");
    // What the server drew the chart from; the chart is fetched again when this changes.
    let lastHourly = hourlyKey(JSON.parse(chartFrame.dataset.hourly));
    let delay = POLL_MS;
    let timer = null;
    let inFlight = false;
    let lastPoll = Date.now();

    const say = (...parts) => {
      updated.replaceChildren(...parts);
    };

    const apply = async (body) => {
      const ids = body.connections.map((c) => String(c.id)).join(",");
      for (const c of body.connections) {
        const card = root.querySelector(`[data-connection-id="${c.id}"]`);
        if (card) {
          updateConnection(card, c);
        }
      }
      updateNotifications(body.notifications);
      const hourly = hourlyKey(body.hourly);
      if (hourly !== lastHourly) {
        await updateChart(root, body.hourly);
        lastHourly = hourly;
      }
      tick();
      if (ids !== shownConnections) {
        const reload = document.createElement("a");
        reload.href = window.location.pathname;
        reload.textContent = i18n.t("reload");
        say(...i18n.tNodes("chats_changed", { reload }));
      } else {
        say(...i18n.tNodes("figures_as_of", { time: utcTime(body.generated_at) }));
      }
      head.classList.remove("is-stale");
    };

    const poll = async () => {
      timer = null;
      if (document.hidden) {
        return; // picked up again by visibilitychange
      }
      inFlight = true;
      lastPoll = Date.now();
      try {
        const response = await fetch(root.dataset.jsonUrl, {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
          cache: "no-store",
        });
        if (response.status === 401) {
          say(i18n.t("session_ended_dashboard"));
          head.classList.add("is-stale");
          return;
        }
        if (!response.ok) {
          throw new Error(`HTTP ${response.status}`);
        }
        await apply(await response.json());
        delay = POLL_MS;
      } catch (error) {
        // A restart or a network blip: keep the figures shown, try again less often.
        delay = Math.min(delay * 2, MAX_BACKOFF_MS);
        say(i18n.t("lost_contact_dashboard"));
        head.classList.add("is-stale");
      } finally {
        inFlight = false;
      }
      timer = window.setTimeout(poll, delay);
    };

    // A background tab stops polling; coming back fetches at once if a poll is overdue.
    document.addEventListener("visibilitychange", () => {
      if (document.hidden || inFlight) {
        return;
      }
      if (timer === null || Date.now() - lastPoll >= delay) {
        window.clearTimeout(timer);
        poll();
      }
    });
    timer = window.setTimeout(poll, POLL_MS);
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start, { once: true });
  } else {
    start();
  }
})();
