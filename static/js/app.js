// Enhancements shared by every page (loaded by base.html). Each page works without them: the navigation
// wraps instead of folding, and forms post normally.
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  // --- Confirmations: a form, or the button that submits it, with data-confirm asks first. (No inline
  // handlers anywhere: the Content-Security-Policy allows scripts from this site's files only.) Runs in the
  // capture phase, so a cancelled submission never reaches htmx or the form's own handlers.
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var message = (button && button.dataset.confirm) || event.target.dataset.confirm;
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // --- Navigation: on narrow screens (CSS decides) the Main navigation folds behind the Menu button.
  var toggle = document.querySelector(".nav-toggle");
  var nav = toggle && document.getElementById(toggle.getAttribute("aria-controls"));
  if (toggle && nav) {
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      nav.classList.toggle("open", open);
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && nav.classList.contains("open")) {
        nav.classList.remove("open");
        toggle.setAttribute("aria-expanded", "false");
        toggle.focus();
      }
    });
  }

  // --- Regions that scroll (wide tables, code) take keyboard focus only while they actually scroll.
  var SCROLLERS = ".table-scroll, .scroll, pre, .dup-columns, .events";

  function markScrollers() {
    document.querySelectorAll(SCROLLERS).forEach(function (el) {
      var scrolls = el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1;
      if (scrolls && !el.hasAttribute("tabindex")) {
        var caption = el.querySelector("caption");
        el.tabIndex = 0;
        el.setAttribute("role", "region");
        el.setAttribute("aria-label", (caption ? caption.textContent.trim() + ": " : "") + "scrollable content");
        el.dataset.scrollFocus = "1";
      } else if (!scrolls && el.dataset.scrollFocus) {
        ["tabindex", "role", "aria-label", "data-scroll-focus"].forEach(function (name) { el.removeAttribute(name); });
      }
    });
  }
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(markScrollers, 150);
  });
  document.addEventListener("htmx:afterSettle", markScrollers);
  markScrollers();

  // --- HTMX request failures: a dismissible banner in the aria-live region of base.html. A failure of a
  // self-refreshing block (progress, live charts) is shown once, not on every poll, and goes away as soon as
  // the same address answers again.
  var region = document.getElementById("request-errors");
  var banner = null;
  var bannerPath = null;
  var dismissed = {}; // path → message the user dismissed; not shown again until that path answers

  function requestPath(detail) {
    return (detail.pathInfo && detail.pathInfo.requestPath) || (detail.requestConfig && detail.requestConfig.path) || "";
  }

  function hideError() {
    if (banner) { banner.remove(); }
    banner = null;
    bannerPath = null;
  }

  function dismiss() {
    var hadFocus = banner && banner.contains(document.activeElement);
    if (bannerPath !== null && banner) { dismissed[bannerPath] = banner.dataset.message; }
    hideError();
    if (hadFocus) { document.getElementById("main").focus(); }
  }

  function showError(message, path, link) {
    if (!region || dismissed[path] === message) { return; }
    if (banner && banner.dataset.message === message) { bannerPath = path; return; }
    hideError();
    banner = document.createElement("div");
    banner.className = "request-error";
    banner.dataset.message = message;
    var text = document.createElement("p");
    text.textContent = message + " ";
    if (link) {
      var a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      text.appendChild(a);
    }
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = "Dismiss";
    button.addEventListener("click", dismiss);
    banner.appendChild(text);
    banner.appendChild(button);
    region.appendChild(banner);
    bannerPath = path;
  }

  function describe(xhr) {
    var status = xhr ? xhr.status : 0;
    var label = status + (xhr && xhr.statusText ? " " + xhr.statusText : "");
    if (status === 403) { return "You are not allowed to do this (" + label + ")."; }
    if (status === 404) { return "This item no longer exists (" + label + "). Reload the page to see the current state."; }
    if (status === 429) { return "Too many requests (" + label + "). Wait a moment and try again."; }
    if (status >= 500) {
      return "The server could not complete the request (" + label + "). Parts of the page that refresh " +
        "themselves keep trying; otherwise try again in a moment.";
    }
    return "The request failed (" + label + "). Reload the page and try again.";
  }

  document.addEventListener("htmx:responseError", function (event) {
    showError(describe(event.detail.xhr), requestPath(event.detail));
  });
  function unreachable(event) {
    showError(
      "Could not reach the server. Check your connection; parts of the page that refresh themselves keep trying.",
      requestPath(event.detail)
    );
  }
  document.addEventListener("htmx:sendError", unreachable);
  document.addEventListener("htmx:timeout", unreachable);

  // A request answered by the login page means the session ended: never swap the login form into a fragment.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    var login = region && region.dataset.loginUrl;
    if (!xhr || !login || !xhr.responseURL) { return; }
    var url = new URL(xhr.responseURL, window.location.href);
    if (url.pathname === login) {
      event.detail.shouldSwap = false;
      var next = login + "?next=" + encodeURIComponent(window.location.pathname + window.location.search);
      showError("Your session has ended.", requestPath(event.detail), { href: next, text: "Log in again" });
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    if (!event.detail.successful) { return; }
    var xhr = event.detail.xhr;
    var login = region && region.dataset.loginUrl;
    if (xhr && login && xhr.responseURL && new URL(xhr.responseURL, window.location.href).pathname === login) { return; }
    var path = requestPath(event.detail);
    delete dismissed[path];
    if (banner && path === bannerPath) { hideError(); }
  });
})();
