// k6 driver of the load-test kit: the mix of ../mix.json (planned by ../lib.js)
// at RATE req/s for DURATION, then the reconciliation of ../lib.js. Used by the
// compose `loadtest` profile; pushes its metrics by remote write for the
// "Load test" dashboard. See loadtest/README.md.
//
//   ADMIN_TOKEN=... k6 run loadtest/k6/scenario.js
//   ADMIN_TOKEN=... K6_PROMETHEUS_RW_SERVER_URL=http://prometheus:9090/api/v1/write \
//     k6 run -o experimental-prometheus-rw loadtest/k6/scenario.js
//
// Env: BASE_URL (http://127.0.0.1:3000), ADMIN_TOKEN (required), LINKS (20),
// RATE (50 req/s), DURATION (60s), RUN_ID (random; slugs lt-<RUN_ID>-001 ...),
// TESTID (= RUN_ID; the `testid` tag on every sample), P95_MS (200), P99_MS (500),
// PRE_VUS (20), MAX_VUS (200), REQ_TIMEOUT (10s), SETTLE_MS (1000), CLEANUP (0),
// SUMMARY_JSON (also write summary + reconciliation there).
//
// Exit code: 0 all thresholds hold; 99 one is crossed: latency, any unexpected
// status (5xx included), any unanswered request, or per link and kind
// served != recorded + unrecorded; 108 setup aborted.

import http from 'k6/http';
import { sleep } from 'k6';
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';
import * as kit from '../lib.js';

const env = __ENV;
const BASE_URL = (env.BASE_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '');
const ADMIN_TOKEN = env.ADMIN_TOKEN || '';
const LINKS = intEnv('LINKS', 20);
const REQ_TIMEOUT = env.REQ_TIMEOUT || '10s';
// k6 takes `options` from one init pass and hands them to every VU, so a random
// default is one value per run; setup() reads it back to name the slugs.
const TESTID = env.TESTID || env.RUN_ID || `${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;

if (LINKS < 1 || LINKS > 500) throw new Error('LINKS must be in 1..500');

function intEnv(name, dflt) {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = parseInt(v, 10);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  return n;
}

const mix = JSON.parse(open('../mix.json'));
// The plan's classes name slugs by run id, which only setup() knows: plan with a
// placeholder and map class -> link index (or unknown) at request time. A small
// chunk rotates user agents and referrers often.
const CLASSES = kit.plan(mix, { runId: 'x', links: LINKS, requests: 2000, chunk: 20 });
const SEQUENCE = kit.sequence(CLASSES);

const counters = Object.fromEntries(Object.entries(kit.K6).map(([k, name]) => [k, new Counter(name)]));

export const options = {
  scenarios: {
    redirects: {
      executor: 'constant-arrival-rate',
      rate: intEnv('RATE', 50),
      timeUnit: '1s',
      duration: env.DURATION || '60s',
      preAllocatedVUs: intEnv('PRE_VUS', 20),
      maxVUs: intEnv('MAX_VUS', 200),
      // Longer than REQ_TIMEOUT: no iteration is cut off mid-request.
      gracefulStop: '30s',
    },
  },
  thresholds: Object.assign(
    {
      'http_req_duration{scenario:redirects}': [`p(95)<${intEnv('P95_MS', 200)}`, `p(99)<${intEnv('P99_MS', 500)}`],
      'http_reqs{scenario:redirects}': ['count>=0'],
    },
    kit.k6Thresholds(LINKS),
  ),
  // No `url` tag: one series per slug would blow up Prometheus; `name` groups requests.
  systemTags: ['status', 'method', 'name', 'group', 'check', 'error', 'error_code', 'scenario', 'expected_response'],
  tags: { testid: TESTID },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)'],
  setupTimeout: '120s',
  teardownTimeout: '180s',
};

const api = {
  headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json', 'User-Agent': 'shortener-loadtest/1 (k6)' },
  tags: { name: 'api' },
  responseCallback: null,
};
const expectRedirect = http.expectedStatuses(...kit.REDIRECTS);
const expectNotFound = http.expectedStatuses(404);

export function setup() {
  if (!ADMIN_TOKEN) exec.test.abort('ADMIN_TOKEN is required');
  const optTestid = exec.test.options.tags && exec.test.options.tags.testid;
  const runId = env.RUN_ID || (!env.TESTID && optTestid) || `${Date.now().toString(36)}`;
  if (!kit.RUN_ID_RE.test(runId)) exec.test.abort(`RUN_ID must match ${kit.RUN_ID_RE}`);
  const health = http.get(`${BASE_URL}/health`, { tags: { name: 'health' } });
  if (health.status !== 200) exec.test.abort(`GET /health answered ${health.status}; is the app up at ${BASE_URL}?`);
  const links = [];
  for (let i = 0; i < LINKS; i++) {
    const slug = kit.slugFor(runId, i);
    const body = JSON.stringify({ url: `https://example.com/loadtest/${runId}/${kit.linkTag(i)}`, slug });
    const res = http.post(`${BASE_URL}/api/links`, body, api);
    if (res.status === 409) exec.test.abort(`slug ${slug} already exists: pick a new RUN_ID`);
    if (res.status !== 201) exec.test.abort(`POST /api/links for ${slug} answered ${res.status}: ${res.body}`);
    links.push(slug);
  }
  // Thresholds on counters need a sample to be evaluated.
  counters.unexpected.add(0);
  counters.unanswered.add(0);
  counters.unavailable.add(0);
  console.log(`run ${runId}: created ${LINKS} links ${links[0]} .. ${links[links.length - 1]} at ${BASE_URL}`);
  return { runId, links };
}

export default function (data) {
  const cls = CLASSES[SEQUENCE[exec.scenario.iterationInTest % SEQUENCE.length]];
  const onLink = cls.target === 'link';
  const slug = onLink ? data.links[cls.link] : `lt-${data.runId}-nope-${cls.kind}`;
  const headers = { 'User-Agent': cls.ua };
  if (cls.referer) headers.Referer = cls.referer;
  const params = {
    headers,
    tags: { name: `${cls.method} ${onLink ? '/{slug}' : '/{unknown}'}`, kind: cls.kind, target: cls.target },
    redirects: 0, // we measure the shortener, not example.com
    timeout: REQ_TIMEOUT,
    responseCallback: onLink ? expectRedirect : expectNotFound,
  };
  const url = `${BASE_URL}/${slug}`;
  const res = cls.method === 'HEAD' ? http.head(url, params) : http.get(url, params);
  const tags = { link: onLink ? kit.linkTag(cls.link) : 'none', kind: cls.kind };
  switch (kit.outcome(cls, res.status)) {
    case 'served':
      counters.served.add(1, tags);
      counters.delta.add(1, tags);
      break;
    case 'unexpected':
      counters.unexpected.add(1, { status: String(res.status) });
      break;
    case 'unanswered':
      counters.unanswered.add(1, tags);
      break;
  }
}

export function teardown(data) {
  if (!data || !data.links) return;
  if (intEnv('SETTLE_MS', 1000) > 0) sleep(intEnv('SETTLE_MS', 1000) / 1000);
  data.links.forEach((slug, i) => {
    const stats = http.get(`${BASE_URL}/api/links/${slug}/stats`, api);
    const link = http.get(`${BASE_URL}/api/links/${slug}`, api);
    const json = (r) => {
      try {
        return r.status === 200 ? r.json() : null;
      } catch (e) {
        return null;
      }
    };
    const o = kit.observed(json(stats), json(link));
    if (!o.recorded) {
      console.error(`stats of ${slug}: HTTP ${stats.status} ${String(stats.body).slice(0, 200)}`);
      counters.unavailable.add(1, { link: kit.linkTag(i) });
      return;
    }
    for (const kind of kit.KINDS) {
      const tags = { link: kit.linkTag(i), kind };
      counters.recorded.add(o.recorded[kind], tags);
      counters.unrecorded.add(o.unrecorded[kind], tags);
      // Counters accept negative values: served added +1 per redirect.
      counters.delta.add(-(o.recorded[kind] + o.unrecorded[kind]), tags);
    }
  });
  if (env.CLEANUP === '1') for (const slug of data.links) http.del(`${BASE_URL}/api/links/${slug}`, null, api);
}

function value(data, key, stat) {
  const m = data.metrics[key];
  return m && m.values && typeof m.values[stat] === 'number' ? m.values[stat] : null;
}

export function handleSummary(data) {
  const slugs = (data.setup_data && data.setup_data.links) || [];
  const { ledger, seen } = kit.fromK6Summary(data.metrics, slugs);
  ledger.requests = value(data, 'http_reqs{scenario:redirects}', 'count') || 0;
  const result = kit.reconcile(ledger, seen);
  const crossed = [];
  for (const [name, m] of Object.entries(data.metrics)) {
    for (const [expr, r] of Object.entries(m.thresholds || {})) if (!r.ok) crossed.push(`${name}: ${expr}`);
  }
  crossed.sort();
  const d = 'http_req_duration{scenario:redirects}';
  const ms = (v) => (v == null ? '-' : `${v.toFixed(1)} ms`);
  const lines = [
    '',
    `=== shortener load test (k6), run ${(data.setup_data && data.setup_data.runId) || '?'} against ${BASE_URL} ===`,
    `requests       ${ledger.requests} (${(value(data, 'http_reqs', 'rate') || 0).toFixed(1)}/s), dropped iterations ${value(data, 'dropped_iterations', 'count') || 0}`,
    `latency        p50 ${ms(value(data, d, 'med'))}  p95 ${ms(value(data, d, 'p(95)'))}  p99 ${ms(value(data, d, 'p(99)'))}  max ${ms(value(data, d, 'max'))}`,
    '',
    'clicks per link: served (3xx to GET) == recorded (stats) + unrecorded (failed click writes)',
    slugs.length ? kit.formatVerdict(result) : '(no links: setup did not complete, nothing to reconcile)',
    '',
    crossed.length ? `THRESHOLDS CROSSED (${crossed.length}):\n` + crossed.map((t) => `  x ${t}`).join('\n') : 'all thresholds passed',
    '',
  ];
  const out = { stdout: lines.join('\n') };
  if (env.SUMMARY_JSON) out[env.SUMMARY_JSON] = JSON.stringify({ reconciliation: result, summary: data }, null, 2);
  return out;
}
