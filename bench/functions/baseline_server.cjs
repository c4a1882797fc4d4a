// The functions benchmark's baselines, one Node.js process each, answering every POST with the
// handler's result as JSON (the request's body is the event):
//   node baseline_server.cjs lambda-local PORT HANDLER_FILE   the handler run by lambda-local's
//                                                              execute()
//   node baseline_server.cjs node PORT HANDLER_FILE           the handler called directly (floor)
// Prints "listening PORT" once ready.
"use strict";
const http = require("node:http");
const path = require("node:path");

const [mode, port, handlerFile] = process.argv.slice(2);
if (!["lambda-local", "node"].includes(mode) || !port || !handlerFile) {
  console.error("usage: node baseline_server.cjs lambda-local|node PORT HANDLER_FILE");
  process.exit(2);
}
const file = path.resolve(handlerFile);
let run;
if (mode === "lambda-local") {
  const lambdaLocal = require("lambda-local");
  // The module loaded once (lambdaFunc): the faster of execute()'s two ways in (with lambdaPath,
  // as `lambda-local -l FILE` runs, it drops the module from require's cache and loads it again
  // on every call). verboseLevel 0: no per-invocation START/End lines.
  const mod = require(file);
  run = (event) => lambdaLocal.execute({
    event, lambdaFunc: mod, lambdaHandler: "handler", timeoutMs: 3000, verboseLevel: 0,
  });
} else {
  const { handler } = require(file);
  run = (event) => handler(event);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    try {
      const text = Buffer.concat(chunks).toString("utf8");
      const result = await run(text ? JSON.parse(text) : {});
      const body = JSON.stringify(result === undefined ? null : result);
      res.writeHead(200, { "Content-Type": "application/json",
                           "Content-Length": Buffer.byteLength(body) });
      res.end(body);
    } catch (e) {
      res.writeHead(500, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ errorMessage: String(e && e.message ? e.message : e) }));
    }
  });
});
server.keepAliveTimeout = 75_000;
server.listen(Number(port), "127.0.0.1", () => console.log(`listening ${port}`));
