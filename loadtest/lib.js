// The load-test kit's one traffic model and one reconciliation, shared by both
// drivers: k6/scenario.js (k6, the compose `loadtest` profile) and run-local.js
// (oha against a `spin up` on loopback). See loadtest/README.md.
//
// Pure: no k6 or node imports, so the same file runs under k6, under node and
// under `node --test` (lib.test.js).
//
//   plan()       the mix (mix.json) as request classes with exact counts
//   outcome()    what one answer means for the click ledger
//   tally()      a ledger: requests per status, redirects served per link and kind
//   reconcile()  the verdict: no unexpected status, no unanswered request, and per
//                link and kind: served == recorded + unrecorded

export const KINDS = ['human', 'bot'];
export const REDIRECTS = [301, 302, 307, 308];
export const RUN_ID_RE = /^[A-Za-z0-9_-]{1,40}$/;
const SLUG_RE = /^[A-Za-z0-9_-]{3,64}$/;

// "001", "002", ...: link i's metric tag (few series per run, unlike the slug).
export function linkTag(i) {
  return String(i + 1).padStart(3, '0');
}

export function slugFor(runId, i) {
  const slug = `lt-${runId}-${linkTag(i)}`;
  if (!SLUG_RE.test(slug)) throw new Error(`bad slug ${slug}: RUN_ID must match ${RUN_ID_RE}`);
  return slug;
}

export function checkMix(mix) {
  for (const k of ['bot_share', 'head_share', 'unknown_share']) {
    if (!(mix[k] >= 0 && mix[k] <= 1)) throw new Error(`mix.${k} must be in 0..1`);
  }
  if (mix.head_share + mix.unknown_share >= 1) throw new Error('mix: head_share + unknown_share must be < 1');
  if (!(mix.zipf_s >= 0)) throw new Error('mix.zipf_s must be >= 0');
  for (const k of ['humans', 'bots', 'referrers']) {
    if (!Array.isArray(mix[k]) || !mix[k].length) throw new Error(`mix.${k} must be a non-empty list`);
  }
  return mix;
}

// Link popularity: rank i (0-based) gets weight 1/(i+1)^zipf_s. The one model
// of it: plan() here, and the e2e suite's URL lists (tests/e2e/drive.rs).
export function zipfWeights(mix, links) {
  return Array.from({ length: links }, (_, i) => 1 / Math.pow(i + 1, mix.zipf_s));
}

// Largest-remainder split of `total` into integers proportional to `weights`.
export function split(total, weights) {
  const sum = weights.reduce((a, b) => a + b, 0);
  const raw = weights.map((w) => (sum > 0 ? (total * w) / sum : 0));
  const out = raw.map(Math.floor);
  let rest = total - out.reduce((a, b) => a + b, 0);
  const order = raw.map((x, i) => [x - out[i], i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (rest-- <= 0) break;
    out[i] += 1;
  }
  return out;
}

// The mix as request classes: one URL, method, kind, User-Agent and Referer
// each, with an exact count `n` (at most `chunk`). oha runs one class per
// process (`-n n`); k6 cycles through sequence(classes). No randomness: the
// same arguments give the same plan. A class:
//   { id, target: 'link'|'unknown', link (index or null), slug, method, kind, ua, referer, n }
// `referer` '' means "send none".
export function plan(mix, { runId, links, requests, chunk = 250 }) {
  checkMix(mix);
  if (!(links >= 1)) throw new Error('need at least one link');
  if (!(requests >= 1)) throw new Error('need at least one request');
  if (!(chunk >= 1)) throw new Error('chunk must be >= 1');
  const nUnknown = Math.round(requests * mix.unknown_share);
  const nHead = Math.round(requests * mix.head_share);
  const zipf = zipfWeights(mix, links);
  const byKind = (n) => {
    const [bot, human] = split(n, [mix.bot_share, 1 - mix.bot_share]);
    return { human, bot };
  };
  const picks = { human: 0, bot: 0 };
  const groups = [];
  const add = (target, link, method, kind, n) => {
    const pool = kind === 'bot' ? mix.bots : mix.humans;
    const slug = target === 'link' ? slugFor(runId, link) : `lt-${runId}-nope-${kind}`;
    const chunks = [];
    for (let left = n; left > 0; left -= chunk) {
      // Round-robin over agents, and over referrers at another pace, so classes vary.
      const p = picks[kind]++;
      const referer = mix.referrers[(p + Math.floor(p / pool.length)) % mix.referrers.length];
      chunks.push({ target, link, slug, method, kind, ua: pool[p % pool.length], referer, n: Math.min(left, chunk) });
    }
    groups.push(chunks);
  };
  split(requests - nUnknown - nHead, zipf).forEach((n, i) => {
    const k = byKind(n);
    add('link', i, 'GET', 'human', k.human);
    add('link', i, 'GET', 'bot', k.bot);
  });
  split(nHead, zipf).forEach((n, i) => {
    const k = byKind(n);
    add('link', i, 'HEAD', 'human', k.human);
    add('link', i, 'HEAD', 'bot', k.bot);
  });
  const u = byKind(nUnknown);
  add('unknown', null, 'GET', 'human', u.human);
  add('unknown', null, 'GET', 'bot', u.bot);
  // First chunk of every group, then the second ones...: links and kinds interleave.
  const classes = [];
  const rounds = Math.max(...groups.map((g) => g.length));
  for (let round = 0; round < rounds; round++) {
    for (const g of groups) if (g[round]) classes.push(g[round]);
  }
  return classes.map((c, i) => ({ id: `r${String(i + 1).padStart(4, '0')}`, ...c }));
}

// Class indices, one per request, each class spread evenly over the sequence:
// any stretch of it is close to the mix. k6 sends request i from class
// sequence[i % length].
export function sequence(classes) {
  const slots = [];
  classes.forEach((c, k) => {
    for (let j = 0; j < c.n; j++) slots.push([(j + 0.5) / c.n, k]);
  });
  slots.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return slots.map((s) => s[1]);
}

export function expectedStatuses(cls) {
  return cls.target === 'link' ? REDIRECTS : [404];
}

// What one answer (status 0: none, e.g. timeout or reset) means:
//   'served'     a redirect to a GET on a link: exactly one click is owed
//   'ignored'    an expected answer that is no click (HEAD, 404 on an unknown slug)
//   'unexpected' any other status (5xx, 429, a 404 on a link...): the run fails
//   'unanswered' no answer: the server may or may not have counted it; the run fails
export function outcome(cls, status) {
  if (!status) return 'unanswered';
  if (!expectedStatuses(cls).includes(status)) return 'unexpected';
  return cls.target === 'link' && cls.method === 'GET' ? 'served' : 'ignored';
}

// A ledger of what the server answered. `answers` per class id:
// { [status]: count }, status 0 for requests without an answer.
export function tally(classes, answers) {
  const ledger = {
    planned: 0,
    requests: 0,
    statuses: {},
    unexpected: {},
    unanswered: 0,
    ignored: 0,
    served: {},
  };
  for (const c of classes) {
    if (c.target === 'link') ledger.served[c.slug] = ledger.served[c.slug] || { human: 0, bot: 0 };
  }
  for (const c of classes) {
    ledger.planned += c.n;
    for (const [s, n] of Object.entries(answers[c.id] || {})) {
      const status = Number(s);
      ledger.requests += n;
      ledger.statuses[status] = (ledger.statuses[status] || 0) + n;
      const o = outcome(c, status);
      if (o === 'served') ledger.served[c.slug][c.kind] += n;
      else if (o === 'ignored') ledger.ignored += n;
      else if (o === 'unexpected') ledger.unexpected[status] = (ledger.unexpected[status] || 0) + n;
      else ledger.unanswered += n;
    }
  }
  return ledger;
}

// What the app says about one link: `GET /api/links/{slug}/stats` (humans,
// bots) and `GET /api/links/{slug}` (unrecorded_clicks: served redirects whose
// click write failed; absent on builds before that field: zeros).
// `recorded` is null when the stats were unreadable.
export function observed(stats, link) {
  const ok = stats && Number.isInteger(stats.humans) && Number.isInteger(stats.bots);
  const u = (link && link.unrecorded_clicks) || {};
  return {
    recorded: ok ? { human: stats.humans, bot: stats.bots } : null,
    unrecorded: { human: u.human || 0, bot: u.bot || 0 },
  };
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

// The verdict. `seen` is { [slug]: observed(...) }. ok only when every request
// got an expected answer and, per link and kind, served == recorded + unrecorded.
export function reconcile(ledger, seen) {
  const problems = [];
  const unexpected = Object.values(ledger.unexpected).reduce((a, b) => a + b, 0);
  if (unexpected) {
    const by = Object.entries(ledger.unexpected).map(([s, n]) => (s === 'other' ? `${n} other` : `${s}x${n}`)).join(', ');
    problems.push(`${plural(unexpected, 'answer', 'answers')} with an unexpected status (${by})`);
  }
  if (ledger.unanswered) problems.push(`${plural(ledger.unanswered, 'request', 'requests')} without an answer`);
  if (ledger.planned != null && ledger.requests !== ledger.planned) {
    problems.push(`${ledger.requests} of ${ledger.planned} planned requests were sent`);
  }
  const rows = Object.keys(ledger.served)
    .sort()
    .map((slug) => {
      const o = seen[slug] || { recorded: null, unrecorded: { human: 0, bot: 0 } };
      const row = { slug, ok: o.recorded != null };
      if (!row.ok) problems.push(`${slug}: stats not available`);
      for (const k of KINDS) {
        const served = ledger.served[slug][k];
        const recorded = o.recorded ? o.recorded[k] : null;
        const unrecorded = o.unrecorded[k];
        const delta = recorded == null ? null : recorded + unrecorded - served;
        row[k] = { served, recorded, unrecorded, delta };
        if (delta) {
          row.ok = false;
          const what = delta < 0 ? `${-delta} click(s) missing` : `${delta} extra click(s)`;
          problems.push(`${slug} ${k}: ${what} (served ${served}, recorded ${recorded}, unrecorded ${unrecorded})`);
        }
      }
      return row;
    });
  return { ok: problems.length === 0, rows, problems };
}

// The reconciliation table and the verdict line.
export function formatVerdict(result) {
  const w = Math.max(5, ...result.rows.map((r) => r.slug.length));
  const cols = ['hum.served', 'hum.rec', 'hum.unrec', 'bot.served', 'bot.rec', 'bot.unrec'];
  const line = (name, vals, verdict) =>
    name.padEnd(w) + '  ' + vals.map((v) => String(v == null ? '?' : v).padStart(10)).join(' ') + '  ' + verdict;
  const head = line('slug', cols, 'result');
  const out = [head, '-'.repeat(head.length)];
  const tot = [0, 0, 0, 0, 0, 0];
  for (const r of result.rows) {
    const vals = KINDS.flatMap((k) => [r[k].served, r[k].recorded, r[k].unrecorded]);
    vals.forEach((v, i) => (tot[i] += v || 0));
    const parts = KINDS.map((k) => {
      const d = r[k].delta;
      return d == null ? `${k} ?` : d < 0 ? `${k} missing ${-d}` : d > 0 ? `${k} extra ${d}` : '';
    }).filter(Boolean);
    out.push(line(r.slug, vals, r.ok ? 'ok' : `MISMATCH ${parts.join(', ')}`));
  }
  out.push('-'.repeat(head.length));
  out.push(line('total', tot, result.rows.every((r) => r.ok) ? 'all match' : 'MISMATCH'));
  out.push(...result.problems.map((p) => `  ! ${p}`));
  out.push(
    result.ok
      ? 'RESULT: OK, every request got an expected answer and every served redirect is recorded or counted unrecorded'
      : `RESULT: FAIL, ${plural(result.problems.length, 'problem', 'problems')}`,
  );
  return out.join('\n');
}

// --- k6: the same ledger from counters -------------------------------------------
// VUs share no memory, so k6/scenario.js keeps the ledger in counters tagged
// {link, kind}; handleSummary rebuilds it with fromK6Summary() and reconciles
// it like oha's. The exit code comes from k6Thresholds(): the same rules as
// reconcile(), as thresholds (k6 exits 99 when one is crossed).
export const K6 = {
  served: 'shortener_redirects_served', // +1 per redirect to a GET on a link
  recorded: 'shortener_clicks_recorded', // teardown: stats humans/bots
  unrecorded: 'shortener_clicks_unrecorded', // teardown: unrecorded_clicks
  delta: 'shortener_click_delta', // served - recorded - unrecorded; must be 0
  unexpected: 'shortener_unexpected_status', // tagged {status}; must be 0
  unanswered: 'shortener_unanswered', // no answer; must be 0
  unavailable: 'shortener_stats_unavailable', // stats unreadable, tagged {link}; must be 0
};
// Statuses broken down in the summary (any other is still counted and fails).
export const K6_STATUSES = [200, 400, 401, 403, 404, 410, 413, 429, 500, 502, 503, 504];

const sub = (metric, tags) => `${metric}{${Object.entries(tags).map(([k, v]) => `${k}:${v}`).join(',')}}`;

export function k6Thresholds(links) {
  const t = {
    [K6.unexpected]: ['count==0'],
    [K6.unanswered]: ['count==0'],
    [K6.unavailable]: ['count==0'],
  };
  // Submetrics that exist only so that handleSummary sees their values.
  for (const status of K6_STATUSES) t[sub(K6.unexpected, { status })] = ['count>=0'];
  for (let i = 0; i < links; i++) {
    const link = linkTag(i);
    t[sub(K6.unavailable, { link })] = ['count==0'];
    for (const kind of KINDS) {
      t[sub(K6.delta, { link, kind })] = ['count==0'];
      for (const m of [K6.served, K6.recorded, K6.unrecorded]) t[sub(m, { link, kind })] = ['count>=0'];
    }
  }
  return t;
}

// handleSummary's data.metrics -> { ledger, seen } for reconcile().
export function fromK6Summary(metrics, slugs) {
  const count = (key) => (metrics[key] && metrics[key].values && metrics[key].values.count) || 0;
  const ledger = { planned: null, requests: 0, statuses: {}, unexpected: {}, unanswered: count(K6.unanswered), ignored: 0, served: {} };
  let broken = 0;
  for (const status of K6_STATUSES) {
    const n = count(sub(K6.unexpected, { status }));
    if (n) ledger.unexpected[status] = n;
    broken += n;
  }
  if (count(K6.unexpected) > broken) ledger.unexpected.other = count(K6.unexpected) - broken;
  const seen = {};
  slugs.forEach((slug, i) => {
    const link = linkTag(i);
    const of = (m, kind) => count(sub(m, { link, kind }));
    ledger.served[slug] = { human: of(K6.served, 'human'), bot: of(K6.served, 'bot') };
    // teardown counts an unreadable link in `unavailable` (a teardown that did
    // not run fails the k6 run by itself).
    const read = !count(sub(K6.unavailable, { link }));
    seen[slug] = {
      recorded: read ? { human: of(K6.recorded, 'human'), bot: of(K6.recorded, 'bot') } : null,
      unrecorded: { human: of(K6.unrecorded, 'human'), bot: of(K6.unrecorded, 'bot') },
    };
  });
  return { ledger, seen };
}
