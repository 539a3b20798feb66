// My page's copy buttons: <button data-copy-target="ID"> puts the text of #ID on the
// clipboard. The words it says come from <template id="relay-copy-texts">, in the page's
// language. A file, not an inline script: the CSP allows only the relay's own scripts.
(function () {
  "use strict";
  var texts = document.getElementById("relay-copy-texts");
  var word = function (name) { return texts ? texts.getAttribute("data-" + name) || "" : ""; };

  function selectText(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.querySelectorAll("button[data-copy-target]").forEach(function (button) {
    var id = button.getAttribute("data-copy-target");
    var source = document.getElementById(id);
    var status = document.querySelector("[data-copy-status='" + id + "']");
    if (!source) { return; }
    var say = function (name) { if (status) { status.textContent = word(name); } };
    button.addEventListener("click", function () {
      var done = navigator.clipboard && window.isSecureContext
        ? navigator.clipboard.writeText(source.textContent.trim())
        : Promise.reject(new Error("no clipboard"));
      done.then(function () { say("copied"); }, function () {
        // Plain HTTP on another host, or refused: the text is selected for Ctrl+C instead.
        selectText(source);
        say("selected");
      });
    });
  });
})();
