// A Lambda authorizer with simple responses: allows the request whose X-Gate header is
// "let-me-in" (identitySource[0]) and gives the function a context; denies everything else.
export const handler = async (event) => {
  if (event.type !== "REQUEST" || event.identitySource?.[0] !== "let-me-in") {
    return { isAuthorized: false };
  }
  return { isAuthorized: true, context: { user: "u1", n: 7 } };
};
