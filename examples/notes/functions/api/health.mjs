// GET /health: public (auth: none in the manifest), and it says nothing an attacker could use.
export const handler = async () => ({ statusCode: 200, body: JSON.stringify({ ok: true }) });
