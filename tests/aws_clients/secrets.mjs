// Secrets Manager conformance with the AWS SDK for JavaScript v3 (SecretsManagerClient) against a
// moatless endpoint: create (string, binary, empty, idempotent tokens), get by stage / version /
// ARN, put-value and the AWSCURRENT / AWSPREVIOUS / AWSPENDING labels, update-secret-version-stage,
// update-secret, describe, tags, list-secrets (filters, negation, sorting, pagination, planned
// deletions), list-secret-version-ids, batch-get-secret-value, delete / restore / force delete,
// resource policies (put, get, delete, validate, public policies refused), get-random-password,
// rotate-secret without a rotation function, and the errors of each, by their exact AWS names.
//
//   node secrets.mjs ENDPOINT
//
// Prints one JSON line per step, {"step": "...", "ok": true} or {"step": "...", "ok": false,
// "error": "..."}, and exits 1 if any step failed (later steps still run). Secret values never
// reach the output: they are compared without printing them, and any that would reach an error
// message is redacted. Every value contains SECRETS_TEST_MARKER (from the environment, else random)
// so that a caller can search logs for leaks. Names are under a random `sdk-XXXXXXXX/` prefix.
//
// Credentials come from the SDK's default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the
// tests); the region from AWS_REGION (default "local"); the account is 000000000000.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import {
  BatchGetSecretValueCommand,
  CreateSecretCommand,
  DeleteResourcePolicyCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetRandomPasswordCommand,
  GetResourcePolicyCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  ListSecretVersionIdsCommand,
  PutResourcePolicyCommand,
  PutSecretValueCommand,
  RestoreSecretCommand,
  RotateSecretCommand,
  SecretsManagerClient,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateSecretCommand,
  UpdateSecretVersionStageCommand,
  ValidateResourcePolicyCommand,
} from '@aws-sdk/client-secrets-manager'

const endpoint = process.argv[2]
if (!endpoint) {
  console.error('usage: node secrets.mjs ENDPOINT')
  process.exit(2)
}
const REGION = process.env.AWS_REGION ?? 'local'
const ACCOUNT = '000000000000'
const client = new SecretsManagerClient({ endpoint, region: REGION, maxAttempts: 1 })
const send = (Command, input) => client.send(new Command(input))

const marker = process.env.SECRETS_TEST_MARKER || `mk${randomBytes(8).toString('hex')}`
const prefix = `sdk-${randomBytes(4).toString('hex')}/`
const secretValues = new Set()
/** A fresh secret value: distinctive, contains the marker, remembered for redaction. */
const value = (label) => {
  const v = `${marker}-${label}-${randomBytes(12).toString('hex')}`
  secretValues.add(v)
  return v
}

// --- reporting -------------------------------------------------------------------------------

let failures = 0
const redact = (text) => {
  let out = String(text)
  for (const v of secretValues) out = out.split(v).join('[redacted]')
  return out.split(marker).join('[redacted]')
}
async function step(name, fn) {
  try {
    await fn()
    console.log(JSON.stringify({ step: name, ok: true }))
  } catch (e) {
    failures++
    const detail = e instanceof assert.AssertionError ? e.message : `${e.name}: ${e.message}`
    console.log(JSON.stringify({ step: name, ok: false, error: redact(detail) }))
  }
}

// --- checks ----------------------------------------------------------------------------------

/** Compares a secret string without printing it. */
function sameSecret(actual, expected, what) {
  if (typeof actual !== 'string' || actual !== expected) {
    throw new Error(
      `${what}: the SecretString differs from what was stored (got ${
        typeof actual === 'string' ? `a string of length ${actual.length}` : String(typeof actual)
      }, expected length ${expected.length})`,
    )
  }
}
/** Compares secret bytes without printing them. */
function sameBytes(actual, expected, what) {
  if (!(actual instanceof Uint8Array)) {
    throw new Error(
      `${what}: SecretBinary is ${actual === undefined ? 'absent' : typeof actual}, ` +
        'not a Uint8Array',
    )
  }
  if (Buffer.compare(Buffer.from(actual), Buffer.from(expected)) !== 0) {
    throw new Error(
      `${what}: SecretBinary differs (got ${actual.length} bytes, expected ${expected.length})`,
    )
  }
}
/** The call must fail with this AWS error name (and HTTP 400). Returns the error. */
async function rejects(code, promise) {
  let result
  try {
    result = await promise
  } catch (e) {
    if (e.name !== code) throw new Error(`expected ${code}, got ${e.name}: ${e.message}`)
    assert.equal(e.$metadata?.httpStatusCode, 400, `${code} comes with HTTP 400`)
    return e
  }
  throw new Error(
    `expected ${code}, but the call succeeded (response fields: ${Object.keys(result ?? {})
      .filter((k) => k !== '$metadata')
      .join(', ')})`,
  )
}
const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const arnRe = (name) =>
  new RegExp(
    `^arn:aws:secretsmanager:${escapeRe(REGION)}:${ACCOUNT}:secret:` +
      `${escapeRe(name)}-[A-Za-z0-9]{6}$`,
  )
const sorted = (xs) => [...(xs ?? [])].sort()
/** VersionIdsToStages with each label list sorted, for deepEqual. */
const stagesOf = (map) =>
  Object.fromEntries(Object.entries(map ?? {}).map(([k, v]) => [k, sorted(v)]))
function recentDate(d, what, slackMs = 10 * 60 * 1000) {
  assert.ok(d instanceof Date && !Number.isNaN(d.getTime()), `${what} is a Date`)
  assert.ok(
    Math.abs(d.getTime() - Date.now()) < slackMs,
    `${what} is close to now (${d.toISOString()})`,
  )
}
/** DeletedDate: AWS documents it both as the time of the delete request and as the deletion date
 * (request + window); either is accepted. */
function deletedDate(d, windowDays) {
  assert.ok(d instanceof Date && !Number.isNaN(d.getTime()), 'DeletedDate is a Date')
  const t = d.getTime()
  assert.ok(
    t > Date.now() - 10 * 60 * 1000 && t < Date.now() + windowDays * 24 * 3600 * 1000 + 3600 * 1000,
    `DeletedDate is between now and the end of the recovery window (${d.toISOString()})`,
  )
}
const describe = (id) => send(DescribeSecretCommand, { SecretId: id })
const get = (input) => send(GetSecretValueCommand, input)
async function listAll(input, pageCheck) {
  const out = []
  let NextToken
  for (let page = 0; page < 100; page++) {
    const r = await send(ListSecretsCommand, { ...input, NextToken })
    if (pageCheck) pageCheck(r)
    out.push(...(r.SecretList ?? []))
    NextToken = r.NextToken
    if (!NextToken) return out
  }
  throw new Error('ListSecrets kept returning a NextToken after 100 pages')
}
const nameFilter = (p) => ({ Key: 'name', Values: [p] })
const namesOf = (entries) => entries.map((e) => e.Name)

// --- scenario --------------------------------------------------------------------------------

const s = {} // state shared by the steps
const db = `${prefix}app/db`
const bin = `${prefix}app/bin`
const empty = `${prefix}app/empty`
const listPrefix = `${prefix}list/`
const L = (x) => `${listPrefix}${x}`

await step('create-secret: SecretString, Description, Tags and ClientRequestToken', async () => {
  s.tok1 = randomUUID()
  s.val1 = value('v1')
  s.createInput = {
    Name: db,
    SecretString: s.val1,
    Description: 'Database credentials for the app',
    Tags: [{ Key: 'team', Value: 'core' }],
    ClientRequestToken: s.tok1,
  }
  const r = await send(CreateSecretCommand, s.createInput)
  s.arn = r.ARN
  assert.match(r.ARN, arnRe(db))
  assert.equal(r.Name, db)
  assert.equal(r.VersionId, s.tok1, 'the VersionId is the ClientRequestToken')
})

await step(
  'create-secret: the same call again is idempotent (same ARN and VersionId)',
  async () => {
    const r = await send(CreateSecretCommand, s.createInput)
    assert.equal(r.ARN, s.arn)
    assert.equal(r.VersionId, s.tok1)
  },
)

await step(
  'create-secret: the same ClientRequestToken with another value -> ResourceExistsException',
  async () => {
    await rejects(
      'ResourceExistsException',
      send(CreateSecretCommand, { ...s.createInput, SecretString: value('other') }),
    )
  },
)

await step(
  'create-secret: an existing name with a new token -> ResourceExistsException',
  async () => {
    await rejects(
      'ResourceExistsException',
      send(CreateSecretCommand, {
        Name: db,
        SecretString: value('dup'),
        ClientRequestToken: randomUUID(),
      }),
    )
    assert.equal(
      (await get({ SecretId: db })).VersionId,
      s.tok1,
      'the refused calls made no version',
    )
  },
)

await step('get-secret-value: by name, default stage AWSCURRENT', async () => {
  const r = await get({ SecretId: db })
  assert.equal(r.ARN, s.arn)
  assert.equal(r.Name, db)
  assert.equal(r.VersionId, s.tok1)
  assert.deepEqual(r.VersionStages, ['AWSCURRENT'])
  sameSecret(r.SecretString, s.val1, 'GetSecretValue')
  assert.equal(r.SecretBinary, undefined, 'no SecretBinary for a string secret')
  recentDate(r.CreatedDate, 'CreatedDate')
})

await step('get-secret-value: by full ARN', async () => {
  const r = await get({ SecretId: s.arn })
  assert.equal(r.Name, db)
  assert.equal(r.VersionId, s.tok1)
  sameSecret(r.SecretString, s.val1, 'GetSecretValue by ARN')
})

await step('create-secret: SecretBinary round-trips as bytes', async () => {
  s.bytes = new Uint8Array([0, 255, 10, 13, ...randomBytes(60)])
  const r = await send(CreateSecretCommand, { Name: bin, SecretBinary: s.bytes })
  assert.match(r.ARN, arnRe(bin))
  assert.match(r.VersionId ?? '', /^.{32,64}$/, 'a VersionId of 32..64 characters')
  const g = await get({ SecretId: bin })
  sameBytes(g.SecretBinary, s.bytes, 'GetSecretValue')
  assert.equal(g.SecretString, undefined, 'no SecretString for a binary secret')
  assert.equal(g.VersionId, r.VersionId)
})

await step(
  'create-secret: SecretString and SecretBinary together -> InvalidParameterException',
  async () => {
    await rejects(
      'InvalidParameterException',
      send(CreateSecretCommand, {
        Name: `${prefix}both`,
        SecretString: value('both'),
        SecretBinary: new Uint8Array([1, 2, 3]),
      }),
    )
    await rejects('ResourceNotFoundException', describe(`${prefix}both`))
  },
)

await step(
  'create-secret: a name with characters outside A-Za-z0-9/_+=.@- -> InvalidParameterException',
  async () => {
    await rejects(
      'InvalidParameterException',
      send(CreateSecretCommand, { Name: `${prefix}bad name!`, SecretString: value('badname') }),
    )
  },
)

await step(
  'create-secret: name > 512, token < 32 or description > 2048 -> ValidationException',
  async () => {
    await rejects(
      'ValidationException',
      send(CreateSecretCommand, { Name: 'n'.repeat(513), SecretString: value('long') }),
    )
    await rejects(
      'ValidationException',
      send(CreateSecretCommand, {
        Name: `${prefix}short-token`,
        SecretString: value('tok'),
        ClientRequestToken: 'too-short',
      }),
    )
    await rejects(
      'ValidationException',
      send(CreateSecretCommand, {
        Name: `${prefix}long-description`,
        SecretString: value('desc'),
        Description: 'd'.repeat(2049),
      }),
    )
  },
)

await step('create-secret: without a value the secret has no version', async () => {
  const r = await send(CreateSecretCommand, { Name: empty, Description: 'no value yet' })
  assert.match(r.ARN, arnRe(empty))
  assert.equal(r.VersionId, undefined, 'no VersionId without a value')
  await rejects('ResourceNotFoundException', get({ SecretId: empty }))
  const d = await describe(empty)
  assert.deepEqual(Object.keys(d.VersionIdsToStages ?? {}), [], 'no versions')
})

await step(
  'get-secret-value: unknown secret or unknown VersionId -> ResourceNotFoundException',
  async () => {
    await rejects('ResourceNotFoundException', get({ SecretId: `${prefix}no/such/secret` }))
    await rejects('ResourceNotFoundException', get({ SecretId: db, VersionId: randomUUID() }))
    await rejects('ResourceNotFoundException', get({ SecretId: db, VersionStage: 'no-such-label' }))
  },
)

await step('put-secret-value: the new version is AWSCURRENT, the old one AWSPREVIOUS', async () => {
  s.tok2 = randomUUID()
  s.val2 = value('v2')
  const r = await send(PutSecretValueCommand, {
    SecretId: db,
    SecretString: s.val2,
    ClientRequestToken: s.tok2,
  })
  assert.equal(r.ARN, s.arn)
  assert.equal(r.Name, db)
  assert.equal(r.VersionId, s.tok2)
  assert.deepEqual(r.VersionStages, ['AWSCURRENT'])
  const cur = await get({ SecretId: db })
  assert.equal(cur.VersionId, s.tok2)
  sameSecret(cur.SecretString, s.val2, 'AWSCURRENT')
  const prev = await get({ SecretId: db, VersionStage: 'AWSPREVIOUS' })
  assert.equal(prev.VersionId, s.tok1)
  assert.deepEqual(prev.VersionStages, ['AWSPREVIOUS'])
  sameSecret(prev.SecretString, s.val1, 'AWSPREVIOUS')
})

await step('put-secret-value: a third version takes AWSPREVIOUS from the first', async () => {
  s.tok3 = randomUUID()
  s.val3 = value('v3')
  s.put3 = { SecretId: db, SecretString: s.val3, ClientRequestToken: s.tok3 }
  const r = await send(PutSecretValueCommand, s.put3)
  assert.equal(r.VersionId, s.tok3)
  const d = await describe(db)
  assert.deepEqual(stagesOf(d.VersionIdsToStages), {
    [s.tok3]: ['AWSCURRENT'],
    [s.tok2]: ['AWSPREVIOUS'],
  })
})

await step(
  'put-secret-value: the same ClientRequestToken and value again creates no version',
  async () => {
    const r = await send(PutSecretValueCommand, s.put3)
    assert.equal(r.VersionId, s.tok3)
    assert.deepEqual(r.VersionStages, ['AWSCURRENT'])
    const all = await send(ListSecretVersionIdsCommand, { SecretId: db, IncludeDeprecated: true })
    assert.deepEqual(sorted(all.Versions.map((v) => v.VersionId)), sorted([s.tok1, s.tok2, s.tok3]))
  },
)

await step(
  'put-secret-value: the same ClientRequestToken with another value -> ResourceExistsException',
  async () => {
    await rejects(
      'ResourceExistsException',
      send(PutSecretValueCommand, { ...s.put3, SecretString: value('changed') }),
    )
    sameSecret(
      (await get({ SecretId: db })).SecretString,
      s.val3,
      'AWSCURRENT after the refused put',
    )
  },
)

await step(
  'put-secret-value: no value -> InvalidParameterException; no secret -> ResourceNotFoundException',
  async () => {
    await rejects('InvalidParameterException', send(PutSecretValueCommand, { SecretId: db }))
    await rejects(
      'ResourceNotFoundException',
      send(PutSecretValueCommand, {
        SecretId: `${prefix}no/such/secret`,
        SecretString: value('nowhere'),
      }),
    )
  },
)

await step('get-secret-value: an unlabelled version is still readable by VersionId', async () => {
  const r = await get({ SecretId: db, VersionId: s.tok1 })
  assert.equal(r.VersionId, s.tok1)
  assert.deepEqual(r.VersionStages ?? [], [])
  sameSecret(r.SecretString, s.val1, 'the first version')
})

await step('get-secret-value: VersionId with VersionStage must name the same version', async () => {
  const r = await get({ SecretId: db, VersionId: s.tok3, VersionStage: 'AWSCURRENT' })
  assert.equal(r.VersionId, s.tok3)
  sameSecret(r.SecretString, s.val3, 'VersionId + its stage')
  await rejects(
    'ResourceNotFoundException',
    get({ SecretId: db, VersionId: s.tok2, VersionStage: 'AWSCURRENT' }),
  )
})

await step(
  'put-secret-value: VersionStages [AWSPENDING] leaves AWSCURRENT where it is',
  async () => {
    s.tokP = randomUUID()
    s.valP = value('pending')
    const r = await send(PutSecretValueCommand, {
      SecretId: db,
      SecretString: s.valP,
      ClientRequestToken: s.tokP,
      VersionStages: ['AWSPENDING'],
    })
    assert.equal(r.VersionId, s.tokP)
    assert.deepEqual(r.VersionStages, ['AWSPENDING'])
    assert.equal((await get({ SecretId: db })).VersionId, s.tok3, 'AWSCURRENT did not move')
    const p = await get({ SecretId: db, VersionStage: 'AWSPENDING' })
    assert.equal(p.VersionId, s.tokP)
    sameSecret(p.SecretString, s.valP, 'AWSPENDING')
    const d = await describe(db)
    assert.deepEqual(stagesOf(d.VersionIdsToStages), {
      [s.tok3]: ['AWSCURRENT'],
      [s.tok2]: ['AWSPREVIOUS'],
      [s.tokP]: ['AWSPENDING'],
    })
  },
)

await step(
  'list-secret-version-ids: labelled versions; IncludeDeprecated adds unlabelled ones',
  async () => {
    const r = await send(ListSecretVersionIdsCommand, { SecretId: db })
    assert.equal(r.ARN, s.arn)
    assert.equal(r.Name, db)
    assert.deepEqual(
      Object.fromEntries(r.Versions.map((v) => [v.VersionId, sorted(v.VersionStages)])),
      { [s.tok3]: ['AWSCURRENT'], [s.tok2]: ['AWSPREVIOUS'], [s.tokP]: ['AWSPENDING'] },
    )
    for (const v of r.Versions) recentDate(v.CreatedDate, `CreatedDate of ${v.VersionId}`)
    const all = await send(ListSecretVersionIdsCommand, { SecretId: db, IncludeDeprecated: true })
    assert.deepEqual(
      sorted(all.Versions.map((v) => v.VersionId)),
      sorted([s.tok1, s.tok2, s.tok3, s.tokP]),
    )
    const first = all.Versions.find((v) => v.VersionId === s.tok1)
    assert.deepEqual(first.VersionStages ?? [], [], 'the first version has no label')
  },
)

await step('list-secret-version-ids: MaxResults 1 pages through every version once', async () => {
  const ids = []
  let NextToken
  for (let i = 0; i < 10; i++) {
    const r = await send(ListSecretVersionIdsCommand, {
      SecretId: db,
      IncludeDeprecated: true,
      MaxResults: 1,
      NextToken,
    })
    assert.ok(r.Versions.length <= 1, `page of ${r.Versions.length} versions with MaxResults 1`)
    ids.push(...r.Versions.map((v) => v.VersionId))
    NextToken = r.NextToken
    if (!NextToken) break
  }
  assert.equal(NextToken, undefined, 'pagination ends')
  assert.deepEqual(sorted(ids), sorted([s.tok1, s.tok2, s.tok3, s.tokP]))
})

await step(
  'list-secret-version-ids: no secret -> ResourceNotFoundException; MaxResults 101 -> Validation',
  async () => {
    await rejects(
      'ResourceNotFoundException',
      send(ListSecretVersionIdsCommand, { SecretId: `${prefix}nope` }),
    )
    await rejects(
      'ValidationException',
      send(ListSecretVersionIdsCommand, { SecretId: db, MaxResults: 101 }),
    )
  },
)

await step(
  'update-secret-version-stage: AWSCURRENT without its RemoveFromVersionId -> InvalidParameter',
  async () => {
    await rejects(
      'InvalidParameterException',
      send(UpdateSecretVersionStageCommand, {
        SecretId: db,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: s.tokP,
      }),
    )
    await rejects(
      'InvalidParameterException',
      send(UpdateSecretVersionStageCommand, {
        SecretId: db,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: s.tokP,
        RemoveFromVersionId: s.tok2,
      }),
    )
    const d = await describe(db)
    assert.deepEqual(
      stagesOf(d.VersionIdsToStages),
      { [s.tok3]: ['AWSCURRENT'], [s.tok2]: ['AWSPREVIOUS'], [s.tokP]: ['AWSPENDING'] },
      'nothing moved',
    )
  },
)

await step(
  'update-secret-version-stage: AWSCURRENT moves and AWSPREVIOUS follows to the version it left',
  async () => {
    const r = await send(UpdateSecretVersionStageCommand, {
      SecretId: db,
      VersionStage: 'AWSCURRENT',
      MoveToVersionId: s.tokP,
      RemoveFromVersionId: s.tok3,
    })
    assert.equal(r.ARN, s.arn)
    assert.equal(r.Name, db)
    const d = await describe(db)
    assert.deepEqual(stagesOf(d.VersionIdsToStages), {
      [s.tokP]: ['AWSCURRENT', 'AWSPENDING'],
      [s.tok3]: ['AWSPREVIOUS'],
    })
    const cur = await get({ SecretId: db })
    assert.equal(cur.VersionId, s.tokP)
    sameSecret(cur.SecretString, s.valP, 'the new AWSCURRENT')
    await send(UpdateSecretVersionStageCommand, {
      SecretId: db,
      VersionStage: 'AWSPENDING',
      RemoveFromVersionId: s.tokP,
    })
    assert.deepEqual(stagesOf((await describe(db)).VersionIdsToStages), {
      [s.tokP]: ['AWSCURRENT'],
      [s.tok3]: ['AWSPREVIOUS'],
    })
  },
)

await step(
  'update-secret-version-stage: a custom label is attached, moved (one version only), removed',
  async () => {
    await send(UpdateSecretVersionStageCommand, {
      SecretId: db,
      VersionStage: 'blue',
      MoveToVersionId: s.tok2,
    })
    assert.deepEqual(stagesOf((await describe(db)).VersionIdsToStages), {
      [s.tokP]: ['AWSCURRENT'],
      [s.tok3]: ['AWSPREVIOUS'],
      [s.tok2]: ['blue'],
    })
    const b = await get({ SecretId: db, VersionStage: 'blue' })
    assert.equal(b.VersionId, s.tok2)
    sameSecret(b.SecretString, s.val2, 'the version labelled blue')
    await send(UpdateSecretVersionStageCommand, {
      SecretId: db,
      VersionStage: 'blue',
      MoveToVersionId: s.tok3,
      RemoveFromVersionId: s.tok2,
    })
    assert.deepEqual(stagesOf((await describe(db)).VersionIdsToStages), {
      [s.tokP]: ['AWSCURRENT'],
      [s.tok3]: ['AWSPREVIOUS', 'blue'],
    })
    assert.equal((await get({ SecretId: db, VersionStage: 'blue' })).VersionId, s.tok3)
    await send(UpdateSecretVersionStageCommand, {
      SecretId: db,
      VersionStage: 'blue',
      RemoveFromVersionId: s.tok3,
    })
    assert.deepEqual(stagesOf((await describe(db)).VersionIdsToStages), {
      [s.tokP]: ['AWSCURRENT'],
      [s.tok3]: ['AWSPREVIOUS'],
    })
    await rejects('ResourceNotFoundException', get({ SecretId: db, VersionStage: 'blue' }))
  },
)

await step('update-secret: a Description alone makes no version', async () => {
  const r = await send(UpdateSecretCommand, { SecretId: db, Description: 'Rotated by hand' })
  assert.equal(r.ARN, s.arn)
  assert.equal(r.Name, db)
  assert.equal(r.VersionId, undefined, 'no VersionId without a value')
  const d = await describe(db)
  assert.equal(d.Description, 'Rotated by hand')
  assert.deepEqual(stagesOf(d.VersionIdsToStages), {
    [s.tokP]: ['AWSCURRENT'],
    [s.tok3]: ['AWSPREVIOUS'],
  })
})

await step('update-secret: a new value makes a new AWSCURRENT version', async () => {
  s.tok5 = randomUUID()
  s.val5 = value('v5')
  const r = await send(UpdateSecretCommand, {
    SecretId: db,
    SecretString: s.val5,
    ClientRequestToken: s.tok5,
  })
  assert.equal(r.VersionId, s.tok5)
  assert.deepEqual(stagesOf((await describe(db)).VersionIdsToStages), {
    [s.tok5]: ['AWSCURRENT'],
    [s.tokP]: ['AWSPREVIOUS'],
  })
  sameSecret((await get({ SecretId: db })).SecretString, s.val5, 'after UpdateSecret')
})

await step('describe-secret: metadata and dates, no rotation, not deleted', async () => {
  const d = await describe(db)
  assert.equal(d.ARN, s.arn)
  assert.equal(d.Name, db)
  assert.equal(d.Description, 'Rotated by hand')
  assert.deepEqual(d.Tags, [{ Key: 'team', Value: 'core' }])
  recentDate(d.CreatedDate, 'CreatedDate')
  recentDate(d.LastChangedDate, 'LastChangedDate')
  assert.ok(
    d.LastChangedDate.getTime() >= d.CreatedDate.getTime() - 1000,
    'LastChangedDate >= CreatedDate',
  )
  // LastAccessedDate has the resolution of a day.
  recentDate(d.LastAccessedDate, 'LastAccessedDate', 2 * 24 * 3600 * 1000)
  assert.notEqual(d.RotationEnabled, true, 'RotationEnabled is false or absent')
  assert.equal(d.DeletedDate, undefined)
  assert.equal(d.SecretString, undefined, 'DescribeSecret never returns a value')
  await rejects('ResourceNotFoundException', describe(`${prefix}no/such/secret`))
})

await step('tag-resource / untag-resource: tags are added, overwritten and removed', async () => {
  await send(TagResourceCommand, {
    SecretId: db,
    Tags: [
      { Key: 'env', Value: 'dev' },
      { Key: 'team', Value: 'platform' },
    ],
  })
  const byKey = (tags) => [...(tags ?? [])].sort((a, b) => a.Key.localeCompare(b.Key))
  assert.deepEqual(byKey((await describe(db)).Tags), [
    { Key: 'env', Value: 'dev' },
    { Key: 'team', Value: 'platform' },
  ])
  await send(UntagResourceCommand, { SecretId: s.arn, TagKeys: ['team'] })
  assert.deepEqual((await describe(db)).Tags, [{ Key: 'env', Value: 'dev' }])
  await rejects(
    'ResourceNotFoundException',
    send(TagResourceCommand, {
      SecretId: `${prefix}no/such/secret`,
      Tags: [{ Key: 'a', Value: 'b' }],
    }),
  )
})

// Five secrets for ListSecrets, created out of name order.
const listed = {
  c: { Description: 'Beta service', Tags: [{ Key: 'tier', Value: 'bronze' }] },
  a: { Description: 'Alpha service', Tags: [{ Key: 'tier', Value: 'gold' }] },
  e: { Description: 'delta', Tags: [{ Key: 'owner', Value: 'ops' }] },
  b: { Description: 'alphabet soup', Tags: [{ Key: 'tier', Value: 'silver' }] },
  d: { Description: 'gamma', Tags: [{ Key: 'owner', Value: 'ops' }] },
}
const allListed = ['a', 'b', 'c', 'd', 'e'].map(L)

await step('list-secrets: setup (five secrets with descriptions and tags)', async () => {
  for (const [k, spec] of Object.entries(listed)) {
    spec.value = value(`list-${k}`)
    const r = await send(CreateSecretCommand, { Name: L(k), SecretString: spec.value, ...spec })
    spec.ARN = r.ARN
    spec.VersionId = r.VersionId
  }
})

const listNames = async (filters, extra = {}) =>
  sorted(namesOf(await listAll({ Filters: [nameFilter(listPrefix), ...filters], ...extra })))

await step('list-secrets: the name filter is a case-sensitive prefix', async () => {
  assert.deepEqual(await listNames([]), allListed)
  const upper = await listAll({ Filters: [nameFilter(listPrefix.toUpperCase())] })
  assert.deepEqual(namesOf(upper), [])
})

await step('list-secrets: MaxResults 2 pages through every secret exactly once', async () => {
  const entries = await listAll({ Filters: [nameFilter(listPrefix)], MaxResults: 2 }, (r) =>
    assert.ok(r.SecretList.length <= 2, `a page of ${r.SecretList.length} with MaxResults 2`),
  )
  const names = namesOf(entries)
  assert.equal(new Set(names).size, names.length, 'no secret twice')
  assert.deepEqual(sorted(names), allListed)
})

await step('list-secrets: SortBy name, SortOrder asc and desc', async () => {
  const filters = [nameFilter(listPrefix)]
  assert.deepEqual(
    namesOf(await listAll({ Filters: filters, SortBy: 'name', SortOrder: 'asc' })),
    allListed,
  )
  assert.deepEqual(
    namesOf(await listAll({ Filters: filters, SortBy: 'name', SortOrder: 'desc' })),
    [...allListed].reverse(),
  )
  assert.deepEqual(
    namesOf(await listAll({ Filters: filters, SortBy: 'name', SortOrder: 'asc', MaxResults: 2 })),
    allListed,
    'the order holds across pages',
  )
})

await step('list-secrets: the description filter is a case-insensitive prefix', async () => {
  assert.deepEqual(await listNames([{ Key: 'description', Values: ['ALPHA'] }]), [L('a'), L('b')])
  assert.deepEqual(await listNames([{ Key: 'description', Values: ['beta serv'] }]), [L('c')])
})

await step('list-secrets: tag-key and tag-value filters', async () => {
  assert.deepEqual(await listNames([{ Key: 'tag-key', Values: ['tier'] }]), [
    L('a'),
    L('b'),
    L('c'),
  ])
  assert.deepEqual(await listNames([{ Key: 'tag-value', Values: ['gold'] }]), [L('a')])
  assert.deepEqual(await listNames([{ Key: 'tag-value', Values: ['ops'] }]), [L('d'), L('e')])
})

await step('list-secrets: a value starting with ! negates the filter', async () => {
  assert.deepEqual(await listNames([{ Key: 'tag-key', Values: ['!tier'] }]), [L('d'), L('e')])
  assert.deepEqual(await listNames([{ Key: 'description', Values: ['!alpha'] }]), [
    L('c'),
    L('d'),
    L('e'),
  ])
})

await step(
  'list-secrets: the all filter matches a name, description, tag key or tag value',
  async () => {
    assert.deepEqual(await listNames([{ Key: 'all', Values: ['gold'] }]), [L('a')])
    assert.deepEqual(await listNames([{ Key: 'all', Values: ['owner'] }]), [L('d'), L('e')])
    assert.deepEqual(await listNames([{ Key: 'all', Values: ['Beta'] }]), [L('c')])
  },
)

await step(
  'list-secrets: entries carry ARN, Description, Tags and SecretVersionsToStages',
  async () => {
    const [a] = await listAll({ Filters: [nameFilter(L('a'))] })
    assert.equal(a.Name, L('a'))
    assert.equal(a.ARN, listed.a.ARN)
    assert.equal(a.Description, 'Alpha service')
    assert.deepEqual(a.Tags, [{ Key: 'tier', Value: 'gold' }])
    assert.deepEqual(stagesOf(a.SecretVersionsToStages), { [listed.a.VersionId]: ['AWSCURRENT'] })
    recentDate(a.CreatedDate, 'CreatedDate')
    assert.equal(a.DeletedDate, undefined)
    assert.equal(a.SecretString, undefined, 'no value in a list entry')
  },
)

await step(
  'list-secrets: bad NextToken -> InvalidNextToken; bad MaxResults or filter key -> Validation',
  async () => {
    await rejects(
      'InvalidNextTokenException',
      send(ListSecretsCommand, { NextToken: 'never-issued-token' }),
    )
    await rejects('ValidationException', send(ListSecretsCommand, { MaxResults: 0 }))
    await rejects('ValidationException', send(ListSecretsCommand, { MaxResults: 101 }))
    await rejects(
      'ValidationException',
      send(ListSecretsCommand, { Filters: [{ Key: 'colour', Values: ['blue'] }] }),
    )
  },
)

await step('batch-get-secret-value: SecretIdList gives values and per-secret errors', async () => {
  const missing = `${prefix}no/such/secret`
  const r = await send(BatchGetSecretValueCommand, { SecretIdList: [db, bin, missing] })
  const byName = Object.fromEntries((r.SecretValues ?? []).map((v) => [v.Name, v]))
  assert.deepEqual(Object.keys(byName).sort(), [bin, db].sort())
  assert.equal(byName[db].ARN, s.arn)
  assert.equal(byName[db].VersionId, s.tok5)
  assert.deepEqual(byName[db].VersionStages, ['AWSCURRENT'])
  sameSecret(byName[db].SecretString, s.val5, 'BatchGetSecretValue db')
  sameBytes(byName[bin].SecretBinary, s.bytes, 'BatchGetSecretValue bin')
  assert.equal(r.Errors?.length, 1, 'one error')
  assert.equal(r.Errors[0].SecretId, missing)
  assert.equal(r.Errors[0].ErrorCode, 'ResourceNotFoundException')
  assert.equal(typeof r.Errors[0].Message, 'string')
})

await step('batch-get-secret-value: Filters select by name prefix', async () => {
  const got = []
  let NextToken
  for (let i = 0; i < 10; i++) {
    const r = await send(BatchGetSecretValueCommand, {
      Filters: [nameFilter(listPrefix)],
      NextToken,
    })
    got.push(...(r.SecretValues ?? []))
    NextToken = r.NextToken
    if (!NextToken) break
  }
  assert.deepEqual(sorted(namesOf(got)), allListed)
  for (const v of got) {
    const k = v.Name.slice(listPrefix.length)
    sameSecret(v.SecretString, listed[k].value, `BatchGetSecretValue ${v.Name}`)
  }
})

await step('batch-get-secret-value: 21 secret ids -> ValidationException', async () => {
  await rejects(
    'ValidationException',
    send(BatchGetSecretValueCommand, {
      SecretIdList: Array.from({ length: 21 }, (_, i) => `${prefix}x${i}`),
    }),
  )
})

await step(
  'list-secrets: a secret scheduled for deletion is listed only with IncludePlannedDeletion',
  async () => {
    await send(DeleteSecretCommand, { SecretId: L('e'), RecoveryWindowInDays: 7 })
    assert.deepEqual(await listNames([]), allListed.slice(0, 4))
    const withPlanned = await listAll({
      Filters: [nameFilter(listPrefix)],
      IncludePlannedDeletion: true,
    })
    assert.deepEqual(sorted(namesOf(withPlanned)), allListed)
    const e = withPlanned.find((x) => x.Name === L('e'))
    deletedDate(e.DeletedDate, 7)
  },
)

await step(
  'delete-secret: window 6 or 31 days, or a window with ForceDelete -> InvalidParameterException',
  async () => {
    await rejects(
      'InvalidParameterException',
      send(DeleteSecretCommand, { SecretId: L('d'), RecoveryWindowInDays: 6 }),
    )
    await rejects(
      'InvalidParameterException',
      send(DeleteSecretCommand, { SecretId: L('d'), RecoveryWindowInDays: 31 }),
    )
    await rejects(
      'InvalidParameterException',
      send(DeleteSecretCommand, {
        SecretId: L('d'),
        RecoveryWindowInDays: 7,
        ForceDeleteWithoutRecovery: true,
      }),
    )
    assert.equal((await describe(L('d'))).DeletedDate, undefined, 'still not deleted')
  },
)

const DAY = 24 * 3600 * 1000
await step(
  'delete-secret: a 7-day window; the value is unreachable but the metadata is not',
  async () => {
    s.delName = `${prefix}del/window`
    s.delValue = value('del')
    s.delArn = (await send(CreateSecretCommand, { Name: s.delName, SecretString: s.delValue })).ARN
    const r = await send(DeleteSecretCommand, { SecretId: s.delName, RecoveryWindowInDays: 7 })
    assert.equal(r.ARN, s.delArn)
    assert.equal(r.Name, s.delName)
    assert.ok(r.DeletionDate instanceof Date, 'DeletionDate is a Date')
    assert.ok(
      Math.abs(r.DeletionDate.getTime() - (Date.now() + 7 * DAY)) < 3600 * 1000,
      `DeletionDate is in 7 days (${r.DeletionDate.toISOString()})`,
    )
    await rejects('InvalidRequestException', get({ SecretId: s.delName }))
    await rejects(
      'InvalidRequestException',
      send(PutSecretValueCommand, { SecretId: s.delName, SecretString: value('late') }),
    )
    const d = await describe(s.delName)
    deletedDate(d.DeletedDate, 7)
    await rejects(
      'InvalidRequestException',
      send(CreateSecretCommand, { Name: s.delName, SecretString: value('again') }),
    )
  },
)

await step('restore-secret: the secret and its value are back', async () => {
  const r = await send(RestoreSecretCommand, { SecretId: s.delName })
  assert.equal(r.ARN, s.delArn)
  assert.equal(r.Name, s.delName)
  assert.equal((await describe(s.delName)).DeletedDate, undefined)
  sameSecret((await get({ SecretId: s.delName })).SecretString, s.delValue, 'after RestoreSecret')
})

await step('delete-secret: the default window is 30 days', async () => {
  const name = `${prefix}del/default`
  await send(CreateSecretCommand, { Name: name, SecretString: value('default') })
  const r = await send(DeleteSecretCommand, { SecretId: name })
  assert.ok(r.DeletionDate instanceof Date, 'DeletionDate is a Date')
  assert.ok(
    Math.abs(r.DeletionDate.getTime() - (Date.now() + 30 * DAY)) < 3600 * 1000,
    `DeletionDate is in 30 days (${r.DeletionDate.toISOString()})`,
  )
})

await step(
  'delete-secret: ForceDeleteWithoutRecovery removes it at once and frees the name',
  async () => {
    const name = `${prefix}del/force`
    await send(CreateSecretCommand, { Name: name, SecretString: value('force') })
    const r = await send(DeleteSecretCommand, { SecretId: name, ForceDeleteWithoutRecovery: true })
    assert.equal(r.Name, name)
    await rejects('ResourceNotFoundException', describe(name))
    await rejects('ResourceNotFoundException', get({ SecretId: name }))
    const again = value('force-again')
    const c = await send(CreateSecretCommand, { Name: name, SecretString: again })
    assert.match(c.ARN, arnRe(name))
    sameSecret(
      (await get({ SecretId: name })).SecretString,
      again,
      'the new secret of the same name',
    )
  },
)

const rootPolicy = {
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'AccountReads',
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` },
      Action: 'secretsmanager:GetSecretValue',
      Resource: '*',
    },
  ],
}
const publicPolicy = (principal) =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: principal,
        Action: 'secretsmanager:GetSecretValue',
        Resource: '*',
      },
    ],
  })

await step('resource policy: put, get (the same document), delete', async () => {
  const p = await send(PutResourcePolicyCommand, {
    SecretId: db,
    ResourcePolicy: JSON.stringify(rootPolicy),
  })
  assert.equal(p.ARN, s.arn)
  assert.equal(p.Name, db)
  const g = await send(GetResourcePolicyCommand, { SecretId: db })
  assert.equal(g.ARN, s.arn)
  assert.equal(g.Name, db)
  assert.deepEqual(JSON.parse(g.ResourcePolicy), rootPolicy)
  const d = await send(DeleteResourcePolicyCommand, { SecretId: db })
  assert.equal(d.ARN, s.arn)
  assert.equal((await send(GetResourcePolicyCommand, { SecretId: db })).ResourcePolicy, undefined)
})

await step(
  'put-resource-policy: not JSON, or JSON that is no policy -> MalformedPolicyDocumentException',
  async () => {
    await rejects(
      'MalformedPolicyDocumentException',
      send(PutResourcePolicyCommand, { SecretId: db, ResourcePolicy: '{not json' }),
    )
    await rejects(
      'MalformedPolicyDocumentException',
      send(PutResourcePolicyCommand, { SecretId: db, ResourcePolicy: '{"foo": 1}' }),
    )
    assert.equal((await send(GetResourcePolicyCommand, { SecretId: db })).ResourcePolicy, undefined)
  },
)

await step(
  'put-resource-policy: a public policy -> PublicPolicyException unless BlockPublicPolicy is false',
  async () => {
    await rejects(
      'PublicPolicyException',
      send(PutResourcePolicyCommand, { SecretId: db, ResourcePolicy: publicPolicy('*') }),
    )
    await rejects(
      'PublicPolicyException',
      send(PutResourcePolicyCommand, {
        SecretId: db,
        ResourcePolicy: publicPolicy({ AWS: '*' }),
        BlockPublicPolicy: true,
      }),
    )
    assert.equal((await send(GetResourcePolicyCommand, { SecretId: db })).ResourcePolicy, undefined)
    await send(PutResourcePolicyCommand, {
      SecretId: db,
      ResourcePolicy: publicPolicy('*'),
      BlockPublicPolicy: false,
    })
    assert.deepEqual(
      JSON.parse((await send(GetResourcePolicyCommand, { SecretId: db })).ResourcePolicy),
      JSON.parse(publicPolicy('*')),
    )
    await send(DeleteResourcePolicyCommand, { SecretId: db })
    assert.equal((await send(GetResourcePolicyCommand, { SecretId: db })).ResourcePolicy, undefined)
  },
)

await step(
  'validate-resource-policy: passes, fails with ValidationErrors, or is malformed',
  async () => {
    const ok = await send(ValidateResourcePolicyCommand, {
      SecretId: db,
      ResourcePolicy: JSON.stringify(rootPolicy),
    })
    assert.equal(ok.PolicyValidationPassed, true)
    assert.deepEqual(ok.ValidationErrors ?? [], [])
    const badCondition = JSON.parse(JSON.stringify(rootPolicy))
    badCondition.Statement[0].Condition = { StringEqualsMaybe: { 'aws:username': 'x' } }
    const bad = await send(ValidateResourcePolicyCommand, {
      SecretId: db,
      ResourcePolicy: JSON.stringify(badCondition),
    })
    assert.equal(bad.PolicyValidationPassed, false)
    assert.ok(
      Array.isArray(bad.ValidationErrors) && bad.ValidationErrors.length >= 1,
      'ValidationErrors are listed',
    )
    assert.ok(
      bad.ValidationErrors.every(
        (e) => typeof e.ErrorMessage === 'string' && e.ErrorMessage.length > 0,
      ),
      'each ValidationError has an ErrorMessage',
    )
    await rejects(
      'MalformedPolicyDocumentException',
      send(ValidateResourcePolicyCommand, { SecretId: db, ResourcePolicy: 'nope' }),
    )
  },
)

await step(
  'rotate-secret: without a rotation function -> InvalidRequestException, nothing changes',
  async () => {
    await rejects('InvalidRequestException', send(RotateSecretCommand, { SecretId: db }))
    const d = await describe(db)
    assert.notEqual(d.RotationEnabled, true)
    assert.deepEqual(
      stagesOf(d.VersionIdsToStages),
      { [s.tok5]: ['AWSCURRENT'], [s.tokP]: ['AWSPREVIOUS'] },
      'no AWSPENDING version was left behind',
    )
  },
)

// GetRandomPassword. The punctuation class is the ASCII punctuation of the model's documentation.
const PUNCT = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'
const classes = (pw) => ({
  upper: /[A-Z]/.test(pw),
  lower: /[a-z]/.test(pw),
  digit: /[0-9]/.test(pw),
  punct: [...pw].some((c) => PUNCT.includes(c)),
  space: pw.includes(' '),
  other: [...pw].some((c) => !/[A-Za-z0-9 ]/.test(c) && !PUNCT.includes(c)),
})
const password = async (input) => {
  const r = await send(GetRandomPasswordCommand, input)
  assert.equal(typeof r.RandomPassword, 'string', 'RandomPassword is a string')
  secretValues.add(r.RandomPassword)
  return r.RandomPassword
}

await step(
  'get-random-password: 32 characters by default, each character type present',
  async () => {
    const pw = await password({})
    assert.equal(pw.length, 32)
    assert.deepEqual(classes(pw), {
      upper: true,
      lower: true,
      digit: true,
      punct: true,
      space: false,
      other: false,
    })
    assert.notEqual(await password({}), pw, 'two passwords differ')
  },
)

await step('get-random-password: PasswordLength and ExcludeCharacters', async () => {
  const pw = await password({ PasswordLength: 100, ExcludeCharacters: 'abcXYZ019!@' })
  assert.equal(pw.length, 100)
  assert.ok(![...pw].some((c) => 'abcXYZ019!@'.includes(c)), 'no excluded character')
  assert.equal((await password({ PasswordLength: 4096 })).length, 4096)
})

await step('get-random-password: PasswordLength 1 with RequireEachIncludedType false', async () => {
  assert.equal((await password({ PasswordLength: 1, RequireEachIncludedType: false })).length, 1)
})

await step('get-random-password: Exclude{Numbers,Punctuation,Uppercase,Lowercase}', async () => {
  const letters = await password({
    PasswordLength: 50,
    ExcludeNumbers: true,
    ExcludePunctuation: true,
  })
  assert.deepEqual(classes(letters), {
    upper: true,
    lower: true,
    digit: false,
    punct: false,
    space: false,
    other: false,
  })
  const digits = await password({
    PasswordLength: 20,
    ExcludeUppercase: true,
    ExcludeLowercase: true,
    ExcludePunctuation: true,
  })
  assert.match(digits, /^[0-9]{20}$/, 'only digits')
})

await step(
  'get-random-password: IncludeSpace with RequireEachIncludedType puts a space in',
  async () => {
    const pw = await password({
      PasswordLength: 40,
      IncludeSpace: true,
      RequireEachIncludedType: true,
    })
    assert.equal(pw.length, 40)
    assert.deepEqual(classes(pw), {
      upper: true,
      lower: true,
      digit: true,
      punct: true,
      space: true,
      other: false,
    })
  },
)

await step('get-random-password: PasswordLength 0 or 4097 -> ValidationException', async () => {
  await rejects('ValidationException', send(GetRandomPasswordCommand, { PasswordLength: 0 }))
  await rejects('ValidationException', send(GetRandomPasswordCommand, { PasswordLength: 4097 }))
})

process.exit(failures ? 1 : 0)
