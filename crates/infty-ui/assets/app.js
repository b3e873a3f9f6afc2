// infty ui: live updates over server-sent events, and "older events" without a reload.
// Everything inserted is HTML the server rendered and escaped; nothing here builds markup
// from data.
"use strict";
(function () {
  function fetchHtml(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.text();
    });
  }

  // Runs page: re-fetch the rows when the catalog changes.
  var rows = document.getElementById("runs-body");
  if (rows && rows.dataset.live) {
    var pending = false;
    var runs = new EventSource(rows.dataset.live);
    runs.addEventListener("changed", function () {
      if (pending) { return; }
      pending = true;
      setTimeout(function () {
        fetchHtml(rows.dataset.fragment).then(function (html) {
          rows.innerHTML = html;
        }).catch(function () {}).then(function () { pending = false; });
      }, 150);
    });
  }

  // Run page: new journal lines on top, summary replaced as the run goes.
  var timeline = document.getElementById("timeline");
  if (timeline && timeline.dataset.live) {
    var live = new EventSource(timeline.dataset.live);
    live.addEventListener("timeline", function (e) {
      timeline.insertAdjacentHTML("afterbegin", e.data);
    });
    live.addEventListener("summary", function (e) {
      var summary = document.getElementById("summary");
      if (summary) { summary.innerHTML = e.data; }
    });
  }

  document.addEventListener("click", function (e) {
    var link = e.target.closest ? e.target.closest("a.older") : null;
    if (!link || !timeline) { return; }
    e.preventDefault();
    var item = link.parentElement;
    fetchHtml(link.dataset.fragment).then(function (html) {
      item.insertAdjacentHTML("afterend", html);
      item.remove();
    }).catch(function () { window.location.href = link.href; });
  });
})();
