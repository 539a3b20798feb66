// Pages that keep themselves current without reloading (the admin page, the dashboard): the
// server draws, this script only fetches and swaps.
//
// The page's root element carries data-parts-url, data-refresh-seconds and, for its chart,
// data-chart-url and data-chart-key. Every data-refresh-seconds seconds, while the tab is
// visible, the script fetches data-parts-url: an HTML fragment whose [data-part] elements are
// drawn by the same template macros as the page. Each part of the page is given the children of
// the fragment's part of the same name. When the fragment's data-chart-key differs from the
// one the chart was drawn with, the chart's fragment (data-chart-url) is fetched and swapped too.
//
// The fragment is parsed inertly (DOMParser: no script runs, nothing loads) and its nodes are
// imported; no innerHTML, no inline script or style, so the strict CSP holds. Buttons in the
// new parts come with fresh CSRF tokens, and site.js asks for confirmation on any form.
//
// On a network error or a restart the figures stay, [data-part=updated] says data-stale-text
// and the next try waits twice as long (at most 8 periods); once signed out (401 or 403) it
// says data-signed-out-text and stops. After each swap the root hears "parts:swapped".
"use strict";

(() => {
  class SignedOutError extends Error {}

  const fetchFragment = async (url) => {
    const response = await fetch(url, {
      headers: { Accept: "text/html" },
      credentials: "same-origin",
      cache: "no-store",
    });
    if (response.status === 401 || response.status === 403) {
      throw new SignedOutError(`HTTP ${response.status}`);
    }
    if (!response.ok) {
      throw new Error(`HTTP ${response.status}`);
    }
    const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
    const fragment = parsed.body.querySelector("[data-parts]");
    if (!fragment) {
      throw new Error("the answer is not a fragment of this page");
    }
    return fragment;
  };

  const swap = (root, fragment) => {
    for (const part of fragment.querySelectorAll("[data-part]")) {
      const target = root.querySelector(`[data-part="${CSS.escape(part.dataset.part)}"]`);
      if (target) {
        target.replaceChildren(...Array.from(part.childNodes, (node) => document.importNode(node, true)));
      }
    }
  };

  const keepCurrent = (root) => {
    const period = Number(root.dataset.refreshSeconds || 30) * 1000;
    const status = root.querySelector('[data-part="updated"]');
    let chartKey = root.dataset.chartKey;
    let delay = period;
    let timer = null;
    let lastTry = Date.now();
    let inFlight = false;
    let stopped = false;

    const say = (text) => {
      status.textContent = text;
      status.classList.add("is-stale");
    };

    const refresh = async () => {
      timer = null;
      if (stopped || document.hidden) {
        return; // picked up again by visibilitychange
      }
      lastTry = Date.now();
      inFlight = true;
      try {
        const parts = await fetchFragment(root.dataset.partsUrl);
        const key = parts.dataset.chartKey;
        const chart = key && key !== chartKey ? await fetchFragment(root.dataset.chartUrl) : null;
        swap(root, parts);
        if (chart) {
          swap(root, chart);
          chartKey = key;
        }
        status.classList.remove("is-stale");
        root.dispatchEvent(new CustomEvent("parts:swapped"));
        delay = period;
      } catch (error) {
        if (error instanceof SignedOutError) {
          stopped = true;
          say(root.dataset.signedOutText);
          return;
        }
        delay = Math.min(delay * 2, period * 8);
        say(root.dataset.staleText);
      } finally {
        inFlight = false;
      }
      timer = window.setTimeout(refresh, delay);
    };

    // A background tab stops fetching; coming back fetches at once if a refresh is due.
    document.addEventListener("visibilitychange", () => {
      const due = timer === null || Date.now() - lastTry >= delay;
      if (!document.hidden && !stopped && !inFlight && due) {
        window.clearTimeout(timer);
        refresh();
      }
    });
    timer = window.setTimeout(refresh, period);
  };

  const start = () => {
    for (const root of document.querySelectorAll("[data-parts-url]")) {
      keepCurrent(root);
    }
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start, { once: true });
  } else {
    start();
  }
})();
