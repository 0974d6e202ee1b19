/**
 * JSON Schema (draft-07) of the `policy:` section of dbgov.yaml. It is the reference users read,
 * so every key carries a description. Sub-schemas are inlined rather than `$ref`ed so the lead
 * can embed this fragment anywhere in the full dbgov.yaml schema.
 */
import { FUNCTION_RISKS, OPAQUE_REASONS, STATEMENT_KINDS } from '../sql/facts.js';
import { ACCESS_LEVELS, IDENTITY_KINDS } from '../shared/types.js';

const strings = (description: string) => ({ type: 'array', items: { type: 'string', minLength: 1 }, description });

const duration = (description: string) => ({
  description: `${description} A number of seconds, or a duration such as 90s, 30m, 8h, 7d.`,
  oneOf: [
    { type: 'number', minimum: 0 },
    { type: 'string', pattern: '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h|d|w)?\\s*$' },
  ],
});

const identityMatch = {
  type: 'object',
  additionalProperties: false,
  description: 'Who. Every key given must match; within a list, any item matches.',
  properties: {
    ids: strings('Identity ids (globs: alice@example.com, *@contractor.example, ci-*).'),
    groups: strings('Group names (globs). Matches when the identity is in any of them.'),
    kinds: { type: 'array', items: { enum: [...IDENTITY_KINDS] }, description: 'human, workload (pipelines, service accounts) or agent (acting for a person).' },
    onBehalfOf: {
      type: 'object',
      additionalProperties: false,
      description: 'For agents: the person the agent acts for. Never matches an identity acting for nobody.',
      properties: { ids: strings('Ids of the person (globs).'), groups: strings('Groups of the person (globs).') },
    },
  },
};

const targetMatch = {
  type: 'object',
  additionalProperties: false,
  description: 'Where: the target, by name or by labels.',
  properties: {
    names: strings('Target names as in `targets:` (globs).'),
    labels: {
      type: 'object',
      description: 'Label → value or list of values (globs). `env` is always present. Every listed label must match.',
      additionalProperties: { oneOf: [{ type: 'string' }, strings('Any of these values.')] },
    },
    protected: { type: 'boolean', description: 'Only protected targets (env prod/production, or `protected: true`), or only unprotected ones.' },
  },
};

const contextProperties = {
  identity: identityMatch,
  target: targetMatch,
  databases: strings('Database names (globs).'),
  access: { type: 'array', items: { enum: [...ACCESS_LEVELS] }, description: 'The access level of the credential: read, write, admin.' },
};

const statementFactsMatch = {
  type: 'object',
  additionalProperties: false,
  description: 'What the statement does, as the SQL parser sees it. Every key given must match.',
  properties: {
    kinds: { type: 'array', items: { enum: [...STATEMENT_KINDS] }, description: 'Statement kinds. `grant` covers GRANT and REVOKE; `role` covers CREATE/ALTER/DROP ROLE and membership; `admin` covers ALTER SYSTEM, VACUUM FULL, CREATE EXTENSION and the like.' },
    tags: strings('Command tags (globs), e.g. "ALTER SYSTEM", "DROP TABLE", "CREATE *".'),
    relations: {
      type: 'object',
      additionalProperties: false,
      required: ['names'],
      description: 'Tables, views and sequences touched. Names match the resolved object when the gateway resolved it, else as written; an unqualified name may match any schema for block/review rules, and no schema-qualified pattern for allow rules.',
      properties: {
        names: strings('schema.name or name (globs): public.model_weights, billing.*, *.secrets.'),
        access: { type: 'array', items: { enum: ['read', 'write', 'ddl'] }, description: 'How the relation is touched. Default: any.' },
      },
    },
    columns: strings('Columns referenced anywhere (select list, predicates, writes): schema.table.column, table.column or column (globs).'),
    functions: strings('Functions called: schema.name or name (globs), e.g. dblink*, pg_catalog.pg_read_file.'),
    functionRisks: { type: 'array', items: { enum: [...FUNCTION_RISKS] }, description: 'Risk classes of functions called: file, program, dynamic-sql, remote, admin, identity, side-effect.' },
    where: { enum: ['missing', 'present'], description: 'UPDATE/DELETE/MERGE with no WHERE (a constant-true WHERE counts as missing), or with one.' },
    multiStatement: { type: 'boolean', description: 'The message carried more than one statement.' },
    modifyingCte: { type: 'boolean', description: 'A WITH clause that inserts, updates or deletes.' },
    explainAnalyze: { type: 'boolean', description: 'EXPLAIN ANALYZE (which runs the statement).' },
    opaque: {
      description: 'The statement could not be fully understood: true (any reason), false, or a list of reasons.',
      oneOf: [{ type: 'boolean' }, { type: 'array', items: { enum: [...OPAQUE_REASONS] } }],
    },
    settings: strings('Session settings changed by SET/RESET/set_config (globs): role, session_authorization, search_path.'),
    predicateOnClassified: { type: 'boolean', description: 'A WHERE/JOIN/HAVING refers to a classified column this identity may not see.' },
    mutating: { type: 'boolean', description: 'The statement may change data, schema, privileges or server state (true), or only reads (false).' },
    otherDatabase: { type: 'boolean', description: 'The statement reaches a database other than the credential\'s (MySQL: a qualified name or USE of another database).' },
  },
};

const approvers = {
  type: 'object',
  additionalProperties: false,
  description: 'Who may approve. Nobody approves their own request (nor one made by their agent or their service account), and agents never approve.',
  properties: {
    groups: { ...strings('Approver groups; a member of any may vote.'), minItems: 1 },
    quorum: { type: 'integer', minimum: 1, description: 'Approvals needed (default 1). Any deny denies.' },
  },
};

const message = { type: 'string', description: 'What the user is told. Block messages are prefixed with "dbgov: blocked: ".' };
const hint = { type: 'string', description: 'What to do next, e.g. "add a WHERE clause" or "ask for approval with a ticket: dbgov connect prod --reason INC-123".' };
const name = { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]*$', description: 'Unique rule name (lower case, digits, . _ -). It appears in errors, audit and explain.' };
const description = { type: 'string', description: 'Why the rule exists, for the people who maintain it.' };

const statementRule = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'action'],
  description: 'A statement rule. Every matching rule is considered; the most severe action wins (block > review > allow), the earliest rule on a tie.',
  properties: {
    name,
    description,
    match: { type: 'object', additionalProperties: false, description: 'When the rule applies. Empty or absent: every statement.', properties: { ...contextProperties, statement: statementFactsMatch } },
    except: { type: 'object', additionalProperties: false, description: 'When the rule does not apply even though `match` does (e.g. a DBA group).', properties: { ...contextProperties, statement: statementFactsMatch } },
    action: { enum: ['allow', 'review', 'block'], description: 'allow, block, or review (hold the statement for approval).' },
    message,
    hint,
    review: {
      type: 'object',
      additionalProperties: false,
      description: 'For action review.',
      properties: {
        approvers,
        expires: duration('How long the request stays open for approvers (default 1h).'),
        hold: duration('How long the statement waits on the wire (default 120s). 0: fail at once with "approval required" and let the user re-run it once approved.'),
        window: duration('After approval, how long the requester may re-run the same statement once (default 15m).'),
      },
    },
  },
};

const accessRule = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'action'],
  description: 'An access rule, checked before a credential is issued. The most severe matching action wins (deny > review > allow). When no access rules are written, the defaults apply: anyone may get read; write/admin on protected targets needs review (agents: denied).',
  properties: {
    name,
    description,
    match: {
      type: 'object',
      additionalProperties: false,
      description: 'When the rule applies.',
      properties: {
        ...contextProperties,
        when: {
          type: 'array',
          description: 'Time windows; the rule applies inside any of them.',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['timezone'],
            properties: {
              days: { type: 'array', items: { enum: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] }, description: 'Days of the week (default: every day).' },
              hours: { type: 'string', pattern: '^\\d{2}:\\d{2}-\\d{2}:\\d{2}$', description: 'HH:MM-HH:MM local time; may wrap past midnight (22:00-06:00). Default: all day.' },
              timezone: { type: 'string', description: 'IANA time zone, e.g. Europe/Paris or UTC.' },
            },
          },
        },
        sourceCidrs: strings('Client networks the request must come from (10.0.0.0/8, 2001:db8::/32).'),
      },
    },
    except: { type: 'object', additionalProperties: false, description: 'When the rule does not apply even though `match` does.', properties: { ...contextProperties } },
    action: { enum: ['allow', 'review', 'deny'], description: 'allow, deny, or review (just-in-time elevation approved by approvers).' },
    message,
    hint,
    reason: {
      type: 'object',
      additionalProperties: false,
      description: 'A reason is required (`dbgov connect --reason`).',
      properties: { pattern: { type: 'string', description: 'Regular expression the reason must match, e.g. "^(INC|CHG)-\\\\d+".' } },
    },
    maxTtl: duration('Longest credential this rule grants.'),
    approvers,
    expires: duration('For review: how long the access request stays open (default 1h).'),
  },
};

export const policyJsonSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://dbgov.dev/schema/policy.schema.json',
  title: 'dbgov policy',
  description:
    'Guardrails, approvals and contextual access. Built in and always on: on protected targets, statements the analyser cannot fully understand (parse errors, DO blocks, dynamic SQL, unprepared EXECUTE, FunctionCall messages, dblink-like functions) are blocked, and no rule can allow them.',
  type: 'object',
  additionalProperties: false,
  properties: {
    defaults: {
      description: 'The shipped guardrails for protected targets (block DROP, TRUNCATE, ALTER SYSTEM, GRANT/REVOKE, role management, UPDATE/DELETE without WHERE, COPY PROGRAM and server file access, extensions/foreign data/event triggers, identity switching; agents read-only). true (default), false, or { except } to exempt some identities.',
      oneOf: [
        { type: 'boolean' },
        { type: 'object', additionalProperties: false, properties: { except: { type: 'object', additionalProperties: false, properties: { identity: identityMatch } } } },
      ],
    },
    approvers: { ...approvers, description: 'Default approvers for review rules that name none and for built-in access elevation (default: group dbgov-approvers, quorum 1).' },
    accessHelp: { type: 'string', description: 'How to ask for access, shown in every access denial (a channel, a ticket queue, a command).' },
    notify: {
      type: 'object',
      additionalProperties: false,
      description: 'Tell approvers when a request is waiting.',
      properties: {
        webhook: {
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          description: 'POSTs a Slack-compatible JSON message (text + blocks) carrying the approve and deny commands. Point it at a Slack incoming webhook or your own receiver.',
          properties: {
            url: { type: 'string', description: 'Where to POST, e.g. "${env:SLACK_APPROVALS_WEBHOOK}".' },
            secret: { type: 'string', description: 'HMAC-SHA256 key: the body is signed in the X-Dbgov-Signature header (sha256=<hex>).' },
          },
        },
      },
    },
    statements: { type: 'array', items: statementRule, description: 'Statement rules, checked on every statement.' },
    access: { type: 'array', items: accessRule, description: 'Access rules, checked before a credential is issued.' },
  },
} as const;
