/**
 * dbgov.yaml: load, substitute `${env:NAME}` / `${file:PATH}`, validate against the published
 * JSON Schema, and report every problem as `file:line: what is wrong` plus the fix.
 *
 * The fixed keys (broker, identity, targets) are validated here. Sections owned by other
 * modules (policy, masking, audit) are validated by those modules' compile functions, which get
 * the same `lineOf` so their errors name the line too.
 */
import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Document, type Node as YamlNode } from 'yaml';
import { parseDuration } from '../shared/clock.js';
import { ConfigError } from '../shared/errors.js';
import type { AccessLevel, EngineName, IdentityKind } from '../shared/types.js';

export type ConfigPath = (string | number)[];

export interface ConfigSource {
  file: string;
  /** The line (1-based) of the value at `path`, or of its nearest existing parent. */
  lineOf(path: ConfigPath): number | undefined;
}

export interface TargetConfig {
  engine: EngineName;
  env: string;
  labels: Record<string, string>;
  /** Protected targets fail closed and get the default guardrails. Default: env is prod/production. */
  protected: boolean;
  host: string;
  port: number;
  database: string;
  /** Other databases a credential may be scoped to (the default `database` is always allowed). */
  databases: string[];
  user: string;
  password?: string;
  tls: { mode: 'disable' | 'require' | 'verify-full'; ca?: string; servername?: string };
  connectTimeoutMs: number;
  /** Per-identity short-lived database roles (issue 3). */
  roles?: { mode: 'per-identity'; grants: Partial<Record<AccessLevel, string>>; prefix: string };
}

export interface ServiceAccountConfig {
  id: string;
  token: string;
  groups: string[];
  kind: Extract<IdentityKind, 'workload' | 'agent'>;
  owner?: string;
}

export interface OidcConfig {
  issuer: string;
  clientId: string;
  clientSecret?: string;
  scopes: string[];
  groupsClaim: string;
  allowedDomains: string[];
}

export interface BuiltinUser {
  id: string;
  email: string;
  name: string;
  password: string;
  groups: string[];
}

export interface WorkloadIssuerConfig {
  issuer: string;
  audience: string;
  jwksUri?: string;
  rules: { match: Record<string, string>; identity: string; groups: string[]; kind: Extract<IdentityKind, 'workload' | 'agent'> }[];
}

export interface DbgovConfig {
  source: ConfigSource;
  broker: {
    id: string;
    api: { host: string; port: number };
    gateway: { host: string; port: number };
    /** Advertised to tunnels; defaults to `gateway`. */
    gatewayPublic: { host: string; port: number };
    store: { kind: 'embedded'; dir: string } | { kind: 'postgres'; url: string; dir: string };
    tls?: { cert: string; key: string };
    maxMessageBytes: number;
    fsync: 'interval' | 'always';
    credentialTtl: { defaultMs: number; maxMs: number };
    approvalHoldMs: number;
  };
  identity: {
    oidc?: OidcConfig;
    builtin?: { users: BuiltinUser[]; port: number };
    serviceAccounts: ServiceAccountConfig[];
    workload: WorkloadIssuerConfig[];
  };
  targets: Record<string, TargetConfig>;
  /**
   * Offline loads only (policy lint/explain): the `${env:…}`/`${file:…}` references that could not
   * be resolved here and were checked with a placeholder, e.g. "CI_BOT_TOKEN (identity.serviceAccounts.0.token)".
   */
  unresolved?: string[];
  /** Raw sections compiled by their own modules, with their paths for error lines. */
  policy: unknown;
  masking: unknown;
  audit: unknown;
}

const SECRET_KEYS = new Set(['password', 'token', 'clientSecret', 'key', 'signingKey', 'secret']);
const REF = /\$\{(env|file):([^}]+)\}/g;

const hostPort = { type: 'string', pattern: '^[^\\s:]+:\\d{1,5}$', description: 'host:port' };

const durationText = { type: 'string', pattern: '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h|d|w)\\s*$', description: 'A duration: 500ms, 90s, 30m, 8h, 90d, 2w.' };
const sinkName = { type: 'string', pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$', description: "Names the sink's delivery cursor (<store>/sinks/<name>.cursor.json). Default: derived from the type and destination. Renaming a sink resends the log from its start." };
const sinkBatch = { type: 'integer', minimum: 1, maximum: 10_000, description: 'Most events per delivery (default 200).' };

/** `audit:` — checkpoint signing, durability, retention and the sinks that stream events out. */
const auditJsonSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Checkpoints, durability, retention and sinks of the audit log.',
  properties: {
    signingKey: { type: 'string', description: 'Ed25519 private key (PKCS#8 PEM) that signs checkpoints, e.g. "${file:/etc/dbgov/audit-key.pem}". Default: one generated once in the store folder (audit-signing-key.pem, mode 0600).' },
    checkpointEvery: { type: 'integer', minimum: 1, description: 'Write a signed checkpoint after this many events (default 10000).' },
    checkpointInterval: { ...durationText, description: 'Also write a signed checkpoint this often while there are new events (default 60s).' },
    fsync: { enum: ['interval', 'always'], description: 'interval: group fsync every 50 ms (default, or broker.fsync); always: fsync every audit record before the statement runs.' },
    retention: { ...durationText, description: 'Prune events older than this (e.g. 90d). Whole segments go; a signed checkpoint marks the new start so the log still verifies. Default: keep everything.' },
    sinks: {
      type: 'array',
      description: 'Destinations that receive every event after it is written, at least once, from a durable cursor. A sink that is down never delays statements; its backlog drains when it returns.',
      items: {
        type: 'object',
        required: ['type'],
        properties: { type: { enum: ['webhook', 'syslog', 'nats'], description: 'webhook (HTTP POST, HMAC-signed), syslog (RFC 5424 over TCP or TLS) or nats (JetStream).' } },
        allOf: [
          {
            if: { properties: { type: { const: 'webhook' } } },
            then: {
              additionalProperties: false,
              required: ['type', 'url', 'secret'],
              properties: {
                type: { const: 'webhook' },
                name: sinkName,
                batchSize: sinkBatch,
                url: { type: 'string', pattern: '^https?://', description: 'Receives POST {"events":[…]}.' },
                secret: { type: 'string', description: 'HMAC-SHA256 key: X-Dbgov-Signature is sha256=hex(HMAC(secret, "<X-Dbgov-Timestamp>.<body>")). Use ${env:…} or ${file:…}.' },
                timeout: { ...durationText, description: 'Per request (default 10s).' },
              },
            },
          },
          {
            if: { properties: { type: { const: 'syslog' } } },
            then: {
              additionalProperties: false,
              required: ['type', 'host', 'port'],
              properties: {
                type: { const: 'syslog' },
                name: sinkName,
                batchSize: sinkBatch,
                host: { type: 'string' },
                port: { type: 'integer', minimum: 1, maximum: 65535 },
                tls: {
                  description: 'true for TLS (RFC 5425) with the system CAs, or a mapping with a private CA.',
                  oneOf: [
                    { type: 'boolean' },
                    { type: 'object', additionalProperties: false, properties: { ca: { type: 'string', description: 'PEM, e.g. "${file:/etc/ssl/syslog-ca.pem}".' }, servername: { type: 'string' } } },
                  ],
                },
                appName: { type: 'string', description: 'APP-NAME field (default dbgov).' },
              },
            },
          },
          {
            if: { properties: { type: { const: 'nats' } } },
            then: {
              additionalProperties: false,
              required: ['type', 'servers'],
              properties: {
                type: { const: 'nats' },
                name: sinkName,
                batchSize: sinkBatch,
                servers: { description: 'nats://host:port, or a list.', oneOf: [{ type: 'string' }, { type: 'array', minItems: 1, items: { type: 'string' } }] },
                stream: { type: 'string', description: 'JetStream stream (default DBGOV_AUDIT; created when missing).' },
                subjectPrefix: { type: 'string', description: 'Events go to <subjectPrefix>.<kind> (default dbgov.audit).' },
              },
            },
          },
        ],
      },
    },
  },
} as const;

/** The published schema of the fixed keys. `schema/dbgov.schema.json` is generated from it. */
export const configJsonSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://dbgov.dev/schema/dbgov.schema.json',
  title: 'dbgov.yaml',
  type: 'object',
  additionalProperties: false,
  required: ['targets'],
  properties: {
    broker: {
      type: 'object',
      additionalProperties: false,
      properties: {
        id: { type: 'string', description: 'Name of this broker in audit records (scale-out). Default: the host name.' },
        api: { ...hostPort, description: 'HTTP API listen address; the CLI finds it through DBGOV_BROKER=http://…' },
        gateway: { ...hostPort, description: 'Where tunnels connect (TLS).' },
        gatewayPublic: { ...hostPort, description: 'Gateway address advertised to tunnels, when it differs from the listen address.' },
        store: { type: 'string', description: 'A folder for the embedded store, or a postgres:// URL to share state between brokers.' },
        storeDir: { type: 'string', description: 'Local folder for the audit log when store is postgres://.' },
        tls: {
          type: 'object',
          additionalProperties: false,
          required: ['cert', 'key'],
          properties: { cert: { type: 'string' }, key: { type: 'string' } },
          description: 'Gateway TLS certificate and key (PEM). Default: a self-signed pair in the store folder, pinned by the CLI.',
        },
        maxMessageBytes: { type: 'integer', minimum: 1024, description: 'Largest protocol message accepted from a client.' },
        fsync: { enum: ['interval', 'always'], description: 'interval: group fsync every 50 ms (default); always: fsync every audit record.' },
        credentialTtl: {
          type: 'object',
          additionalProperties: false,
          properties: { default: { type: 'string' }, max: { type: 'string' } },
        },
        approvalHold: { type: 'string', description: 'How long a held statement waits for approval, e.g. 5m. 0 fails at once.' },
      },
    },
    identity: {
      type: 'object',
      additionalProperties: false,
      properties: {
        oidc: {
          type: 'object',
          additionalProperties: false,
          required: ['issuer', 'clientId'],
          properties: {
            issuer: { type: 'string' },
            clientId: { type: 'string' },
            clientSecret: { type: 'string' },
            scopes: { type: 'array', items: { type: 'string' } },
            groupsClaim: { type: 'string' },
            allowedDomains: { type: 'array', items: { type: 'string' } },
          },
        },
        builtin: {
          type: 'object',
          additionalProperties: false,
          required: ['users'],
          properties: {
            port: { type: 'integer', minimum: 0, maximum: 65535 },
            users: {
              type: 'array',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['id', 'email', 'password'],
                properties: {
                  id: { type: 'string' },
                  email: { type: 'string' },
                  name: { type: 'string' },
                  password: { type: 'string' },
                  groups: { type: 'array', items: { type: 'string' } },
                },
              },
            },
          },
        },
        serviceAccounts: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['id', 'token'],
            properties: {
              id: { type: 'string', pattern: '^[a-zA-Z0-9_.@-]+$' },
              token: { type: 'string', minLength: 16 },
              groups: { type: 'array', items: { type: 'string' } },
              kind: { enum: ['workload', 'agent'] },
              owner: { type: 'string' },
            },
          },
        },
        workload: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['issuer', 'audience', 'rules'],
            properties: {
              issuer: { type: 'string' },
              audience: { type: 'string' },
              jwksUri: { type: 'string' },
              rules: {
                type: 'array',
                items: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['match', 'identity'],
                  properties: {
                    match: { type: 'object', additionalProperties: { type: 'string' } },
                    identity: { type: 'string' },
                    groups: { type: 'array', items: { type: 'string' } },
                    kind: { enum: ['workload', 'agent'] },
                  },
                },
              },
            },
          },
        },
      },
    },
    targets: {
      type: 'object',
      minProperties: 1,
      propertyNames: { pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$' },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['engine', 'host', 'database', 'user'],
        properties: {
          engine: { enum: ['postgres', 'mysql'] },
          env: { type: 'string', description: 'The label policy keys on (prod, staging, …). Default: the target name.' },
          labels: { type: 'object', additionalProperties: { type: 'string' } },
          protected: { type: 'boolean', description: 'Fail closed and apply default guardrails. Default: env is prod or production.' },
          host: { type: 'string' },
          port: { type: 'integer', minimum: 1, maximum: 65535 },
          database: { type: 'string' },
          databases: { type: 'array', items: { type: 'string' } },
          user: { type: 'string' },
          password: { type: 'string' },
          tls: {
            type: 'object',
            additionalProperties: false,
            properties: {
              mode: { enum: ['disable', 'require', 'verify-full'] },
              ca: { type: 'string' },
              servername: { type: 'string' },
            },
          },
          connectTimeout: { type: 'string' },
          roles: {
            type: 'object',
            additionalProperties: false,
            required: ['mode'],
            properties: {
              mode: { enum: ['per-identity'] },
              prefix: { type: 'string' },
              grants: {
                type: 'object',
                additionalProperties: false,
                properties: { read: { type: 'string' }, write: { type: 'string' }, admin: { type: 'string' } },
              },
            },
          },
        },
      },
    },
    policy: { type: 'object', description: 'Guardrails and approvals; see schema/policy.schema.json.' },
    masking: { type: 'object', description: 'Data classification and masking; see schema/masking.schema.json.' },
    audit: auditJsonSchema,
  },
} as const;

let validator: ReturnType<Ajv['compile']> | undefined;

export interface LoadOptions {
  /**
   * For checks that never connect (policy lint, policy explain): secrets are not needed, so an
   * unset `${env:…}` or unreadable `${file:…}` is checked with a placeholder and listed in
   * `unresolved` instead of failing. The broker always loads with every secret resolved.
   */
  offline?: boolean;
}

/** Loads and validates a config file. Throws ConfigError naming the file, line and fix. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): DbgovConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, undefined, `cannot read the config file (${(e as NodeJS.ErrnoException).code ?? String(e)})`, `create it, or pass --config with the right path`);
  }
  return parseConfig(text, file, env, options);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): DbgovConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0];
    const line = err.linePos?.[0]?.line ?? lineCounter.linePos(err.pos[0]).line;
    throw new ConfigError(file, line, `YAML syntax error: ${err.message.split('\n')[0]}`, 'fix the YAML syntax at that line (indentation, quotes, a missing colon)');
  }
  const source: ConfigSource = { file, lineOf: (path) => lineOfPath(doc, lineCounter, path) };
  const unresolved: string[] = [];
  const onMissing = options.offline ? (what: string): string => (unresolved.push(what), OFFLINE_PLACEHOLDER) : undefined;
  const raw = resolveRefs(doc.toJS() ?? {}, [], source, dirname(resolve(file)), env, onMissing);

  validator ??= new Ajv({ allErrors: true, strict: false }).compile(configJsonSchema);
  if (!validator(raw)) throw schemaErrors(validator.errors ?? [], source);
  const config = normalise(raw as RawConfig, source, dirname(resolve(file)));
  return options.offline ? { ...config, unresolved } : config;
}

/** Long enough for every length check a secret has (masking key, service-account token). */
const OFFLINE_PLACEHOLDER = 'dbgov-offline-placeholder-0000000000000000';

/** Builds a config from an object (the demo and tests), with a synthetic source name. */
export function configFromObject(raw: unknown, name = '<built-in>', baseDir = process.cwd(), env: NodeJS.ProcessEnv = process.env): DbgovConfig {
  const source: ConfigSource = { file: name, lineOf: () => undefined };
  const resolved = resolveRefs(raw, [], source, baseDir, env);
  validator ??= new Ajv({ allErrors: true, strict: false }).compile(configJsonSchema);
  if (!validator(resolved)) throw schemaErrors(validator.errors ?? [], source);
  return normalise(resolved as RawConfig, source, baseDir);
}

function lineOfPath(doc: Document, lc: LineCounter, path: ConfigPath): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as YamlNode | undefined;
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    if (range) return lc.linePos(range[0]).line;
    // Keys of a map: point at the key when the value is missing.
    if (n > 0) {
      const parent = doc.getIn(path.slice(0, n - 1), true);
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path[n - 1]);
        const keyRange = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
        if (keyRange) return lc.linePos(keyRange[0]).line;
      } else if (isSeq(parent)) {
        continue;
      }
    }
  }
  return undefined;
}

/**
 * Every schema problem at once, so a config is fixed in one pass rather than one restart per
 * mistake: the first by line is the error, the others follow its fix as "also file:line: …".
 */
function schemaErrors(errors: readonly ErrorObject[], source: ConfigSource): ConfigError {
  const all = errors.map((e) => schemaError(e, source));
  const unique = all.filter((e, i) => all.findIndex((o) => o.message === e.message) === i);
  unique.sort((a, b) => (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER));
  const [first, ...rest] = unique;
  if (rest.length === 0) return first;
  const problem = first.message.slice(first.message.indexOf(': ') + 2);
  return new ConfigError(first.file, first.line, problem, first.fix, { actions: rest.map((e) => `also ${e.message} (${e.fix})`) });
}

function schemaError(err: ErrorObject, source: ConfigSource): ConfigError {
  const path = err.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const where = path.length ? path.join('.') : '(top level)';
  const line = source.lineOf(path);
  const params = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case 'additionalProperties':
      return new ConfigError(source.file, source.lineOf([...path, String(params.additionalProperty)]) ?? line, `unknown key "${String(params.additionalProperty)}" in ${where}`, `remove it or check its spelling against schema/dbgov.schema.json`);
    case 'required':
      return new ConfigError(source.file, line, `${where} is missing "${String(params.missingProperty)}"`, `add ${String(params.missingProperty)}: … under ${where}`);
    case 'enum':
      return new ConfigError(source.file, line, `${where} must be one of ${(params.allowedValues as unknown[]).join(', ')}`, `change it to one of: ${(params.allowedValues as unknown[]).join(', ')}`);
    case 'type':
      return new ConfigError(source.file, line, `${where} must be ${String(params.type)}`, `write ${where} as ${String(params.type) === 'object' ? 'a mapping (key: value lines)' : `${/^[aeiou]/.test(String(params.type)) ? 'an' : 'a'} ${String(params.type)}`}`);
    case 'pattern':
      return new ConfigError(source.file, line, `${where} is not valid (${err.message ?? 'bad format'})`, where.endsWith('api') || where.endsWith('gateway') ? 'write it as host:port, e.g. 127.0.0.1:7080' : `fix the value of ${where}`);
    default:
      return new ConfigError(source.file, line, `${where} ${err.message ?? 'is not valid'}`, `fix the value of ${where} (see schema/dbgov.schema.json)`);
  }
}

/**
 * Replaces `${env:NAME}` and `${file:PATH}` in every string; refuses inline secrets and
 * references it does not know. `onMissing`, for offline loads, stands in for a secret that is
 * not available here instead of failing.
 */
function resolveRefs(value: unknown, path: ConfigPath, source: ConfigSource, baseDir: string, env: NodeJS.ProcessEnv, onMissing?: (what: string) => string): unknown {
  if (Array.isArray(value)) return value.map((v, i) => resolveRefs(v, [...path, i], source, baseDir, env, onMissing));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveRefs(v, [...path, k], source, baseDir, env, onMissing);
    return out;
  }
  if (typeof value !== 'string') return value;
  // `${envv:X}`, `${ENV:X}`, `${env:}` or shell-style `${X}` would otherwise be used as literal
  // text: a host named "${envv:X}", or a password that is the reference itself.
  const unknownRef = value.replace(REF, '').match(/\$\{[A-Za-z_][\w-]*(?::[^}]*)?\}/);
  if (unknownRef) {
    throw new ConfigError(source.file, source.lineOf(path), `${path.join('.')} has ${unknownRef[0]}, which is not a reference dbgov knows`, 'write "${env:NAME}" for an environment variable or "${file:PATH}" for a file (lower case, a name after the colon)');
  }
  const key = path[path.length - 1];
  const hasRef = value.search(REF) !== -1;
  // Secrets written inline end up in git and in backups; the broker refuses to start on them.
  // The built-in IdP's users are the one exception: they exist for demos and local trials.
  const builtinUser = path[0] === 'identity' && path[1] === 'builtin';
  if (typeof key === 'string' && SECRET_KEYS.has(key) && !hasRef && value.length > 0 && !builtinUser) {
    throw new ConfigError(source.file, source.lineOf(path), `${path.join('.')} is a secret written inline`, `move it out of the file: ${key}: "\${env:${envNameFor(path)}}" or "\${file:/path/to/secret}"`);
  }
  return value.replace(REF, (_m, kind: string, name: string) => {
    if (kind === 'env') {
      const v = env[name];
      if (v === undefined && onMissing) return onMissing(`${name} (${path.join('.')})`);
      if (v === undefined) throw new ConfigError(source.file, source.lineOf(path), `environment variable ${name} (used by ${path.join('.')}) is not set`, `export ${name}=… before starting, or use \${file:PATH}`);
      return v;
    }
    const p = isAbsolute(name) ? name : resolve(baseDir, name);
    try {
      return readFileSync(p, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      if (onMissing) return onMissing(`${p} (${path.join('.')})`);
      throw new ConfigError(source.file, source.lineOf(path), `cannot read ${p} (used by ${path.join('.')}): ${(e as NodeJS.ErrnoException).code ?? String(e)}`, `check the path; relative paths are resolved from the config file's folder`);
    }
  });
}

function envNameFor(path: ConfigPath): string {
  return path
    .filter((p) => typeof p === 'string')
    .map((p) => String(p).replace(/[^a-zA-Z0-9]+/g, '_').toUpperCase())
    .slice(-2)
    .join('_');
}

interface RawTarget {
  engine: EngineName;
  env?: string;
  labels?: Record<string, string>;
  protected?: boolean;
  host: string;
  port?: number;
  database: string;
  databases?: string[];
  user: string;
  password?: string;
  tls?: { mode?: 'disable' | 'require' | 'verify-full'; ca?: string; servername?: string };
  connectTimeout?: string;
  roles?: { mode: 'per-identity'; prefix?: string; grants?: Partial<Record<AccessLevel, string>> };
}

interface RawConfig {
  broker?: {
    id?: string;
    api?: string;
    gateway?: string;
    gatewayPublic?: string;
    store?: string;
    storeDir?: string;
    tls?: { cert: string; key: string };
    maxMessageBytes?: number;
    fsync?: 'interval' | 'always';
    credentialTtl?: { default?: string; max?: string };
    approvalHold?: string;
  };
  identity?: {
    oidc?: { issuer: string; clientId: string; clientSecret?: string; scopes?: string[]; groupsClaim?: string; allowedDomains?: string[] };
    builtin?: { port?: number; users: { id: string; email: string; name?: string; password: string; groups?: string[] }[] };
    serviceAccounts?: { id: string; token: string; groups?: string[]; kind?: 'workload' | 'agent'; owner?: string }[];
    workload?: { issuer: string; audience: string; jwksUri?: string; rules: { match: Record<string, string>; identity: string; groups?: string[]; kind?: 'workload' | 'agent' }[] }[];
  };
  targets: Record<string, RawTarget>;
  policy?: unknown;
  masking?: unknown;
  audit?: unknown;
}

const PROTECTED_ENVS = new Set(['prod', 'production']);

function splitHostPort(value: string): { host: string; port: number } {
  const i = value.lastIndexOf(':');
  return { host: value.slice(0, i), port: Number(value.slice(i + 1)) };
}

function duration(source: ConfigSource, path: ConfigPath, text: string | undefined, fallbackMs: number): number {
  if (text === undefined) return fallbackMs;
  const m = /^\s*(\d+)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) throw new ConfigError(source.file, source.lineOf(path), `${path.join('.')} is not a duration: "${text}"`, 'write it like 90s, 30m, 8h or 7d');
  const unit = m[2] ?? 's';
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit as 'ms' | 's' | 'm' | 'h' | 'd'];
}

/**
 * A target by a name that came from outside (an API body, a token): only the config's own keys,
 * so `__proto__` or `constructor` is an unknown target, not Object.prototype.
 */
export function targetNamed(targets: Record<string, TargetConfig>, name: string): TargetConfig | undefined {
  return typeof name === 'string' && Object.hasOwn(targets, name) ? targets[name] : undefined;
}

function normalise(raw: RawConfig, source: ConfigSource, baseDir: string): DbgovConfig {
  const b = raw.broker ?? {};
  const storeText = b.store ?? './dbgov-data';
  const localDir = resolve(baseDir, b.storeDir ?? (storeText.startsWith('postgres') ? './dbgov-data' : storeText));
  const store: DbgovConfig['broker']['store'] = /^postgres(ql)?:\/\//.test(storeText)
    ? { kind: 'postgres', url: storeText, dir: localDir }
    : { kind: 'embedded', dir: localDir };
  const gateway = splitHostPort(b.gateway ?? '127.0.0.1:7443');
  const defaultTtl = duration(source, ['broker', 'credentialTtl', 'default'], b.credentialTtl?.default, 30 * 60_000);
  const maxTtl = duration(source, ['broker', 'credentialTtl', 'max'], b.credentialTtl?.max, 8 * 3_600_000);
  if (defaultTtl > maxTtl) throw new ConfigError(source.file, source.lineOf(['broker', 'credentialTtl']), 'credentialTtl.default is longer than credentialTtl.max', 'lower default or raise max');

  const targets: Record<string, TargetConfig> = {};
  for (const [name, t] of Object.entries(raw.targets)) {
    const env = t.env ?? name;
    const tls = { mode: t.tls?.mode ?? 'disable', ...(t.tls?.ca ? { ca: t.tls.ca } : {}), ...(t.tls?.servername ? { servername: t.tls.servername } : {}) } as TargetConfig['tls'];
    if (tls.mode === 'verify-full' && !tls.ca) throw new ConfigError(source.file, source.lineOf(['targets', name, 'tls']), `targets.${name}.tls.mode is verify-full but no ca is given`, 'add ca: "${file:/path/to/ca.pem}", or use mode: require');
    targets[name] = {
      engine: t.engine,
      env,
      labels: { ...(t.labels ?? {}), env },
      protected: t.protected ?? PROTECTED_ENVS.has(env.toLowerCase()),
      host: t.host,
      port: t.port ?? (t.engine === 'postgres' ? 5432 : 3306),
      database: t.database,
      databases: [...new Set([t.database, ...(t.databases ?? [])])],
      user: t.user,
      ...(t.password === undefined ? {} : { password: t.password }),
      tls,
      connectTimeoutMs: duration(source, ['targets', name, 'connectTimeout'], t.connectTimeout, 5000),
      ...(t.roles ? { roles: { mode: t.roles.mode, prefix: t.roles.prefix ?? 'dbgov_', grants: t.roles.grants ?? {} } } : {}),
    };
  }

  const id = raw.identity ?? {};
  return {
    source,
    broker: {
      id: b.id ?? (process.env.HOSTNAME || 'broker'),
      api: splitHostPort(b.api ?? '127.0.0.1:7080'),
      gateway,
      gatewayPublic: b.gatewayPublic ? splitHostPort(b.gatewayPublic) : gateway,
      store,
      ...(b.tls ? { tls: b.tls } : {}),
      maxMessageBytes: b.maxMessageBytes ?? 64 * 1024 * 1024,
      fsync: b.fsync ?? 'interval',
      credentialTtl: { defaultMs: defaultTtl, maxMs: maxTtl },
      approvalHoldMs: duration(source, ['broker', 'approvalHold'], b.approvalHold, 5 * 60_000),
    },
    identity: {
      ...(id.oidc
        ? {
            oidc: {
              issuer: id.oidc.issuer,
              clientId: id.oidc.clientId,
              ...(id.oidc.clientSecret ? { clientSecret: id.oidc.clientSecret } : {}),
              scopes: id.oidc.scopes ?? ['openid', 'email', 'profile', 'offline_access'],
              groupsClaim: id.oidc.groupsClaim ?? 'groups',
              allowedDomains: id.oidc.allowedDomains ?? [],
            },
          }
        : {}),
      ...(id.builtin
        ? {
            builtin: {
              port: id.builtin.port ?? 0,
              users: id.builtin.users.map((u) => ({ id: u.id, email: u.email, name: u.name ?? u.id, password: u.password, groups: u.groups ?? [] })),
            },
          }
        : {}),
      serviceAccounts: (id.serviceAccounts ?? []).map((s) => ({ id: s.id, token: s.token, groups: s.groups ?? [], kind: s.kind ?? 'workload', ...(s.owner ? { owner: s.owner } : {}) })),
      workload: (id.workload ?? []).map((w) => ({
        issuer: w.issuer,
        audience: w.audience,
        ...(w.jwksUri ? { jwksUri: w.jwksUri } : {}),
        rules: w.rules.map((r) => ({ match: r.match, identity: r.identity, groups: r.groups ?? [], kind: r.kind ?? 'workload' })),
      })),
    },
    targets,
    policy: raw.policy ?? {},
    masking: raw.masking ?? {},
    audit: raw.audit ?? {},
  };
}

/** A sink from `audit.sinks`, with defaults applied. */
export type AuditSinkConfig =
  | { type: 'webhook'; name: string; batchSize?: number; url: string; secret: string; timeoutMs: number }
  | { type: 'syslog'; name: string; batchSize?: number; host: string; port: number; tls: false | { ca?: string; servername?: string }; appName?: string }
  | { type: 'nats'; name: string; batchSize?: number; servers: string[]; stream?: string; subjectPrefix?: string };

/** The `audit:` section, typed, with durations in ms and the signing key parsed. */
export interface AuditConfig {
  /** Absent: the store generates one in its folder. */
  signingKey?: KeyObject;
  checkpointEvery?: number;
  checkpointIntervalMs?: number;
  fsync: 'interval' | 'always';
  /** null: keep everything. */
  retentionMs: number | null;
  sinks: AuditSinkConfig[];
}

interface RawAudit {
  signingKey?: string;
  checkpointEvery?: number;
  checkpointInterval?: string;
  fsync?: 'interval' | 'always';
  retention?: string;
  sinks?: ({ type: 'webhook'; name?: string; batchSize?: number; url: string; secret: string; timeout?: string } | { type: 'syslog'; name?: string; batchSize?: number; host: string; port: number; tls?: boolean | { ca?: string; servername?: string }; appName?: string } | { type: 'nats'; name?: string; batchSize?: number; servers: string | string[]; stream?: string; subjectPrefix?: string })[];
}

/**
 * Reads `audit:` (already checked against the schema) into its typed form. Throws ConfigError
 * with the line for what the schema cannot check: the key itself, URLs, durations, duplicate names.
 */
export function auditConfigOf(config: DbgovConfig): AuditConfig {
  const raw = (config.audit ?? {}) as RawAudit;
  const { source } = config;
  const ms = (key: string, text: string | undefined, path: ConfigPath = ['audit', key]): number | undefined => {
    if (text === undefined) return undefined;
    const v = parseDuration(text);
    if (v === undefined || v <= 0) throw new ConfigError(source.file, source.lineOf(path), `${path.join('.')} is not a positive duration: "${text}"`, 'write it like 90s, 30m, 8h or 90d');
    return v;
  };

  let signingKey: KeyObject | undefined;
  if (raw.signingKey !== undefined) {
    const line = source.lineOf(['audit', 'signingKey']);
    try {
      signingKey = createPrivateKey(raw.signingKey);
    } catch (e) {
      throw new ConfigError(source.file, line, `audit.signingKey is not a PEM private key (${(e as Error).message})`, 'point it at an Ed25519 key: openssl genpkey -algorithm ed25519 -out audit-key.pem, then signingKey: "${file:audit-key.pem}"');
    }
    // Checkpoint signatures and `dbgov audit verify` are Ed25519 only; another key type would sign nothing verifiable.
    if (signingKey.asymmetricKeyType !== 'ed25519') {
      throw new ConfigError(source.file, line, `audit.signingKey is a ${signingKey.asymmetricKeyType ?? 'non-asymmetric'} key; checkpoints are signed with Ed25519`, 'generate one with: openssl genpkey -algorithm ed25519 -out audit-key.pem');
    }
  }

  const names = new Set<string>();
  const sinks = (raw.sinks ?? []).map((s, i): AuditSinkConfig => {
    const path: ConfigPath = ['audit', 'sinks', i];
    const named = (fallback: string): string => {
      const name = s.name ?? `${s.type}-${createHash('sha256').update(fallback).digest('hex').slice(0, 8)}`;
      // Two sinks sharing a cursor file would each skip what the other delivered.
      if (names.has(name)) throw new ConfigError(source.file, source.lineOf([...path, 'name']), `two audit sinks are named "${name}"`, 'give each sink its own name: …');
      names.add(name);
      return name;
    };
    const batch = s.batchSize === undefined ? {} : { batchSize: s.batchSize };
    switch (s.type) {
      case 'webhook': {
        try {
          new URL(s.url);
        } catch {
          throw new ConfigError(source.file, source.lineOf([...path, 'url']), `audit.sinks[${i}].url is not a URL: "${s.url}"`, 'write it like https://siem.example.com/dbgov');
        }
        return { type: 'webhook', name: named(s.url), ...batch, url: s.url, secret: s.secret, timeoutMs: ms('timeout', s.timeout, [...path, 'timeout']) ?? 10_000 };
      }
      case 'syslog':
        return {
          type: 'syslog',
          name: named(`${s.host}:${s.port}`),
          ...batch,
          host: s.host,
          port: s.port,
          tls: s.tls === undefined || s.tls === false ? false : s.tls === true ? {} : s.tls,
          ...(s.appName ? { appName: s.appName } : {}),
        };
      case 'nats': {
        const servers = Array.isArray(s.servers) ? s.servers : [s.servers];
        return { type: 'nats', name: named(`${servers.join(',')}/${s.stream ?? ''}`), ...batch, servers, ...(s.stream ? { stream: s.stream } : {}), ...(s.subjectPrefix ? { subjectPrefix: s.subjectPrefix } : {}) };
      }
      default: {
        const never: never = s;
        throw new ConfigError(source.file, source.lineOf([...path, 'type']), `unknown audit sink type ${String((never as { type: unknown }).type)}`, 'use webhook, syslog or nats');
      }
    }
  });

  const checkpointIntervalMs = ms('checkpointInterval', raw.checkpointInterval);
  return {
    ...(signingKey ? { signingKey } : {}),
    ...(raw.checkpointEvery !== undefined ? { checkpointEvery: raw.checkpointEvery } : {}),
    ...(checkpointIntervalMs !== undefined ? { checkpointIntervalMs } : {}),
    fsync: raw.fsync ?? config.broker.fsync,
    retentionMs: ms('retention', raw.retention) ?? null,
    sinks,
  };
}
