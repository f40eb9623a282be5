// Dockhand dashboard: live updates over server-sent events (server/src/web/live.rs).
// A page opts in with an element #live whose data-live names its stream. This script only sets text and
// attributes (textContent, setAttribute), never HTML, so nothing that arrives on a stream can become markup.
(function () {
  'use strict';
  var live = document.getElementById('live');
  if (!live || !window.EventSource) {
    return;
  }
  var state = document.getElementById('live-state');
  function setState(name, text) {
    if (state) {
      state.setAttribute('data-state', name);
      state.textContent = text;
    }
  }
  function show(id) {
    var el = document.getElementById(id);
    if (el) {
      el.hidden = false;
    }
  }
  function field(row, name) {
    return row.querySelector('[data-field="' + name + '"]');
  }
  function setText(row, name, text) {
    var cell = field(row, name);
    if (cell) {
      cell.textContent = text;
    }
  }

  var source = new EventSource(live.getAttribute('data-live'));
  source.onopen = function () {
    setState('open', 'Live updates: on');
  };
  source.onerror = function () {
    if (source.readyState === EventSource.CLOSED) {
      setState('closed', 'Live updates: off (reload the page)');
    } else {
      setState('reconnecting', 'Live updates: reconnecting…');
    }
  };

  // Devices page: one row per device, tr#device-<id>, cells by data-field.
  source.addEventListener('device', function (e) {
    var d = JSON.parse(e.data);
    var row = document.getElementById('device-' + d.id);
    if (!row) {
      show('live-new-device');
      return;
    }
    row.setAttribute('data-status', d.status);
    var status = field(row, 'status');
    if (status) {
      var badge = document.createElement('span');
      badge.className = 'badge ' + d.status;
      badge.textContent = d.label;
      status.replaceChildren(badge);
    }
    var seen = field(row, 'last-seen');
    if (seen) {
      if (d.last_seen) {
        var time = document.createElement('time');
        time.setAttribute('datetime', d.last_seen);
        time.textContent = d.last_seen_text;
        seen.replaceChildren(time);
      } else {
        seen.textContent = 'never';
      }
    }
    setText(row, 'ago', d.ago);
    setText(row, 'backlog', d.backlog === null ? '–' : String(d.backlog));
    setText(row, 'version', d.version === null ? 'unknown' : d.version);
    setText(row, 'revoked', d.revoked ? 'revoked' : 'no');
    if (d.revoked) {
      var form = row.querySelector('form');
      if (form) {
        form.remove();
      }
    }
    var online = document.getElementById('online-count');
    if (online) {
      online.textContent = String(document.querySelectorAll('tr[data-test="device-row"][data-status="online"]').length);
    }
  });

  // Discrepancy list: count what arrived and offer a reload.
  var fresh = 0;
  source.addEventListener('discrepancy', function () {
    fresh += 1;
    var count = document.getElementById('live-count');
    if (count) {
      count.textContent = String(fresh);
    }
    show('live-banner');
  });
})();
