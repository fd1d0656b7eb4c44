// The dashboard's only script: live updates by server-sent events, and a confirmation
// before a delete. Pages work without it (plain links and forms).
(function () {
  "use strict";
  var body = document.body;
  var live = document.getElementById("live");
  if (!live || !window.EventSource || !body.dataset.events) {
    return;
  }

  function editing() {
    // Never replace the page under someone typing into one of its forms.
    var active = document.activeElement;
    return active && live.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
  }

  function refresh() {
    if (editing() || document.hidden) {
      return;
    }
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Live": "1" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("refresh answered " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.getElementById("live");
        if (fresh && !editing()) {
          live.innerHTML = fresh.innerHTML;
          body.dataset.refreshed = String(Number(body.dataset.refreshed || 0) + 1);
        }
      })
      .catch(function (error) {
        console.warn("tickwork dashboard:", error);
      });
  }

  var events = new EventSource(body.dataset.events, { withCredentials: true });
  events.addEventListener("refresh", refresh);
  // Close the stream when leaving the page: a browser holds few connections per server
  // (six over HTTP/1.1), and streams left to linger would starve the next pages.
  window.addEventListener("pagehide", function () {
    events.close();
  });

  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (button && button.classList.contains("danger") &&
        !window.confirm(button.textContent + ": are you sure?")) {
      event.preventDefault();
    }
  });
})();
