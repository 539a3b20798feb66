// Pairing a LINE chat (the channel-mode consent page, My page's "Pair a chat"): poll whether
// the pairing code reached the bot, name the chat, and enable the button once it has — or at
// once when a chat already paired is chosen. Without JavaScript the button still works: the
// server checks the code when it is pressed.
(function () {
  "use strict";
  var section = document.querySelector("[data-pairing-poll]");
  if (!section) { return; }
  var url = section.getAttribute("data-pairing-poll");
  var input = document.querySelector("input[name='pairing']");
  var status = section.querySelector("[data-pairing-status]");
  var agree = section.querySelector("input[name='agree'], button[name='agree']");
  var texts = document.getElementById("relay-line-texts");
  if (!input || !status || !agree || !texts) { return; }
  var text = function (name) { return texts.getAttribute("data-" + name) || ""; };
  var radios = section.querySelectorAll("input[name='chat']");
  var matched = !!status.querySelector("[data-pairing-chat]");

  function pairedChosen() {
    for (var i = 0; i < radios.length; i++) {
      if (radios[i].checked && radios[i].value !== "") { return true; }
    }
    return false;
  }

  function update() { agree.disabled = !(matched || pairedChosen()); }

  function chooseNewChat() {
    var fresh = section.querySelector("input[data-pairing-new]");
    if (fresh) { fresh.checked = true; }
  }

  function show(label, chat) {
    status.textContent = "";
    status.appendChild(document.createTextNode(label + " "));
    if (chat) {
      var name = document.createElement("span");
      name.setAttribute("data-pairing-chat", "");
      name.textContent = chat.name;
      var badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = chat.type === "USER" ? text("user") : text("group");
      status.appendChild(name);
      status.appendChild(document.createTextNode(" "));
      status.appendChild(badge);
    }
  }

  function poll() {
    fetch(url, { headers: { "X-Relay-Pairing": input.value }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) {
        if (!state) { setTimeout(poll, 5000); return; }
        if (state.status === "matched" && state.chat) {
          if (state.chat.reachable) {
            show(text("received"), state.chat);
            matched = true;
            chooseNewChat();
          } else {
            show(text("unreachable"), null);
          }
          update();
          return;
        }
        if (state.status === "waiting") {
          update();
          setTimeout(poll, 2000);
          return;
        }
        show(text("expired"), null);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  for (var i = 0; i < radios.length; i++) { radios[i].addEventListener("change", update); }
  if (matched) { chooseNewChat(); }
  update();
  poll();
})();
