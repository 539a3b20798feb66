// A webhook's page: the template's live preview (what the format's sample becomes, asked of
// the server as one types), and "Use it" for the starter template. Without script the
// Preview button posts the form and the page comes back with the preview.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-preview-url]");
  if (!form) {
    return;
  }
  const source = form.querySelector("textarea[name=template]");
  const locale = form.querySelector("select[name=locale]");
  const output = document.getElementById("template-preview");
  const count = document.getElementById("preview-count");
  const token = form.querySelector("input[name=csrf_token]");
  const { t, number } = window.notifySiteI18n;
  let timer = null;
  let asked = 0;

  const show = (answer) => {
    const failed = Object.prototype.hasOwnProperty.call(answer, "error");
    output.textContent = failed ? answer.error : answer.text;
    output.classList.toggle("failed", failed);
    count.textContent = failed ? "" : t("characters_of", { count: number([...answer.text].length) });
  };

  const ask = async () => {
    const mine = ++asked;
    try {
      const response = await fetch(form.dataset.previewUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token ? token.value : "" },
        body: JSON.stringify({ template: source.value, locale: locale ? locale.value : null }),
      });
      if (mine !== asked) {
        return; // a newer keystroke asked again
      }
      if (!response.ok) {
        show({ error: t("preview_unavailable") });
        return;
      }
      show(await response.json());
    } catch {
      if (mine === asked) {
        show({ error: t("preview_unavailable") });
      }
    }
  };

  const later = () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(ask, 400);
  };
  source.addEventListener("input", later);
  if (locale) {
    locale.addEventListener("change", later);
  }
  // The live preview makes the Preview button redundant.
  const button = form.querySelector("[data-preview-button]");
  if (button) {
    button.hidden = true;
  }

  const starter = document.querySelector("[data-use-starter]");
  if (starter) {
    starter.hidden = false;
    starter.addEventListener("click", () => {
      source.value = document.getElementById(starter.dataset.useStarter).textContent;
      source.focus();
      ask();
    });
  }
});
