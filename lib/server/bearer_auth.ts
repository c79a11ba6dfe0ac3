/**
 * Bearer-token middleware for the metrics server (RFC 6750), shaped like hono's own
 * (honojs/hono src/middleware/bearer-auth): a factory that validates its options up front, a
 * malformed header answered 400 and a missing or wrong token 401, each with its challenge.
 * Unlike hono's, the comparison is synchronous and does no hashing: see
 * {@linkcode constantTimeEqual}.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { constantTimeEqual } from "../forensic/digest.ts";

/** Options of {@linkcode bearerAuth}. */
export interface BearerAuthOptions {
  /** The expected token (RFC 6750 `b64token` characters), e.g. the bytes of `--token-file`. */
  token: string | Uint8Array;
  /**
   * Realm named in the `WWW-Authenticate` challenge.
   *
   * @default {"kvh"}
   */
  realm?: string;
  /**
   * Called with 400 or 401 for every rejected request, e.g. to count them.
   *
   * @default {() => {}}
   */
  onReject?: (status: 400 | 401) => void;
}

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const SCHEME = "bearer ";

/**
 * Creates middleware that lets a request through only with `Authorization: Bearer <token>`.
 *
 * @param options The expected token, the realm and a rejection hook.
 * @returns A hono middleware handler.
 * @throws {TypeError} If the token is empty or has characters a bearer token cannot carry.
 *
 * @example Protect a route
 * ```ts
 * import { Hono } from "hono";
 * import { bearerAuth } from "./bearer_auth.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono();
 * app.use("/metrics", bearerAuth({ token: "s3cret" }));
 * app.get("/metrics", () => new Response("ok"));
 * assert.equal((await app.request("/metrics")).status, 401);
 * const ok = await app.request("/metrics", { headers: { Authorization: "Bearer s3cret" } });
 * assert.equal(ok.status, 200);
 * ```
 */
export function bearerAuth(options: BearerAuthOptions): MiddlewareHandler {
  const check = bearerCheck(options);
  return async function bearerAuth(c, next) {
    const rejected = check(c.req.raw.headers.get("authorization"));
    if (rejected !== null) return rejected;
    await next();
  };
}

/**
 * The core of {@linkcode bearerAuth}: given the `Authorization` header, the rejection to send,
 * or `null` to let the request through.
 */
function bearerCheck(
  options: BearerAuthOptions,
): (header: string | null) => Response | null {
  const { realm = "kvh", onReject = () => {} } = options;
  const token = typeof options.token === "string"
    ? options.token
    : new TextDecoder().decode(options.token);
  if (!B64TOKEN.test(token)) {
    throw new TypeError(
      "Invalid bearer token: expected 1 or more characters of A-Z a-z 0-9 - . _ ~ + / then optional =",
    );
  }
  const quotedRealm = realm.replace(/[\\"]/g, "\\$&");
  const missing = `Bearer realm="${quotedRealm}"`;
  const invalidRequest = `Bearer realm="${quotedRealm}", error="invalid_request"`;
  const invalidToken = `Bearer realm="${quotedRealm}", error="invalid_token"`;

  function reject(status: 400 | 401, challenge: string): Response {
    onReject(status);
    return new Response(status === 400 ? "Bad Request\n" : "Unauthorized\n", {
      status,
      headers: { "content-type": "text/plain; charset=utf-8", "www-authenticate": challenge },
    });
  }

  return function check(header) {
    if (header === null) return reject(401, missing);
    const schemeOk = header.length > SCHEME.length &&
      header.slice(0, SCHEME.length).toLowerCase() === SCHEME;
    const presented = schemeOk ? header.slice(SCHEME.length).trim() : "";
    if (!B64TOKEN.test(presented)) return reject(400, invalidRequest);
    if (!constantTimeEqual(presented, token)) return reject(401, invalidToken);
    return null;
  };
}
