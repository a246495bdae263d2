// Test-only OpenID provider for the codex-login end-to-end tests.
//
//   node tests/issuer/issuer.mjs [--port N] [--host 127.0.0.1]
//
// Prints exactly one line on stdout when ready:  ISSUER_READY http://127.0.0.1:PORT
// Everything else (oidc-provider warnings, request errors) goes to stderr.
//
// See README.md beside this file for the configuration and the /__test__/ hook API.

import http from 'node:http';
import { randomBytes, createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

import Provider from 'oidc-provider';

// stdout carries only the ISSUER_READY line: oidc-provider prints its NOTICEs with console.info.
for (const method of ['log', 'info', 'debug']) {
  console[method] = (...parts) => console.error(...parts); // eslint-disable-line no-console
}

const AUTH_CLAIM = 'https://api.openai.com/auth';
const DEFAULT_CLIENT_ID = 'app_EMoamEEZ73f0CkXaXp7hrann';
const API_AUDIENCE = 'https://api.openai.com/v1';
const BODY_LIMIT = 64 * 1024;
const MAX_RECORDED_REQUESTS = 200;
const DEVICE_CODE_TTL_MS = 15 * 60 * 1000;

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.TEST_ISSUER_PORT || '0' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});

const clientId = process.env.TEST_CLIENT_ID || DEFAULT_CLIENT_ID;

function log(...parts) {
  process.stderr.write(`[test-issuer] ${parts.join(' ')}\n`);
}

// ---------------------------------------------------------------------------
// Mutable test state (changed through the /__test__/ hooks)
// ---------------------------------------------------------------------------

const state = {
  overrides: new Map(), // path -> [override, ...] (FIFO, each with a remaining `times`)
  counts: new Map(), // path -> number of requests seen
  overridden: new Map(), // path -> number of requests answered by an override
  requests: [], // recent POSTs to the provider's API endpoints (see recordRequest)
  accounts: new Map(), // login -> { email, email_verified, name, auth: {...}, access_auth: {...} }
  device: { interval: '1' }, // Codex-style device auth settings
  deviceAuths: new Map(), // device_auth_id -> entry
};

function resetState() {
  state.overrides.clear();
  state.counts.clear();
  state.overridden.clear();
  state.requests.length = 0;
  state.accounts.clear();
  state.device = { interval: '1' };
  state.deviceAuths.clear();
}

// Merge `patch` into `base`; a null value in the patch deletes the key.
function mergeClaims(base, patch) {
  const out = { ...base };
  for (const [key, value] of Object.entries(patch || {})) {
    if (value === null) {
      delete out[key];
    } else {
      out[key] = value;
    }
  }
  return out;
}

function accountAuthClaims(login, which) {
  const account = state.accounts.get(login) || {};
  const base = {
    chatgpt_account_id: `acct_${login}`,
    chatgpt_plan_type: 'pro',
    chatgpt_user_id: `user_${login}`,
  };
  const merged = mergeClaims(base, account.auth);
  return which === 'access' ? mergeClaims(merged, account.access_auth) : merged;
}

function accountProfile(login) {
  const account = state.accounts.get(login) || {};
  return {
    email: Object.hasOwn(account, 'email') ? account.email : `${login}@example.com`,
    email_verified: Object.hasOwn(account, 'email_verified') ? account.email_verified : true,
    name: Object.hasOwn(account, 'name') ? account.name : login,
  };
}

// ---------------------------------------------------------------------------
// Small HTTP helpers (plain node:http, no framework in front of the provider)
// ---------------------------------------------------------------------------

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > BODY_LIMIT) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// The body of a request, read once (handle() may already have buffered it as req.rawBody).
async function bodyOf(req) {
  if (req.rawBody === undefined) req.rawBody = await readBody(req);
  return req.rawBody;
}

function mediaType(req) {
  return (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
}

function sendJson(res, status, payload, extraHeaders = {}) {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
    ...extraHeaders,
  });
  res.end(body);
}

function sendHtml(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(html),
  });
  res.end(html);
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

function page(title, bodyHtml) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body><h1>${escapeHtml(title)}</h1>${bodyHtml}</body></html>`;
}

function jsonToForm(obj) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(obj || {})) {
    if (value === null || value === undefined) continue;
    params.append(key, typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  return params.toString();
}

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

// ---------------------------------------------------------------------------
// The provider
// ---------------------------------------------------------------------------

function buildConfiguration(issuer) {
  return {
    clients: [
      {
        client_id: clientId,
        client_name: 'codex-login test client',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        response_types: ['code'],
        grant_types: [
          'authorization_code',
          'refresh_token',
          'urn:ietf:params:oauth:grant-type:device_code',
        ],
        // Native loopback redirects (RFC 8252 7.3): any port matches; host and path must match.
        redirect_uris: [
          'http://localhost/auth/callback',
          'http://127.0.0.1/auth/callback',
          // Codex-style device auth exchanges its code with redirect_uri {issuer}/deviceauth/callback.
          'http://localhost/deviceauth/callback',
          'http://127.0.0.1/deviceauth/callback',
        ],
      },
    ],
    pkce: {
      methods: ['S256'],
      required: () => true,
    },
    routes: {
      authorization: '/oauth/authorize',
      token: '/oauth/token',
      revocation: '/oauth/revoke',
      device_authorization: '/oauth/device/auth',
      code_verification: '/device',
      jwks: '/jwks',
      userinfo: '/userinfo',
    },
    responseTypes: ['code'],
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: {
      openid: ['sub', AUTH_CLAIM],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    conformIdTokenClaims: false,
    // Extra authorize parameters the Codex CLI sends; listed so they are kept, never rejected.
    extraParams: [
      'id_token_add_organizations',
      'codex_cli_simplified_flow',
      'originator',
      'allowed_workspace_id',
    ],
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      // Access tokens are JWTs (like the real service's) so a client can read chatgpt_plan_type from them.
      resourceIndicators: {
        enabled: true,
        defaultResource: () => API_AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'api',
          audience: API_AUDIENCE,
          accessTokenTTL: 60 * 60,
          accessTokenFormat: 'jwt',
        }),
      },
    },
    async extraTokenClaims(ctx, token) {
      if (token.kind === 'AccessToken' && token.accountId) {
        return { [AUTH_CLAIM]: accountAuthClaims(token.accountId, 'access') };
      }
      return undefined;
    },
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            ...accountProfile(sub),
            [AUTH_CLAIM]: accountAuthClaims(sub, 'id'),
          };
        },
      };
    },
    // Every authorization_code / device_code grant gets a refresh token (not only prompt=consent).
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Refresh tokens are single use: every refresh returns a new one, a replay gets invalid_grant.
    rotateRefreshToken: true,
    ttl: {
      AccessToken: 60 * 60,
      AuthorizationCode: 60,
      DeviceCode: 10 * 60,
      IdToken: 60 * 60,
      Interaction: 10 * 60,
      Session: 24 * 60 * 60,
      Grant: 24 * 60 * 60,
      RefreshToken: 14 * 24 * 60 * 60,
    },
    cookies: { keys: ['codex-login-test-issuer-cookie-key'] },
  };
}

// ---------------------------------------------------------------------------
// Codex-style device authorization (what `codex login --device-auth` talks to):
//   POST /api/accounts/deviceauth/usercode  {client_id}            -> {device_auth_id, user_code, interval}
//   GET  /codex/device                      (the page the user opens; enter the code)
//   GET  /deviceauth/callback               (provider redirect after sign-in; stores the code)
//   POST /api/accounts/deviceauth/token     {device_auth_id, user_code}
//        -> 403 while pending, 200 {authorization_code, code_challenge, code_verifier} once signed in
// The authorization code is then exchanged at /oauth/token with redirect_uri {issuer}/deviceauth/callback.
// ---------------------------------------------------------------------------

const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';

function newUserCode() {
  const bytes = randomBytes(8);
  const chars = Array.from(bytes, (b) => USER_CODE_ALPHABET[b % USER_CODE_ALPHABET.length]);
  return `${chars.slice(0, 4).join('')}-${chars.slice(4).join('')}`;
}

function normalizeUserCode(value) {
  return String(value || '').toUpperCase().replace(/[^A-Z]/g, '');
}

function findDeviceByUserCode(userCode) {
  const wanted = normalizeUserCode(userCode);
  for (const entry of state.deviceAuths.values()) {
    if (normalizeUserCode(entry.user_code) === wanted) return entry;
  }
  return undefined;
}

function devicePage(message, status = 200) {
  return [status, page('Codex device sign-in', `
<p>${escapeHtml(message)}</p>
<form id="codex-device-form" method="post" action="/codex/device">
  <input type="text" name="user_code" placeholder="XXXX-XXXX" autofocus required>
  <button type="submit">Continue</button>
</form>`)];
}

async function handleCodexDevice(req, res, url, issuer) {
  const { pathname } = url;

  if (pathname === '/api/accounts/deviceauth/usercode' && req.method === 'POST') {
    const raw = await bodyOf(req);
    let body = {};
    try { body = raw.length ? JSON.parse(raw.toString('utf8')) : {}; } catch { body = {}; }
    if (body.client_id !== clientId) {
      sendJson(res, 400, { error: 'invalid_client', error_description: 'unknown client_id' });
      return;
    }
    const verifier = b64url(randomBytes(64));
    const entry = {
      device_auth_id: `deviceauth_${b64url(randomBytes(12))}`,
      user_code: newUserCode(),
      code_verifier: verifier,
      code_challenge: b64url(createHash('sha256').update(verifier).digest()),
      state: b64url(randomBytes(16)),
      expires_at: Date.now() + DEVICE_CODE_TTL_MS,
      authorization_code: null,
      error: null,
    };
    state.deviceAuths.set(entry.device_auth_id, entry);
    const answer = { device_auth_id: entry.device_auth_id, user_code: entry.user_code };
    if (state.device.interval !== null) answer.interval = state.device.interval;
    sendJson(res, 200, answer);
    return;
  }

  if (pathname === '/api/accounts/deviceauth/token' && req.method === 'POST') {
    const raw = await bodyOf(req);
    let body = {};
    try { body = raw.length ? JSON.parse(raw.toString('utf8')) : {}; } catch { body = {}; }
    const entry = state.deviceAuths.get(body.device_auth_id);
    if (!entry || normalizeUserCode(entry.user_code) !== normalizeUserCode(body.user_code)) {
      sendJson(res, 404, { error: 'not_found' });
      return;
    }
    if (Date.now() > entry.expires_at) {
      state.deviceAuths.delete(entry.device_auth_id);
      sendJson(res, 410, { error: 'expired_token' });
      return;
    }
    if (entry.error) {
      state.deviceAuths.delete(entry.device_auth_id);
      sendJson(res, 400, { error: entry.error, error_description: entry.error_description || '' });
      return;
    }
    if (!entry.authorization_code) {
      sendJson(res, 403, { error: 'authorization_pending' });
      return;
    }
    state.deviceAuths.delete(entry.device_auth_id);
    sendJson(res, 200, {
      authorization_code: entry.authorization_code,
      code_challenge: entry.code_challenge,
      code_verifier: entry.code_verifier,
    });
    return;
  }

  if (pathname === '/codex/device' && req.method === 'GET') {
    const [status, html] = devicePage('Enter the code shown in your terminal.');
    sendHtml(res, status, html);
    return;
  }

  if (pathname === '/codex/device' && req.method === 'POST') {
    const raw = await bodyOf(req);
    const form = new URLSearchParams(raw.toString('utf8'));
    const entry = findDeviceByUserCode(form.get('user_code'));
    if (!entry || Date.now() > entry.expires_at) {
      const [status, html] = devicePage('The code you entered is incorrect. Try again.', 400);
      sendHtml(res, status, html);
      return;
    }
    const authorize = new URL('/oauth/authorize', issuer);
    authorize.search = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: `${issuer}/deviceauth/callback`,
      scope: 'openid profile email offline_access',
      code_challenge: entry.code_challenge,
      code_challenge_method: 'S256',
      state: entry.state,
    }).toString();
    res.writeHead(303, { location: authorize.href, 'cache-control': 'no-store', 'content-length': 0 });
    res.end();
    return;
  }

  if (pathname === '/deviceauth/callback' && req.method === 'GET') {
    const entry = [...state.deviceAuths.values()].find((e) => e.state === url.searchParams.get('state'));
    if (!entry) {
      sendHtml(res, 400, page('Device sign-in failed', '<p>Unknown or expired device sign-in.</p>'));
      return;
    }
    if (url.searchParams.get('error')) {
      entry.error = url.searchParams.get('error');
      entry.error_description = url.searchParams.get('error_description');
      sendHtml(res, 200, page('Device sign-in cancelled', `<p>${escapeHtml(entry.error)}</p>`));
      return;
    }
    entry.authorization_code = url.searchParams.get('code');
    sendHtml(res, 200, page('Device signed in', '<p>You can return to your terminal.</p>'));
    return;
  }

  sendJson(res, 404, { error: 'not_found' });
}

const CODEX_DEVICE_PATHS = new Set([
  '/api/accounts/deviceauth/usercode',
  '/api/accounts/deviceauth/token',
  '/codex/device',
  '/deviceauth/callback',
]);

// ---------------------------------------------------------------------------
// Test hooks
// ---------------------------------------------------------------------------

function counts(map) {
  return Object.fromEntries([...map.entries()].sort());
}

async function handleTestHook(req, res, url) {
  const { pathname } = url;
  if (pathname === '/__test__/stats' && req.method === 'GET') {
    sendJson(res, 200, {
      counts: counts(state.counts),
      overridden: counts(state.overridden),
      pending_overrides: Object.fromEntries(
        [...state.overrides.entries()].map(([p, list]) => [p, list.reduce((n, o) => n + o.times, 0)]),
      ),
      requests: state.requests,
    });
    return;
  }
  if (req.method !== 'POST') {
    sendJson(res, 405, { error: 'method_not_allowed' });
    return;
  }
  const raw = await readBody(req);
  let body;
  try {
    body = raw.length ? JSON.parse(raw.toString('utf8')) : {};
  } catch (err) {
    sendJson(res, 400, { error: `invalid JSON: ${err.message}` });
    return;
  }

  switch (pathname) {
    case '/__test__/reset':
      resetState();
      sendJson(res, 200, { ok: true });
      return;
    case '/__test__/token-override':
    case '/__test__/override': {
      const path = pathname === '/__test__/token-override' ? '/oauth/token' : (body.path || '/oauth/token');
      const override = {
        status: Number.isInteger(body.status) ? body.status : null,
        content_type: body.content_type ?? 'application/json', // '' sends no content-type
        body: body.body ?? (typeof body.json === 'undefined' ? '' : JSON.stringify(body.json)),
        headers: body.headers || {},
        close: Boolean(body.close),
        delay_ms: Number(body.delay_ms || 0),
        times: Number.isInteger(body.times) ? body.times : 1,
        match: body.match || null,
      };
      if (override.status === null && !override.close && !override.delay_ms) {
        sendJson(res, 400, { error: 'an override needs status, close or delay_ms' });
        return;
      }
      if (!state.overrides.has(path)) state.overrides.set(path, []);
      state.overrides.get(path).push(override);
      sendJson(res, 200, { ok: true, path });
      return;
    }
    case '/__test__/account': {
      if (!body.login) {
        sendJson(res, 400, { error: 'login is required' });
        return;
      }
      const { login, ...rest } = body;
      state.accounts.set(String(login), rest);
      sendJson(res, 200, { ok: true });
      return;
    }
    case '/__test__/device': {
      if (Object.hasOwn(body, 'interval')) state.device.interval = body.interval;
      sendJson(res, 200, { ok: true, device: state.device });
      return;
    }
    default:
      sendJson(res, 404, { error: 'unknown test hook' });
  }
}

function takeOverride(path, fields) {
  const list = state.overrides.get(path);
  if (!list) return null;
  const index = list.findIndex((o) => o.times > 0 && (!o.match
    || Object.entries(o.match).every(([k, v]) => fields[k] === v)));
  if (index < 0) return null;
  const override = list[index];
  override.times -= 1;
  if (override.times <= 0) list.splice(index, 1);
  if (!list.length) state.overrides.delete(path);
  return override;
}

function recordRequest(req, path, mediaTypeSeen, fields) {
  state.requests.push({
    method: req.method,
    path,
    content_type: req.headers['content-type'] || null,
    media_type: mediaTypeSeen || null,
    fields,
    headers: {
      'user-agent': req.headers['user-agent'] || null,
      originator: req.headers.originator || null,
      accept: req.headers.accept || null,
    },
    time: new Date().toISOString(),
  });
  if (state.requests.length > MAX_RECORDED_REQUESTS) state.requests.shift();
}

// Per-interaction paths are counted under one name, e.g. /interaction/:uid.
function countedPath(path) {
  return path
    .replace(/^\/interaction\/[^/]+/, '/interaction/:uid')
    .replace(/^\/oauth\/authorize\/[^/]+$/, '/oauth/authorize/:uid')
    .replace(/^\/device\/[^/]+$/, '/device/:uid');
}

// Paths whose POST bodies are buffered, recorded, and (if JSON) converted to form-encoding.
const API_POST_PATHS = new Set(['/oauth/token', '/oauth/revoke', '/oauth/device/auth']);

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

const server = http.createServer();
server.keepAliveTimeout = 5000;
server.headersTimeout = 10000;
server.requestTimeout = 30000;

server.listen(Number(args.port), args.host, () => {
  const { port } = server.address();
  const host = args.host.includes(':') ? `[${args.host}]` : args.host;
  const issuer = `http://${host}:${port}`;

  const provider = new Provider(issuer, buildConfiguration(issuer));
  provider.on('server_error', (ctx, err) => log('server_error', err && err.stack ? err.stack : err));
  const providerCallback = provider.callback();

  server.on('request', (req, res) => {
    handle(req, res).catch((err) => {
      log('hook error', err && err.stack ? err.stack : err);
      if (!res.headersSent) {
        sendJson(res, 500, { error: 'test_issuer_error', error_description: String(err && err.message) });
      } else {
        res.destroy();
      }
    });
  });

  async function handle(req, res) {
    const url = new URL(req.url, issuer);
    const path = url.pathname;

    if (path.startsWith('/__test__/')) {
      await handleTestHook(req, res, url);
      return;
    }

    const counted = countedPath(path);
    state.counts.set(counted, (state.counts.get(counted) || 0) + 1);

    let fields = {};
    if (req.method === 'POST' && (API_POST_PATHS.has(path) || CODEX_DEVICE_PATHS.has(path))) {
      // Buffer the body once: to record it, to match overrides, and to turn JSON into a form.
      const raw = await readBody(req);
      const seen = mediaType(req);
      if (seen === 'application/json') {
        try {
          fields = JSON.parse(raw.toString('utf8') || '{}');
        } catch {
          fields = { __invalid_json__: raw.toString('utf8') };
        }
      } else {
        fields = Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
      }
      recordRequest(req, path, seen, fields);

      if (API_POST_PATHS.has(path)) {
        // Hand the provider an already-read body (oidc-provider then uses req.body).
        let form = raw.toString('utf8');
        if (seen === 'application/json') {
          form = jsonToForm(fields);
          req.headers['content-type'] = 'application/x-www-form-urlencoded';
        }
        req.headers['content-length'] = String(Buffer.byteLength(form));
        delete req.headers['transfer-encoding'];
        req.body = form;
      } else {
        req.rawBody = raw;
      }
    }

    const override = takeOverride(path, fields);
    if (override) {
      state.overridden.set(path, (state.overridden.get(path) || 0) + 1);
      if (override.delay_ms > 0) await sleep(override.delay_ms);
      if (override.close) {
        req.socket.destroy();
        return;
      }
      if (override.status !== null) {
        const payload = Buffer.from(override.body, 'utf8');
        const headers = {
          'cache-control': 'no-store',
          ...(override.content_type ? { 'content-type': override.content_type } : {}),
          ...override.headers,
          'content-length': payload.length,
        };
        res.writeHead(override.status, headers);
        res.end(payload);
        return;
      }
      // delay only: fall through to the real handler
    }

    if (CODEX_DEVICE_PATHS.has(path)) {
      await handleCodexDevice(req, res, url, issuer);
      return;
    }

    providerCallback(req, res);
  }

  process.stdout.write(`ISSUER_READY ${issuer}\n`);
});

server.on('error', (err) => {
  log('listen error', err.message);
  process.exit(1);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
