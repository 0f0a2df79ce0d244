// A real OpenID Provider for the test suite: panva's certified oidc-provider on 127.0.0.1.
//
// Usage: node provider.mjs <config.json>
// The config names the port, the signing keys (a private JWKS, first key signs), the
// clients, the accounts (with their name and groups claims) and the resource servers
// (audiences) it may issue JWT access tokens for. Logins are not interactive: the
// interaction route signs in the account named by `login_hint` and grants what the
// client asked for, so tests can run the authorization-code flow over plain HTTP.
import { readFileSync } from 'node:fs';
import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = config.issuer ?? `http://127.0.0.1:${config.port}`;
const accounts = config.accounts ?? {};
const shortLived = new Set(config.short_lived_clients ?? []);

function accountClaims(id) {
  const account = accounts[id] ?? {};
  return { sub: id, name: account.name, groups: account.groups ?? [] };
}

const provider = new Provider(issuer, {
  jwks: { keys: config.keys },
  clients: config.clients,
  pkce: { required: () => true },
  conformIdTokenClaims: false,
  claims: { openid: ['sub'], profile: ['name', 'groups'] },
  findAccount: (_ctx, id) => ({ accountId: id, claims: () => accountClaims(id) }),
  // Access tokens for an account carry its name and groups, as Keycloak and Okta can.
  extraTokenClaims: (_ctx, token) => {
    if (!token.accountId) return undefined;
    const { name, groups } = accountClaims(token.accountId);
    return { name, groups };
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: { IdToken: () => (config.id_token_ttl ?? 300) },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, _client, oneOf) => oneOf ?? config.audiences[0],
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource, client) => {
        if (!config.audiences.includes(resource)) throw new errors.InvalidTarget();
        return {
          scope: 'chat',
          audience: resource,
          accessTokenTTL: shortLived.has(client.clientId) ? 3 : 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: config.keys[0].alg } },
        };
      },
    },
  },
});

// Sign in the account named by login_hint and grant everything the client asked for.
provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/interaction/')) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const accountId = details.params.login_hint;
  if (!accountId || !(accountId in accounts)) {
    ctx.status = 400;
    ctx.body = 'unknown login_hint';
    return undefined;
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: details.params.client_id });
  const missing = details.prompt.details;
  grant.addOIDCScope(['openid', ...(missing.missingOIDCScope ?? [])].join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  const result = { login: { accountId }, consent: { grantId } };
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: false,
  });
  ctx.redirect(returnTo);
  return undefined;
});

provider.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
