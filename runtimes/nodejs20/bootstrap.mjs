// moatless nodejs20 runtime: the Lambda Runtime API loop (2018-06-01) for Node.js handlers.
//
// _HANDLER is "path/to/file.export" relative to LAMBDA_TASK_ROOT; the file may be an ES module
// (.mjs, or .js in a "type": "module" package) or CommonJS (.js, .cjs). The export may be an
// async function (event, context) => result, or callback style (event, context, callback).
// Results are sent as JSON; thrown errors and callback errors as the Lambda error shape.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const taskRoot = process.env.LAMBDA_TASK_ROOT || "/var/task";
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(method, urlPath, body, headers = {}) {
  const [host, port] = api.split(":");
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port, method, path: "/2018-06-01" + urlPath, agent, headers },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      });
    req.on("error", reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

function errorShape(err) {
  if (err instanceof Error) {
    return {
      errorType: err.name || "Error",
      errorMessage: err.message,
      stackTrace: (err.stack || "").split("\n").slice(1).map((l) => l.trim()),
    };
  }
  return { errorType: "Error", errorMessage: String(err), stackTrace: [] };
}

async function postError(urlPath, err, type) {
  const body = JSON.stringify(errorShape(err));
  await call("POST", urlPath, body, {
    "Content-Type": "application/vnd.aws.lambda.error+json",
    "Lambda-Runtime-Function-Error-Type": type,
  });
}

async function loadHandler() {
  const handlerSpec = process.env._HANDLER || "";
  const dot = handlerSpec.lastIndexOf(".");
  if (dot <= 0) {
    throw Object.assign(new Error(`Bad handler ${handlerSpec}: expected file.export`),
                        { name: "Runtime.MalformedHandlerName" });
  }
  const file = handlerSpec.slice(0, dot);
  const exportName = handlerSpec.slice(dot + 1);
  const base = path.resolve(taskRoot, file);
  let mod;
  for (const ext of [".mjs", ".js", ".cjs"]) {
    const candidate = base + ext;
    if (!fs.existsSync(candidate)) continue;
    try {
      mod = ext === ".cjs" ? createRequire(candidate)(candidate)
                           : await import(pathToFileURL(candidate).href);
    } catch (e) {
      if (e && e.code === "ERR_REQUIRE_ESM") mod = await import(pathToFileURL(candidate).href);
      else throw Object.assign(e instanceof Error ? e : new Error(String(e)),
                               { name: "Runtime.ImportModuleError" });
    }
    break;
  }
  if (mod === undefined) {
    throw Object.assign(new Error(`Cannot find module '${file}'`),
                        { name: "Runtime.ImportModuleError" });
  }
  const fn = mod[exportName] ?? (mod.default && mod.default[exportName]);
  if (typeof fn !== "function") {
    throw Object.assign(new Error(`${handlerSpec} is undefined or not exported`),
                        { name: "Runtime.HandlerNotFound" });
  }
  return fn;
}

function invokeHandler(handler, event, context) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const callback = (err, result) => {
      if (settled) return;
      settled = true;
      if (err !== null && err !== undefined) reject(err);
      else resolve(result);
    };
    try {
      const returned = handler(event, context, callback);
      if (returned && typeof returned.then === "function") {
        returned.then((r) => callback(null, r), (e) => callback(e ?? new Error("rejected")));
      } else if (handler.length < 3) {
        callback(null, returned);
      }
    } catch (e) {
      callback(e);
    }
  });
}

let handler;
try {
  handler = await loadHandler();
} catch (e) {
  console.error(e);
  await postError("/runtime/init/error", e, e.name || "Runtime.Unknown");
  process.exit(1);
}

// The optional Client-Context and Cognito-Identity headers carry JSON; undefined when absent.
function parseHeaderJson(value) {
  if (!value) return undefined;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

for (;;) {
  const next = await call("GET", "/runtime/invocation/next");
  if (next.status !== 200) {
    console.error(`runtime API /next answered ${next.status}`);
    process.exit(1);
  }
  const h = next.headers;
  const requestId = h["lambda-runtime-aws-request-id"];
  const deadline = Number(h["lambda-runtime-deadline-ms"]);
  if (h["lambda-runtime-trace-id"]) process.env._X_AMZN_TRACE_ID = h["lambda-runtime-trace-id"];
  const context = {
    awsRequestId: requestId,
    invokedFunctionArn: h["lambda-runtime-invoked-function-arn"],
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    callbackWaitsForEmptyEventLoop: true,
    clientContext: parseHeaderJson(h["lambda-runtime-client-context"]),
    identity: parseHeaderJson(h["lambda-runtime-cognito-identity"]),
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  let event;
  try {
    event = JSON.parse(next.body.toString("utf8") || "null");
  } catch (e) {
    await postError(`/runtime/invocation/${requestId}/error`, e, "Runtime.InvalidEventData");
    continue;
  }
  // Like Lambda, a handler whose promise never settles runs until the function's timeout; without
  // a pending timer Node would exit as soon as its event loop is empty.
  const keepAlive = setInterval(() => {}, 1 << 30);
  try {
    const result = await invokeHandler(handler, event, context);
    const body = JSON.stringify(result === undefined ? null : result);
    const res = await call("POST", `/runtime/invocation/${requestId}/response`, body,
                           { "Content-Type": "application/json" });
    if (res.status === 413) {
      await postError(`/runtime/invocation/${requestId}/error`,
                      Object.assign(new Error("Response payload size exceeded maximum allowed payload size"),
                                    { name: "Function.ResponseSizeTooLarge" }),
                      "Function.ResponseSizeTooLarge");
    }
  } catch (e) {
    console.error(e);
    await postError(`/runtime/invocation/${requestId}/error`, e, "Unhandled");
  } finally {
    clearInterval(keepAlive);
  }
}
