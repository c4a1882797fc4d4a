// Calls STS on a moatless endpoint with the AWS SDK for JavaScript v3 and prints the result as one
// JSON line: {"ok": true, ...} or {"ok": false, "code": "<AWS error code>", "message": ...}.
//
//   node sts.mjs ENDPOINT get-caller-identity
//   node sts.mjs ENDPOINT assume-role ROLE_ARN SESSION_NAME [DURATION_SECONDS]
//
// Credentials come from the SDK's default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
// AWS_SESSION_TOKEN in the tests); the region from AWS_REGION.
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts'

const [endpoint, operation, ...args] = process.argv.slice(2)
const client = new STSClient({ endpoint, maxAttempts: 1 })
try {
  let out
  if (operation === 'get-caller-identity') {
    const r = await client.send(new GetCallerIdentityCommand({}))
    out = { Arn: r.Arn, Account: r.Account, UserId: r.UserId }
  } else if (operation === 'assume-role') {
    const r = await client.send(new AssumeRoleCommand({
      RoleArn: args[0], RoleSessionName: args[1],
      DurationSeconds: args[2] ? Number(args[2]) : undefined,
    }))
    out = {
      AccessKeyId: r.Credentials.AccessKeyId, SecretAccessKey: r.Credentials.SecretAccessKey,
      SessionToken: r.Credentials.SessionToken, Arn: r.AssumedRoleUser.Arn,
    }
  } else {
    throw new Error(`unknown operation ${operation}`)
  }
  console.log(JSON.stringify({ ok: true, ...out }))
} catch (e) {
  console.log(JSON.stringify({ ok: false, code: e.name ?? e.Code, message: e.message }))
}
