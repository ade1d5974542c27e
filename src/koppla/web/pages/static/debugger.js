// The live event debugger: follows the datastream's server-sent events and lists each event,
// newest on top, with its validation result; pause holds new events back, clear empties the list.
(function () {
  "use strict";

  var MAX_SHOWN = 500;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function problemsOf(entry) {
    var list = el("ul", "problems");
    (entry.issues || []).forEach(function (issue) {
      var item = el("li");
      item.appendChild(el("code", "", issue.path || "(the event)"));
      item.appendChild(document.createTextNode(" " + issue.message + " (" + issue.code + ")"));
      list.appendChild(item);
    });
    return list;
  }

  function render(entry) {
    var readable = entry.valid !== undefined;
    var valid = readable && entry.valid;
    var item = el("li", "event " + (valid ? "valid" : "invalid"));
    var head = el("div", "event-head");
    if (entry.receivedAt) {
      var time = el("time", "", entry.receivedAt);
      time.setAttribute("datetime", entry.receivedAt);
      head.appendChild(time);
    }
    head.appendChild(el("span", "type", entry.eventType || (readable ? "(no eventType)" : "unreadable request")));
    var problems = (entry.issues || []).length;
    var badge = valid ? "valid" : readable ? problems + " problem" + (problems === 1 ? "" : "s") : "unreadable";
    head.appendChild(el("span", "badge " + (valid ? "ok" : "failed"), badge));
    if (entry.dataset) { head.appendChild(el("span", "meta", "→ " + entry.dataset)); }
    if (entry.outcome) { head.appendChild(el("span", "meta outcome", entry.outcome)); }
    item.appendChild(head);
    if (entry.lostBefore) {
      item.appendChild(el("p", "lost", entry.lostBefore + " earlier events were not shown: the page fell behind"));
    }
    if (problems) { item.appendChild(problemsOf(entry)); }
    var details = el("details", "record");
    details.appendChild(el("summary", "", "JSON"));
    details.appendChild(el("pre", "event-json", JSON.stringify(entry, null, 2)));
    item.appendChild(details);
    return item;
  }

  function start(root) {
    var list = document.getElementById("events");
    var empty = document.getElementById("events-empty");
    var status = document.getElementById("debug-status");
    var count = document.getElementById("debug-count");
    var pause = document.getElementById("pause");
    var held = [];
    var seen = 0;
    var paused = false;

    function setStatus(text, kind) {
      status.textContent = text;
      status.className = "badge " + kind;
    }

    function showCount() {
      var text = seen + " event" + (seen === 1 ? "" : "s");
      if (held.length) { text += ", " + held.length + " held while paused"; }
      count.textContent = text;
    }

    function show(entry) {
      list.insertBefore(render(entry), list.firstChild);
      while (list.children.length > MAX_SHOWN) { list.removeChild(list.lastChild); }
      empty.hidden = true;
    }

    var source = new EventSource(root.getAttribute("data-stream"));
    source.onopen = function () { setStatus("watching", "ok"); };
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        setStatus("disconnected: reload the page", "failed");
      } else {
        setStatus("reconnecting", "loading");
      }
    };
    source.onmessage = function (message) {
      var entry;
      try { entry = JSON.parse(message.data); } catch (error) { return; }
      seen += 1;
      if (paused) { held.push(entry); } else { show(entry); }
      showCount();
    };

    pause.addEventListener("click", function () {
      paused = !paused;
      pause.textContent = paused ? "Resume" : "Pause";
      pause.setAttribute("aria-pressed", paused ? "true" : "false");
      if (!paused) { held.splice(0).forEach(show); }
      setStatus(paused ? "paused" : "watching", paused ? "loading" : "ok");
      showCount();
    });
    document.getElementById("clear").addEventListener("click", function () {
      list.textContent = "";
      held = [];
      seen = 0;
      empty.hidden = false;
      showCount();
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var picker = document.getElementById("datastream");
    if (picker) {
      picker.addEventListener("change", function () { picker.form.submit(); });
    }
    var root = document.getElementById("debugger");
    if (root) { start(root); }
  });
})();
