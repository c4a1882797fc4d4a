// Real clients of the moatless gateway for tests/integration/test_gateway.py: JWTs minted with the
// `jose` library (npm) and sent with Node's fetch, and SigV4-signed requests made with the AWS
// SDK's own signer (@smithy/signature-v4).
//
//   node gateway.mjs keygen DIR
//       Generates an RS256 key pair: writes DIR/jwks.json (the public JWK Set, kid "it-rs256"),
//       DIR/private.jwk.json and DIR/public.pem; prints the JWK Set as one JSON line.
//   node gateway.mjs jwt '{"url": ..., "method": "POST", "body": "...", "keys": DIR,
//                          "issuer": ..., "audience": ..., "scope": ..., "header": "authorization",
//                          "scheme": "Bearer "}'
//       Sends one request per JWT case (a valid token, and each way a token can be wrong) and
//       prints one JSON line per case: {"case", "status", "wwwAuthenticate", "body", "token"}.
//   node gateway.mjs sigv4 '{"url": ..., "method": "GET", "region": "local"}'
//       Sends one request signed for the service execute-api with AWS_ACCESS_KEY_ID /
//       AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN if set); prints {"status", "body"}.
//
// Exits 1 (with the error on stderr) when something other than the server's answer goes wrong.
import { createHash, createHmac } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SignJWT, base64url, exportJWK, exportSPKI, generateKeyPair, importJWK } from 'jose'
import { SignatureV4 } from '@smithy/signature-v4'

const KID = 'it-rs256'

async function keygen (dir) {
  const { publicKey, privateKey } =
    await generateKeyPair('RS256', { modulusLength: 2048, extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid: KID, alg: 'RS256', use: 'sig' }
  const jwks = { keys: [jwk] }
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify(jwks, null, 2) + '\n')
  const privateJwk = { ...(await exportJWK(privateKey)), kid: KID }
  writeFileSync(join(dir, 'private.jwk.json'), JSON.stringify(privateJwk), { mode: 0o600 })
  writeFileSync(join(dir, 'public.pem'), await exportSPKI(publicKey))
  console.log(JSON.stringify(jwks))
}

const encodeJson = (value) => base64url.encode(JSON.stringify(value))

async function jwtCases (config) {
  const privateJwk = JSON.parse(readFileSync(join(config.keys, 'private.jwk.json'), 'utf8'))
  const key = await importJWK(privateJwk, 'RS256')
  const publicPem = readFileSync(join(config.keys, 'public.pem'), 'utf8')
  const other = (await generateKeyPair('RS256', { modulusLength: 2048 })).privateKey
  const now = Math.floor(Date.now() / 1000)
  const claims = (extra = {}) => ({
    iss: config.issuer, aud: config.audience, sub: 'it-user', scope: config.scope,
    iat: now - 5, exp: now + 600, ...extra,
  })
  const sign = (payload, signingKey = key, header = { alg: 'RS256', typ: 'JWT', kid: KID }) =>
    new SignJWT(payload).setProtectedHeader(header).sign(signingKey)

  const valid = await sign(claims())
  const [validHeader, , validSignature] = valid.split('.')
  const cases = {
    valid,
    // Within the manifest's leeway (default 30 s) or not (an authorizer with leeway: 0s).
    expired_10s_ago: await sign(claims({ iat: now - 600, exp: now - 10 })),
    expired: await sign(claims({ iat: now - 7200, exp: now - 3600 })),
    not_yet_valid: await sign(claims({ nbf: now + 3600 })),
    wrong_issuer: await sign(claims({ iss: 'https://evil.example.com' })),
    wrong_audience: await sign(claims({ aud: 'some-other-api' })),
    missing_scope: await sign(claims({ scope: 'notes.read profile' })),
    // Signed by another key that claims the configured key's id.
    bad_signature: await sign(claims(), other),
    // Unsigned.
    alg_none: `${encodeJson({ alg: 'none', typ: 'JWT', kid: KID })}.${encodeJson(claims())}.`,
    // The classic confusion: HMAC-signed with the text of the RSA public key as the secret.
    hs256_with_public_key: await sign(claims(), new TextEncoder().encode(publicPem),
      { alg: 'HS256', typ: 'JWT', kid: KID }),
    unknown_kid: await sign(claims(), key, { alg: 'RS256', typ: 'JWT', kid: 'no-such-key' }),
    // A valid token whose payload was replaced (more scopes, another subject); same signature.
    tampered_payload: [
      validHeader,
      encodeJson(claims({ sub: 'admin', scope: `${config.scope} admin` })),
      validSignature,
    ].join('.'),
    no_token: null,
  }
  for (const [name, token] of Object.entries(cases)) {
    const headers = { 'content-type': 'application/json' }
    if (token !== null) headers[config.header] = (config.scheme ?? '') + token
    const response = await fetch(config.url, {
      method: config.method ?? 'GET', headers, body: config.body,
    })
    console.log(JSON.stringify({
      case: name,
      status: response.status,
      wwwAuthenticate: response.headers.get('www-authenticate'),
      body: await response.text(),
      token,
    }))
  }
}

// The signer's hash: SHA-256, or HMAC-SHA-256 when given a secret (the interface of
// @aws-crypto/sha256-js, which the signer expects).
class Sha256 {
  constructor (secret) { this.hash = secret ? createHmac('sha256', secret) : createHash('sha256') }
  update (data) { this.hash.update(data) }
  async digest () { return new Uint8Array(this.hash.digest()) }
}

async function sigv4 (config) {
  const url = new URL(config.url)
  const signer = new SignatureV4({
    service: 'execute-api',
    region: config.region ?? process.env.AWS_REGION ?? 'local',
    sha256: Sha256,
    credentials: {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID,
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
      sessionToken: process.env.AWS_SESSION_TOKEN || undefined,
    },
  })
  const query = {}
  for (const [k, v] of url.searchParams) query[k] = v
  const signed = await signer.sign({
    method: config.method ?? 'GET',
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query,
    headers: { host: url.host },
    body: config.body,
  })
  const headers = { ...signed.headers }
  delete headers.host // fetch sends the same Host itself
  const response = await fetch(url, { method: signed.method, headers, body: config.body })
  console.log(JSON.stringify({ status: response.status, body: await response.text() }))
}

const [command, argument] = process.argv.slice(2)
try {
  if (command === 'keygen') await keygen(argument)
  else if (command === 'jwt') await jwtCases(JSON.parse(argument))
  else if (command === 'sigv4') await sigv4(JSON.parse(argument))
  else throw new Error(`unknown command ${command}`)
} catch (e) {
  console.error(e?.stack ?? String(e))
  process.exit(1)
}
