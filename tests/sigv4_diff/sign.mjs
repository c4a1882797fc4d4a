// Differential test generator: writes seeded, reproducible HTTP requests as NDJSON, each signed by
// the AWS SDK for JavaScript v3's signer (@smithy/signature-v4, used only as a test-time tool), for
// sigv4_diff_check to verify with moatless's server-side SigV4 verifier.
//
//   node sign.mjs --seed N --count N
//
// Output: one JSON object per line, exactly the request moatless would receive on the wire:
//   {"id", "method", "target" (origin-form request-target, percent-encoded, with the query),
//    "headers": [[name, value], ...] (in order, repeated names allowed, values as sent),
//    "body" (base64), "key_id", "secret", "token"?, "region", "service",
//    "time" (signing time, unix seconds), "presigned", "expires"?, "tamper_seed"}
// and a last line {"end": true, "count": N} so that the checker can tell a complete run from a
// generator that died.
//
// How a request is handed to the signer (read from @smithy/signature-v4 5.7.5):
//  - HttpRequest.path is the path as it goes on the wire (already percent-encoded). With
//    uriEscapePath the signer drops empty, "." and ".." segments and escapes the result once
//    more (every service but S3), so the wire path here is encoded in one of several valid ways
//    (strict RFC 3986, lowercase hex, or leaving sub-delims raw) and the signature must hold for
//    each.
//  - HttpRequest.query holds decoded names and values (an array for a repeated name); the signer
//    escapes them itself. The wire query is built from the same decoded pairs, again in one of
//    several valid encodings and in random order.
//  - headers is an object: one value per name. A name sent twice on the wire is handed over as
//    its values, each trimmed, joined with "," (what SigV4 and RFC 9110 §5.3 make of repeated
//    field lines).
// Shapes that cannot be sent as a valid HTTP/1.1 request, or on which the signer departs from
// what AWS verifies, are not generated; README.md lists them.
import { Sha256 } from '@aws-crypto/sha256-js'
import { HttpRequest } from '@smithy/protocol-http'
import { SignatureV4 } from '@smithy/signature-v4'
import { parseFlags, seeded } from '../common/seeded.mjs'

// ---- arguments and the seeded PRNG ----------------------------------------------------------
const args = parseFlags(process.argv.slice(2))
const seed = Number(args.seed ?? 1)
const count = Number(args.count ?? 3000)
if (!Number.isInteger(seed) || !Number.isInteger(count) || count < 0) {
  console.error('usage: node sign.mjs --seed N --count N')
  process.exit(2)
}
const { rand, int, chance, pick } = seeded(seed, 0x5167a4)
const randomCase = (s) => [...s].map((c) => (chance(0.5) ? c.toUpperCase() : c.toLowerCase())).join('')
const fromAlphabet = (alphabet, n) => Array.from({ length: n }, () => pick(alphabet)).join('')
function shuffle(xs) {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = int(i + 1)
    ;[xs[i], xs[j]] = [xs[j], xs[i]]
  }
  return xs
}

// ---- encodings -----------------------------------------------------------------------------
// The signer's own escaping (encodeURIComponent plus !'()*), i.e. RFC 3986 with only the
// unreserved set left as is.
const strict = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
const lowerHex = (encoded) => encoded.replace(/%[0-9A-F]{2}/g, (t) => t.toLowerCase())
// Percent-encodes every character outside `keep` (a string of ASCII characters besides the
// unreserved set), as UTF-8.
function encodeExcept(s, keep) {
  let out = ''
  for (const ch of s) {
    if (/^[A-Za-z0-9\-._~]$/.test(ch) || keep.includes(ch)) out += ch
    else out += strict(ch)
  }
  return out
}
const PCHAR_EXTRA = "!$&'()*+,;=:@" // sub-delims, ':' and '@': valid raw in a path segment
const QUERY_NAME_EXTRA = "!$'()*,;:@/?" // valid raw in a query, and not '&', '=', '+' or '#'
const QUERY_VALUE_EXTRA = QUERY_NAME_EXTRA + '=' // the verifier splits a pair at its first '='

function encodeSegment(s) {
  switch (int(3)) {
    case 0: return strict(s)
    case 1: return lowerHex(strict(s))
    default: return encodeExcept(s, PCHAR_EXTRA)
  }
}

// ---- request pieces ------------------------------------------------------------------------
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'PATCH']
const HOSTS = ['127.0.0.1:9000', 'moatless.local', 'localhost:8443', '[::1]:9000', 'sts.moatless.local']
const REGIONS = ['us-east-1', 'eu-west-3', 'ap-southeast-2', 'local']
const SERVICES = ['sts', 'iam', 'secretsmanager', 'lambda', 'execute-api']
const PATH_PIECES = ['a', 'photos', '2026', 'A-Z_0.9~', 'x.y', '.hidden', '..x', 'my file', ' two  spaces ',
  'é', '日本', 'a+b', 'k=v', '100%', '50%25', '%41', 'user@host', 'wow!', '*', "it's", '(1)', '$&,;:', '-', '_', '~',
  'functions', '2015-03-31', 'invocations']
const QUERY_NAMES = ['Action', 'Version', 'a', 'list-type', 'prefix', 'key with space', 'é', '日本', 'a+b', 'x=y',
  'a&b', '100%', 'max-keys', '~tilde', 'UPPER', 'lower', "it's", '(p)', '*', 'q?', 'path/name', '#frag']
const QUERY_VALUES = ['', 'value', 'two  spaces', ' lead', 'trail ', 'a+b', 'a=b', 'a&b', '%', '%41', 'é', '日本',
  'GetCallerIdentity', '2011-06-15', '/path/x', "!*'()", 'a,b;c:d@e$f', '?q#frag', '~-_.', 'MiXeD']
const HEADER_VALUES = ['v', 'value', '  leading', 'trailing  ', '  both  ', 'inner   run  of   spaces', 'tab\there',
  '\t tabs and spaces \t', 'a, b', '"quoted  string"', '', ' ', 'UPPER lower', 'k=v;q=0.5', '/path?x=1']
const CONTENT_TYPES = ['application/x-www-form-urlencoded; charset=utf-8', 'application/json', 'text/plain',
  'application/octet-stream', 'application/x-amz-json-1.1']
const CUSTOM_HEADERS = ['x-custom', 'X-Request-Id', 'x-amz-meta-owner', 'X-Amz-Meta-Color', 'x-amz-target', 'accept',
  'content-encoding', 'x-forwarded-for', 'if-match']
// The signer never signs these (its ALWAYS_UNSIGNABLE_HEADERS): sent, but outside SignedHeaders.
const UNSIGNED_HEADERS = ['User-Agent', 'cache-control', 'x-amzn-trace-id', 'referer']
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
const SECRET_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const BASE_TIME = Date.UTC(2026, 0, 1) / 1000 // seconds

function genPath() {
  const n = 1 + int(5)
  const segments = []
  for (let i = 0; i < n; i++) {
    const r = rand()
    if (r < 0.08) segments.push('') // repeated slash
    else if (r < 0.12) segments.push(pick(['.', '..'])) // dot segment, last ones included
    else segments.push(encodeSegment(Array.from({ length: 1 + int(3) }, () => pick(PATH_PIECES)).join('')))
  }
  return '/' + segments.join('/') + (chance(0.2) ? '/' : '')
}

// Returns {query: the signer's object, wire: the query string as sent}.
function genQuery() {
  const query = {}
  const parts = []
  const n = int(6)
  for (let i = 0; i < n; i++) {
    const name = chance(0.3) && Object.keys(query).length > 0 ? pick(Object.keys(query)) : pick(QUERY_NAMES)
    const value = pick(QUERY_VALUES)
    if (name in query) query[name] = [].concat(query[name], value)
    else query[name] = chance(0.2) ? [value] : value
    const mode = int(3)
    const encName = mode === 0 ? strict(name) : mode === 1 ? lowerHex(strict(name)) : encodeExcept(name, QUERY_NAME_EXTRA)
    const encValue = mode === 0 ? strict(value) : mode === 1 ? lowerHex(strict(value)) : encodeExcept(value, QUERY_VALUE_EXTRA)
    parts.push(value === '' && chance(0.5) ? encName : `${encName}=${encValue}`)
  }
  return { query, parts }
}

const trimAll = (v) => v.replace(/[ \t]+/g, ' ').replace(/^ | $/g, '')

function genHeaders(host, body, presign) {
  const wire = [[pick(['host', 'Host', 'HOST']), host]]
  const n = int(5)
  for (let i = 0; i < n; i++) {
    const r = rand()
    if (r < 0.2) wire.push([pick(['content-type', 'Content-Type']), pick(CONTENT_TYPES)])
    else if (r < 0.35) wire.push([pick(UNSIGNED_HEADERS), pick(HEADER_VALUES)])
    else if (r < 0.5 && wire.length > 1) {
      const [name] = pick(wire.slice(1)) // the same name again, maybe in another case
      wire.push([chance(0.5) ? name : randomCase(name), pick(HEADER_VALUES)])
    } else wire.push([pick(CUSTOM_HEADERS), pick(HEADER_VALUES)])
  }
  if (body.length > 0) wire.push(['Content-Length', String(body.length)])
  // A declared UNSIGNED-PAYLOAD. Presigned, the signer moves it into the query under the name as
  // given (the SDKs' presigners use the lower-case name).
  if (chance(0.1)) wire.push([pick(['x-amz-content-sha256', 'X-Amz-Content-Sha256']), 'UNSIGNED-PAYLOAD'])
  // The signer's object: one key per lowercase name, repeated values trimmed and joined.
  const byName = new Map()
  for (const [name, value] of wire) {
    const lower = name.toLowerCase()
    if (byName.has(lower)) byName.get(lower).values.push(value)
    else byName.set(lower, { name, values: [value] })
  }
  const headers = {}
  for (const { name, values } of byName.values()) {
    // Content-Length is what an HTTP client adds; the SDK signs it, a bare client may not.
    if (name === 'Content-Length' && chance(0.5)) continue
    headers[name] = values.length === 1 ? values[0] : values.map(trimAll).join(',')
  }
  return { wire, headers }
}

function genBody() {
  switch (int(4)) {
    case 0: return { bytes: Buffer.alloc(0), signerBody: pick([undefined, '', new Uint8Array(0)]) }
    case 1: {
      const text = pick(['Action=GetCallerIdentity&Version=2011-06-15', '{"FunctionName":"f"}', 'hello world', ' '])
      return { bytes: Buffer.from(text), signerBody: text }
    }
    default: {
      const bytes = Buffer.from(Array.from({ length: 1 + int(300) }, () => int(256)))
      return { bytes, signerBody: new Uint8Array(bytes) }
    }
  }
}

function genCredentials() {
  const temporary = chance(0.4)
  const credentials = {
    accessKeyId: (temporary ? 'ASIA' : 'AKIA') + fromAlphabet(BASE32, 16),
    secretAccessKey: fromAlphabet(SECRET_CHARS, 40),
  }
  if (temporary && chance(0.8)) {
    credentials.sessionToken = Buffer.from(Array.from({ length: 60 + int(300) }, () => int(256))).toString('base64')
  }
  return credentials
}

const VALID_TARGET = /^\/[\x21-\x7e]*$/
const VALID_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const VALID_VALUE = /^[\t\x20-\x7e]*$/

async function genCase(id) {
  const method = pick(METHODS)
  const host = pick(HOSTS)
  const path = genPath()
  const { query, parts } = genQuery()
  const body = genBody()
  const presign = chance(0.3)
  const { wire, headers } = genHeaders(host, body.bytes, presign)
  const credentials = genCredentials()
  const region = pick(REGIONS)
  const service = pick(SERVICES)
  const time = BASE_TIME + int(3 * 365 * 86400)
  const signer = new SignatureV4({ credentials, region, service, sha256: Sha256, uriEscapePath: true, applyChecksum: chance(0.5) })
  const request = new HttpRequest({ method, protocol: 'https:', hostname: host.replace(/:\d+$/, ''), path, query, headers, body: body.signerBody })
  const signingDate = new Date(time * 1000)

  const out = { id, method }
  let queryParts = parts
  let wireHeaders = wire
  if (presign) {
    const expires = pick([60, 300, 900, 3600, 43200, 604800, 60 + int(604740)])
    const signed = await signer.presign(request, { signingDate, expiresIn: expires })
    // What the signer added to the query: its parameters and the x-amz-* headers it hoisted.
    const added = Object.keys(signed.query).filter((k) => !(k in query))
    queryParts = shuffle([...parts, ...added.map((k) => `${strict(k)}=${strict(signed.query[k])}`)])
    wireHeaders = wire.filter(([name]) => !name.toLowerCase().startsWith('x-amz-'))
    out.expires = expires
  } else {
    const signed = await signer.sign(request, { signingDate })
    wireHeaders = [...wire]
    for (const [name, value] of Object.entries(signed.headers)) {
      if (!(name in headers)) wireHeaders.splice(int(wireHeaders.length + 1), 0, [name, value])
    }
    queryParts = shuffle([...parts])
  }
  out.target = path + (queryParts.length > 0 ? '?' + queryParts.join('&') : '')
  out.headers = wireHeaders
  out.body = body.bytes.toString('base64')
  out.key_id = credentials.accessKeyId
  out.secret = credentials.secretAccessKey
  if (credentials.sessionToken) out.token = credentials.sessionToken
  Object.assign(out, { region, service, time, presigned: presign, tamper_seed: int(0x100000000) })

  if (!VALID_TARGET.test(out.target)) throw new Error(`case ${id}: not a valid request-target: ${out.target}`)
  for (const [name, value] of out.headers) {
    if (!VALID_NAME.test(name) || !VALID_VALUE.test(value)) throw new Error(`case ${id}: not a valid header: ${name}: ${value}`)
  }
  return out
}

// ---- main ----------------------------------------------------------------------------------
process.stdout.on('error', (e) => process.exit(e.code === 'EPIPE' ? 0 : 1))
let buffer = ''
for (let id = 0; id < count; id++) {
  buffer += JSON.stringify(await genCase(id)) + '\n'
  if (buffer.length > 1 << 16) {
    if (!process.stdout.write(buffer)) await new Promise((resolve) => process.stdout.once('drain', resolve))
    buffer = ''
  }
}
process.stdout.write(buffer + JSON.stringify({ end: true, count }) + '\n')
