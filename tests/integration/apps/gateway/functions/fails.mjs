// Throws: the gateway must answer 502 without the message or the stack.
export const handler = async () => {
  throw new Error("internal detail db-password-hunter2 must not reach the client");
};
