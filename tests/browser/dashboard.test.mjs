// dashboard.test.mjs - the jobq dashboard (/ui) in Debian's Chromium, driven by
// playwright-core. Starts the real jobqd on port 0 in a temp dir (real clock),
// makes tokens through the API, then: signs in; watches a job page update live
// while a "worker" (this script, through the API) claims, reports progress,
// logs and completes; searches by params containment and log text; pages with
// cursors; cancels and retries; plants XSS payloads in params, progress, logs,
// metadata, results, errors and worker ids and checks that none runs and all
// are shown as text; lists schedules and pauses one; draws a workflow as a graph.
// Screenshots of each page go to --out.
//
//   node dashboard.test.mjs --jobqd build/jobqd --out build/browser-screenshots
//
// Env: CHROMIUM (default /usr/bin/chromium), JQ_KEEP_TMP=1 keeps the temp dir.
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {chromium} from 'playwright-core';

const TOTAL_MS = 90_000;     // the whole run, server start to screenshots
const WAIT_MS = 10_000;      // one expected change on the page
const ADMIN = 'jq-browser-admin-token-0123456789abcdef';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) =>
  (v.startsWith('--') ? a.concat([[v.slice(2), all[i + 1]]]) : a), []));
const JOBQD = args.jobqd;
const OUT = args.out || path.resolve('screenshots');
assert.ok(JOBQD && fs.existsSync(JOBQD), `--jobqd must name the jobqd binary (got ${JOBQD})`);
fs.mkdirSync(OUT, {recursive: true});

const t0 = Date.now();
const log = (...m) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`, ...m);
const sleep = ms => new Promise(r => setTimeout(r, ms));

// --- jobqd ---

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jobq-browser-'));
let server, serverOut = '';
async function startServer() {
  const portFile = path.join(tmp, 'port');
  server = spawn(JOBQD, ['--db', path.join(tmp, 'jobq.db'), '--host', '127.0.0.1', '--port', '0',
                         '--port-file', portFile, '--active-limit', '0'],
                 {env: {...process.env, JOBQ_ADMIN_TOKEN: ADMIN}, stdio: ['ignore', 'pipe', 'pipe']});
  server.stdout.on('data', d => { serverOut += d; });
  server.stderr.on('data', d => { serverOut += d; });
  for (let i = 0; i < 200; i++) {
    if (server.exitCode !== null) throw new Error('jobqd exited at start:\n' + serverOut);
    const p = fs.existsSync(portFile) ? fs.readFileSync(portFile, 'utf8').trim() : '';
    if (/^\d+$/.test(p)) return `http://127.0.0.1:${p}`;
    await sleep(50);
  }
  throw new Error('jobqd did not write its port file:\n' + serverOut);
}
async function stopServer() {
  if (!server || server.exitCode !== null) return server ? server.exitCode : 0;
  const done = new Promise(r => server.once('exit', (code, sig) => r(code ?? 128)));
  server.kill('SIGTERM');
  return Promise.race([done, sleep(10_000).then(() => { server.kill('SIGKILL'); return 'killed'; })]);
}

// --- the API, as the test's admin, user and worker ---

let BASE;
async function call(token, method, p, body) {
  const headers = {Authorization: `Bearer ${token}`};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(BASE + p, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Error(`${method} ${p} -> ${r.status} ${text}`);
  return data;
}
const enqueue = (tok, job) => call(tok, 'POST', '/v1/jobs', {dedup: false, cache: false, ...job});
async function claim(tok, queue, workerId = 'w1') {
  const r = await call(tok, 'POST', `/v1/queues/${queue}/claim`, {worker_id: workerId, max: 1});
  assert.equal(r.jobs.length, 1, `a job to claim in ${queue}`);
  return r.jobs[0];
}
const work = (tok, job, verb, body) =>
  call(tok, 'POST', `/v1/jobs/${job.id}/${verb}`, {lease_token: job.lease_token, ...body});

// --- checks on the page ---

async function waitText(page, sel, text, what) {
  const t = Date.now();
  try {
    await page.waitForFunction(([s, x]) => {
      const e = document.querySelector(s);
      return e && e.textContent.includes(x);
    }, [sel, text], {timeout: WAIT_MS, polling: 50});
  } catch (e) {
    const got = await page.evaluate(s => document.querySelector(s)?.textContent ?? '(absent)', sel);
    throw new Error(`${what}: ${sel} never showed ${JSON.stringify(text)}; it shows ${JSON.stringify(got.slice(0, 300))}`);
  }
  return Date.now() - t;
}
const status = (page, s, what) => waitText(page, '#status', s, what);
const shot = async (page, name) => {
  const f = path.join(OUT, name);
  await page.screenshot({path: f, fullPage: true});
  log('screenshot', f);
};
async function rows(page) {
  return page.$$eval('#jobs tbody a[data-id]', as => as.map(a => a.dataset.id));
}
async function goHash(page, hash) {
  await page.evaluate(h => { location.hash = h; }, hash);
}

// --- the run ---

const pageErrors = [], cspReports = [];
let browser;
const deadline = setTimeout(() => {
  console.error(`browser test: over ${TOTAL_MS / 1000} s, giving up`);
  if (server) server.kill('SIGKILL');
  process.exit(1);
}, TOTAL_MS);

async function main() {
  BASE = await startServer();
  log('jobqd at', BASE);
  const alice = (await call(ADMIN, 'POST', '/v1/tokens', {user_id: 'alice', role: 'user', name: 'browser'})).token;
  const worker = (await call(ADMIN, 'POST', '/v1/tokens', {user_id: 'w', role: 'worker'})).token;

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({viewport: {width: 1280, height: 900}});
  const page = await context.newPage();
  page.on('pageerror', e => pageErrors.push(String(e)));
  page.on('console', m => {
    if (/Content Security Policy/i.test(m.text())) cspReports.push(m.text());
  });
  page.on('dialog', d => d.accept());

  // 1. the page itself: public, typed, with a CSP
  const resp = await page.goto(BASE + '/ui');
  assert.equal(resp.status(), 200);
  assert.match(resp.headers()['content-type'], /^text\/html/);
  assert.match(resp.headers()['content-security-policy'], /default-src 'self'/);
  await page.waitForSelector('#signin');
  await shot(page, '01-signin.png');

  // 2. sign in: a wrong token is refused, alice's is taken
  await page.fill('#token', 'jq-not-a-token');
  await page.click('#signin button[type=submit]');
  await waitText(page, 'main', 'not accepted', 'wrong token');
  await page.fill('#token', alice);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#counts');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('jobq.token') !== null), true);
  log('signed in as alice');

  // 3. a job page follows a worker live (no reload)
  const job = await enqueue(alice, {type: 'report.build', queue: 'live',
                                    params: {month: '2026-11', customer: 'acme'}});
  await goHash(page, '#/jobs/' + job.id);
  await status(page, 'pending', 'new job');
  await waitText(page, '#live', 'live', 'event stream');
  await page.evaluate(() => { window.__sameDocument = true; });
  const lat = {};
  const c = await claim(worker, 'live');
  lat.claimed = await status(page, 'processing', 'claimed');
  await waitText(page, '#props', 'w1', 'worker id');
  await work(worker, c, 'heartbeat', {progress_percent: 40, progress_message: 'rendering page 4 of 10'});
  lat.progress = await waitText(page, '#progress-pct', '40%', 'progress');
  await waitText(page, '#progress-msg', 'rendering page 4 of 10', 'progress message');
  assert.equal(await page.$eval('#progress', e => e.value), 40);
  await work(worker, c, 'logs', {level: 'info', message: 'fetched 1200 rows', metadata: {rows: 1200}});
  lat.log = await waitText(page, '#logs', 'fetched 1200 rows', 'log line');
  await waitText(page, '#logs', '{"rows":1200}', 'log metadata');
  await work(worker, c, 'logs', {level: 'warning', message: 'slow query (2.1 s)'});
  await waitText(page, '#logs', 'slow query', 'second log line');
  await work(worker, c, 'heartbeat', {progress_percent: 90, progress_message: 'uploading'});
  await waitText(page, '#progress-pct', '90%', 'progress 90');
  await work(worker, c, 'complete', {result: {pages: 10, url: 'https://files.example/r/2026-11.pdf'}});
  lat.completed = await status(page, 'completed', 'completed');
  await waitText(page, '#result', '"pages": 10', 'result');
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'updates came without a reload');
  assert.equal(await page.$$eval('#logs tbody tr', t => t.length), 2, 'each log line once');
  assert.equal(await page.$eval('#cancel', b => b.disabled), true, 'a completed job cannot be cancelled');
  log('live updates (ms after the API call):', JSON.stringify(lat));
  await shot(page, '03-job-live-completed.png');

  // 4. search: params containment and log text
  const globex = await enqueue(alice, {type: 'report.build', queue: 'search', params: {customer: 'globex'}});
  const acme2 = await enqueue(alice, {type: 'invoice.send', queue: 'search2', params: {customer: 'acme', region: 'eu'}});
  const g = await claim(worker, 'search');
  await work(worker, g, 'logs', {level: 'error', message: 'kangaroo gateway refused the upload'});
  await work(worker, g, 'fail', {error_message: 'upload refused', error_code: 'gateway', retryable: false});
  await goHash(page, '#/jobs');
  await page.waitForSelector('#jobs');
  await page.fill('#f-params', '{"customer":"acme"}');
  await page.click('#filters button[type=submit]');
  await waitText(page, '#summary', '2 jobs match', 'containment search');
  assert.deepEqual((await rows(page)).sort(), [job.id, acme2.id].sort());
  await shot(page, '04-jobs-params-search.png');
  await page.fill('#f-params', '');
  await page.fill('#f-log_q', 'kangaroo');
  await page.click('#filters button[type=submit]');
  await waitText(page, '#summary', '1 job matches', 'log search');
  assert.deepEqual(await rows(page), [globex.id]);
  await page.fill('#f-params', 'not json');
  await page.click('#filters button[type=submit]');
  await waitText(page, 'main', 'params must be a JSON object', 'bad params filter');
  await goHash(page, '#/logs?q=kangaroo');
  await waitText(page, '#hits', 'gateway refused', 'log search page');
  assert.equal(await page.$eval('#hits mark', m => m.textContent), 'kangaroo');
  await shot(page, '05-log-search.png');
  log('search: containment, log_q and log search');

  // 5. cursor paging: 12 jobs, 10 a page
  const batch = await call(alice, 'POST', '/v1/jobs/batch', {jobs: Array.from({length: 12}, (_, i) =>
    ({type: 'page.item', queue: 'paging', params: {i}}))});
  const all = batch.jobs.map(j => j.id);
  await goHash(page, '#/jobs?queue=paging&limit=10');
  await waitText(page, '#summary', '12 jobs match', 'paging');
  const p1 = await rows(page);
  assert.equal(p1.length, 10);
  await page.click('#next');
  await waitText(page, '#summary', 'a later page', 'next page');
  await page.waitForFunction(() => document.querySelectorAll('#jobs tbody a[data-id]').length === 2);
  const p2 = await rows(page);
  assert.deepEqual([...p1, ...p2].sort(), [...all].sort(), 'two pages hold every job once');
  assert.equal(await page.$eval('#next', b => b.disabled), true, 'no page after the last');
  await page.click('#prev');
  await page.waitForFunction(() => document.querySelectorAll('#jobs tbody a[data-id]').length === 10);
  assert.deepEqual(await rows(page), p1);
  await shot(page, '06-jobs-paging.png');
  log('cursor paging');

  // 6. cancel, then retry, from the job page
  const victim = await enqueue(alice, {type: 'report.build', queue: 'cancel', params: {n: 1}});
  await goHash(page, '#/jobs/' + victim.id);
  await status(page, 'pending', 'to cancel');
  await page.click('#cancel');
  await status(page, 'cancelled', 'cancelled');
  assert.equal((await call(alice, 'GET', '/v1/jobs/' + victim.id)).status, 'cancelled');
  await page.click('#retry');
  await status(page, 'pending', 'retried');
  assert.equal((await call(alice, 'GET', '/v1/jobs/' + victim.id)).status, 'pending');
  await page.click('#cancel');
  await status(page, 'cancelled', 'cancelled again');
  await shot(page, '07-job-cancelled.png');
  log('cancel and retry');

  // 7. XSS: payloads everywhere a job carries text
  const P = {
    img: '<img src=x onerror="window.__xss=1">',
    script: '</script><script>window.__xss=1</script>',
    svg: '"><svg onload=window.__xss=1>',
    iframe: '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    js: 'javascript:window.__xss=1',
    style: '<style>body{display:none}</style><b onmouseover=window.__xss=1>hover</b>',
  };
  const evil = await enqueue(alice, {type: 'xss.test', queue: 'xss',
    params: {name: P.img, note: P.script, [P.svg]: P.js, list: [P.iframe, P.style]}});
  const e1 = await claim(worker, 'xss', P.img.slice(0, 60));
  await work(worker, e1, 'heartbeat', {progress_percent: 50, progress_message: P.iframe});
  await work(worker, e1, 'logs', {level: 'info', message: P.script + ' xsscanary', metadata: {html: P.img}});
  await work(worker, e1, 'logs', {level: 'error', message: P.style});
  await work(worker, e1, 'complete', {result: {html: P.svg, js: P.js, nested: {s: P.script}}});
  const evil2 = await enqueue(alice, {type: 'xss.test', queue: 'xss2', params: {x: P.style}});
  const e2 = await claim(worker, 'xss2');
  await work(worker, e2, 'fail', {error_message: P.img + P.script, error_code: 'xss', retryable: false});

  const noXss = async where => {
    await sleep(300);     // give an injected handler the chance it must not get
    assert.equal(await page.evaluate(() => window.__xss), undefined, `script ran on ${where}`);
    const injected = await page.evaluate(() => ({
      img: document.querySelectorAll('main img').length,
      script: document.querySelectorAll('main script, main iframe, main style').length,
      handlers: [...document.querySelectorAll('main *')].filter(e =>
        [...e.attributes].some(a => a.name.startsWith('on'))).length,
      hidden: getComputedStyle(document.body).display === 'none',
    }));
    assert.deepEqual(injected, {img: 0, script: 0, handlers: 0, hidden: false}, `markup from data on ${where}`);
  };
  await goHash(page, '#/jobs/' + evil.id);
  await status(page, 'completed', 'xss job');
  const asJson = v => JSON.stringify(v).slice(1, -1);     // how a string shows inside JSON
  await waitText(page, '#params', asJson(P.img), 'params payload as text');
  await waitText(page, '#params', asJson(P.script), 'params payload as text');
  await waitText(page, '#params', asJson(P.iframe), 'params payload as text');
  await waitText(page, '#params', asJson(P.svg), 'params key payload as text');
  await waitText(page, '#logs', P.script + ' xsscanary', 'log payload as text');
  await waitText(page, '#logs', P.style, 'log payload as text');
  await waitText(page, '#logs', JSON.stringify({html: P.img}), 'metadata payload as text');
  await waitText(page, '#result', asJson(P.svg), 'result payload as text');
  await waitText(page, '#result', asJson(P.script), 'result payload as text');
  await waitText(page, '#props', P.img.slice(0, 60), 'worker id payload as text');
  await noXss('the job page');
  await shot(page, '08-xss-job.png');
  await goHash(page, '#/jobs/' + evil2.id);
  await status(page, 'failed', 'failed xss job');
  await waitText(page, '#error-message', P.img + P.script, 'error payload as text');
  await noXss('the failed job page');
  await goHash(page, '#/jobs?type=xss.test');
  await waitText(page, '#summary', '2 jobs match', 'xss list');
  await waitText(page, '#jobs', asJson(P.style).slice(0, 30), 'params in the list as text');
  await noXss('the jobs table');
  await goHash(page, '#/logs?q=xsscanary');
  await waitText(page, '#hits', 'xsscanary', 'xss log search');
  await noXss('the log search');
  // the progress message payload, while the job is live
  const evil3 = await enqueue(alice, {type: 'xss.test', queue: 'xss3'});
  await goHash(page, '#/jobs/' + evil3.id);
  await status(page, 'pending', 'xss live job');
  await waitText(page, '#live', 'live', 'xss stream');
  const e3 = await claim(worker, 'xss3');
  await work(worker, e3, 'heartbeat', {progress_percent: 10, progress_message: P.iframe + P.img});
  await waitText(page, '#progress-msg', P.iframe + P.img, 'live progress payload as text');
  await work(worker, e3, 'logs', {level: 'info', message: P.svg});
  await waitText(page, '#logs', P.svg, 'live log payload as text');
  await noXss('the live job page');
  assert.deepEqual(cspReports, [], 'nothing tried to break the CSP');
  log('xss: payloads shown as text, none ran');

  // 8. schedules (pause from the page) and a workflow drawn as a graph
  const sched = await call(alice, 'POST', '/v1/schedules', {name: 'nightly-report', cron: '0 3 * * *',
    timezone: 'Europe/Berlin', type: 'report.build', params: {kind: 'nightly'}});
  await goHash(page, '#/schedules');
  await waitText(page, '#schedules', 'nightly-report', 'schedule listed');
  await page.click(`button[data-schedule="${sched.id}"]`);
  await waitText(page, '#schedules', 'paused', 'schedule paused');
  assert.equal((await call(alice, 'GET', '/v1/schedules/' + sched.id)).paused, true);
  await shot(page, '09-schedules.png');
  const wf = await call(alice, 'POST', '/v1/workflows', {name: 'monthly-close', steps: [
    {key: 'extract', type: 'etl.extract', queue: 'wf'},
    {key: 'transform', type: 'etl.transform', queue: 'wf2', depends_on: ['extract']},
    {key: 'audit', type: 'etl.audit', queue: 'wf3', depends_on: ['extract']},
    {key: 'load', type: 'etl.load', queue: 'wf4', depends_on: ['transform', 'audit']}]});
  const root = await claim(worker, 'wf');
  await work(worker, root, 'complete', {result: {rows: 3}});
  await goHash(page, '#/jobs/' + root.id);
  await status(page, 'completed', 'workflow root');
  await page.click('#workflow-link');
  await page.waitForSelector('#dag');
  assert.equal(await page.$$eval('#dag .node', n => n.length), 4, 'four steps drawn');
  assert.equal(await page.$$eval('#dag .edge', n => n.length), 4, 'four dependencies drawn');
  assert.equal(await page.$$eval('#dag .node.st-completed', n => n.length), 1, 'the root is completed');
  await shot(page, '10-workflow-graph.png');
  log('schedules and workflow graph');

  // 9. the admin overview: counts, throughput chart, depth per queue, p95 per type
  await page.click('#signout');
  await page.waitForSelector('#signin');
  await page.fill('#token', ADMIN);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#throughput');
  assert.ok(await page.$$eval('#throughput rect', r => r.length) >= 1, 'bars in the chart');
  await waitText(page, '#queues', 'paging', 'queue depth');
  await waitText(page, '#types', 'report.build', 'types');
  await waitText(page, '[data-status=completed] .n', '3', 'completed count');
  await shot(page, '02-overview-admin.png');
  await page.evaluate(() => sessionStorage.clear());
  log('overview');

  assert.deepEqual(pageErrors, [], 'no script errors on the page');
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error('FAIL:', e.stack || e);
} finally {
  clearTimeout(deadline);
  if (browser) await browser.close().catch(() => {});
  const code = await stopServer();
  if (code !== 0) { failed = true; console.error('jobqd exit status', code); }
  if (/AddressSanitizer|runtime error|LeakSanitizer/.test(serverOut)) {
    failed = true;
    console.error('sanitizer report from jobqd:\n' + serverOut);
  }
  if (failed) console.error('--- jobqd output (tail) ---\n' + serverOut.slice(-3000));
  if (process.env.JQ_KEEP_TMP !== '1') fs.rmSync(tmp, {recursive: true, force: true});
  log(failed ? 'FAILED' : 'passed');
  process.exit(failed ? 1 : 0);
}
