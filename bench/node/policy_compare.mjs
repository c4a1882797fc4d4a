// Replays the policy_bench cases (dumped by `POLICY_BENCH_DUMP=FILE policy_bench`) through two
// other policy engines, in the same process run, and prints decisions/s and per-decision latency:
//   - @cloud-copilot/iam-simulate runUnsafeSimulation(): an IAM simulator (AGPL; used here as an
//     external tool at bench time only, nothing of it is vendored). Its fastest public mode; it
//     parses/loads every policy document on each call (there is no pre-parsed entry point).
//   - @cedar-policy/cedar-wasm statefulIsAuthorized(): Cedar with the policy set parsed once
//     (preparsePolicySet). The IAM policies of each case are translated mechanically into an
//     equivalent Cedar policy set (see translateCase below for the approach and its limits).
// Before timing, both engines' decisions are checked against moatless's decision for every request;
// disagreements are printed (and listed in the output), never hidden.
//
// Usage: node policy_compare.mjs DUMP.json [OUT.md] [--gbench GBENCH.json]
//   --gbench: policy_bench's --benchmark_out JSON of the same run; adds the moatless rows
//   (items_per_second of BM_*_Throughput, p50_ns/p99_ns counters of BM_*_Latency).
// Env: COMPARE_SECONDS (default 2) per measurement, COMPARE_WARMUP_SECONDS (default 1; cedar-wasm
// needs ~0.6 s for the wasm tier-up), COMPARE_CASES=typical,large (default all),
// COMPARE_PRINT_CEDAR=1 prints the Cedar policies.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { runUnsafeSimulation } from '@cloud-copilot/iam-simulate';

const require = createRequire(import.meta.url);
const cedar = require('@cedar-policy/cedar-wasm/nodejs');
const simulatePkg = JSON.parse(
  readFileSync(
    new URL('./node_modules/@cloud-copilot/iam-simulate/package.json', import.meta.url),
    'utf8',
  ),
);

const SECONDS = Number(process.env.COMPARE_SECONDS ?? 2);
const WARMUP_SECONDS = Number(process.env.COMPARE_WARMUP_SECONDS ?? 1);

// ---------------------------------------------------------------------------------------------
// Request normalisation: the condition keys moatless derives itself (evaluator.cc Lookup()).

function requestKeys(r) {
  const keys = new Map(); // lowercased key -> {name, values, multi}
  const put = (name, values, multi) => {
    if (!keys.has(name.toLowerCase())) keys.set(name.toLowerCase(), { name, values, multi });
  };
  for (const [k, v] of Object.entries(r.context)) {
    put(k, Array.isArray(v) ? v : [v], Array.isArray(v));
  }
  for (const [k, v] of Object.entries(r.principal_tags)) put(`aws:PrincipalTag/${k}`, [v], false);
  for (const [k, v] of Object.entries(r.resource_tags)) put(`aws:ResourceTag/${k}`, [v], false);
  const principalArn =
    r.principal_kind === 'role-session' && r.issuer_arn ? r.issuer_arn : r.principal_arn;
  if (principalArn) put('aws:PrincipalArn', [principalArn], false);
  if (r.principal_account) put('aws:PrincipalAccount', [r.principal_account], false);
  const resourceAccount = r.resource_account || r.principal_account;
  if (resourceAccount) put('aws:ResourceAccount', [resourceAccount], false);
  return keys;
}

// ---------------------------------------------------------------------------------------------
// iam-simulate

function simulation(c, r) {
  const contextVariables = {};
  for (const { name, values, multi } of requestKeys(r).values()) {
    contextVariables[name] = multi ? values : values[0];
  }
  const load = (p) => ({ name: p.name, policy: JSON.parse(p.policy) });
  const levels = ['r-root', 'ou-stage'];
  return {
    request: {
      principal: r.principal_arn,
      action: r.action,
      resource: { resource: r.resource, accountId: r.resource_account || r.principal_account },
      contextVariables,
    },
    identityPolicies: c.identity.map(load),
    permissionBoundaryPolicies: c.boundary ? [load(c.boundary)] : undefined,
    resourcePolicy: undefined,
    serviceControlPolicies: c.guardrails.map((level, i) => ({
      orgIdentifier: levels[i] ?? `ou-level-${i}`,
      policies: level.map(load),
    })),
    resourceControlPolicies: [],
  };
}

// ---------------------------------------------------------------------------------------------
// IAM -> Cedar translation.
//
// Request: principal/resource are opaque entities (P::"<arn>", R::"<arn>"), action Action::"call";
// entities are empty. Everything IAM matches on goes into the context:
//   context.action    lowercased action (IAM action matching is case-insensitive)
//   context.resource  the resource ARN (case-sensitive, as in IAM)
//   context.s         single-valued condition keys, lowercased key -> string
//   context.m         all condition keys, lowercased key -> set of strings (presence, ForAnyValue)
//   context.n         single-valued keys whose value is an integer -> Long (Numeric* operators:
//                     Cedar has no string->number conversion; pre-converted when building the
//                     request, outside the timed loop)
// Policies: one `permit` per identity Allow statement, whose `when` is that statement's match &&
// (some boundary Allow matches) && (some Allow of each guardrail level matches); one `forbid` per
// Deny statement of any layer. Cedar's forbid-overrides + default deny then give IAM's decision;
// explicit vs implicit deny is read from the satisfied policies (diagnostics.reason).
// Statement match: Action/NotAction and Resource/NotResource as `like` disjunctions (negated for
// Not*), conditions as && of per-key tests. Limits (a statement using one of these throws, and
// the case is reported as not translatable):
//   - `?` wildcards (Cedar `like` only has `*`);
//   - `*` in an ARN pattern may match across `:` in Cedar, while IAM matches ARNs segment-wise
//     (equivalent for the ARNs here; the verification below would show a difference);
//   - policy variables inside a pattern/string (e.g. Resource ".../uploads/${aws:username}/*"):
//     Cedar cannot build a pattern at run time, so the variable is substituted at translation
//     time with the case's value, after checking that every request of the case has that same
//     value (one Cedar policy set per principal). A condition value that is exactly one variable
//     ("${aws:PrincipalTag/team}") is translated dynamically (context.s[k] == context.s[v]).
//   - operators: String(Not)Equals, String(Not)Like, Arn(Not)Equals/Like, Bool, Null,
//     Numeric* (integers), Date* (Cedar datetime extension), (Not)IpAddress (ip extension),
//     ...IfExists, ForAnyValue:/ForAllValues: StringEquals; others (IgnoreCase, ForAnyValue
//     with Like, Binary, ...) are not translated.

class Untranslatable extends Error {}

const cedarString = (s) => '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
// A glob pattern (IAM `*`) as a Cedar `like` pattern; `literal` parts get their `*` escaped.
function cedarPattern(parts) {
  let out = '';
  for (const { text, literal } of parts) {
    if (!literal && text.includes('?')) throw new Untranslatable(`'?' wildcard in ${text}`);
    let t = text.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
    if (literal) t = t.replace(/\*/g, '\\*');
    out += t;
  }
  return '"' + out + '"';
}
const asArray = (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const or = (xs) => (xs.length === 0 ? 'false' : xs.length === 1 ? xs[0] : `(${xs.join(' || ')})`);
const and = (xs) => (xs.length === 0 ? 'true' : xs.length === 1 ? xs[0] : `(${xs.join(' && ')})`);

class Translator {
  constructor(requests) {
    this.requests = requests.map(requestKeys);
    // The condition keys the policies read, per context record: the requests carry only these
    // (Cedar converts the whole context on every call; unused keys would only slow it down).
    this.used = { s: new Set(), m: new Set(), n: new Set() };
  }
  ref(rec, k) {
    this.used[rec].add(k.toLowerCase());
    return `context.${rec}[${cedarString(k.toLowerCase())}]`;
  }
  has(rec, k) {
    this.used[rec].add(k.toLowerCase());
    return `context.${rec} has ${cedarString(k.toLowerCase())}`;
  }
  // Splits "a${k}b" into parts, substituting variables with the case-wide constant value.
  substitute(text) {
    const parts = [];
    const re = /\$\{([^}]+)\}/g;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      parts.push({ text: text.slice(last, m.index), literal: false });
      const [key, dflt] = m[1].split(/,\s*/);
      const values = new Set(
        this.requests.map((keys) => {
          const v = keys.get(key.toLowerCase());
          return v && !v.multi ? v.values[0] : dflt ? dflt.replace(/^'|'$/g, '') : undefined;
        }),
      );
      if (values.size !== 1 || values.has(undefined)) {
        throw new Untranslatable(`variable \${${key}} is not one constant value across the case`);
      }
      parts.push({ text: [...values][0], literal: true });
      last = re.lastIndex;
    }
    parts.push({ text: text.slice(last), literal: false });
    return parts;
  }
  exactVariable(text) {
    const m = /^\$\{([^},]+)\}$/.exec(text);
    return m ? m[1] : null;
  }
  likeAny(field, patterns, lower) {
    return or(
      patterns.map((p) => {
        if (p === '*') return 'true';
        const parts = this.substitute(lower ? p.toLowerCase() : p);
        return `context.${field} like ${cedarPattern(parts)}`;
      }),
    );
  }
  condition(op, key, values) {
    let setOp = null;
    let base = op;
    const q = /^(ForAnyValue|ForAllValues):(.*)$/.exec(op);
    if (q) [, setOp, base] = q;
    let ifExists = false;
    if (base.endsWith('IfExists')) {
      ifExists = true;
      base = base.slice(0, -'IfExists'.length);
    }
    const vals = asArray(values).map(String);
    if (setOp) {
      if (base !== 'StringEquals') throw new Untranslatable(`operator ${op}`);
      const set = `[${vals.map((v) => cedarString(v)).join(', ')}]`;
      return setOp === 'ForAnyValue'
        ? `(${this.has('m', key)} && ${this.ref('m', key)}.containsAny(${set}))`
        : `(!(${this.has('m', key)}) || ${set}.containsAll(${this.ref('m', key)}))`;
    }
    if (base === 'Null') {
      const absent = `!(${this.has('m', key)})`;
      return or(vals.map((v) => (v.toLowerCase() === 'true' ? absent : `${this.has('m', key)}`)));
    }
    const negated = /^(StringNot|ArnNot|NotIpAddress)/.test(base);
    const value = this.ref('s', key);
    let test; // one policy value -> Cedar test on the present key
    let present = this.has('s', key);
    switch (base) {
      case 'StringEquals':
      case 'StringNotEquals':
      case 'ArnEquals':
      case 'ArnNotEquals':
      case 'StringLike':
      case 'StringNotLike':
      case 'ArnLike':
      case 'ArnNotLike': {
        const glob = /Like|Arn/.test(base);
        test = (v) => {
          const variable = this.exactVariable(v);
          if (variable && !glob) {
            return `(${this.has('s', variable)} && ${value} == ${this.ref('s', variable)})`;
          }
          const parts = this.substitute(v);
          if (glob) return v === '*' ? 'true' : `${value} like ${cedarPattern(parts)}`;
          return `${value} == ${cedarString(parts.map((p) => p.text).join(''))}`;
        };
        break;
      }
      case 'Bool':
        test = (v) => `${value} == ${cedarString(v.toLowerCase())}`;
        break;
      case 'NumericEquals':
      case 'NumericNotEquals':
      case 'NumericLessThan':
      case 'NumericLessThanEquals':
      case 'NumericGreaterThan':
      case 'NumericGreaterThanEquals': {
        const cmp = {
          NumericEquals: '==',
          NumericNotEquals: '!=',
          NumericLessThan: '<',
          NumericLessThanEquals: '<=',
          NumericGreaterThan: '>',
          NumericGreaterThanEquals: '>=',
        }[base];
        present = this.has('n', key);
        test = (v) => {
          if (!/^-?\d+$/.test(v)) throw new Untranslatable(`non-integer ${base} value ${v}`);
          return `${this.ref('n', key)} ${cmp} ${v}`;
        };
        if (base === 'NumericNotEquals') {
          // true iff the value equals none of the policy values
          return `(${present} && ${and(vals.map(test))})`;
        }
        break;
      }
      case 'DateEquals':
      case 'DateNotEquals':
      case 'DateLessThan':
      case 'DateLessThanEquals':
      case 'DateGreaterThan':
      case 'DateGreaterThanEquals': {
        const cmp = {
          DateEquals: '==',
          DateNotEquals: '!=',
          DateLessThan: '<',
          DateLessThanEquals: '<=',
          DateGreaterThan: '>',
          DateGreaterThanEquals: '>=',
        }[base];
        test = (v) => `datetime(${value}) ${cmp} datetime(${cedarString(v)})`;
        if (base === 'DateNotEquals') return `(${present} && ${and(vals.map(test))})`;
        break;
      }
      case 'IpAddress':
      case 'NotIpAddress':
        test = (v) => `ip(${value}).isInRange(ip(${cedarString(v)}))`;
        break;
      default:
        throw new Untranslatable(`operator ${op}`);
    }
    if (negated) {
      // IAM: a negated operator is true when the key is absent (with or without IfExists).
      return `(!(${present}) || !${or(vals.map(test))})`;
    }
    return ifExists
      ? `(!(${present}) || ${or(vals.map(test))})`
      : `(${present} && ${or(vals.map(test))})`;
  }
  statement(st) {
    const terms = [];
    if (st.Principal !== undefined || st.NotPrincipal !== undefined) {
      throw new Untranslatable('Principal in an identity/boundary/guardrail statement');
    }
    if (st.Action !== undefined) terms.push(this.likeAny('action', asArray(st.Action), true));
    else terms.push(`!${this.likeAny('action', asArray(st.NotAction), true)}`);
    if (st.Resource !== undefined) terms.push(this.likeAny('resource', asArray(st.Resource)));
    else terms.push(`!${this.likeAny('resource', asArray(st.NotResource))}`);
    for (const [op, block] of Object.entries(st.Condition ?? {})) {
      for (const [key, values] of Object.entries(block)) terms.push(this.condition(op, key, values));
    }
    return and(terms.filter((t) => t !== 'true'));
  }
}

function translateCase(c) {
  const t = new Translator(c.requests);
  const statements = (p) => asArray(JSON.parse(p.policy).Statement);
  const allows = (policies) =>
    policies.flatMap(statements).filter((s) => s.Effect === 'Allow').map((s) => t.statement(s));
  const denies = [];
  const layers = [...c.identity, ...(c.boundary ? [c.boundary] : []), ...c.guardrails.flat()];
  for (const p of layers) {
    for (const s of statements(p)) if (s.Effect === 'Deny') denies.push([p.name, s]);
  }
  const limits = [];
  if (c.boundary) limits.push(or(allows([c.boundary])));
  for (const level of c.guardrails) limits.push(or(allows(level)));
  const policies = {};
  const forbidIds = new Set();
  allows(c.identity).forEach((match, i) => {
    policies[`allow${i}`] =
      `permit (principal, action, resource) when { ${and([match, ...limits])} };`;
  });
  denies.forEach(([name, s], i) => {
    const id = `deny${i}-${name}${s.Sid ? '-' + s.Sid : ''}`;
    forbidIds.add(id);
    policies[id] = `forbid (principal, action, resource) when { ${t.statement(s)} };`;
  });
  return { policies, forbidIds, used: t.used };
}

function cedarRequest(r, psetId, used) {
  const context = { action: r.action.toLowerCase(), resource: r.resource };
  for (const rec of ['s', 'm', 'n']) if (used[rec].size) context[rec] = {};
  for (const [lower, { values, multi }] of requestKeys(r)) {
    if (used.m.has(lower)) context.m[lower] = values;
    if (!multi) {
      if (used.s.has(lower)) context.s[lower] = values[0];
      if (used.n.has(lower) && /^-?\d+$/.test(values[0])) context.n[lower] = Number(values[0]);
    }
  }
  return {
    principal: { type: 'P', id: r.principal_arn },
    action: { type: 'Action', id: 'call' },
    resource: { type: 'R', id: r.resource },
    context,
    preparsedPolicySetId: psetId,
    entities: [],
  };
}

function cedarDecision(answer, forbidIds) {
  if (answer.type !== 'success') throw new Error(`cedar: ${JSON.stringify(answer.errors)}`);
  const { decision, diagnostics } = answer.response;
  if (decision === 'allow') return 'Allowed';
  return diagnostics.reason.some((id) => forbidIds.has(id)) ? 'ExplicitlyDenied' : 'ImplicitlyDenied';
}

// ---------------------------------------------------------------------------------------------
// Timing

function timerOverheadNs() {
  const samples = new Float64Array(20001);
  for (let i = 0; i < samples.length; ++i) {
    const t0 = process.hrtime.bigint();
    const t1 = process.hrtime.bigint();
    samples[i] = Number(t1 - t0);
  }
  samples.sort();
  return samples[samples.length >> 1];
}

function throughput(calls, seconds) {
  const n = calls.length;
  let count = 0;
  let i = 0;
  let sink = 0;
  const start = process.hrtime.bigint();
  const limit = BigInt(Math.round(seconds * 1e9));
  let elapsed = 0n;
  for (;;) {
    for (let k = 0; k < 16; ++k) {
      sink ^= calls[i]() ? 1 : 0;
      if (++i === n) i = 0;
    }
    count += 16;
    elapsed = process.hrtime.bigint() - start;
    if (elapsed >= limit) break;
  }
  return { perSecond: (count * 1e9) / Number(elapsed), count, sink };
}

function latency(calls, seconds, overhead) {
  const n = calls.length;
  const samples = [];
  let i = 0;
  let sink = 0;
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  for (;;) {
    const t0 = process.hrtime.bigint();
    sink ^= calls[i]() ? 1 : 0;
    const t1 = process.hrtime.bigint();
    samples.push(Number(t1 - t0) - overhead);
    if (++i === n) i = 0;
    if (t1 >= end) break;
  }
  const sorted = Float64Array.from(samples).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p99: at(0.99), samples: sorted.length, sink };
}

function measure(calls, overhead) {
  throughput(calls, WARMUP_SECONDS);
  const tp = throughput(calls, SECONDS);
  const lat = latency(calls, SECONDS, overhead);
  return { perSecond: tp.perSecond, p50: lat.p50, p99: lat.p99, samples: lat.samples };
}

// ---------------------------------------------------------------------------------------------

function moatlessRows(path) {
  if (!path) return {};
  const names = { typical: 'BM_TypicalRole', large: 'BM_LargeRole1000', guardrails: 'BM_Guardrails' };
  const benches = JSON.parse(readFileSync(path, 'utf8')).benchmarks ?? [];
  // With --benchmark_repetitions, the median aggregate; otherwise the single run.
  const find = (prefix) =>
    benches.find((b) => b.name.startsWith(prefix) && b.aggregate_name === 'median') ??
    benches.find((b) => b.name.startsWith(prefix));
  const rows = {};
  for (const [c, bm] of Object.entries(names)) {
    const tp = find(`${bm}_Throughput`);
    const lat = find(`${bm}_Latency`);
    if (tp && lat) rows[c] = { perSecond: tp.items_per_second, p50: lat.p50_ns, p99: lat.p99_ns };
  }
  return rows;
}

const fmtRate = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(0));
const fmtNs = (x) => Math.round(x).toLocaleString('en-US');

async function main() {
  const args = process.argv.slice(2);
  let gbench = null;
  const positional = [];
  for (let i = 0; i < args.length; ++i) {
    if (args[i] === '--gbench') gbench = args[++i];
    else if (args[i].startsWith('--gbench=')) gbench = args[i].slice('--gbench='.length);
    else positional.push(args[i]);
  }
  const [dumpPath, outPath] = positional;
  if (!dumpPath) {
    console.error('usage: node policy_compare.mjs DUMP.json [OUT.md] [--gbench GBENCH.json]');
    process.exit(2);
  }
  const dump = JSON.parse(readFileSync(dumpPath, 'utf8'));
  const moatless = moatlessRows(gbench);
  const overhead = timerOverheadNs();
  const out = [];
  const notes = [];
  out.push('# Policy engines on the policy_bench cases');
  out.push('');
  out.push(
    `Same requests, same run, single-threaded. node ${process.version}; ` +
      `@cloud-copilot/iam-simulate ${simulatePkg.version} (runUnsafeSimulation, its fastest public ` +
      `mode: it loads/parses every policy document on each call, there is no pre-parsed entry point); ` +
      `@cedar-policy/cedar-wasm ${cedar.getCedarVersion()} (statefulIsAuthorized on a policy set ` +
      `pre-parsed with preparsePolicySet; the IAM policies translated to an equivalent Cedar policy ` +
      `set). JS engines: decisions/s cycling through the case's requests for ${SECONDS} s after a ` +
      `${WARMUP_SECONDS} s warm-up; p50/p99 from process.hrtime.bigint() around every call for ` +
      `${SECONDS} s, timer overhead (${overhead} ns) subtracted. moatless: policy_bench ` +
      `(Google Benchmark) of the same run, BM_*_Throughput items_per_second and BM_*_Latency ` +
      `p50_ns/p99_ns.`,
  );
  let disagreements = 0;
  const only = process.env.COMPARE_CASES?.split(',');
  for (const c of dump.cases.filter((x) => !only || only.includes(x.name))) {
    console.error(`== ${c.name}: ${c.requests.length} requests`);
    // iam-simulate: the simulations are built (and the policy JSON parsed) before timing.
    const sims = c.requests.map((r) => simulation(c, r));
    const simCalls = sims.map((s) => () => runUnsafeSimulation(s, {}));
    // cedar
    let cedarCalls = null;
    let cedarExcluded = null;
    let forbidIds = null;
    let cedarPolicyCount = 0;
    try {
      const t = translateCase(c);
      forbidIds = t.forbidIds;
      cedarPolicyCount = Object.keys(t.policies).length;
      const psetId = `case-${c.name}`;
      const parsed = cedar.preparsePolicySet(psetId, { staticPolicies: t.policies });
      if (parsed.type !== 'success') {
        throw new Error(`preparsePolicySet: ${JSON.stringify(parsed.errors).slice(0, 2000)}`);
      }
      const reqs = c.requests.map((r) => cedarRequest(r, psetId, t.used));
      cedarCalls = reqs.map((q) => () => cedar.statefulIsAuthorized(q));
      if (process.env.COMPARE_PRINT_CEDAR) {
        for (const [id, text] of Object.entries(t.policies)) console.error(`@id("${id}") ${text}`);
      }
    } catch (e) {
      if (!(e instanceof Untranslatable)) throw e;
      cedarExcluded = e.message;
      notes.push(`${c.name}: cedar not run, policies not translatable: ${e.message}`);
    }
    // Verification against moatless's decisions.
    const disagree = [];
    for (const [i, r] of c.requests.entries()) {
      const sim = runUnsafeSimulation(sims[i], {});
      if (sim !== r.decision) {
        // iam-simulate's KmsServiceAuthorizer applies KMS key-policy trust: for kms: actions on a
        // key, the identity policies do not grant on their own without a key policy (as in AWS);
        // moatless (and the Cedar translation) evaluate the policies given, with no such rule.
        const kmsKey = r.action.toLowerCase().startsWith('kms:') && /^arn:[^:]+:kms:[^:]*:[^:]*:key\//.test(r.resource);
        disagree.push(
          `iam-simulate ${sim}` +
            (kmsKey && sim === 'ImplicitlyDenied'
              ? ' (cause: iam-simulate requires a KMS key policy for kms: actions on a key; the bench gives none)'
              : ''),
        );
      }
      let ced = null;
      if (cedarCalls) {
        ced = cedarDecision(cedarCalls[i](), forbidIds);
        if (ced !== r.decision) disagree.push(`cedar ${ced}`);
      }
      if (disagree.length) {
        const line = `${c.name} #${i} ${r.action} ${r.resource}: moatless ${r.decision}, ${disagree.join(', ')}`;
        console.error(`DISAGREEMENT ${line}`);
        notes.push(`disagreement: ${line}`);
        disagreements += 1;
      }
      disagree.length = 0;
    }
    const counts = {};
    for (const r of c.requests) counts[r.decision] = (counts[r.decision] ?? 0) + 1;
    console.error(`   decisions (moatless): ${JSON.stringify(counts)}; verified`);
    const rows = [];
    if (moatless[c.name]) rows.push(['moatless (Evaluate, C++)', moatless[c.name]]);
    console.error('   timing iam-simulate ...');
    rows.push(['iam-simulate (runUnsafeSimulation)', measure(simCalls, overhead)]);
    if (cedarCalls) {
      console.error('   timing cedar-wasm ...');
      rows.push(['cedar-wasm (statefulIsAuthorized)', measure(cedarCalls, overhead)]);
    }
    const base = moatless[c.name]?.perSecond;
    const stmts = (ps) => ps.reduce((n, p) => n + asArray(JSON.parse(p.policy).Statement).length, 0);
    out.push('');
    out.push(
      `## ${c.name}: ${c.requests.length} requests (${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ')}); ` +
        `${stmts(c.identity)} identity statements` +
        (c.boundary ? `, boundary ${stmts([c.boundary])}` : '') +
        (c.guardrails.length ? `, guardrail levels ${c.guardrails.map(stmts).join(' + ')}` : '') +
        (cedarCalls ? `; Cedar: ${cedarPolicyCount} policies` : `; Cedar: not run (${cedarExcluded})`),
    );
    out.push('');
    out.push('| engine | decisions/s | p50 ns | p99 ns | moatless ÷ engine (decisions/s) |');
    out.push('|---|---:|---:|---:|---:|');
    for (const [name, m] of rows) {
      const ratio = base ? `${(base / m.perSecond).toFixed(m.perSecond > base / 10 ? 2 : 0)}×` : 'n/a';
      out.push(`| ${name} | ${fmtRate(m.perSecond)} | ${fmtNs(m.p50)} | ${fmtNs(m.p99)} | ${ratio} |`);
    }
  }
  out.push('');
  out.push(
    disagreements === 0
      ? 'Verification: iam-simulate and Cedar decisions (Allowed / ExplicitlyDenied / ImplicitlyDenied) equal moatless\'s for every request of every case.'
      : `Verification: **${disagreements} request(s) where an engine disagrees with moatless** (listed below).`,
  );
  if (!gbench) notes.push('moatless rows omitted: no --gbench file given');
  for (const n of notes) out.push(`- ${n}`);
  const text = out.join('\n') + '\n';
  process.stdout.write(text);
  if (outPath) writeFileSync(outPath, text);
}

await main();
