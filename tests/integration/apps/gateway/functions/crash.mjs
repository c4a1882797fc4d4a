// An authorizer that fails: the gateway answers 500 and audits it.
export const handler = async () => {
  throw new Error("the authorizer crashed");
};
