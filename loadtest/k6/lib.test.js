// node --test loadtest/k6/   (Node >= 18, no dependencies, no k6 needed)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  UNAVAILABLE, DELTA, SERVED, RECORDED, UNCERTAIN, SLUG_RE,
  chooseRequest, cumulative, formatTable, linkTag, outcome, parseMetricKey, pickIndex,
  reconcile, rowsFromTally, slugFor, submetricKey, tallyFromSummary, unknownSlug, zipfWeights,
} from './lib.js';

const traffic = JSON.parse(readFileSync(new URL('../traffic.json', import.meta.url)));

// Small deterministic PRNG (mulberry32) so the mix tests are reproducible.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('slugs are namespaced by run, valid for the API, and unknown slugs never collide', () => {
  assert.equal(slugFor('abc', 0), 'lt-abc-001');
  assert.equal(slugFor('abc', 19), 'lt-abc-020');
  const r = rng(1);
  for (let i = 0; i < 200; i++) {
    const u = unknownSlug('abc', r);
    assert.match(u, SLUG_RE);
    assert.doesNotMatch(u, /^lt-abc-\d{3}$/);
  }
  assert.throws(() => slugFor('x'.repeat(70), 0));
});

test('zipf popularity is decreasing and the cumulative ends at 1', () => {
  const w = zipfWeights(20, 1.1);
  for (let i = 1; i < w.length; i++) assert.ok(w[i] < w[i - 1]);
  const c = cumulative(w);
  assert.ok(Math.abs(c[c.length - 1] - 1) < 1e-12);
  assert.equal(pickIndex(c, 0), 0);
  assert.equal(pickIndex(c, 0.999999999), 19);
});

test('the mix has the requested shares (10k draws)', () => {
  const r = rng(42);
  const cum = cumulative(zipfWeights(20));
  const n = 10000;
  const c = { bot: 0, head: 0, unknown: 0, first: 0, last: 0, noRef: 0 };
  for (let i = 0; i < n; i++) {
    const q = chooseRequest(r, cum, traffic);
    if (q.kind === 'bot') c.bot++;
    if (q.method === 'HEAD') c.head++;
    if (q.target === 'unknown') { c.unknown++; assert.equal(q.linkIndex, null); }
    if (q.linkIndex === 0) c.first++;
    if (q.linkIndex === 19) c.last++;
    if (!q.referer) c.noRef++;
    assert.ok((q.kind === 'bot' ? traffic.bots : traffic.humans).includes(q.ua));
  }
  const near = (x, p, tol) => assert.ok(Math.abs(x / n - p) < tol, `${x / n} vs ${p}`);
  near(c.bot, 0.2, 0.02);
  near(c.head, 0.05, 0.01);
  near(c.unknown, 0.03, 0.01);
  assert.ok(c.first > 5 * c.last, 'link 001 is much more popular than link 020');
  assert.ok(c.noRef > 0 && c.noRef < n);
});

test('only a 3xx to GET on a real link is an expected click', () => {
  const link = { target: 'link', linkIndex: 0, method: 'GET' };
  assert.equal(outcome(link, 302), 'served');
  assert.equal(outcome(link, 301), 'served');
  assert.equal(outcome(link, 308), 'served');
  assert.equal(outcome({ ...link, method: 'HEAD' }, 302), 'none');
  assert.equal(outcome({ target: 'unknown', linkIndex: null, method: 'GET' }, 404), 'none');
  assert.equal(outcome(link, 404), 'none');
  assert.equal(outcome(link, 500), 'none');
  assert.equal(outcome(link, 0), 'uncertain');
});

test('submetric keys round-trip through parseMetricKey', () => {
  const k = submetricKey(DELTA, 6, 'bot');
  assert.equal(k, 'shortener_click_delta{link:007,kind:bot}');
  assert.deepEqual(parseMetricKey(k), { name: DELTA, tags: { link: '007', kind: 'bot' } });
  assert.deepEqual(parseMetricKey('http_reqs'), { name: 'http_reqs', tags: {} });
  assert.deepEqual(parseMetricKey('a{ kind : human , link:001}').tags, { kind: 'human', link: '001' });
});

function summaryMetrics(entries) {
  const m = { http_reqs: { type: 'counter', values: { count: 10, rate: 1 } } };
  for (const [i, kind, s, r, u] of entries) {
    m[submetricKey(SERVED, i, kind)] = { type: 'counter', values: { count: s, rate: 0 } };
    if (r != null) m[submetricKey(RECORDED, i, kind)] = { type: 'counter', values: { count: r, rate: 0 } };
    m[submetricKey(UNCERTAIN, i, kind)] = { type: 'counter', values: { count: u, rate: 0 } };
  }
  return m;
}

const rowsFrom = rowsFromTally;

test('all matched: ok, table says ALL MATCH', () => {
  const tally = tallyFromSummary(summaryMetrics([[0, 'human', 120, 120, 0], [0, 'bot', 30, 30, 0], [1, 'human', 7, 7, 0], [1, 'bot', 0, 0, 0]]));
  const res = reconcile(rowsFrom(tally, ['lt-r-001', 'lt-r-002']));
  assert.equal(res.ok, true);
  assert.deepEqual(res.problems, []);
  assert.match(formatTable(res), /ALL MATCH/);
});

test('a missing human click names the link and the kind', () => {
  const tally = tallyFromSummary(summaryMetrics([[0, 'human', 120, 119, 0], [0, 'bot', 30, 30, 0]]));
  const res = reconcile(rowsFrom(tally, ['lt-r-001']));
  assert.equal(res.ok, false);
  assert.equal(res.problems.length, 1);
  assert.match(res.problems[0], /lt-r-001 human: 1 click\(s\) missing/);
  assert.match(formatTable(res), /MISMATCH human missing 1/);
});

test('an extra bot click fails; bots and humans are not pooled', () => {
  // Totals agree (150) but one bot click was filed as human: both kinds are wrong.
  const tally = tallyFromSummary(summaryMetrics([[0, 'human', 120, 121, 0], [0, 'bot', 30, 29, 0]]));
  const res = reconcile(rowsFrom(tally, ['lt-r-001']));
  assert.equal(res.ok, false);
  assert.equal(res.problems.length, 2);
  assert.match(res.problems.join('\n'), /human: 1 extra/);
  assert.match(res.problems.join('\n'), /bot: 1 click\(s\) missing/);
});

test('stats that could not be read fail the link', () => {
  const tally = tallyFromSummary(summaryMetrics([[0, 'human', 5, null, 0], [0, 'bot', 1, null, 0]]));
  const res = reconcile(rowsFrom(tally, ['lt-r-001']));
  assert.equal(res.ok, false);
  assert.match(res.problems[0], /stats not available/);
});

test('unanswered requests are reported but never expected', () => {
  const tally = tallyFromSummary(summaryMetrics([[0, 'human', 10, 11, 1], [0, 'bot', 0, 0, 0]]));
  const res = reconcile(rowsFrom(tally, ['lt-r-001']));
  assert.equal(res.ok, false);
  assert.match(res.problems[0], /1 extra click\(s\) \(served 10, recorded 11, 1 unanswered\)/);
});

test('a link whose stats read failed is unreadable even though its submetrics exist', () => {
  const m = summaryMetrics([[0, 'human', 5, 0, 0], [0, 'bot', 1, 0, 0], [1, 'human', 2, 2, 0], [1, 'bot', 0, 0, 0]]);
  m[`${UNAVAILABLE}{link:001}`] = { type: 'counter', values: { count: 1, rate: 0 } };
  m[`${UNAVAILABLE}{link:002}`] = { type: 'counter', values: { count: 0, rate: 0 } };
  const res = reconcile(rowsFromTally(tallyFromSummary(m), ['lt-r-001', 'lt-r-002']));
  assert.equal(res.ok, false);
  assert.deepEqual(res.problems, ['lt-r-001: stats not available']);
  assert.equal(res.rows[1].ok, true);
});
