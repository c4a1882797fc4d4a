// Bytes both ways: echoes a request body back exactly (decoded from base64 when the gateway
// encoded it), or, without a body, returns a fixed blob holding NULs and bytes that are not UTF-8.
export const handler = async (event) => {
  const body = event.body === undefined ? Buffer.from([0, 1, 2, 0xff, 0xfe, 0, 0x80, 0x7f])
    : Buffer.from(event.body, event.isBase64Encoded ? "base64" : "utf8");
  return {
    statusCode: 200,
    headers: {
      "content-type": "application/octet-stream",
      "x-request-was-base64": String(event.isBase64Encoded),
    },
    body: body.toString("base64"),
    isBase64Encoded: true,
  };
};
