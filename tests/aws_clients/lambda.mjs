// Invokes a function on a moatless endpoint with the AWS SDK for JavaScript v3 (LambdaClient,
// InvokeCommand) and prints the result as one JSON line:
//   {"ok": true, "StatusCode", "FunctionError", "ExecutedVersion", "Payload" (decoded text),
//    "LogResult" (decoded text)}
//   {"ok": false, "code": "<AWS error code>", "status": <HTTP status>, "message": ...}
//
//   node lambda.mjs ENDPOINT FUNCTION [--payload JSON] [--qualifier Q] [--log]
//                   [--invocation-type RequestResponse|Event|DryRun]
//
// Credentials come from the SDK's default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
// AWS_SESSION_TOKEN in the tests); the region from AWS_REGION (default "local").
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda'

const [endpoint, functionName, ...rest] = process.argv.slice(2)
const options = { payload: undefined, qualifier: undefined, log: false, type: undefined }
for (let i = 0; i < rest.length; i++) {
  const arg = rest[i]
  if (arg === '--payload') options.payload = rest[++i]
  else if (arg === '--qualifier') options.qualifier = rest[++i]
  else if (arg === '--invocation-type') options.type = rest[++i]
  else if (arg === '--log') options.log = true
  else {
    console.error(`unknown argument ${arg}`)
    process.exit(2)
  }
}
if (!endpoint || !functionName) {
  console.error('usage: node lambda.mjs ENDPOINT FUNCTION [--payload JSON] [--qualifier Q] [--log]')
  process.exit(2)
}

const decode = (bytes) => (bytes == null ? undefined : new TextDecoder().decode(bytes))
const client = new LambdaClient({
  endpoint, region: process.env.AWS_REGION ?? 'local', maxAttempts: 1,
})
try {
  const r = await client.send(new InvokeCommand({
    FunctionName: functionName,
    Qualifier: options.qualifier,
    InvocationType: options.type,
    LogType: options.log ? 'Tail' : undefined,
    Payload: options.payload === undefined ? undefined : new TextEncoder().encode(options.payload),
  }))
  console.log(JSON.stringify({
    ok: true,
    StatusCode: r.StatusCode,
    FunctionError: r.FunctionError,
    ExecutedVersion: r.ExecutedVersion,
    Payload: decode(r.Payload),
    LogResult: r.LogResult == null ? undefined
      : Buffer.from(r.LogResult, 'base64').toString('utf8'),
  }))
} catch (e) {
  console.log(JSON.stringify({
    ok: false, code: e.name ?? e.Code, status: e.$metadata?.httpStatusCode, message: e.message,
  }))
}
