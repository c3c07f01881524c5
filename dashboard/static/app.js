// Slipway dashboard: progressive enhancement only. Every page works without
// this file; with it, filters submit on change, destroy asks first, the list
// refreshes itself, and logs follow live through server-sent events.
(function () {
  'use strict';

  var ANSI = /\x1b\[[0-9;?]*[ -\/]*[@-~]|\x1b\][^\x07]*\x07/g;
  var MAX_LINES = 5000;

  function each(sel, fn) { Array.prototype.forEach.call(document.querySelectorAll(sel), fn); }

  // Filters: the repository select submits on change.
  each('select[data-autosubmit]', function (s) {
    s.addEventListener('change', function () { s.form.submit(); });
  });

  // Actions: destroy asks first; a submitted form's button shows progress.
  each('form[data-confirm]', function (f) {
    f.addEventListener('submit', function (e) {
      if (!window.confirm(f.getAttribute('data-confirm'))) { e.preventDefault(); e.stopImmediatePropagation(); }
    });
  });
  each('.actions form', function (f) {
    f.addEventListener('submit', function (e) {
      if (e.defaultPrevented) return;
      each('.actions button', function (b) { b.disabled = true; });
      var b = f.querySelector('button');
      if (b) b.textContent = b.textContent + '…';
    });
  });

  // The list refreshes every 15 seconds while visible and idle.
  var region = document.querySelector('[data-refresh]');
  if (region) {
    setInterval(function () {
      if (document.visibilityState !== 'visible') return;
      if (region.contains(document.activeElement) && document.activeElement !== document.body) return;
      fetch(location.href, { headers: { 'Accept': 'text/html' }, credentials: 'same-origin' })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var doc = new DOMParser().parseFromString(html, 'text/html');
          var fresh = doc.querySelector('[data-refresh]');
          if (fresh) region.innerHTML = fresh.innerHTML;
          each('select[data-autosubmit]', function (s) {
            s.addEventListener('change', function () { s.form.submit(); });
          });
        })
        .catch(function () {});
    }, 15000);
  }

  function colorOf(name) {
    var h = 0;
    for (var i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    return 'c c' + (h % 6);
  }

  function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 40; }

  // A batched appender: lines arriving in a burst are added in one frame.
  function appender(el, follow) {
    var pending = [];
    var scheduled = false;
    function flush() {
      scheduled = false;
      var stick = follow ? follow.checked : atBottom(el);
      var frag = document.createDocumentFragment();
      pending.forEach(function (n) { frag.appendChild(n); });
      pending = [];
      el.appendChild(frag);
      var extra = el.childNodes.length - MAX_LINES;
      for (; extra > 0; extra--) el.removeChild(el.firstChild);
      if (stick) el.scrollTop = el.scrollHeight;
    }
    return function (node) {
      pending.push(node);
      if (!scheduled) { scheduled = true; requestAnimationFrame(flush); }
    };
  }

  function note(text) {
    var n = document.createElement('span');
    n.className = 'note';
    n.textContent = text;
    return n;
  }

  // Live service logs.
  var logEl = document.querySelector('[data-log-stream]');
  if (logEl && window.EventSource) {
    var state = document.querySelector('[data-live-state]');
    var follow = document.querySelector('[data-autoscroll]');
    var add = appender(logEl, follow);
    var cursor = '';
    var retry = null;
    var setState = function (text, cls) {
      if (!state) return;
      state.textContent = text;
      state.className = 'live' + (cls ? ' ' + cls : '');
    };
    var connect = function () {
      retry = null;
      var url = logEl.getAttribute('data-log-stream') + '?follow=1';
      var svc = logEl.getAttribute('data-service');
      if (svc) url += '&service=' + encodeURIComponent(svc);
      if (cursor) url += '&after=' + encodeURIComponent(cursor);
      var es = new EventSource(url);
      setState('connecting…');
      es.onopen = function () { setState('live', 'on'); };
      es.addEventListener('line', function (ev) {
        if (ev.lastEventId) cursor = ev.lastEventId;
        var d;
        try { d = JSON.parse(ev.data); } catch (e) { return; }
        var ln = document.createElement('span');
        ln.className = 'ln';
        if (d.t) {
          var t = document.createElement('time');
          t.dateTime = d.t;
          t.textContent = d.t.substr(11, 8);
          ln.appendChild(t);
        }
        if (d.c) {
          var c = document.createElement('b');
          c.className = colorOf(d.c);
          c.textContent = d.c;
          ln.appendChild(c);
        }
        ln.appendChild(document.createTextNode((d.m || '').replace(ANSI, '')));
        add(ln);
      });
      es.addEventListener('end', function (ev) {
        es.close();
        var why = '';
        try { why = JSON.parse(ev.data).reason; } catch (e) {}
        add(note('— ' + (why || 'stream ended') + ' Reconnecting in a few seconds. —'));
        setState('ended', 'off');
        retry = setTimeout(connect, 5000);
      });
      es.onerror = function () {
        if (es.readyState === EventSource.CLOSED) {
          setState('disconnected', 'off');
          if (!retry) retry = setTimeout(connect, 5000);
        } else {
          setState('reconnecting…', 'off');
        }
      };
    };
    connect();
  }

  // A running build's log.
  var buildEl = document.querySelector('[data-build-stream]');
  if (buildEl && buildEl.getAttribute('data-running') === 'true' && window.EventSource) {
    var bstate = document.querySelector('[data-build-state]');
    var addb = appender(buildEl, null);
    buildEl.scrollTop = buildEl.scrollHeight;
    var from = buildEl.getAttribute('data-build-size') || '0';
    var bes = new EventSource(buildEl.getAttribute('data-build-stream') + '&from=' + encodeURIComponent(from));
    bes.addEventListener('log', function (ev) {
      var d;
      try { d = JSON.parse(ev.data); } catch (e) { return; }
      if (d.gap) addb(note('… ' + d.gap + ' bytes of output dropped …'));
      addb(document.createTextNode((d.text || '').replace(ANSI, '')));
    });
    bes.addEventListener('end', function () {
      bes.close();
      if (bstate) { bstate.textContent = 'finished'; bstate.className = 'live'; }
    });
  }
})();
