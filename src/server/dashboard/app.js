/*
 * app.js - the jobq dashboard: sign in with a token, overview, jobs table
 * with filters and search, a job page with live progress and logs, log search.
 *
 * It uses only the public JSON API and the SSE stream (GET /v1/events),
 * read with fetch() so the Authorization header can be sent (EventSource
 * cannot send headers). Every value that comes from the API - jobs, params,
 * results, logs - is untrusted: the DOM is built with createElement and
 * text nodes only, never with innerHTML, so markup in data stays text.
 */
'use strict';
(() => {
  const TOKEN_KEY = 'jobq.token';
  const STATUSES = ['pending', 'processing', 'completed', 'failed', 'cancelled'];
  const main = document.getElementById('main');
  let cleanups = [];          /* run when the page changes: timers, streams */
  let pageStack = [];         /* cursors of the previous job pages */

  /* --- DOM: text only --- */

  /* el('td', {class: 'num'}, 'text', childNode): strings become text nodes. */
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    for (const k of kids.flat(Infinity))
      if (k !== null && k !== undefined && k !== false)
        e.append(k instanceof Node ? k : String(k));
    return e;
  }
  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'class') e.setAttribute('class', v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(SVG, tag);
    setAttrs(e, attrs);
    for (const k of kids) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  function show(...nodes) { main.replaceChildren(...nodes); }
  function errorBox(err) {
    return el('div', {class: 'error', role: 'alert'}, err instanceof ApiError ? err.describe() : String(err));
  }
  /* A class name from data, only if it is one we know. */
  function statusClass(s) { return 'st-' + (STATUSES.includes(s) ? s : 'unknown'); }
  function badge(s) { return el('span', {class: 'badge ' + statusClass(s), 'data-status': s}, s); }
  function jobHref(id) { return '#/jobs/' + encodeURIComponent(id); }
  function fmtTime(t) {
    if (!t) return '—';
    const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)/.exec(t);
    return m ? m[1] + ' ' + m[2] : t;
  }
  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '—';
    if (ms < 1000) return Math.round(ms) + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
    if (ms < 3600000) return (ms / 60000).toFixed(1) + ' min';
    return (ms / 3600000).toFixed(1) + ' h';
  }
  function json(v) { return JSON.stringify(v, null, 2); }

  /* --- API --- */

  class ApiError extends Error {
    constructor(status, code, message, field) {
      super(message);
      this.status = status; this.code = code; this.field = field;
    }
    describe() {
      return (this.status ? this.status + ' ' : '') + (this.code ? this.code + ': ' : '') +
        this.message + (this.field ? ' (' + this.field + ')' : '');
    }
  }
  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  async function api(method, path, body) {
    const headers = {Authorization: 'Bearer ' + token()};
    /* no-cache: GET /v1/jobs/{id} is cacheable for 5 s; always revalidate */
    const init = {method, headers, cache: 'no-cache'};
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'network', 'jobqd did not answer (' + e.message + ')');
    }
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (r.status === 401 && token()) {
      signOut('The token was not accepted (revoked or unknown). Sign in again.');
      throw new ApiError(401, 'unauthorized', 'signed out');
    }
    if (!r.ok) {
      const e = (data && data.error) || {};
      throw new ApiError(r.status, e.code, e.message || r.statusText, e.field);
    }
    return data;
  }
  function query(params) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params))
      if (v !== undefined && v !== null && v !== '') u.set(k, v);
    const s = u.toString();
    return s ? '?' + s : '';
  }

  /* --- SSE over fetch (EventSource cannot send Authorization) --- */

  /* An incremental text/event-stream parser (the HTML spec's rules): push()
   * takes decoded text in any pieces; onEvent({event, data, id}) per event;
   * onRetry(ms) for retry fields; comments (": heartbeat") are skipped. */
  function sseParser(onEvent, onRetry) {
    let buf = '', data = [], event = '', id = null, sawCR = false;
    function line(l) {
      if (l === '') {
        if (data.length) onEvent({event: event || 'message', data: data.join('\n'), id});
        data = []; event = '';
        return;
      }
      if (l[0] === ':') return;
      const c = l.indexOf(':');
      const field = c < 0 ? l : l.slice(0, c);
      let value = c < 0 ? '' : l.slice(c + 1);
      if (value[0] === ' ') value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') event = value;
      else if (field === 'id') { if (!value.includes('\0')) id = value; }
      else if (field === 'retry') { if (/^\d+$/.test(value)) onRetry(Number(value)); }
    }
    return {
      push(text) {
        buf += text;
        let start = 0;
        for (let i = 0; i < buf.length; i++) {
          const ch = buf[i];
          if (ch === '\n' && sawCR) { sawCR = false; start = i + 1; continue; }
          sawCR = false;
          if (ch === '\r' || ch === '\n') {
            line(buf.slice(start, i));
            sawCR = ch === '\r';
            start = i + 1;
          }
        }
        buf = buf.slice(start);
      },
      lastId() { return id; },
    };
  }

  /* Follows GET /v1/events?filter with the token; reconnects with
   * Last-Event-ID after the server's retry delay. onState('live'|'down') is
   * called on each (re)connect and loss. Returns a function that stops it. */
  function follow(filter, onEvent, onState) {
    const ctl = new AbortController();
    let stopped = false, retryMs = 2000, lastId = null;
    (async () => {
      while (!stopped) {
        try {
          const headers = {Authorization: 'Bearer ' + token(), Accept: 'text/event-stream'};
          if (lastId !== null) headers['Last-Event-ID'] = lastId;
          const r = await fetch('/v1/events' + query(filter), {headers, signal: ctl.signal, cache: 'no-store'});
          if (r.status === 401) { signOut('The token was not accepted. Sign in again.'); return; }
          if (!r.ok || !r.body) throw new ApiError(r.status, 'stream', 'event stream refused');
          const p = sseParser(ev => { lastId = p.lastId(); onEvent(ev); }, ms => { retryMs = ms; });
          onState('live');
          const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
          for (;;) {
            const {value, done} = await reader.read();
            if (done) break;
            p.push(value);
          }
        } catch (e) {
          if (stopped || e.name === 'AbortError') return;
        }
        if (stopped) return;
        onState('down');
        await new Promise(res => setTimeout(res, retryMs));
      }
    })();
    return () => { stopped = true; ctl.abort(); };
  }

  /* Runs fn one at a time: a call while one runs makes exactly one more run
   * after it, so the last run always starts after the last request for it. */
  function serial(fn) {
    let running = false, again = false;
    return async function run() {
      if (running) { again = true; return; }
      running = true;
      try {
        do { again = false; await fn(); } while (again);
      } finally { running = false; }
    };
  }

  /* --- routing --- */

  function parseHash() {
    const h = location.hash.replace(/^#/, '') || '/overview';
    const q = h.indexOf('?');
    const path = q < 0 ? h : h.slice(0, q);
    return {path, params: new URLSearchParams(q < 0 ? '' : h.slice(q + 1))};
  }
  function go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }
  function route() {
    for (const f of cleanups) f();
    cleanups = [];
    const {path, params} = parseHash();
    const signedIn = !!token();
    document.getElementById('nav').hidden = !signedIn;
    document.getElementById('signout').hidden = !signedIn;
    for (const a of document.querySelectorAll('#nav a'))
      a.classList.toggle('active', path.startsWith('/' + a.dataset.page));
    if (!signedIn) return pageSignin();
    let m;
    if (path === '/overview' || path === '/' || path === '/signin') pageOverview();
    else if (path === '/jobs') pageJobs(params);
    else if ((m = /^\/jobs\/([^/]+)$/.exec(path))) pageJob(decodeURIComponent(m[1]));
    else if (path === '/logs') pageLogs(params);
    else if (path === '/schedules') pageSchedules();
    else if ((m = /^\/workflows\/([^/]+)$/.exec(path))) pageWorkflow(decodeURIComponent(m[1]));
    else show(el('h1', null, 'Not found'), el('p', null, el('a', {href: '#/overview'}, 'Overview')));
  }
  function signOut(why) {
    sessionStorage.removeItem(TOKEN_KEY);
    pageStack = [];
    signoutReason = why || '';
    go('#/signin');
  }
  let signoutReason = '';

  /* --- sign in --- */

  function pageSignin() {
    document.title = 'Sign in · jobq';
    const input = el('input', {type: 'password', id: 'token', name: 'token', autocomplete: 'off',
                               placeholder: 'jq-…', required: true, 'aria-label': 'Token'});
    const msg = el('div');
    if (signoutReason) msg.append(el('div', {class: 'notice'}, signoutReason));
    signoutReason = '';
    const form = el('form', {id: 'signin', onsubmit: async ev => {
      ev.preventDefault();
      const t = input.value.trim();
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      try {
        await api('GET', '/v1/stats');
        const {path} = parseHash();
        go(path === '/signin' || path === '/' ? '#/overview' : location.hash);
      } catch (e) {
        sessionStorage.removeItem(TOKEN_KEY);
        msg.replaceChildren(errorBox(e.status === 401 ? 'That token was not accepted.' : e));
      }
    }},
      el('label', {class: 'field', for: 'token'}, 'API token (user, worker or admin)'), input,
      el('button', {class: 'btn', type: 'submit'}, 'Sign in'));
    show(el('div', {class: 'signin card'},
      el('h1', null, 'Sign in to jobq'),
      el('p', {class: 'muted'}, 'The token is kept in this tab only (sessionStorage) and sent as ' +
         'a bearer token to the jobq API. A user token shows your own jobs; an admin token shows all.'),
      msg, form));
    input.focus();
  }

  /* --- overview --- */

  function pageOverview() {
    document.title = 'Overview · jobq';
    const body = el('div', {id: 'overview'}, el('p', {class: 'muted'}, 'Loading…'));
    const stamp = el('span', {class: 'muted small', id: 'updated'});
    show(el('h1', null, 'Overview', stamp), body);
    const load = serial(async () => {
      try {
        const s = await api('GET', '/v1/stats');
        body.replaceChildren(...overview(s));
        stamp.textContent = 'updated ' + new Date().toLocaleTimeString();
      } catch (e) {
        if (e.status !== 401) body.replaceChildren(errorBox(e));
      }
    });
    load();
    const timer = setInterval(load, 5000);
    cleanups.push(() => clearInterval(timer));
  }

  function overview(s) {
    const out = [];
    const c = s.counts || {};
    out.push(el('div', {class: 'cards', id: 'counts'},
      STATUSES.map(st => el('a', {class: 'card count ' + statusClass(st), href: '#/jobs?status=' + st,
                                  'data-status': st},
        el('span', {class: 'n'}, String(c[st] ?? 0)), el('span', {class: 'label'}, st))),
      el('div', {class: 'card count'}, el('span', {class: 'n'}, String(c.total ?? 0)),
         el('span', {class: 'label'}, 'total'),
         el('span', {class: 'muted small'}, 'oldest pending: ' + fmtMs(s.oldest_pending_age_ms)))));
    if (!s.throughput) {
      out.push(el('div', {class: 'notice'}, 'Your own jobs (' + (s.scope || 'user') + ' scope). ' +
        'Throughput, queue depth and durations per type are shown to admin and worker tokens.'));
      return out;
    }
    out.push(el('h2', null, 'Throughput, last hour (jobs per minute)'),
             el('div', {class: 'card'}, chart(s.throughput),
               el('div', {class: 'legend'}, el('span', null, el('span', {class: 'sw ok'}), 'completed'),
                  el('span', null, el('span', {class: 'sw bad'}), 'failed'))));
    const queues = s.queues || [], types = s.types || [];
    out.push(el('div', {class: 'grid2'},
      el('div', null, el('h2', null, 'Depth per queue'), table('queues',
        ['queue', ['pending', 'num'], ['processing', 'num'], ['oldest pending', 'num']],
        queues.map(q => [el('a', {href: '#/jobs?queue=' + encodeURIComponent(q.queue)}, q.queue),
                         q.pending, q.processing, fmtMs(q.oldest_pending_age_ms)]), 'No queues yet.')),
      el('div', null, el('h2', null, 'Duration per type'), table('types',
        ['type', ['done (1 h)', 'num'], ['failed (1 h)', 'num'], ['avg', 'num'], ['p95', 'num']],
        types.map(t => [el('a', {href: '#/jobs?type=' + encodeURIComponent(t.type)}, t.type),
                        t.completed_last_hour, t.failed_last_hour, fmtMs(t.avg_duration_ms),
                        fmtMs(t.p95_duration_ms)]), 'No job types yet.'))));
    return out;
  }

  /* Stacked bars (completed below failed) per minute, drawn as inline SVG. */
  function chart(points) {
    const W = 720, H = 180, L = 34, B = 20, T = 8;
    const max = Math.max(1, ...points.map(p => (p.completed || 0) + (p.failed || 0)));
    const bw = (W - L) / Math.max(points.length, 1);
    const y = v => (H - B) - v / max * (H - B - T);
    const g = svg('svg', {class: 'chart', id: 'throughput', viewBox: `0 0 ${W} ${H}`, role: 'img',
                          'aria-label': 'completed and failed jobs per minute over the last hour'});
    g.append(svg('line', {class: 'axis', x1: L, x2: W, y1: H - B, y2: H - B}),
             svg('text', {x: L - 4, y: T + 8, 'text-anchor': 'end'}, String(max)),
             svg('text', {x: L - 4, y: H - B, 'text-anchor': 'end'}, '0'));
    points.forEach((p, i) => {
      const ok = p.completed || 0, bad = p.failed || 0, x = L + i * bw + 1, w = Math.max(bw - 2, 1);
      const tip = svg('title', null, fmtTime(p.minute) + ': ' + ok + ' completed, ' + bad + ' failed');
      if (ok) g.append(svg('rect', {class: 'bar-ok', x, width: w, y: y(ok), height: (H - B) - y(ok)}, tip));
      if (bad) g.append(svg('rect', {class: 'bar-bad', x, width: w, y: y(ok + bad), height: y(ok) - y(ok + bad)},
                            ok ? tip.cloneNode(true) : tip));
    });
    if (points.length) {
      const hhmm = t => (/T(\d\d:\d\d)/.exec(t || '') || [])[1] || '';
      g.append(svg('text', {x: L, y: H - 5}, hhmm(points[0].minute)),
               svg('text', {x: W, y: H - 5, 'text-anchor': 'end'}, hhmm(points[points.length - 1].minute)));
    }
    return g;
  }

  /* cols: 'name' or ['name', 'num']; rows: arrays of strings/nodes. */
  function table(id, cols, rows, emptyText) {
    const head = el('tr', null, cols.map(c => Array.isArray(c) ? el('th', {class: c[1]}, c[0]) : el('th', null, c)));
    const body = el('tbody', null, rows.map(r => el('tr', null, r.map((v, i) =>
      el('td', {class: Array.isArray(cols[i]) ? cols[i][1] : null}, v === null || v === undefined ? '—' : v)))));
    if (!rows.length)
      body.append(el('tr', null, el('td', {colspan: cols.length, class: 'empty'}, emptyText)));
    return el('div', {class: 'tablewrap'}, el('table', {id}, el('thead', null, head), body));
  }

  /* --- jobs --- */

  const FILTERS = ['status', 'type', 'queue', 'params', 'log_q', 'order'];

  function pageJobs(params) {
    document.title = 'Jobs · jobq';
    const f = {};
    for (const k of FILTERS) f[k] = params.get(k) || '';
    const limit = params.get('limit') || '25', cursor = params.get('cursor') || '';
    const status = el('select', {name: 'status', id: 'f-status'}, el('option', {value: ''}, 'any'),
      STATUSES.map(s => el('option', {value: s, selected: f.status === s}, s)));
    const input = (name, ph, cls) => el('input', {name, id: 'f-' + name, value: f[name], placeholder: ph, class: cls});
    const size = el('select', {name: 'limit', id: 'f-limit'},
      ['10', '25', '50', '100'].map(n => el('option', {value: n, selected: n === limit}, n)));
    const order = el('select', {name: 'order', id: 'f-order'},
      el('option', {value: ''}, 'newest first'), el('option', {value: 'asc', selected: f.order === 'asc'}, 'oldest first'));
    const msg = el('div');
    const form = el('form', {class: 'filters', id: 'filters', onsubmit: ev => {
      ev.preventDefault();
      const d = new FormData(form), next = {};
      for (const k of FILTERS) next[k] = (d.get(k) || '').trim();
      if (next.params) {
        let ok = false;
        try { const v = JSON.parse(next.params); ok = v !== null && typeof v === 'object' && !Array.isArray(v); } catch (e) { ok = false; }
        if (!ok) { msg.replaceChildren(errorBox('params must be a JSON object, e.g. {"customer":"acme"}')); return; }
      }
      pageStack = [];
      go('#/jobs' + query(Object.assign(next, {limit: d.get('limit')})));
    }},
      el('label', {class: 'field'}, 'status', status),
      el('label', {class: 'field'}, 'type', input('type', 'report.build')),
      el('label', {class: 'field'}, 'queue', input('queue', 'default')),
      el('label', {class: 'field'}, 'params contain (JSON)', input('params', '{"customer":"acme"}', 'wide')),
      el('label', {class: 'field'}, 'logs match', input('log_q', 'timeout OR refused')),
      el('label', {class: 'field'}, 'order', order),
      el('label', {class: 'field'}, 'per page', size),
      el('button', {class: 'btn', type: 'submit'}, 'Search'),
      el('button', {class: 'btn secondary', type: 'button', onclick: () => { pageStack = []; go('#/jobs'); }}, 'Clear'));
    const summary = el('p', {class: 'muted', id: 'summary'}, 'Loading…');
    const list = el('div');
    const prev = el('button', {class: 'btn secondary', type: 'button', id: 'prev', disabled: !cursor,
      onclick: () => go('#/jobs' + query(Object.assign({}, f, {limit, cursor: pageStack.pop() || ''})))}, '← Previous');
    const next = el('button', {class: 'btn secondary', type: 'button', id: 'next', disabled: true}, 'Next →');
    show(el('h1', null, 'Jobs'), form, msg, summary, list, el('div', {class: 'pager'}, prev, next));
    (async () => {
      try {
        const r = await api('GET', '/v1/jobs' + query(Object.assign({}, f, {limit, cursor})));
        const n = r.total_count;
        summary.textContent = (n === 1 ? '1 job' : n + ' jobs') + ' match' + (n === 1 ? 'es' : '') +
          (cursor ? ' (a later page)' : '');
        list.replaceChildren(jobsTable(r.jobs || []));
        if (r.next_cursor) {
          next.disabled = false;
          next.addEventListener('click', () => {
            pageStack.push(cursor);
            go('#/jobs' + query(Object.assign({}, f, {limit, cursor: r.next_cursor})));
          });
        }
      } catch (e) {
        summary.textContent = '';
        if (e.status !== 401) msg.replaceChildren(errorBox(e));
      }
    })();
  }

  function jobsTable(jobs) {
    return table('jobs', ['id', 'type', 'queue', 'status', ['attempts', 'num'], 'progress', 'params', 'created'],
      jobs.map(j => [
        el('a', {href: jobHref(j.id), class: 'mono', 'data-id': j.id}, j.id),
        j.type, j.queue, badge(j.status), j.attempts + '/' + j.max_attempts,
        j.progress_percent === null ? '—' : j.progress_percent + '%',
        el('span', {class: 'mono wrap'}, clip(JSON.stringify(j.params), 80)),
        el('span', {title: j.created_at}, fmtTime(j.created_at))]), 'No jobs match.');
  }
  function clip(s, n) { return s && s.length > n ? s.slice(0, n - 1) + '…' : s; }

  /* --- one job, live --- */

  function pageJob(id) {
    document.title = 'Job ' + id + ' · jobq';
    const title = el('h1', null, 'Job ', el('span', {class: 'mono'}, id));
    const msg = el('div');
    const live = el('span', {class: 'live off', id: 'live'}, '○ connecting');
    const bar = el('progress', {id: 'progress', max: 100});
    const pct = el('span', {id: 'progress-pct'}, '—');
    const pmsg = el('span', {class: 'muted', id: 'progress-msg'});
    const props = el('dl', {class: 'props', id: 'props'});
    const params = el('pre', {class: 'json', id: 'params'});
    const result = el('pre', {class: 'json', id: 'result'});
    const error = el('div', {id: 'job-error'});
    const wf = el('p', {class: 'muted', id: 'workflow'});
    const logRows = el('tbody');
    const logs = el('div', {class: 'tablewrap'}, el('table', {class: 'logs', id: 'logs'},
      el('thead', null, el('tr', null, el('th', null, 'time'), el('th', null, 'level'),
                             el('th', null, 'message'), el('th', null, 'metadata'))), logRows));
    const cancel = el('button', {class: 'btn danger', type: 'button', id: 'cancel', disabled: true}, 'Cancel');
    const retry = el('button', {class: 'btn secondary', type: 'button', id: 'retry', disabled: true}, 'Retry');
    const status = el('span', {id: 'status'});
    title.append(status, el('span', {class: 'actions'}, live, retry, cancel));
    show(el('p', null, el('a', {href: '#/jobs'}, '← Jobs')), title, wf, msg,
         el('div', {class: 'card progress'}, bar, pct, pmsg),
         el('div', {class: 'grid2'},
           el('div', null, el('h2', null, 'Details'), el('div', {class: 'card'}, props)),
           el('div', null, el('h2', null, 'Params'), params, el('h2', null, 'Result'), result, error)),
         el('h2', null, 'Logs'), logs);

    let job = null, lastLog = 0, gone = false;
    const setProgress = (p, m) => {
      if (p === null || p === undefined) bar.removeAttribute('value');
      else bar.value = p;
      pct.textContent = p === null || p === undefined ? '—' : p + '%';
      pmsg.textContent = m || '';
    };
    const render = j => {
      job = j;
      status.replaceChildren(badge(j.status));
      setProgress(j.progress_percent, j.progress_message);
      const rows = [['type', j.type], ['queue', j.queue], ['user', j.user_id], ['priority', j.priority],
        ['attempts', j.attempts + ' of ' + j.max_attempts], ['worker', j.worker_id], ['created', j.created_at],
        ['run at', j.run_at], ['started', j.started_at], ['finished', j.completed_at],
        ['lease expires', j.lease_expires_at], ['expires', j.expires_at], ['updated', j.updated_at]];
      props.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', null, k),
        el('dd', {'data-prop': k}, v === null || v === undefined ? '—' : String(v))]));
      wf.replaceChildren();
      if (j.workflow_id)
        wf.append('step ', el('span', {class: 'mono'}, j.step_key || ''), ' of ',
                  el('a', {href: '#/workflows/' + encodeURIComponent(j.workflow_id), id: 'workflow-link'}, 'workflow ' + j.workflow_id));
      params.textContent = json(j.params);
      result.textContent = j.result === null || j.result === undefined ? '(none yet)' : json(j.result);
      error.replaceChildren();
      if (j.error_message || j.error_code)
        error.append(el('h2', null, 'Error'), el('div', {class: 'error', id: 'error-message'},
          (j.error_code ? j.error_code + ': ' : '') + (j.error_message || '')));
      cancel.disabled = !(j.status === 'pending' || j.status === 'processing');
      retry.disabled = !(j.status === 'failed' || j.status === 'cancelled');
    };
    const loadJob = serial(async () => {
      if (gone) return;
      try {
        render(await api('GET', '/v1/jobs/' + encodeURIComponent(id)));
      } catch (e) {
        if (e.status === 404) { gone = true; stop(); live.textContent = ''; }
        if (e.status !== 401) msg.replaceChildren(errorBox(e.status === 404 ? 'No such job (or not yours).' : e));
      }
    });
    const loadLogs = serial(async () => {
      if (gone) return;
      try {
        for (;;) {
          const r = await api('GET', '/v1/jobs/' + encodeURIComponent(id) + '/logs' +
                              query({after: lastLog || '', limit: 1000}));
          for (const l of r.logs || []) {
            lastLog = Math.max(lastLog, l.id);
            logRows.append(el('tr', {'data-log-id': l.id},
              el('td', {title: l.created_at, class: 'mono'}, fmtTime(l.created_at)),
              el('td', null, el('span', {class: 'lv lv-' + (['debug', 'info', 'warning', 'error'].includes(l.level) ? l.level : 'info')}, l.level)),
              el('td', {class: 'msg'}, l.message),
              el('td', {class: 'meta mono'}, l.metadata === null || l.metadata === undefined ? '' : JSON.stringify(l.metadata))));
          }
          if (!r.next_after) break;
        }
      } catch (e) {
        if (e.status !== 401 && e.status !== 404) msg.replaceChildren(errorBox(e));
      }
    });
    const act = verb => async () => {
      if (verb === 'cancel' && !confirm('Cancel job ' + id + '?')) return;
      msg.replaceChildren();
      try {
        render(await api('POST', '/v1/jobs/' + encodeURIComponent(id) + '/' + verb));
      } catch (e) {
        if (e.status !== 401) msg.replaceChildren(errorBox(e));
      }
    };
    cancel.addEventListener('click', act('cancel'));
    retry.addEventListener('click', act('retry'));

    loadJob();
    /* Load after the stream is open (and again after each reconnect), so no
     * change falls between what was loaded and what the stream tells. */
    const stop = follow({job_id: id}, ev => {
      let d = {};
      try { d = JSON.parse(ev.data); } catch (e) { d = {}; }
      if (ev.event === 'progress') setProgress(d.progress_percent, d.progress_message);
      if (ev.event === 'log') loadLogs();
      else if (ev.event === 'reset') { loadJob(); loadLogs(); }
      else loadJob();
    }, state => {
      live.className = 'live ' + (state === 'live' ? 'on' : 'off');
      live.textContent = state === 'live' ? '● live' : '○ reconnecting';
      if (state === 'live') { loadJob(); loadLogs(); }
    });
    cleanups.push(stop);
  }

  /* --- schedules --- */

  function pageSchedules() {
    document.title = 'Schedules · jobq';
    const msg = el('div'), list = el('div', null, el('p', {class: 'muted'}, 'Loading…'));
    show(el('h1', null, 'Schedules'), msg, list);
    const load = async () => {
      try {
        const r = await api('GET', '/v1/schedules');
        list.replaceChildren(table('schedules', ['name', 'cron', 'zone', 'type', 'queue', 'next run', 'last run', 'state', ''],
          (r.schedules || []).map(s => [s.name, el('code', null, s.cron), s.timezone, s.type, s.queue,
            el('span', {title: s.next_run_at || ''}, fmtTime(s.next_run_at)), el('span', {title: s.last_run_at || ''}, fmtTime(s.last_run_at)),
            s.paused ? 'paused' : 'active',
            el('button', {class: 'btn secondary', type: 'button', 'data-schedule': s.id, onclick: async () => {
              try { await api('POST', '/v1/schedules/' + encodeURIComponent(s.id) + (s.paused ? '/resume' : '/pause')); load(); }
              catch (e) { if (e.status !== 401) msg.replaceChildren(errorBox(e)); }
            }}, s.paused ? 'Resume' : 'Pause')]), 'No schedules.'));
      } catch (e) {
        list.replaceChildren();
        if (e.status !== 401) msg.replaceChildren(errorBox(e));
      }
    };
    load();
  }

  /* --- a workflow as a graph --- */

  function pageWorkflow(id) {
    document.title = 'Workflow ' + id + ' · jobq';
    const msg = el('div'), body = el('div', null, el('p', {class: 'muted'}, 'Loading…'));
    const status = el('span', {id: 'status'});
    show(el('h1', null, 'Workflow ', el('span', {class: 'mono'}, id), status), msg, body);
    const load = serial(async () => {
      try {
        const w = await api('GET', '/v1/workflows/' + encodeURIComponent(id));
        status.replaceChildren(el('span', {class: 'badge', 'data-status': w.status}, w.status));
        body.replaceChildren(el('p', {class: 'muted'}, w.name || ''), el('div', {class: 'card'}, dag(w.steps || [])),
          table('steps', ['step', 'job', 'type', 'status', 'depends on'], (w.steps || []).map(s => [s.key,
            el('a', {href: jobHref(s.id), class: 'mono'}, s.id), s.type, badge(s.status), (s.depends_on || []).join(', ')]), 'No steps.'));
      } catch (e) {
        if (e.status !== 401) msg.replaceChildren(errorBox(e.status === 404 ? 'No such workflow (or not yours).' : e));
      }
    });
    load();
    const timer = setInterval(load, 3000);
    cleanups.push(() => clearInterval(timer));
  }

  /* Steps in columns by depth (longest path from a root), edges as lines. */
  function dag(steps) {
    const byKey = new Map(steps.map(s => [s.key, s])), depth = new Map();
    const depthOf = (k, seen = new Set()) => {
      if (depth.has(k)) return depth.get(k);
      if (seen.has(k)) return 0;                 /* the server rejects cycles; never loop */
      seen.add(k);
      const d = Math.max(-1, ...(byKey.get(k)?.depends_on || []).filter(p => byKey.has(p)).map(p => depthOf(p, seen))) + 1;
      depth.set(k, d);
      return d;
    };
    const cols = [];
    for (const s of steps) (cols[depthOf(s.key)] = cols[depthOf(s.key)] || []).push(s);
    const NW = 170, NH = 46, GX = 70, GY = 18, pos = new Map();
    cols.forEach((c, x) => c.forEach((s, y) => pos.set(s.key, {x: 10 + x * (NW + GX), y: 10 + y * (NH + GY)})));
    const W = 20 + cols.length * (NW + GX) - GX, H = 20 + Math.max(1, ...cols.map(c => c.length)) * (NH + GY) - GY;
    const g = svg('svg', {class: 'dag', id: 'dag', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': 'workflow steps and dependencies'});
    for (const s of steps)
      for (const p of s.depends_on || []) {
        const a = pos.get(p), b = pos.get(s.key);
        if (a && b) g.append(svg('line', {class: 'edge', x1: a.x + NW, y1: a.y + NH / 2, x2: b.x, y2: b.y + NH / 2}));
      }
    for (const s of steps) {
      const {x, y} = pos.get(s.key);
      const a = svg('a', {href: jobHref(s.id), 'data-step': s.key});
      a.append(svg('rect', {class: 'node ' + statusClass(s.status), x, y, width: NW, height: NH, rx: 6}),
               svg('text', {x: x + 10, y: y + 19, class: 'key'}, clip(s.key, 22)),
               svg('text', {x: x + 10, y: y + 36}, clip(s.type, 16) + ' · ' + s.status));
      g.append(a);
    }
    return el('div', {class: 'dagwrap'}, g);
  }

  /* --- log search --- */

  function pageLogs(params) {
    document.title = 'Log search · jobq';
    const q = params.get('q') || '', level = params.get('level') || '';
    const input = el('input', {name: 'q', id: 'q', value: q, class: 'wide', placeholder: 'timeout OR "connection refused"'});
    const lv = el('select', {name: 'level', id: 'level'}, el('option', {value: ''}, 'any'),
      ['debug', 'info', 'warning', 'error'].map(l => el('option', {value: l, selected: l === level}, l)));
    const form = el('form', {class: 'filters', onsubmit: ev => {
      ev.preventDefault();
      go('#/logs' + query({q: input.value.trim(), level: lv.value}));
    }}, el('label', {class: 'field'}, 'search log lines', input), el('label', {class: 'field'}, 'level', lv),
       el('button', {class: 'btn', type: 'submit'}, 'Search'));
    const msg = el('div'), list = el('div'), more = el('div', {class: 'pager'});
    show(el('h1', null, 'Log search'), form, msg, list, more);
    if (!q) return;
    const rows = el('tbody');
    list.replaceChildren(el('div', {class: 'tablewrap'}, el('table', {id: 'hits'},
      el('thead', null, el('tr', null, ['time', 'job', 'type', 'level', 'match'].map(h => el('th', null, h)))), rows)));
    const page = async cursor => {
      try {
        const r = await api('GET', '/v1/logs/search' + query({q, level, cursor, limit: 50}));
        for (const h of r.logs || [])
          rows.append(el('tr', null, el('td', {class: 'mono', title: h.created_at}, fmtTime(h.created_at)),
            el('td', null, el('a', {href: jobHref(h.job_id), class: 'mono'}, h.job_id)), el('td', null, h.type),
            el('td', null, h.level), el('td', {class: 'msg'}, snippet(h.snippet || h.message))));
        if (!rows.children.length)
          rows.append(el('tr', null, el('td', {colspan: 5, class: 'empty'}, 'No log line matches.')));
        more.replaceChildren();
        if (r.next_cursor)
          more.append(el('button', {class: 'btn secondary', type: 'button', onclick: () => page(r.next_cursor)}, 'More'));
      } catch (e) {
        if (e.status !== 401) msg.replaceChildren(errorBox(e));
      }
    };
    page('');
  }

  /* FTS snippets mark matches with U+0002 … U+0003: <mark> around text nodes. */
  function snippet(s) {
    const out = [];
    const parts = String(s).split(/([\u0002\u0003])/);
    let on = false;
    for (const p of parts) {
      if (p === '\u0002') on = true;
      else if (p === '\u0003') on = false;
      else if (p) out.push(on ? el('mark', null, p) : p);
    }
    return out;
  }

  /* --- start --- */

  document.getElementById('signout').addEventListener('click', () => signOut('Signed out.'));
  window.addEventListener('hashchange', route);
  route();
})();
