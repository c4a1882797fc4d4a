// The benchmark's function: a Node.js hello world, the same file under moatless (handler
// "index.handler"), under lambda-local, behind a plain Node HTTP server and under `node -e`.
exports.handler = async (event) => ({ greeting: `hello ${event.name ?? "world"}` });
