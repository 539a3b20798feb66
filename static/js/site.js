// Site-wide behaviour. Loaded as a file: the CSP allows no inline script.
// Also the scripts' translations: base.html carries them as JSON in <html data-i18n> (no
// inline script: the CSP forbids it), with the page's locale (BCP 47) and the user's zone. The other scripts load after
// this one (defer keeps document order) and use window.notifySiteI18n.
"use strict";

(() => {
  let data = { locale: "en", timeZone: "UTC", strings: {}, statuses: {} };
  const carried = document.documentElement.dataset.i18n;
  if (carried) {
    try {
      data = Object.assign(data, JSON.parse(carried));
    } catch {
      // Keep English.
    }
  }
  const isUtc = data.timeZone === "UTC" || data.timeZone === "Etc/UTC";

  // t("resets_in", { clock: "12:34" }): the translated text with its %(name)s filled in.
  const t = (key, values = {}) =>
    (data.strings[key] || key).replace(/%\((\w+)\)s/g, (match, name) =>
      Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : match,
    );

  const status = (value) => (value && data.statuses[value]) || value;

  const numberFormat = new Intl.NumberFormat(data.locale);
  const number = (value) => (value === null || value === undefined ? "—" : numberFormat.format(value));

  // The same shapes as notify_site/i18n.py time_text(): English keeps yyyy-MM-dd HH:mm, the
  // other languages their own short forms; " UTC" when the zone is UTC.
  const partsOf = (date, options) => {
    const parts = {};
    for (const part of new Intl.DateTimeFormat("en-GB", { ...options, timeZone: data.timeZone, hourCycle: "h23" }).formatToParts(date)) {
      parts[part.type] = part.value;
    }
    return parts;
  };
  const timeText = (iso, style = "minute") => {
    const date = new Date(iso);
    let text;
    if (data.locale === "en") {
      const p = partsOf(date, {
        year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
      const patterns = {
        minute: `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`,
        second: `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`,
        time: `${p.hour}:${p.minute}:${p.second}`,
        brief: `${p.month}-${p.day} ${p.hour}:${p.minute}`,
      };
      text = patterns[style];
    } else {
      // Thai's short date has a two-digit year (6/5/31): it takes its medium one, as the server.
      const minuteDate = data.locale.startsWith("th") ? "medium" : "short";
      const options = {
        minute: { dateStyle: minuteDate, timeStyle: "short" },
        second: { dateStyle: "medium", timeStyle: "medium" },
        time: { timeStyle: "medium" },
        brief: { month: "2-digit", day: "2-digit", hour: "numeric", minute: "2-digit" },
      }[style];
      text = new Intl.DateTimeFormat(data.locale, { ...options, timeZone: data.timeZone }).format(date);
    }
    return isUtc ? `${text} UTC` : text;
  };
  const timeElement = (iso, style = "minute") => {
    const time = document.createElement("time");
    time.dateTime = iso;
    time.textContent = timeText(iso, style);
    return time;
  };

  window.notifySiteI18n = { locale: data.locale, timeZone: data.timeZone, t, status, number, timeText, timeElement };
})();

// Forms that destroy something ask first: one listener for the whole document, so that forms
// a page swaps in later (static/js/parts.js) ask too.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm !== undefined && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
