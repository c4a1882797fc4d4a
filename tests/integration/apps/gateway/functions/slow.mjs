// Answers after 8 s, well past the integration timeout the test starts the server with.
export const handler = async () => {
  await new Promise((resolve) => setTimeout(resolve, 8000));
  return { statusCode: 200, body: "too late" };
};
