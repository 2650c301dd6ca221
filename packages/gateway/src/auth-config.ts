/**
 * Gateway auth configuration: bearer tokens with scopes, parsed from
 * `GATEWAY_AUTH_TOKENS`, and the start-up policy that decides whether the gateway may
 * run without auth (`GATEWAY_AUTH=off`, or a loopback-only listener).
 */

/** What a bearer token may do. */
export const AuthScope = {
  /** Reads: `GET` routes (state, listings, dead letters). */
  Read: 'read',
  /** Mutations: signals, calls, deletes. */
  Write: 'write',
  /** Operator actions: resubmitting dead letters. */
  Admin: 'admin',
} as const;
/** One of the {@link AuthScope} values. */
export type AuthScope = (typeof AuthScope)[keyof typeof AuthScope];

/** Every scope, in the order they are documented. */
export const AUTH_SCOPES: readonly AuthScope[] = Object.freeze([AuthScope.Read, AuthScope.Write, AuthScope.Admin]);

/** A bearer token and the scopes it grants. */
export interface AuthToken {
  /** The secret, as sent in `Authorization: Bearer <token>`. */
  readonly token: string;
  /** What it may do; scopes are independent (`admin` does not imply `write`). */
  readonly scopes: readonly AuthScope[];
}

/** Tokens shorter than this are accepted but logged as weak at start. */
export const WEAK_TOKEN_LENGTH = 16;

/** Characters a token may contain: visible ASCII except the separators `:`, `;` and `,`. */
const TOKEN_RE = /^[!-+\--9<-~]+$/;

function isScope(s: string): s is AuthScope {
  return (AUTH_SCOPES as readonly string[]).includes(s);
}

function checkToken(token: string, where: string): void {
  if (!TOKEN_RE.test(token)) {
    throw new TypeError(`${where}: a token must be visible ASCII characters without ':', ';', ',' or spaces`);
  }
}

/**
 * Parses `GATEWAY_AUTH_TOKENS`. Two forms:
 *
 * - scoped: `tokenA:read,write;tokenB:read` — entries separated by `;`, each a token, `:`
 *   and its comma-separated scopes (`read`, `write`, `admin`); a token without `:` gets every scope;
 * - plain (the older form, no `:` or `;`): `tokenA,tokenB` — each token gets every scope.
 *
 * Empty or blank text gives no tokens. Throws a `TypeError` that names the bad entry
 * (without echoing the secret).
 */
export function parseAuthTokens(text: string | undefined): AuthToken[] {
  const raw = (text ?? '').trim();
  if (raw === '') return [];
  const scoped = raw.includes(':') || raw.includes(';');
  const entries = (scoped ? raw.split(';') : raw.split(',')).map((e) => e.trim()).filter((e) => e !== '');
  const tokens: AuthToken[] = [];
  entries.forEach((entry, i) => {
    const where = `GATEWAY_AUTH_TOKENS entry ${i + 1}`;
    const colon = entry.indexOf(':');
    const token = (colon < 0 ? entry : entry.slice(0, colon)).trim();
    checkToken(token, where);
    let scopes: AuthScope[] = [...AUTH_SCOPES];
    if (colon >= 0) {
      const names = entry.slice(colon + 1).split(',').map((s) => s.trim()).filter((s) => s !== '');
      if (names.length === 0) throw new TypeError(`${where}: no scopes after ':' (use ${AUTH_SCOPES.join(', ')})`);
      const unknown = names.find((s) => !isScope(s));
      if (unknown !== undefined) {
        throw new TypeError(`${where}: unknown scope ${JSON.stringify(unknown.slice(0, 32))} (use ${AUTH_SCOPES.join(', ')})`);
      }
      scopes = AUTH_SCOPES.filter((s) => names.includes(s));
    }
    tokens.push({ token, scopes });
  });
  return normalizeAuthTokens(tokens, 'GATEWAY_AUTH_TOKENS');
}

/**
 * Validates tokens given as options: a string is a token with every scope. Throws a
 * `TypeError` naming `field` for an empty token, an unknown scope or a token given twice.
 */
export function normalizeAuthTokens(tokens: readonly (string | AuthToken)[], field = "gateway option 'authTokens'"): AuthToken[] {
  if (!Array.isArray(tokens)) throw new TypeError(`${field} must be an array of tokens`);
  const seen = new Set<string>();
  return tokens.map((t: unknown, i) => {
    const entry: AuthToken | undefined =
      typeof t === 'string'
        ? { token: t, scopes: AUTH_SCOPES }
        : t !== null && typeof t === 'object' && typeof (t as AuthToken).token === 'string' && Array.isArray((t as AuthToken).scopes)
          ? (t as AuthToken)
          : undefined;
    if (entry === undefined || entry.token.length === 0) {
      throw new TypeError(`${field} must be an array of non-empty strings or { token, scopes } objects (entry ${i + 1})`);
    }
    const unknown = entry.scopes.find((s) => !isScope(s));
    if (unknown !== undefined) throw new TypeError(`${field}: entry ${i + 1} has an unknown scope ${JSON.stringify(unknown)}`);
    if (seen.has(entry.token)) throw new TypeError(`${field}: entry ${i + 1} repeats an earlier token`);
    seen.add(entry.token);
    return Object.freeze({ token: entry.token, scopes: Object.freeze(AUTH_SCOPES.filter((s) => entry.scopes.includes(s))) });
  });
}

/** True for a host that only this machine can reach: `127.0.0.0/8`, `::1`, `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** What the gateway does about auth, decided once at start. */
export type AuthDecision =
  | { readonly mode: 'tokens'; readonly tokens: readonly AuthToken[] }
  | { readonly mode: 'off'; readonly reason: 'explicit' | 'loopback' };

/**
 * The start-up auth policy, from `GATEWAY_AUTH_TOKENS`, `GATEWAY_AUTH` and the listen host:
 *
 * - tokens given: every `/api` request needs one (`GATEWAY_AUTH=off` with tokens is a contradiction and an error);
 * - `GATEWAY_AUTH=off`: no auth, on purpose;
 * - no tokens, listening on loopback only (the `npm start` default): no auth, logged loudly;
 * - no tokens, listening beyond loopback: refuses to start.
 *
 * Throws a `TypeError` (bad values) or `Error` (refusal) with a message that says what to set.
 */
export function decideAuth(env: NodeJS.ProcessEnv, host: string): AuthDecision {
  const tokens = parseAuthTokens(env.GATEWAY_AUTH_TOKENS);
  const setting = (env.GATEWAY_AUTH ?? '').trim().toLowerCase();
  if (setting !== '' && setting !== 'on' && setting !== 'off') {
    throw new TypeError(`GATEWAY_AUTH must be 'on' or 'off', got ${JSON.stringify(env.GATEWAY_AUTH)}`);
  }
  if (setting === 'off') {
    if (tokens.length > 0) throw new TypeError('GATEWAY_AUTH=off and GATEWAY_AUTH_TOKENS are both set: unset one of them');
    return { mode: 'off', reason: 'explicit' };
  }
  if (tokens.length > 0) return { mode: 'tokens', tokens };
  if (setting === 'on') throw new Error('GATEWAY_AUTH=on but GATEWAY_AUTH_TOKENS is empty: give at least one token');
  if (isLoopbackHost(host)) return { mode: 'off', reason: 'loopback' };
  throw new Error(
    `refusing to listen on ${host} without auth: set GATEWAY_AUTH_TOKENS (e.g. "tokenA:read,write;tokenB:read"), ` +
      'or GATEWAY_AUTH=off to run without auth on purpose',
  );
}
