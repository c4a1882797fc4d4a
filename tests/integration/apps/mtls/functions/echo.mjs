// Answers with the whole payload 2.0 event (as JSON) in a structured response, with a header of its
// own and two cookies. ?status=NNN chooses the status code. It logs nothing: the event holds the
// caller's credentials.
export const handler = async (event) => {
  const status = Number(event.queryStringParameters?.status ?? 200);
  return {
    statusCode: status,
    headers: { "content-type": "application/json", "x-echo": "yes" },
    cookies: ["session=abc123; Path=/; HttpOnly", "theme=dark; Path=/"],
    body: JSON.stringify(event),
    isBase64Encoded: false,
  };
};
