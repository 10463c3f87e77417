// Keyboard shortcuts for reviewing and "select all on this page". Everything here is a
// convenience: every form works without it.
(function () {
  "use strict";

  function entries() { return Array.prototype.slice.call(document.querySelectorAll("[data-review-entry]")); }
  var current = -1;

  function select(i) {
    var list = entries();
    if (!list.length) { return null; }
    current = Math.max(0, Math.min(i, list.length - 1));
    list.forEach(function (el, n) { el.classList.toggle("current", n === current); });
    list[current].scrollIntoView({ block: "nearest" });
    if (list[current].tabIndex >= -1) { list[current].focus({ preventScroll: true }); }
    return list[current];
  }

  function active() {
    var list = entries();
    if (current < 0 || current >= list.length) { return select(0); }
    return list[current];
  }

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var key = event.key.toLowerCase();
    if (key === "j") { select(current + 1); }
    else if (key === "k") { select(current - 1); }
    else if (key === "a" || key === "n" || key === "r") {
      var entry = active();
      if (!entry) { return; }
      if (key === "r") {
        var reason = entry.querySelector('[data-review="reason"]');
        if (reason) { reason.focus(); }
      } else {
        var button = entry.querySelector('[data-review="' + (key === "a" ? "approve" : "needs_revision") + '"]');
        if (button) { button.click(); }
      }
    } else { return; }
    event.preventDefault();
  });

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches("[data-select-all]")) { return; }
    document.querySelectorAll('input[type="checkbox"][name="ids"]').forEach(function (item) { item.checked = box.checked; });
  });
})();
