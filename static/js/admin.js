// Keeps the admin page current without reloading it: every 30 s, while the tab is visible, it
// reads the JSON endpoints named in #admin's data-*-url attributes and redraws the figures and
// the four tables; when the hourly figures changed, it fetches the charts as the server draws
// them (/admin/charts). The rows are built with DOM calls (no innerHTML, no inline script or
// style: the CSP allows neither), to match what templates/admin/index.html renders.
"use strict";

(() => {
  const root = document.getElementById("admin");
  if (!root) {
    return;
  }
  const PERIOD_MS = Number(root.dataset.refreshSeconds || 30) * 1000;
  const MAX_BACKOFF_MS = 5 * 60 * 1000;
  let delay = PERIOD_MS;
  let timer = null;
  let lastChart = null;
  let stopped = false;

  // --- small DOM helpers -------------------------------------------------------------------

  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) {
        continue;
      }
      if (name === "class") {
        node.className = value;
      } else if (name === "label") {
        node.dataset.label = i18n.t(value); // a column name, translated in i18n.py
      } else {
        node.setAttribute(name, String(value));
      }
    }
    node.append(...children.filter((child) => child !== null && child !== undefined && child !== ""));
    return node;
  };
  const i18n = window.notifySiteI18n;
  const muted = (text) => el("span", { class: "muted" }, text);
  const number = (value) => i18n.number(Number(value));
  const counted = (value) => number(value.count) + (value.capped ? "+" : "");
  const space = () => document.createTextNode(" ");

  // A time as the page prints it (the "brief" style of the when filter), full in the title.
  const when = (iso, empty = "—") => {
    if (!iso) {
      return muted(empty);
    }
    const time = i18n.timeElement(iso, "brief");
    time.title = i18n.timeText(iso, "second");
    return time;
  };

  const ago = (iso, nowIso) => {
    if (!iso) {
      return "";
    }
    const minutes = Math.floor((Date.parse(nowIso) - Date.parse(iso)) / 60000);
    if (minutes < 1) {
      return i18n.t("just_now");
    }
    if (minutes < 60) {
      return i18n.t("minutes_ago", { count: minutes });
    }
    if (minutes < 48 * 60) {
      return i18n.t("hours_ago", { count: Math.floor(minutes / 60) });
    }
    return i18n.t("days_ago", { count: Math.floor(minutes / 1440) });
  };

  const hours = new URLSearchParams(window.location.search).get("hours");
  const ownerLink = (owner) => {
    const url = new URL(window.location.pathname, window.location.origin);
    url.searchParams.set("user", owner.username);
    if (hours) {
      url.searchParams.set("hours", hours);
    }
    url.hash = "connections";
    return el("a", { href: url.pathname + url.search + url.hash, title: i18n.t("show_connections_of", { owner: owner.username }) }, owner.username);
  };

  const quota = (remaining, limit) => {
    if (limit === null || remaining === null) {
      return muted(i18n.t("unknown"));
    }
    let level = "";
    if (remaining <= 0) {
      level = " quota-spent";
    } else if (remaining * 10 <= limit) {
      level = " quota-low";
    }
    return el(
      "span",
      { class: `quota${level}` },
      el("span", { class: "quota-text" }, `${number(remaining)} / ${number(limit)}`),
      el("meter", {
        min: 0,
        max: limit,
        value: remaining,
        low: Math.floor(limit / 10),
        high: Math.floor(limit / 2),
        optimum: limit,
      }),
    );
  };

  const pill = (status) => el("span", { class: `pill pill-${status}` }, i18n.status(status));

  const chatCell = (n) =>
    el(
      "td",
      { label: "Chat" },
      n.connection.label,
      n.connection.status !== "active" ? space() : null,
      n.connection.status !== "active" ? pill(n.connection.status) : null,
    );

  const lastError = (n) => {
    if (!n.last_error) {
      return el("td", { label: "Last error", class: "last-error" }, muted("—"));
    }
    return el(
      "td",
      { label: "Last error", class: "last-error" },
      n.last_error_text || n.last_error,
      n.last_status_code ? space() : null,
      n.last_status_code ? el("span", { class: "badge" }, String(n.last_status_code)) : null,
    );
  };

  const problemText = (n, now) => {
    if (n.problem !== "lease_expired") {
      return i18n.t("problem_queued", { ago: ago(n.since, now) });
    }
    return n.since ? i18n.t("problem_lease", { ago: ago(n.since, now) }) : i18n.t("problem_no_lease");
  };

  // A Retry or Cancel form: the page's <template> (it carries the CSRF token), aimed at the row.
  const actionForm = (templateId, url, confirmText) => {
    const template = document.getElementById(templateId);
    const form = template.content.querySelector("form").cloneNode(true);
    form.action = url + window.location.search;
    form.dataset.confirm = confirmText;
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
    return form;
  };

  // --- rows, one builder per table -----------------------------------------------------------

  const rows = {
    connections: (c) =>
      el(
        "tr",
        { class: `status-${c.status}`, "data-id": c.id },
        el("td", { label: "Owner" }, ownerLink(c.owner)),
        el("td", { label: "Label", class: "label" }, c.label),
        el(
          "td",
          { label: "Chat" },
          c.target ? c.target : muted(i18n.t("unknown")),
          c.type ? space() : null,
          c.type ? el("span", { class: "badge" }, i18n.status(c.type)) : null,
        ),
        el(
          "td",
          { label: "Status" },
          pill(c.status),
          c.status_detail ? el("div", { class: "hint" }, c.status_detail_text || c.status_detail) : null,
          c.status === "unreachable" ? el("div", { class: "hint" }, i18n.t("unreachable_hint")) : null,
        ),
        el("td", { label: "Calls left", class: "remaining" }, quota(c.rate_limit.remaining, c.rate_limit.limit)),
        el("td", { label: "Images left" }, quota(c.rate_limit.image_remaining, c.rate_limit.image_limit)),
        el("td", { label: "Resets" }, when(c.rate_limit.reset_at)),
        el(
          "td",
          { label: "Last checked" },
          when(c.rate_limit.checked_at, i18n.t("never")),
          c.rate_limit.checked_by ? space() : null,
          c.rate_limit.checked_by
            ? el("span", { class: "hint" }, i18n.t("checked_by", { kind: c.rate_limit.checked_by }))
            : null,
        ),
      ),

    stuck: (n, now) =>
      el(
        "tr",
        { "data-id": n.id },
        el("td", { label: "#" }, String(n.id)),
        el("td", { label: "Owner" }, ownerLink(n.owner)),
        chatCell(n),
        el(
          "td",
          { label: "Problem" },
          problemText(n, now),
        ),
        el("td", { label: "Attempts" }, String(n.attempts)),
        lastError(n),
        el("td", { label: "Message", class: "excerpt" }, n.message),
        el(
          "td",
          { class: "row-actions" },
          n.cancel_url
            ? actionForm(
                "admin-cancel-form",
                n.cancel_url,
                i18n.t("confirm_cancel", { id: n.id, label: n.connection.label }),
              )
            : null,
        ),
      ),

    failed: (n) =>
      el(
        "tr",
        { "data-id": n.id },
        el("td", { label: "#" }, String(n.id)),
        el("td", { label: "Owner" }, ownerLink(n.owner)),
        chatCell(n),
        el("td", { label: "Failed" }, when(n.finished_at)),
        el("td", { label: "Attempts" }, String(n.attempts)),
        lastError(n),
        el("td", { label: "Message", class: "excerpt" }, n.message),
        el(
          "td",
          { class: "row-actions" },
          n.retry_url
            ? actionForm(
                "admin-retry-form",
                n.retry_url,
                i18n.t("confirm_retry", { id: n.id, label: n.connection.label }),
              )
            : null,
        ),
      ),

    keys: (k) =>
      el(
        "tr",
        { class: `status-${k.active ? "active" : "revoked"}`, "data-id": k.id },
        el("td", { label: "Owner" }, ownerLink(k.owner)),
        el("td", { label: "Name" }, k.name),
        el("td", { label: "Key" }, el("code", {}, `${k.prefix}…`)),
        el("td", { label: "Created" }, when(k.created_at)),
        el("td", { label: "Last used" }, when(k.last_used_at, i18n.t("never"))),
        el("td", { label: "Sent", class: "volume" }, number(k.volume)),
        el("td", { label: "Status" }, pill(k.active ? "active" : "revoked")),
      ),
  };

  // --- applying an answer ------------------------------------------------------------------

  const showList = (name, items, page, now) => {
    const table = root.querySelector(`table[data-list="${name}"]`);
    const empty = root.querySelector(`[data-list-empty="${name}"]`);
    if (!table) {
      return;
    }
    // Each cell's data-label (the column's name on phones) is its header's text, translated.
    const heads = table.tHead ? [...table.tHead.rows[0].cells].map((th) => th.textContent) : [];
    const built = items.map((item) => rows[name](item, now));
    for (const row of built) {
      [...row.cells].forEach((cell, index) => {
        if (cell.dataset.label !== undefined && heads[index]) {
          cell.dataset.label = heads[index];
        }
      });
    }
    table.tBodies[0].replaceChildren(...built);
    table.closest(".table-wrap").hidden = items.length === 0;
    if (empty) {
      empty.hidden = items.length > 0;
    }
    const pager = root.querySelector(`[data-pager="${name}"]`);
    const total = pager ? pager.querySelector("[data-total]") : null;
    if (total) {
      // The pager's data-one / data-other / data-capped are the page's translated texts.
      const plus = page.total_capped ? "+" : "";
      let pattern = pager.dataset.other;
      if (page.total_capped) {
        pattern = pager.dataset.capped;
      } else if (page.total === 1) {
        pattern = pager.dataset.one;
      }
      let text = pattern.replace(/%\(num\)s/g, number(page.total));
      if (page.total || page.page > 1) {
        text += ` · ${i18n.t("page_of", { page: number(page.page), pages: number(page.pages) + plus })}`;
      }
      total.textContent = text;
    }
  };

  const setSummary = (name, text) => {
    for (const node of root.querySelectorAll(`[data-summary="${name}"]`)) {
      node.textContent = text;
    }
  };

  const showSummary = (s) => {
    setSummary("delivered", number(s.delivered));
    setSummary("failed", number(s.failed));
    setSummary("queued", counted(s.notifications.queued));
    setSummary("stuck", counted(s.notifications.stuck));
    setSummary("failed_24h", counted(s.notifications.failed_24h));
    setSummary("out_of_calls", number(s.connections.out_of_calls));
    setSummary("connections_total", number(s.connections.total));
    if (s.csrf_token) {
      const inputs = [...root.querySelectorAll("input[name=csrf_token]")];
      for (const template of root.querySelectorAll("template")) {
        inputs.push(...template.content.querySelectorAll("input[name=csrf_token]"));
      }
      for (const input of inputs) {
        input.value = s.csrf_token;
      }
    }
  };

  const fetchJson = async (url) => {
    const response = await fetch(url, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
    });
    if (response.status === 401 || response.status === 403) {
      const error = new Error("signed out");
      error.signedOut = true;
      throw error;
    }
    if (!response.ok) {
      throw new Error(`HTTP ${response.status}`);
    }
    return response.json();
  };

  // The charts come drawn by the server (the same template as the page), as HTML.
  const replaceCharts = async (url) => {
    const box = document.getElementById("admin-charts");
    const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) {
      throw new Error(`HTTP ${response.status}`);
    }
    const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
    box.replaceChildren(...[...parsed.body.childNodes].map((node) => document.importNode(node, true)));
  };

  const status = document.getElementById("admin-updated");
  const showTime = (iso) => {
    status.replaceChildren(...i18n.tNodes("admin_figures_as_of", { time: i18n.timeElement(iso, "time") }));
    status.classList.remove("stale");
  };

  const refresh = async () => {
    timer = null;
    if (stopped) {
      return;
    }
    if (document.hidden) {
      return; // picked up again by visibilitychange
    }
    try {
      const d = root.dataset;
      const [summary, connections, stuck, failed, keys] = await Promise.all([
        fetchJson(d.summaryUrl),
        fetchJson(d.connectionsUrl),
        fetchJson(d.stuckUrl),
        fetchJson(d.failedUrl),
        fetchJson(d.keysUrl),
      ]);
      showSummary(summary);
      showList("connections", connections.connections, connections);
      showList("stuck", stuck.notifications, stuck, summary.generated_at);
      showList("failed", failed.notifications, failed);
      showList("keys", keys.api_keys, keys);
      const chart = JSON.stringify(summary.chart);
      if (chart !== lastChart) {
        await replaceCharts(d.chartsUrl);
      }
      lastChart = chart;
      showTime(summary.generated_at);
      delay = PERIOD_MS;
    } catch (error) {
      if (error.signedOut) {
        stopped = true;
        status.textContent = i18n.t("admin_signed_out");
        status.classList.add("stale");
        return;
      }
      // A restart or a network blip: keep the figures shown, try again less often.
      delay = Math.min(delay * 2, MAX_BACKOFF_MS);
      status.textContent = i18n.t("admin_stale");
      status.classList.add("stale");
    }
    schedule();
  };

  const schedule = () => {
    if (timer === null && !stopped) {
      timer = window.setTimeout(refresh, delay);
    }
  };

  const start = () => {
    const time = status.querySelector("time");
    if (time) {
      showTime(time.getAttribute("datetime"));
    }
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && timer === null) {
        refresh();
      }
    });
    schedule();
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start, { once: true });
  } else {
    start();
  }
})();
