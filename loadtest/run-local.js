#!/usr/bin/env node
// Load test of a running `spin up` on loopback, driven by oha; reconciled by lib.js.
//
//   ADMIN_TOKEN=... node loadtest/run-local.js          run, print, exit 0/1
//   node loadtest/run-local.js report OUT_DIR           reconcile an earlier run's files again
//
// Env (defaults): BASE_URL (http://127.0.0.1:3000, loopback only), ADMIN_TOKEN,
// LINKS (20), REQUESTS (5000), CONNECTIONS (8, oha -c per run), PARALLEL (4 oha
// runs at once), CHUNK (250 requests at most per oha run), RATE (0 = unbounded;
// oha -q per run), REQ_TIMEOUT (30s), RUN_ID (random), OUT_DIR (a new temp dir),
// CLEANUP (0; 1 deletes the links), OHA (oha).
//
// Exit code: 0 OK; 1 FAIL (an unexpected status, an unanswered request, or a
// click neither recorded nor counted unrecorded, per link and kind); 2 setup error.
// Every oha run is bounded by `-n`, never `-z`: at a `-z` deadline oha abandons
// requests the server still completes, whose clicks would show up as extra.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as kit from './lib.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const env = process.env;

function die(msg) {
  console.error(`run-local: ${msg}`);
  process.exit(2);
}

function int(name, dflt, min, max) {
  const raw = env[name];
  const v = raw === undefined || raw === '' ? dflt : Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) die(`${name} must be an integer in ${min}..${max}`);
  return v;
}

const readJson = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));
const writeJson = (p, v) => fs.writeFileSync(p, JSON.stringify(v, null, 2) + '\n');

function loopbackOnly(base) {
  let u;
  try {
    u = new URL(base);
  } catch {
    die(`BASE_URL is not a URL: ${base}`);
  }
  const h = u.hostname.replace(/^\[|\]$/g, '');
  if (!(h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h))) {
    die(`refusing non-loopback target ${h}: this kit only drives 127.0.0.0/8, ::1 or localhost`);
  }
}

async function api(base, token, method, p, body) {
  const res = await fetch(base + p, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      'user-agent': 'shortener-loadtest/1 (run-local.js)',
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { raw: text.slice(0, 300) };
  }
  return { status: res.status, json };
}

// One bounded oha run for one class; its JSON output is kept in runs/<id>.json.
function ohaRun(o, cls, file) {
  const c = Math.min(o.connections, cls.n);
  const args = ['-n', String(cls.n), '-c', String(c), '--no-tui', '--output-format', 'json', '--redirect', '0'];
  args.push('-t', o.timeout, '-m', cls.method, '-H', `User-Agent: ${cls.ua}`);
  if (cls.referer) args.push('-H', `Referer: ${cls.referer}`);
  if (o.rate > 0) args.push('-q', String(o.rate));
  args.push(`${o.base}/${cls.slug}`);
  return new Promise((resolve) => {
    const out = fs.openSync(file, 'w');
    const child = spawn(o.oha, args, { stdio: ['ignore', out, 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => die(`cannot run ${o.oha}: ${e.message}`));
    child.on('close', (code) => {
      fs.closeSync(out);
      if (code !== 0) console.error(`oha run ${cls.id} exited ${code}: ${err.slice(0, 300)}`);
      resolve();
    });
  });
}

// oha's JSON -> { [status]: count } (0: no answer) and its latency percentiles.
function parseOha(doc) {
  const answers = {};
  for (const [s, n] of Object.entries(doc.statusCodeDistribution || {})) answers[s] = Number(n);
  const errors = Object.values(doc.errorDistribution || {}).reduce((a, n) => a + Number(n), 0);
  if (errors) answers[0] = errors;
  const lat = doc.latencyPercentiles || {};
  return { answers, p50: lat.p50, p99: lat.p99 };
}

// Reads stats and unrecorded counts until two reads in a row agree. Every oha
// run has ended, so every answered redirect's write has returned; the second
// read only guards against a click written after its answer.
async function readObserved(o, slugs) {
  let prev = null;
  for (let i = 0; i < 10; i++) {
    const cur = {};
    for (const slug of slugs) {
      const stats = await api(o.base, o.token, 'GET', `/api/links/${slug}/stats`);
      const link = await api(o.base, o.token, 'GET', `/api/links/${slug}`);
      cur[slug] = {
        stats: stats.status === 200 ? stats.json : { http_status: stats.status, body: stats.json },
        link: link.status === 200 ? link.json : { http_status: link.status, body: link.json },
      };
    }
    if (prev && JSON.stringify(cur) === JSON.stringify(prev)) return cur;
    prev = cur;
    await new Promise((r) => setTimeout(r, 300));
  }
  console.error('warning: stats still changing after 10 reads');
  return prev;
}

// The report of a run directory: plan.json, runs/<id>.json, observed.json.
function report(dir) {
  const meta = readJson(path.join(dir, 'plan.json'));
  const answers = {};
  const latency = [];
  for (const c of meta.classes) {
    const file = path.join(dir, 'runs', `${c.id}.json`);
    let r;
    try {
      r = parseOha(readJson(file));
    } catch (e) {
      die(`no usable oha output for ${c.id} (${file}): ${e.message}`);
    }
    answers[c.id] = r.answers;
    latency.push({ ...r, n: c.n });
  }
  const ledger = kit.tally(meta.classes, answers);
  const seen = {};
  for (const [slug, o] of Object.entries(readJson(path.join(dir, 'observed.json')))) {
    seen[slug] = kit.observed(o.stats, o.link);
  }
  const result = kit.reconcile(ledger, seen);
  const ms = (v) => (v == null ? '-' : `${(v * 1000).toFixed(1)} ms`);
  const byP50 = latency.filter((l) => l.p50 != null).sort((a, b) => a.p50 - b.p50);
  let acc = 0;
  const half = byP50.reduce((a, l) => a + l.n, 0) / 2;
  const p50 = byP50.find((l) => (acc += l.n) >= half)?.p50;
  const p99 = Math.max(...latency.map((l) => l.p99 ?? -Infinity));
  const statuses = Object.entries(ledger.statuses).map(([s, n]) => `${s === '0' ? 'none' : s}x${n}`);
  const rps = meta.wall_seconds ? (ledger.requests / meta.wall_seconds).toFixed(1) : '-';
  console.log(
    [
      `=== shortener load test (oha), run ${meta.run_id} against ${meta.base_url} ===`,
      `requests     ${ledger.requests} of ${ledger.planned} planned, ${rps}/s over ${meta.wall_seconds ?? '-'} s` +
        ` (${meta.classes.length} oha runs, ${meta.parallel} at a time, -c ${meta.connections} each)`,
      `latency      p50 ${ms(p50)}  p99 ${ms(Number.isFinite(p99) ? p99 : null)}  (request-weighted median of the runs' p50, worst run's p99)`,
      `statuses     ${statuses.join(', ') || '-'}`,
      `not clicks   ${ledger.ignored} (HEAD and 404 on unknown slugs)`,
      '',
      'clicks per link: served (3xx to GET) == recorded (stats) + unrecorded (failed click writes)',
      kit.formatVerdict(result),
    ].join('\n'),
  );
  const rep = { run_id: meta.run_id, wall_seconds: meta.wall_seconds, rps: Number(rps) || null, p50_s: p50 ?? null,
    p99_s: Number.isFinite(p99) ? p99 : null, ledger, ...result };
  writeJson(path.join(dir, 'report.json'), rep);
  return result.ok ? 0 : 1;
}

async function run() {
  const o = {
    base: (env.BASE_URL || 'http://127.0.0.1:3000').replace(/\/+$/, ''),
    token: env.ADMIN_TOKEN || '',
    links: int('LINKS', 20, 1, 500),
    requests: int('REQUESTS', 5000, 1, 2000000),
    connections: int('CONNECTIONS', 8, 1, 512),
    parallel: int('PARALLEL', 4, 1, 32),
    chunk: int('CHUNK', 250, 1, 2000000),
    rate: int('RATE', 0, 0, 1000000),
    timeout: env.REQ_TIMEOUT || '30s',
    runId: env.RUN_ID || `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`,
    oha: env.OHA || 'oha',
  };
  loopbackOnly(o.base);
  if (!o.token) die('ADMIN_TOKEN is required');
  if (!kit.RUN_ID_RE.test(o.runId)) die(`RUN_ID must match ${kit.RUN_ID_RE}`);
  try {
    const h = await fetch(`${o.base}/health`);
    if (h.status !== 200) die(`GET /health answered ${h.status}`);
  } catch (e) {
    die(`GET ${o.base}/health failed (${e.cause?.code || e.message}): is spin up running?`);
  }
  const dir = env.OUT_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'shortener-loadtest-'));
  fs.mkdirSync(path.join(dir, 'runs'), { recursive: true });
  console.log(`run ${o.runId} against ${o.base}, files in ${dir}`);

  const mix = readJson(path.join(HERE, 'mix.json'));
  const classes = kit.plan(mix, { runId: o.runId, links: o.links, requests: o.requests, chunk: o.chunk });
  const slugs = Array.from({ length: o.links }, (_, i) => kit.slugFor(o.runId, i));
  for (const [i, slug] of slugs.entries()) {
    const url = `https://example.com/loadtest/${o.runId}/${kit.linkTag(i)}`;
    const r = await api(o.base, o.token, 'POST', '/api/links', { url, slug });
    if (r.status === 409) die(`slug ${slug} already exists: use a fresh RUN_ID`);
    if (r.status !== 201) die(`POST /api/links for ${slug} answered ${r.status}: ${JSON.stringify(r.json)}`);
  }
  console.log(`created ${slugs.length} links; ${o.requests} requests in ${classes.length} oha runs`);

  const started = process.hrtime.bigint();
  const queue = [...classes];
  const worker = async () => {
    for (let c; (c = queue.shift()); ) await ohaRun(o, c, path.join(dir, 'runs', `${c.id}.json`));
  };
  await Promise.all(Array.from({ length: o.parallel }, worker));
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`traffic done in ${wall.toFixed(1)} s; reading stats`);

  writeJson(path.join(dir, 'plan.json'), {
    run_id: o.runId, base_url: o.base, parallel: o.parallel, connections: o.connections,
    wall_seconds: Number(wall.toFixed(3)), classes,
  });
  writeJson(path.join(dir, 'observed.json'), await readObserved(o, slugs));
  const rc = report(dir);
  if (env.CLEANUP === '1') for (const slug of slugs) await api(o.base, o.token, 'DELETE', `/api/links/${slug}`);
  console.log(`files: ${dir} (plan.json, runs/*.json, observed.json, report.json)`);
  return rc;
}

const [cmd, arg] = process.argv.slice(2);
if (cmd === 'report') {
  if (!arg) die('usage: run-local.js report OUT_DIR');
  process.exit(report(arg));
} else if (cmd) {
  die(`unknown command ${cmd} (run without arguments, or: report OUT_DIR)`);
} else {
  process.exit(await run());
}
