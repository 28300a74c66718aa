// pypicloud web UI: progressive enhancement only (every page works without it).
// Copy buttons: <button data-copy="ID" hidden> copies the text of the element ID.
(function () {
  "use strict";
  function say(button, text) {
    var status = document.getElementById("copy-status");
    if (status) { status.textContent = text; }
    button.setAttribute("data-copied", "1");
  }
  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      if (!source) { return; }
      var text = source.textContent.trim();
      var label = button.getAttribute("aria-label") || "text";
      var done = function () { say(button, "Copied " + label.replace(/^Copy /, "")); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () {
          if (fallback(text)) { done(); } else { say(button, "Copy failed: select the text instead"); }
        });
      } else if (fallback(text)) {
        done();
      } else {
        say(button, "Copy failed: select the text instead");
      }
    });
  });
})();
