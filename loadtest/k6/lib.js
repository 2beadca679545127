// Pure helpers for scenario.js: traffic selection and click reconciliation.
//
// No k6 imports here, so the same file runs under k6 and under `node --test`
// (see lib.test.js). Randomness is always injected (`rng`, returning [0, 1)).

export const SLUG_RE = /^[A-Za-z0-9_-]{3,64}$/;
export const RUN_ID_RE = /^[A-Za-z0-9_-]{1,40}$/;

// Metric names shared by scenario.js, handleSummary and the README.
export const SERVED = 'shortener_redirects_served'; // +1 per 3xx answer to a GET /{slug}
export const RECORDED = 'shortener_clicks_recorded'; // what the stats API reported (teardown)
export const UNCERTAIN = 'shortener_redirects_uncertain'; // GET sent, no answer (timeout/reset)
export const DELTA = 'shortener_click_delta'; // served - recorded; threshold count==0
export const UNAVAILABLE = 'shortener_stats_unavailable'; // stats API unreadable (per link)
export const KINDS = ['human', 'bot'];

// Tag value for link i (0-based): "001", "002", ... Stable across runs, so the
// Prometheus series stay few (LINKS x 2 kinds); the run itself is told apart by
// the `testid` tag.
export function linkTag(i) {
  return String(i + 1).padStart(3, '0');
}

export function slugFor(runId, i) {
  const slug = `lt-${runId}-${linkTag(i)}`;
  if (!SLUG_RE.test(slug)) throw new Error(`bad slug ${slug}`);
  return slug;
}

// Zipf-like popularity: weight of rank i (0-based) is 1/(i+1)^s.
export function zipfWeights(n, s = 1.1) {
  if (!(n >= 1)) throw new Error('need at least one link');
  const w = [];
  for (let i = 0; i < n; i++) w.push(1 / Math.pow(i + 1, s));
  return w;
}

export function cumulative(weights) {
  const total = weights.reduce((a, b) => a + b, 0);
  let acc = 0;
  return weights.map((x) => (acc += x / total));
}

// Index into a cumulative distribution for r in [0, 1).
export function pickIndex(cum, r) {
  for (let i = 0; i < cum.length; i++) if (r < cum[i]) return i;
  return cum.length - 1;
}

export function pick(list, rng) {
  return list[Math.floor(rng() * list.length) % list.length];
}

export const DEFAULT_MIX = { botShare: 0.2, headShare: 0.05, unknownShare: 0.03 };

// One request of the mix. Returns
//   { target: 'link'|'unknown', linkIndex, method: 'GET'|'HEAD', kind, ua, referer }
// linkIndex is null for unknown slugs. `referer` '' means "send no Referer".
export function chooseRequest(rng, cum, traffic, mix = DEFAULT_MIX) {
  const kind = rng() < mix.botShare ? 'bot' : 'human';
  const ua = pick(kind === 'bot' ? traffic.bots : traffic.humans, rng);
  const referer = pick(traffic.referrers, rng);
  const r = rng();
  if (r < mix.unknownShare) {
    return { target: 'unknown', linkIndex: null, method: 'GET', kind, ua, referer };
  }
  const method = r < mix.unknownShare + mix.headShare ? 'HEAD' : 'GET';
  const linkIndex = pickIndex(cum, rng());
  return { target: 'link', linkIndex, method, kind, ua, referer };
}

// A slug that cannot exist: created slugs end in a 3-digit index.
export function unknownSlug(runId, rng) {
  return `lt-${runId}-nope-${Math.floor(rng() * 1e9).toString(36)}`;
}

// What a response means for the click ledger.
//   'served'    GET on a real link answered 3xx: exactly one click expected
//   'uncertain' GET on a real link with no HTTP answer (status 0): the server may
//               or may not have recorded it; reported, never expected
//   'none'      everything else (HEAD, 404 on unknown slugs, 4xx/5xx): no click
export function outcome(req, status) {
  if (req.target !== 'link' || req.method !== 'GET') return 'none';
  if (status >= 300 && status < 400) return 'served';
  if (status === 0) return 'uncertain';
  return 'none';
}

export const EXPECTED_STATUS = {
  link: { GET: [301, 302, 307, 308], HEAD: [301, 302, 307, 308] },
  unknown: { GET: [404], HEAD: [404] },
};

// Parse "metric{a:b,c:d}" (a threshold / submetric key as found in
// handleSummary's data.metrics) -> { name, tags } or null.
export function parseMetricKey(key) {
  const m = /^([^{]+)\{(.*)\}$/.exec(key);
  if (!m) return { name: key, tags: {} };
  const tags = {};
  for (const part of m[2].split(',')) {
    const idx = part.indexOf(':');
    if (idx < 0) return null;
    tags[part.slice(0, idx).trim()] = part.slice(idx + 1).trim();
  }
  return { name: m[1].trim(), tags };
}

// Threshold keys that make k6 keep a per-(link, kind) submetric.
export function submetricKey(metric, i, kind) {
  return `${metric}{link:${linkTag(i)},kind:${kind}}`;
}

// From handleSummary's data.metrics, per link tag and kind:
//   { '001': { human: {served, recorded, uncertain}, bot: {...} }, ... }
export function tallyFromSummary(metrics) {
  const out = {};
  const field = { [SERVED]: 'served', [RECORDED]: 'recorded', [UNCERTAIN]: 'uncertain' };
  for (const key of Object.keys(metrics || {})) {
    const p = parseMetricKey(key);
    if (!p || !p.tags.link) continue;
    const v = metrics[key].values || {};
    const count = typeof v.count === 'number' ? v.count : 0;
    if (p.name === UNAVAILABLE) {
      out[p.tags.link] = out[p.tags.link] || {};
      out[p.tags.link].unavailable = count;
      continue;
    }
    if (!field[p.name] || !KINDS.includes(p.tags.kind)) continue;
    out[p.tags.link] = out[p.tags.link] || {};
    out[p.tags.link][p.tags.kind] = out[p.tags.link][p.tags.kind] || {
      served: 0,
      recorded: null,
      uncertain: 0,
    };
    out[p.tags.link][p.tags.kind][field[p.name]] = count;
  }
  return out;
}

// Reconcile input rows from tallyFromSummary's output and the created slugs.
export function rowsFromTally(tally, slugs) {
  const empty = { served: 0, recorded: null, uncertain: 0 };
  return slugs.map((slug, i) => {
    const t = tally[linkTag(i)] || {};
    const h = t.human || empty;
    const b = t.bot || empty;
    const unreadable = t.unavailable > 0 || (h.recorded == null && b.recorded == null);
    return {
      slug,
      served: { human: h.served, bot: b.served },
      recorded: unreadable ? null : { human: h.recorded || 0, bot: b.recorded || 0 },
      uncertain: { human: h.uncertain, bot: b.uncertain },
    };
  });
}

// links: [{ slug, served: {human, bot}, recorded: {human, bot} | null,
//           uncertain: {human, bot} }]
// recorded null = stats could not be read (counts as a failure).
// Returns { ok, rows, problems }.
export function reconcile(links) {
  const rows = [];
  const problems = [];
  for (const l of links) {
    const row = { slug: l.slug };
    let ok = l.recorded != null;
    if (!ok) problems.push(`${l.slug}: stats not available`);
    for (const k of KINDS) {
      const served = (l.served && l.served[k]) || 0;
      const unc = (l.uncertain && l.uncertain[k]) || 0;
      const rec = l.recorded ? l.recorded[k] : null;
      row[k] = { served, recorded: rec, uncertain: unc, delta: rec == null ? null : rec - served };
      if (rec != null && rec !== served) {
        ok = false;
        const d = rec - served;
        problems.push(
          `${l.slug} ${k}: ${d < 0 ? `${-d} click(s) missing` : `${d} extra click(s)`} ` +
            `(served ${served}, recorded ${rec}${unc ? `, ${unc} unanswered` : ''})`,
        );
      }
    }
    row.ok = ok;
    rows.push(row);
  }
  return { ok: problems.length === 0, rows, problems };
}

function pad(s, n, right = false) {
  s = String(s);
  return right ? s.padStart(n) : s.padEnd(n);
}

export function formatTable(result) {
  const w = Math.max(4, ...result.rows.map((r) => r.slug.length));
  const head =
    pad('slug', w) +
    '  ' +
    ['hum.served', 'hum.rec', 'bot.served', 'bot.rec', 'unansw.'].map((h) => pad(h, 10, true)).join(' ') +
    '  result';
  const lines = [head, '-'.repeat(head.length)];
  const tot = { hs: 0, hr: 0, bs: 0, br: 0, u: 0 };
  for (const r of result.rows) {
    const show = (v) => (v == null ? '?' : v);
    const u = r.human.uncertain + r.bot.uncertain;
    tot.hs += r.human.served;
    tot.bs += r.bot.served;
    tot.hr += r.human.recorded || 0;
    tot.br += r.bot.recorded || 0;
    tot.u += u;
    let verdict = 'ok';
    if (!r.ok) {
      const parts = [];
      for (const k of KINDS) {
        const d = r[k].delta;
        if (d == null) parts.push(`${k} ?`);
        else if (d < 0) parts.push(`${k} missing ${-d}`);
        else if (d > 0) parts.push(`${k} extra ${d}`);
      }
      verdict = 'MISMATCH ' + parts.join(', ');
    }
    lines.push(
      pad(r.slug, w) +
        '  ' +
        [r.human.served, show(r.human.recorded), r.bot.served, show(r.bot.recorded), u]
          .map((v) => pad(v, 10, true))
          .join(' ') +
        '  ' +
        verdict,
    );
  }
  lines.push('-'.repeat(head.length));
  lines.push(
    pad('total', w) +
      '  ' +
      [tot.hs, tot.hr, tot.bs, tot.br, tot.u].map((v) => pad(v, 10, true)).join(' ') +
      '  ' +
      (result.ok ? 'ALL MATCH' : `${result.problems.length} PROBLEM(S)`),
  );
  return lines.join('\n');
}
