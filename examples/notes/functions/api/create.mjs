// POST /notes: the gateway has already checked the JWT and the request schema; the function still
// checks what it relies on (never trust the gateway alone), then asks `summarize` for a summary
// through Lambda's Invoke API — allowed by its policy, and by nothing else.
import { LambdaClient, InvokeCommand } from "@aws-sdk/client-lambda";
import { randomUUID } from "node:crypto";

const lambda = new LambdaClient({});  // endpoint and credentials come from the environment

export const handler = async (event) => {
  let note;
  try {
    note = typeof event.body === "string" ? JSON.parse(event.body) : event;
  } catch {
    return { statusCode: 400, body: JSON.stringify({ error: "the body is not JSON" }) };
  }
  if (typeof note?.title !== "string" || typeof note?.body !== "string") {
    return { statusCode: 400, body: JSON.stringify({ error: "title and body are required" }) };
  }
  const out = await lambda.send(new InvokeCommand({
    FunctionName: process.env.SUMMARIZE_FUNCTION,
    Payload: JSON.stringify({ text: note.body }),
  }));
  if (out.FunctionError) throw new Error("summarize failed: " + Buffer.from(out.Payload).toString());
  const summary = JSON.parse(Buffer.from(out.Payload).toString());
  return {
    statusCode: 201,
    body: JSON.stringify({ id: randomUUID(), title: note.title, summary }),
  };
};
