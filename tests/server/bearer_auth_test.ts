import assert from "node:assert/strict";
import fc from "fast-check";
import { Hono } from "hono";
import { bearerAuth, type BearerAuthOptions } from "../../lib/server/bearer_auth.ts";

function app(options: BearerAuthOptions): Hono {
  const hono = new Hono();
  hono.use("/m", bearerAuth(options));
  hono.get("/m", () => new Response("in"));
  return hono;
}

async function status(hono: Hono, authorization?: string): Promise<[number, string | null]> {
  const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
  const res = await hono.request("/m", { headers });
  await res.body?.cancel();
  return [res.status, res.headers.get("www-authenticate")];
}

Deno.test("bearerAuth() answers 401 with the realm challenge when the header is missing", async () => {
  assert.deepEqual(await status(app({ token: "abc", realm: 'my "realm"' })), [
    401,
    'Bearer realm="my \\"realm\\""',
  ]);
});

Deno.test("bearerAuth() answers 400 invalid_request for a malformed header", async () => {
  const hono = app({ token: "abc" });
  for (const header of ["Basic YWJj", "Bearer", "Bearer ", "Bearer a b", "Bearer ä", "abc"]) {
    const [code, challenge] = await status(hono, header);
    assert.equal(code, 400, header);
    assert.equal(challenge, 'Bearer realm="kvh", error="invalid_request"');
  }
});

Deno.test("bearerAuth() answers 401 invalid_token for a wrong token", async () => {
  assert.deepEqual(await status(app({ token: "abc" }), "Bearer abd"), [
    401,
    'Bearer realm="kvh", error="invalid_token"',
  ]);
  assert.equal((await status(app({ token: "abc" }), "Bearer abcabc"))[0], 401);
});

Deno.test("bearerAuth() lets the right token through, scheme case-insensitive", async () => {
  const hono = app({ token: new TextEncoder().encode("a.b-c_d~e+f/g==") });
  assert.equal((await status(hono, "Bearer a.b-c_d~e+f/g=="))[0], 200);
  assert.equal((await status(hono, "bearer a.b-c_d~e+f/g=="))[0], 200);
});

Deno.test("bearerAuth() reports each rejection to onReject", async () => {
  const seen: number[] = [];
  const hono = app({ token: "abc", onReject: (s) => seen.push(s) });
  await status(hono);
  await status(hono, "Basic x");
  await status(hono, "Bearer zzz");
  await status(hono, "Bearer abc");
  assert.deepEqual(seen, [401, 400, 401]);
});

Deno.test("bearerAuth() throws TypeError for a token with characters outside RFC 6750", () => {
  for (const token of ["", "a b", "tok\n", "=abc", "ä"]) {
    assert.throws(() => bearerAuth({ token }), TypeError, JSON.stringify(token));
  }
});

Deno.test("bearerAuth() accepts exactly the configured token (property, seed 5)", async () => {
  const b64 = fc.stringMatching(/^[A-Za-z0-9\-._~+/]{1,40}$/);
  await fc.assert(
    fc.asyncProperty(b64, b64, async (token, presented) => {
      const [code] = await status(app({ token }), `Bearer ${presented}`);
      assert.equal(code, presented === token ? 200 : 401);
    }),
    { seed: 5, numRuns: 200 },
  );
});
