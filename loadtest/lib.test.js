// node --test loadtest/   (Node >= 18, no dependencies, no k6 needed)
// The kit's pure logic. The kit itself runs against a real `spin up` in the
// e2e suite (tests/e2e/loadkit.rs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as kit from './lib.js';

const mix = JSON.parse(readFileSync(new URL('./mix.json', import.meta.url)));

const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const countOf = (classes, pred) => sum(classes.filter(pred).map((c) => c.n));

test('the plan has exactly the requested count, split by the shares of mix.json', () => {
  const classes = kit.plan(mix, { runId: 'r1', links: 20, requests: 5000 });
  assert.equal(countOf(classes, () => true), 5000);
  assert.equal(countOf(classes, (c) => c.target === 'unknown'), 150);
  assert.equal(countOf(classes, (c) => c.method === 'HEAD'), 250);
  const bots = countOf(classes, (c) => c.kind === 'bot');
  assert.ok(Math.abs(bots / 5000 - mix.bot_share) < 0.01, `${bots} bots`);
  const first = countOf(classes, (c) => c.link === 0);
  const last = countOf(classes, (c) => c.link === 19);
  assert.ok(first > 5 * last, `link 001 (${first}) is much more popular than link 020 (${last})`);
  assert.ok(classes.every((c) => c.n >= 1 && c.n <= 250));
  assert.deepEqual(kit.plan(mix, { runId: 'r1', links: 20, requests: 5000 }), classes, 'deterministic');
});

test('every class has an agent of its kind from mix.json, and slugs are namespaced by run', () => {
  const classes = kit.plan(mix, { runId: 'abc', links: 5, requests: 3000, chunk: 20 });
  for (const c of classes) {
    assert.ok((c.kind === 'bot' ? mix.bots : mix.humans).includes(c.ua));
    assert.ok(mix.referrers.includes(c.referer));
    if (c.target === 'link') assert.equal(c.slug, kit.slugFor('abc', c.link));
    else assert.doesNotMatch(c.slug, /^lt-abc-\d{3}$/);
  }
  assert.equal(new Set(classes.map((c) => c.ua)).size, mix.humans.length + mix.bots.length);
  assert.equal(new Set(classes.map((c) => c.id)).size, classes.length);
  assert.throws(() => kit.slugFor('x'.repeat(70), 0));
});

test('the k6 sequence keeps the mix in any stretch of it', () => {
  const classes = kit.plan(mix, { runId: 'x', links: 20, requests: 2000, chunk: 20 });
  const seq = kit.sequence(classes);
  assert.equal(seq.length, 2000);
  const window = seq.slice(500, 1000).map((i) => classes[i]);
  const share = (pred) => window.filter(pred).length / window.length;
  assert.ok(Math.abs(share((c) => c.kind === 'bot') - mix.bot_share) < 0.03);
  assert.ok(Math.abs(share((c) => c.method === 'HEAD') - mix.head_share) < 0.02);
  assert.ok(Math.abs(share((c) => c.target === 'unknown') - mix.unknown_share) < 0.02);
});

test('only a redirect to a GET on a link is a click; 5xx, 429 and a 404 on a link are unexpected', () => {
  const get = { target: 'link', method: 'GET' };
  for (const s of kit.REDIRECTS) assert.equal(kit.outcome(get, s), 'served');
  assert.equal(kit.outcome({ ...get, method: 'HEAD' }, 302), 'ignored');
  assert.equal(kit.outcome({ target: 'unknown', method: 'GET' }, 404), 'ignored');
  for (const s of [200, 404, 410, 429, 500, 503]) assert.equal(kit.outcome(get, s), 'unexpected');
  assert.equal(kit.outcome({ target: 'unknown', method: 'GET' }, 500), 'unexpected');
  assert.equal(kit.outcome(get, 0), 'unanswered');
});

const classes = [
  { id: 'r1', target: 'link', link: 0, slug: 'lt-r-001', method: 'GET', kind: 'human', n: 10 },
  { id: 'r2', target: 'link', link: 0, slug: 'lt-r-001', method: 'GET', kind: 'bot', n: 4 },
  { id: 'r3', target: 'link', link: 0, slug: 'lt-r-001', method: 'HEAD', kind: 'human', n: 2 },
  { id: 'r4', target: 'unknown', link: null, slug: 'lt-r-nope-human', method: 'GET', kind: 'human', n: 3 },
];
const clean = { r1: { 302: 10 }, r2: { 302: 4 }, r3: { 302: 2 }, r4: { 404: 3 } };
const seenOf = (humans, bots, unrecorded) => ({
  'lt-r-001': kit.observed({ humans, bots }, unrecorded ? { unrecorded_clicks: unrecorded } : {}),
});

test('served == recorded per link and kind: OK; HEAD and 404 are no clicks', () => {
  const ledger = kit.tally(classes, clean);
  assert.deepEqual(ledger.served, { 'lt-r-001': { human: 10, bot: 4 } });
  assert.equal(ledger.ignored, 5);
  const r = kit.reconcile(ledger, seenOf(10, 4));
  assert.equal(r.ok, true, r.problems.join('\n'));
  assert.match(kit.formatVerdict(r), /RESULT: OK/);
});

test('any 5xx fails the verdict even when every served redirect was recorded', () => {
  // Once 219 of 5,000 answered 500 and an earlier verdict said OK.
  const ledger = kit.tally(classes, { ...clean, r1: { 302: 7, 500: 3 } });
  const r = kit.reconcile(ledger, seenOf(7, 4));
  assert.equal(r.ok, false);
  assert.deepEqual(r.problems, ['3 answers with an unexpected status (500x3)']);
  assert.match(kit.formatVerdict(r), /RESULT: FAIL/);
});

test('requests without an answer, or fewer answers than planned, fail the verdict', () => {
  const r = kit.reconcile(kit.tally(classes, { ...clean, r2: { 302: 3, 0: 1 } }), seenOf(10, 3));
  assert.deepEqual(r.problems, ['1 request without an answer']);
  const short = kit.reconcile(kit.tally(classes, { ...clean, r1: { 302: 9 } }), seenOf(9, 4));
  assert.deepEqual(short.problems, ['18 of 19 planned requests were sent']);
});

test('a missing click names the link and kind; humans and bots are not pooled', () => {
  const ledger = kit.tally(classes, clean);
  const missing = kit.reconcile(ledger, seenOf(9, 4));
  assert.deepEqual(missing.problems, ['lt-r-001 human: 1 click(s) missing (served 10, recorded 9, unrecorded 0)']);
  assert.match(kit.formatVerdict(missing), /MISMATCH human missing 1/);
  const swapped = kit.reconcile(ledger, seenOf(11, 3));
  assert.equal(swapped.problems.length, 2, 'a bot filed as human is wrong for both kinds');
});

test('served == recorded + unrecorded: failed writes that were counted reconcile', () => {
  const ledger = kit.tally(classes, clean);
  assert.equal(kit.reconcile(ledger, seenOf(8, 4, { human: 2, bot: 0 })).ok, true);
  const extra = kit.reconcile(ledger, seenOf(10, 4, { human: 1, bot: 0 }));
  assert.deepEqual(extra.problems, ['lt-r-001 human: 1 extra click(s) (served 10, recorded 10, unrecorded 1)']);
});

test('a missing unrecorded_clicks field counts as zero; unreadable stats fail', () => {
  assert.deepEqual(kit.observed({ humans: 1, bots: 2 }, { slug: 'a', clicks: 3 }).unrecorded, { human: 0, bot: 0 });
  const r = kit.reconcile(kit.tally(classes, clean), { 'lt-r-001': kit.observed({ error: 'x' }, null) });
  assert.deepEqual(r.problems, ['lt-r-001: stats not available']);
});

// k6: counters in handleSummary's data.metrics.
function k6Metrics({ served, recorded, unrecorded = [0, 0], unexpected = {}, unanswered = 0, unavailable = 0 }) {
  const c = (count) => ({ type: 'counter', values: { count, rate: 0 } });
  const m = { [kit.K6.unanswered]: c(unanswered), [kit.K6.unexpected]: c(sum(Object.values(unexpected))) };
  kit.KINDS.forEach((kind, k) => {
    m[`${kit.K6.served}{link:001,kind:${kind}}`] = c(served[k]);
    m[`${kit.K6.recorded}{link:001,kind:${kind}}`] = c(recorded[k]);
    m[`${kit.K6.unrecorded}{link:001,kind:${kind}}`] = c(unrecorded[k]);
  });
  m[`${kit.K6.unavailable}{link:001}`] = c(unavailable);
  for (const [s, n] of Object.entries(unexpected)) m[`${kit.K6.unexpected}{status:${s}}`] = c(n);
  return m;
}

test('k6 counters give the same verdict as the oha ledger', () => {
  const verdict = (metrics) => {
    const { ledger, seen } = kit.fromK6Summary(metrics, ['lt-r-001']);
    return kit.reconcile(ledger, seen);
  };
  assert.equal(verdict(k6Metrics({ served: [10, 4], recorded: [10, 4] })).ok, true);
  assert.equal(verdict(k6Metrics({ served: [10, 4], recorded: [8, 4], unrecorded: [2, 0] })).ok, true);
  assert.deepEqual(verdict(k6Metrics({ served: [10, 4], recorded: [10, 4], unexpected: { 500: 2, 418: 1 } })).problems, [
    '3 answers with an unexpected status (500x2, 1 other)',
  ]);
  assert.match(verdict(k6Metrics({ served: [10, 4], recorded: [9, 4] })).problems[0], /human: 1 click\(s\) missing/);
  assert.deepEqual(verdict(k6Metrics({ served: [1, 0], recorded: [0, 0], unavailable: 1 })).problems, ['lt-r-001: stats not available']);
  assert.deepEqual(verdict(k6Metrics({ served: [1, 0], recorded: [1, 0], unanswered: 2 })).problems, ['2 requests without an answer']);
});

test('k6 thresholds gate every rule of reconcile() at zero', () => {
  const t = kit.k6Thresholds(2);
  for (const m of [kit.K6.unexpected, kit.K6.unanswered, kit.K6.unavailable]) assert.deepEqual(t[m], ['count==0']);
  for (const link of ['001', '002']) {
    for (const kind of kit.KINDS) assert.deepEqual(t[`${kit.K6.delta}{link:${link},kind:${kind}}`], ['count==0']);
    assert.deepEqual(t[`${kit.K6.unavailable}{link:${link}}`], ['count==0']);
  }
});

test('every lib.js name the k6 scenario uses exists (k6 itself is not run here)', () => {
  const src = readFileSync(new URL('./k6/scenario.js', import.meta.url), 'utf8');
  const used = new Set([...src.matchAll(/\bkit\.(\w+)/g)].map((m) => m[1]));
  assert.ok(used.size > 5);
  for (const name of used) assert.ok(name in kit, `lib.js has no export ${name}`);
  for (const k of src.matchAll(/\bcounters\.(\w+)/g)) assert.ok(k[1] in kit.K6, `kit.K6 has no ${k[1]}`);
});
