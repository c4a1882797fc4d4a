// GET /notes/{id}: reads the database credentials from the secrets manager at run time (never from
// the code or the environment), through the AWS SDK. Its policy allows exactly that one secret.
import { SecretsManagerClient, GetSecretValueCommand } from "@aws-sdk/client-secrets-manager";

const secrets = new SecretsManagerClient({});

export const handler = async (event) => {
  const id = event?.pathParameters?.id ?? event?.id;
  if (typeof id !== "string" || !/^[0-9a-f-]{1,64}$/.test(id)) {
    return { statusCode: 400, body: JSON.stringify({ error: "a note id is required" }) };
  }
  let database;
  try {
    const secret = await secrets.send(new GetSecretValueCommand({ SecretId: process.env.DB_SECRET }));
    database = JSON.parse(secret.SecretString ?? "{}").host ?? "configured";
  } catch (e) {
    // Say which error, never what the secret holds.
    return { statusCode: 503, body: JSON.stringify({ error: "database unavailable", cause: e.name }) };
  }
  return { statusCode: 200, body: JSON.stringify({ id, database }) };
};
