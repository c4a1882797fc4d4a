// Secrets Manager load for the durability tests (tests/integration/test_secrets_durability.py),
// with the AWS SDK for JavaScript v3 (SecretsManagerClient, maxAttempts 1: no retries, so an
// acknowledgement is exactly one request the server answered with success).
//
// Every value this script writes is "value-" + its version id (the ClientRequestToken), so a reader
// can check a value against its version id without being told the value. No value is ever printed:
// only version ids, secret names, counts and error names. One JSON line per event, written at once
// (stdout to a pipe is synchronous in Node on Linux).
//
//   node secrets_burst.mjs ENDPOINT SECRET_NAME COUNT CONCURRENCY [SPREAD]
//       COUNT PutSecretValue calls, CONCURRENCY in flight, each with its own ClientRequestToken
//       (a UUID). With SPREAD > 1 the writes go round-robin to SECRET_NAME/0 ..
//       SECRET_NAME/SPREAD-1 (which must exist). Prints {"token", "secret"} per acknowledged write,
//       {"error", "token", "secret"} per failed one; after the first failure no new write starts.
//   node secrets_burst.mjs create ENDPOINT PREFIX N CONCURRENCY
//       Creates PREFIX/0 .. PREFIX/N-1, each with a ClientRequestToken and its value. Prints
//       {"created": n, "failed": n, "errors": {name: count}}.
//   node secrets_burst.mjs verify ENDPOINT
//       Reads {"secret", "token"} lines from stdin; GetSecretValue(SecretId, VersionId: token) for
//       each. Prints {"token", "secret", "ok": true, "match": bool} or {"token", "secret", "ok":
//       false, "error": name} per line.
//   node secrets_burst.mjs versions ENDPOINT PREFIX N
//       For each of PREFIX/0 .. PREFIX/N-1: ListSecretVersionIds with IncludeDeprecated (every
//       page), then GetSecretValue of each listed version id and of AWSCURRENT. Prints per secret
//       {"secret", "listed": [ids], "unreadable": [{"versionId", "error"}], "mismatched": [ids],
//       "current": {"ok", "error", "versionId", "listedCurrent", "match"}}.
//   node secrets_burst.mjs read ENDPOINT PREFIX N SECONDS CONCURRENCY
//       GetSecretValue of PREFIX/0 .. PREFIX/N-1 round-robin, CONCURRENCY in flight, until stdin
//       closes or SECONDS pass. Prints {"reading": true} after the first successful read, then
//       {"ok": n, "failed": n, "mismatched": n, "errors": {name: count}} at the end.
//
// Credentials come from the SDK's default chain; the region from AWS_REGION (default "local").
import { randomUUID } from 'node:crypto'
import { createInterface } from 'node:readline'
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager'

const print = (record) => console.log(JSON.stringify(record))
const valueOf = (token) => `value-${token}`
const client = (endpoint) =>
  new SecretsManagerClient({ endpoint, region: process.env.AWS_REGION ?? 'local', maxAttempts: 1 })
const names = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}/${i}`)
const errorName = (e) => e?.name ?? e?.code ?? 'Error'

/** Runs `count` jobs (job(i) for i in 0..count-1), `concurrency` at a time, until `stop()`. */
async function pool(count, concurrency, job, stop = () => false) {
  let next = 0
  const worker = async () => {
    while (!stop()) {
      const i = next++
      if (i >= count) return
      await job(i)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

async function burst([endpoint, name, count, concurrency, spread]) {
  const sm = client(endpoint)
  const k = Number(spread ?? 1)
  const targets = k > 1 ? names(name, k) : [name]
  let failed = false
  await pool(
    Number(count),
    Number(concurrency),
    async (i) => {
      const token = randomUUID()
      const secret = targets[i % targets.length]
      try {
        const r = await sm.send(
          new PutSecretValueCommand({
            SecretId: secret,
            ClientRequestToken: token,
            SecretString: valueOf(token),
          }),
        )
        if (r.VersionId !== token) {
          failed = true
          print({ error: 'WrongVersionId', token, secret })
          return
        }
        print({ token, secret })
      } catch (e) {
        failed = true
        print({ error: errorName(e), token, secret })
      }
    },
    () => failed,
  )
}

async function create([endpoint, prefix, n, concurrency]) {
  const sm = client(endpoint)
  const all = names(prefix, Number(n))
  const out = { created: 0, failed: 0, errors: {} }
  await pool(all.length, Number(concurrency ?? 8), async (i) => {
    const token = randomUUID()
    try {
      await sm.send(
        new CreateSecretCommand({
          Name: all[i],
          ClientRequestToken: token,
          SecretString: valueOf(token),
        }),
      )
      out.created++
    } catch (e) {
      out.failed++
      out.errors[errorName(e)] = (out.errors[errorName(e)] ?? 0) + 1
    }
  })
  print(out)
}

async function verify([endpoint]) {
  const sm = client(endpoint)
  const wanted = []
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim()) wanted.push(JSON.parse(line))
  }
  await pool(wanted.length, 8, async (i) => {
    const { secret, token } = wanted[i]
    try {
      const r = await sm.send(new GetSecretValueCommand({ SecretId: secret, VersionId: token }))
      const match = r.SecretString === valueOf(token) && r.VersionId === token
      print({ token, secret, ok: true, match })
    } catch (e) {
      print({ token, secret, ok: false, error: errorName(e) })
    }
  })
}

async function versions([endpoint, prefix, n]) {
  const sm = client(endpoint)
  await pool(Number(n), 4, async (i) => {
    const secret = `${prefix}/${i}`
    const out = { secret, listed: [], unreadable: [], mismatched: [], current: { ok: false } }
    try {
      let NextToken
      let listedCurrent
      do {
        const page = await sm.send(
          new ListSecretVersionIdsCommand({
            SecretId: secret,
            IncludeDeprecated: true,
            MaxResults: 100,
            NextToken,
          }),
        )
        for (const v of page.Versions ?? []) {
          out.listed.push(v.VersionId)
          if ((v.VersionStages ?? []).includes('AWSCURRENT')) listedCurrent = v.VersionId
        }
        NextToken = page.NextToken
      } while (NextToken)
      out.current.listedCurrent = listedCurrent ?? null
      for (const id of out.listed) {
        try {
          const r = await sm.send(new GetSecretValueCommand({ SecretId: secret, VersionId: id }))
          if (r.SecretString !== valueOf(id) || r.VersionId !== id) out.mismatched.push(id)
        } catch (e) {
          out.unreadable.push({ versionId: id, error: errorName(e) })
        }
      }
    } catch (e) {
      out.listError = errorName(e)
    }
    try {
      const r = await sm.send(new GetSecretValueCommand({ SecretId: secret }))
      out.current.ok = true
      out.current.versionId = r.VersionId
      out.current.match =
        r.SecretString === valueOf(r.VersionId) && (r.VersionStages ?? []).includes('AWSCURRENT')
    } catch (e) {
      out.current.error = errorName(e)
    }
    print(out)
  })
}

async function read([endpoint, prefix, n, seconds, concurrency]) {
  const sm = client(endpoint)
  const all = names(prefix, Number(n))
  const deadline = Date.now() + Number(seconds) * 1000
  let closed = false
  process.stdin.on('end', () => (closed = true))
  process.stdin.on('close', () => (closed = true))
  process.stdin.resume()
  const out = { ok: 0, failed: 0, mismatched: 0, errors: {} }
  let announced = false
  let next = 0
  const worker = async () => {
    while (!closed && Date.now() < deadline) {
      const secret = all[next++ % all.length]
      try {
        const r = await sm.send(new GetSecretValueCommand({ SecretId: secret }))
        out.ok++
        if (r.SecretString !== valueOf(r.VersionId)) out.mismatched++
        if (!announced) {
          announced = true
          print({ reading: true })
        }
      } catch (e) {
        out.failed++
        out.errors[errorName(e)] = (out.errors[errorName(e)] ?? 0) + 1
      }
    }
  }
  await Promise.all(Array.from({ length: Number(concurrency) }, worker))
  print(out)
}

const args = process.argv.slice(2)
const modes = { create, verify, versions, read }
if (args.length === 0) {
  console.error('usage: node secrets_burst.mjs ENDPOINT SECRET_NAME COUNT CONCURRENCY [SPREAD]')
  process.exit(2)
}
if (modes[args[0]]) {
  await modes[args[0]](args.slice(1))
} else {
  await burst(args)
}
process.exit(0)
