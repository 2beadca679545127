// k6 load test for shortener: create LINKS links, drive a realistic redirect mix
// at RATE req/s for DURATION, then reconcile clicks recorded (stats API) against
// redirects served, per link, humans and bots apart. See loadtest/README.md.
//
//   ADMIN_TOKEN=... k6 run loadtest/k6/scenario.js
//   ADMIN_TOKEN=... K6_PROMETHEUS_RW_SERVER_URL=http://prometheus:9090/api/v1/write \
//     k6 run -o experimental-prometheus-rw loadtest/k6/scenario.js
//
// Env: BASE_URL (http://127.0.0.1:3000), ADMIN_TOKEN (required), LINKS (20),
// RATE (50 req/s), DURATION (60s), RUN_ID (random; namespaces the slugs as
// lt-<RUN_ID>-001 ...), TESTID (= RUN_ID; the `testid` tag on every sample), ZIPF_S (1.1), BOT_SHARE (0.2), HEAD_SHARE (0.05),
// UNKNOWN_SHARE (0.03), P95_MS (200), P99_MS (500), MAX_FAILED (0.01),
// PRE_VUS (20), MAX_VUS (200), REQ_TIMEOUT (10s), SETTLE_MS (1000),
// CLEANUP (0; 1 deletes the links after reconciling), SUMMARY_JSON (path to
// also write the raw summary + reconciliation as JSON).
//
// Exit code: 0 when every threshold holds; 99 when one is crossed, which
// includes any per-link click mismatch (shortener_click_delta{...} count==0)
// and stats that could not be read (shortener_stats_unavailable count==0).

import http from 'k6/http';
import { check, sleep } from 'k6';
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';
import {
  SERVED,
  RECORDED,
  UNCERTAIN,
  DELTA,
  KINDS,
  RUN_ID_RE,
  EXPECTED_STATUS,
  chooseRequest,
  cumulative,
  formatTable,
  linkTag,
  outcome,
  reconcile,
  rowsFromTally,
  slugFor,
  submetricKey,
  tallyFromSummary,
  UNAVAILABLE,
  unknownSlug,
  zipfWeights,
} from './lib.js';

const env = __ENV;
const BASE_URL = (env.BASE_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '');
const ADMIN_TOKEN = env.ADMIN_TOKEN || '';
const LINKS = intEnv('LINKS', 20);
const RATE = intEnv('RATE', 50);
const DURATION = env.DURATION || '60s';
const ZIPF_S = numEnv('ZIPF_S', 1.1);
const MIX = {
  botShare: numEnv('BOT_SHARE', 0.2),
  headShare: numEnv('HEAD_SHARE', 0.05),
  unknownShare: numEnv('UNKNOWN_SHARE', 0.03),
};
const P95_MS = numEnv('P95_MS', 200);
const P99_MS = numEnv('P99_MS', 500);
const MAX_FAILED = numEnv('MAX_FAILED', 0.01);
const REQ_TIMEOUT = env.REQ_TIMEOUT || '10s';
const SETTLE_MS = intEnv('SETTLE_MS', 1000);
// Tags every sample (and so every Prometheus series) of this run; the Grafana
// "Load test" dashboard's `testid` variable picks runs by it. k6 takes `options`
// from one init pass and hands them to every VU, so a random default is still one
// value per run; setup() reads it back (exec.test.options) to name the slugs.
const TESTID = env.TESTID || env.RUN_ID || `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;

// Shared with reconcile.py: UA lists (checked against the isbot crate) and referrers.
const traffic = JSON.parse(open('../traffic.json'));

const served = new Counter(SERVED);
const recorded = new Counter(RECORDED);
const uncertain = new Counter(UNCERTAIN);
const delta = new Counter(DELTA);
const statsUnavailable = new Counter(UNAVAILABLE);

function intEnv(name, dflt) {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = parseInt(v, 10);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  return n;
}
function numEnv(name, dflt) {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${v}`);
  return n;
}

if (LINKS < 1 || LINKS > 500) throw new Error('LINKS must be in 1..500');

// Per-(link, kind) submetrics: DELTA must sum to 0 (the reconciliation gate);
// the others are declared only so handleSummary gets their per-link values.
function perLinkThresholds() {
  const t = {};
  for (let i = 0; i < LINKS; i++) {
    t[`${UNAVAILABLE}{link:${linkTag(i)}}`] = ['count==0'];
    for (const k of KINDS) {
      t[submetricKey(DELTA, i, k)] = ['count==0'];
      t[submetricKey(SERVED, i, k)] = ['count>=0'];
      t[submetricKey(RECORDED, i, k)] = ['count>=0'];
      t[submetricKey(UNCERTAIN, i, k)] = ['count>=0'];
    }
  }
  return t;
}

export const options = {
  scenarios: {
    redirects: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: intEnv('PRE_VUS', 20),
      maxVUs: intEnv('MAX_VUS', 200),
      // Longer than REQ_TIMEOUT: no iteration is cut off mid-request, so every
      // request the server may have seen is either counted or "unanswered".
      gracefulStop: '30s',
    },
  },
  thresholds: Object.assign(
    {
      'http_req_duration{scenario:redirects}': [`p(95)<${P95_MS}`, `p(99)<${P99_MS}`],
      'http_req_failed{scenario:redirects}': [`rate<${MAX_FAILED}`],
      'checks{scenario:redirects}': ['rate>0.99'],
      [UNAVAILABLE]: ['count==0'],
    },
    perLinkThresholds(),
  ),
  // `url` is left out of the system tags: one series per random slug would blow
  // up Prometheus. Requests are grouped by the `name` tag instead.
  systemTags: ['status', 'method', 'name', 'group', 'check', 'error', 'error_code', 'scenario', 'expected_response'],
  tags: { testid: TESTID },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  setupTimeout: '120s',
  teardownTimeout: '180s',
};

const CUM = cumulative(zipfWeights(LINKS, ZIPF_S));
const api = (token) => ({
  headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'User-Agent': 'shortener-loadtest/1 (k6 setup)' },
  tags: { name: 'api' },
  responseCallback: null,
});
const expectRedirect = http.expectedStatuses(...EXPECTED_STATUS.link.GET);
const expectNotFound = http.expectedStatuses(...EXPECTED_STATUS.unknown.GET);

export function setup() {
  if (!ADMIN_TOKEN) exec.test.abort('ADMIN_TOKEN is required');
  const optTestid = exec.test.options.tags && exec.test.options.tags.testid;
  const runId =
    env.RUN_ID ||
    (!env.TESTID && optTestid) ||
    `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
  if (!RUN_ID_RE.test(runId)) exec.test.abort(`RUN_ID must match ${RUN_ID_RE}`);

  const health = http.get(`${BASE_URL}/health`, { tags: { name: 'health' } });
  if (health.status !== 200) exec.test.abort(`GET /health answered ${health.status}; is the app up at ${BASE_URL}?`);

  const links = [];
  for (let i = 0; i < LINKS; i++) {
    const slug = slugFor(runId, i);
    const body = JSON.stringify({ url: `https://example.com/loadtest/${runId}/${linkTag(i)}`, slug });
    const res = http.post(`${BASE_URL}/api/links`, body, api(ADMIN_TOKEN));
    if (res.status === 409) exec.test.abort(`slug ${slug} already exists: pick a new RUN_ID (clicks would mix with an earlier run)`);
    if (res.status !== 201) exec.test.abort(`POST /api/links for ${slug} answered ${res.status}: ${res.body}`);
    links.push(slug);
  }
  console.log(`run ${runId}: created ${LINKS} links ${links[0]} .. ${links[links.length - 1]} at ${BASE_URL}`);
  return { runId, links };
}

export default function (data) {
  const req = chooseRequest(Math.random, CUM, traffic, MIX);
  const slug = req.target === 'link' ? data.links[req.linkIndex] : unknownSlug(data.runId, Math.random);
  const headers = { 'User-Agent': req.ua };
  if (req.referer) headers.Referer = req.referer;
  const tags = {
    name: req.target === 'link' ? `${req.method} /{slug}` : `${req.method} /{unknown}`,
    kind: req.kind,
    target: req.target,
  };
  const params = {
    headers,
    tags,
    redirects: 0, // we measure the shortener, not example.com
    timeout: REQ_TIMEOUT,
    responseCallback: req.target === 'link' ? expectRedirect : expectNotFound,
  };
  const url = `${BASE_URL}/${slug}`;
  const res = req.method === 'HEAD' ? http.head(url, params) : http.get(url, params);

  if (req.target === 'link') {
    check(res, {
      'link answers a redirect': (r) => EXPECTED_STATUS.link[req.method].includes(r.status),
      'redirect has a Location': (r) => !!r.headers.Location,
    });
  } else {
    check(res, { 'unknown slug answers 404': (r) => r.status === 404 });
  }

  const o = outcome(req, res.status);
  if (o === 'served' || o === 'uncertain') {
    const t = { link: linkTag(req.linkIndex), kind: req.kind };
    if (o === 'served') {
      served.add(1, t);
      delta.add(1, t);
    } else {
      uncertain.add(1, t);
    }
  }
}

export function teardown(data) {
  if (!data || !data.links) return;
  if (SETTLE_MS > 0) sleep(SETTLE_MS / 1000);
  statsUnavailable.add(0);
  for (let i = 0; i < data.links.length; i++) {
    const slug = data.links[i];
    const res = http.get(`${BASE_URL}/api/links/${slug}/stats`, api(ADMIN_TOKEN));
    let stats = null;
    try {
      stats = res.status === 200 ? res.json() : null;
    } catch (e) {
      stats = null;
    }
    if (!stats || typeof stats.humans !== 'number' || typeof stats.bots !== 'number') {
      console.error(`stats for ${slug}: HTTP ${res.status} ${String(res.body).slice(0, 200)}`);
      statsUnavailable.add(1, { link: linkTag(i) });
      continue;
    }
    for (const k of KINDS) {
      const n = k === 'human' ? stats.humans : stats.bots;
      const t = { link: linkTag(i), kind: k };
      recorded.add(n, t);
      // Counters accept negative values: served added +1 per redirect, this
      // takes the recorded clicks off, so the submetric count is served - recorded.
      delta.add(-n, t);
    }
  }
  if (env.CLEANUP === '1') {
    for (const slug of data.links) http.del(`${BASE_URL}/api/links/${slug}`, null, api(ADMIN_TOKEN));
  }
}

function metricValue(data, key, stat) {
  const m = data.metrics[key];
  return m && m.values && typeof m.values[stat] === 'number' ? m.values[stat] : null;
}

function fmtMs(v) {
  return v == null ? '-' : `${v.toFixed(1)} ms`;
}

export function handleSummary(data) {
  const links = (data.setup_data && data.setup_data.links) || [];
  const rows = rowsFromTally(tallyFromSummary(data.metrics), links);
  const result = reconcile(rows);

  const failedThresholds = [];
  for (const [name, m] of Object.entries(data.metrics)) {
    for (const [expr, r] of Object.entries(m.thresholds || {})) if (!r.ok) failedThresholds.push(`${name}: ${expr}`);
  }

  failedThresholds.sort();
  const d = 'http_req_duration{scenario:redirects}';
  const lines = [
    '',
    '=== shortener load test ===',
    `target         ${BASE_URL}   run ${(data.setup_data && data.setup_data.runId) || '?'}`,
    `requests       ${metricValue(data, 'http_reqs', 'count')} (${(metricValue(data, 'http_reqs', 'rate') || 0).toFixed(1)}/s), dropped iterations ${metricValue(data, 'dropped_iterations', 'count') || 0}`,
    `latency        p50 ${fmtMs(metricValue(data, d, 'med'))}  p95 ${fmtMs(metricValue(data, d, 'p(95)'))}  p99 ${fmtMs(metricValue(data, d, 'p(99)'))}  max ${fmtMs(metricValue(data, d, 'max'))}`,
    `failed         ${((metricValue(data, 'http_req_failed{scenario:redirects}', 'rate') || 0) * 100).toFixed(2)}% (404s on unknown slugs are expected, not failures)`,
    `checks         ${((metricValue(data, 'checks', 'rate') || 0) * 100).toFixed(2)}% passed`,
    '',
    'clicks: recorded (stats API) vs redirects served (3xx to GET), per link; HEAD and 404 never count',
    rows.length ? formatTable(result) : '(no links: setup did not complete, nothing to reconcile)',
    ...result.problems.map((p) => `  ! ${p}`),
    '',
    failedThresholds.length
      ? `THRESHOLDS CROSSED (${failedThresholds.length}):\n` + failedThresholds.map((t) => `  x ${t}`).join('\n')
      : 'all thresholds passed',
    '',
  ];
  const out = { stdout: lines.join('\n') };
  if (env.SUMMARY_JSON) out[env.SUMMARY_JSON] = JSON.stringify({ reconciliation: result, summary: data }, null, 2);
  return out;
}
