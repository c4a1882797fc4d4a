// A Lambda authorizer answering with an IAM policy (response: iam). The policy allows
// execute-api:Invoke on the ARN of the route this authorizer guards, GET /policy/allowed, and
// nothing else: built from the event's routeArn (arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/
// METHOD/PATH), whichever route is being called.
export const handler = async (event) => {
  const [api, stage] = event.routeArn.split(":")[5].split("/");
  const prefix = event.routeArn.split(":").slice(0, 5).join(":");
  return {
    principalId: "policy-user",
    policyDocument: {
      Version: "2012-10-17",
      Statement: [{
        Effect: "Allow",
        Action: "execute-api:Invoke",
        Resource: `${prefix}:${api}/${stage}/GET/policy/allowed`,
      }],
    },
    context: { via: "policy", token: event.identitySource[0].length },
  };
};
