// The console's only script: it submits selectors when they change and refreshes the live part of
// the rollout page by polling its fragment. Every page works without it.
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && target.hasAttribute && target.hasAttribute("data-autosubmit") && target.form) {
      target.form.submit();
    }
  });

  function poll(element) {
    var url = element.getAttribute("data-poll");
    var interval = parseInt(element.getAttribute("data-interval") || "5000", 10);
    function refresh() {
      if (document.hidden) { return schedule(); }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.status === 401 || response.redirected) { window.location.reload(); return null; }
          return response.ok ? response.text() : null;
        })
        .then(function (html) { if (html !== null && html !== undefined) { element.innerHTML = html; } })
        .catch(function () { /* the next poll tries again */ })
        .then(schedule, schedule);
    }
    function schedule() { window.setTimeout(refresh, interval); }
    schedule();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.querySelectorAll("[data-poll]");
    for (var i = 0; i < live.length; i++) { poll(live[i]); }
  });
})();
