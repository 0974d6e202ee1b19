/**
 * Rules dbgov ships. `BUILTIN_RULES` are always on and cannot be outvoted: an allow rule never
 * beats a block, and these block. `defaultRules` are the guardrails a Teleport or hoop.dev user
 * expects on production; `defaults: false` removes them, `defaults: { except }` exempts some
 * identities (a break-glass DBA group).
 */
import { ADMIN_SETTINGS } from '../sql/postgres/functions.js';
import { compileGlob } from './match.js';
import type { AccessAction, AccessRule, Approvers, IdentityMatch, StatementMatch, StatementRule } from './types.js';

const PROTECTED = { target: { protected: true } } as const;

function builtin(name: string, description: string, match: StatementMatch, message: string, hint: string): StatementRule {
  return { name, description, action: 'block', message, hint, match, origin: 'builtin', path: [] };
}

/**
 * Fail closed on protected targets. A rule is written against statement facts; when the facts
 * are incomplete (the analyser could not see what the statement does), no rule can vouch for
 * the statement, so an allow rule must not be able to let it through.
 */
export const BUILTIN_RULES: readonly StatementRule[] = [
  builtin(
    'fail-closed-opaque',
    'Statements the analyser cannot fully understand: parse errors, DO blocks, dynamic SQL, EXECUTE of an unknown prepared statement, FunctionCall and unsupported messages.',
    { ...PROTECTED, statement: { opaque: true } },
    'dbgov cannot see what this statement does, and this target is protected',
    'rewrite it as plain SQL (no DO blocks, dynamic SQL or FunctionCall messages); PREPARE a statement before you EXECUTE it',
  ),
  builtin(
    'fail-closed-unknown',
    'Statement kinds the analyser does not classify.',
    { ...PROTECTED, statement: { kinds: ['unknown', 'do'] } },
    'dbgov does not recognise this kind of statement, and this target is protected',
    'run it on a non-production target, or ask a dbgov admin to review it',
  ),
  builtin(
    'fail-closed-remote',
    'Functions that run SQL built at run time or reach another server (dblink and the like): what they execute is invisible to policy.',
    { ...PROTECTED, statement: { functionRisks: ['remote', 'dynamic-sql'] } },
    'this statement calls a function that runs SQL dbgov cannot see (dynamic SQL or a remote connection), and this target is protected',
    'connect to the other database through dbgov directly, and write the SQL out instead of building it at run time',
  ),
  builtin(
    'read-only-credential',
    'A read credential only reads, on every target (the database role enforces it too; this stops it earlier).',
    { access: ['read'], statement: { mutating: true } },
    'this statement may change data, and your credential is read-only',
    'reconnect with write access: dbgov connect <target> --access write --reason <ticket>',
  ),
  builtin(
    'database-scope',
    'A credential is scoped to one database. On MySQL, where a schema is a database, a qualified name or USE could reach another one (mysql.user holds password hashes).',
    { statement: { otherDatabase: true } },
    'this statement reaches a database your credential is not for',
    'connect to that database with its own credential: dbgov connect <target> --database <name>',
  ),
  builtin(
    'masked-predicate',
    'A WHERE, JOIN or HAVING on a column masked for this identity would reveal its values row by row (WHERE ssn LIKE \'1%\').',
    { statement: { predicateOnClassified: true } },
    'this statement filters on a column that is masked for you',
    'filter on a non-classified column instead, or ask for access to the clear values',
  ),
];

const APPROVAL_HINT = 'if it must run, ask for approval with a ticket: dbgov connect <target> --reason <ticket>, or ship it as a reviewed migration';

const DEFAULTS: readonly [string, string, StatementMatch, string, string][] = [
  // By tag, not kind: DROP DATABASE and DROP OWNED are classified as admin/role, and are drops too.
  // MariaDB's CREATE OR REPLACE TABLE / SEQUENCE / DATABASE drops the table or database (and its rows) first.
  [
    'block-drop',
    'DROP of any object, including DROP DATABASE and DROP OWNED, and CREATE OR REPLACE TABLE, SEQUENCE or DATABASE (MariaDB), which drops the table (a sequence replaces a table of its name) or the whole database first.',
    { ...PROTECTED, statement: { tags: ['DROP *', 'CREATE OR REPLACE TABLE', 'CREATE OR REPLACE SEQUENCE', 'CREATE OR REPLACE DATABASE'].map(compileGlob) } },
    'DROP is not allowed on a protected target',
    APPROVAL_HINT,
  ],
  ['block-truncate', 'TRUNCATE.', { ...PROTECTED, statement: { kinds: ['truncate'] } }, 'TRUNCATE is not allowed on a protected target', APPROVAL_HINT],
  [
    'block-destructive-alter',
    'ALTER TABLE that drops or overwrites rows or columns: DROP COLUMN, a column type change that may not keep every value (PostgreSQL: any but a widening the catalog proves, such as varchar(5) to varchar(10) or int to bigint; MySQL: outside strict mode, or into a type strict mode rounds or cuts into: DECIMAL, FLOAT, DOUBLE, DATE, TIME, DATETIME, TIMESTAMP, CHAR, BINARY; either: a USING or generated expression that writes new values), DROP/TRUNCATE/EXCHANGE/CONVERT PARTITION, DISCARD TABLESPACE, ENGINE=BLACKHOLE or any other engine that does not keep the rows durably (MEMORY, MERGE, FEDERATED, …), ALTER IGNORE TABLE (MariaDB: deletes rows that duplicate a new unique key).',
    { ...PROTECTED, statement: { tags: ['ALTER TABLE DROP COLUMN', 'ALTER TABLE OVERWRITE COLUMN', 'ALTER TABLE DROP PARTITION', 'ALTER TABLE TRUNCATE PARTITION', 'ALTER TABLE EXCHANGE PARTITION', 'ALTER TABLE CONVERT PARTITION', 'ALTER TABLE DISCARD TABLESPACE', 'ALTER TABLE ENGINE BLACKHOLE', 'ALTER TABLE ENGINE DROPS ROWS', 'ALTER TABLE IGNORE'].map(compileGlob) } },
    'this ALTER TABLE drops or overwrites data, which is not allowed on a protected target',
    APPROVAL_HINT,
  ],
  [
    'block-alter-system',
    'ALTER SYSTEM changes server configuration; LOAD loads a shared library into the server.',
    // MySQL's SET GLOBAL / SET PERSIST / SET @@global.x change the server for every session.
    { ...PROTECTED, statement: { tags: [compileGlob('ALTER SYSTEM'), compileGlob('LOAD'), compileGlob('SET GLOBAL')] } },
    'changing server configuration is not allowed on a protected target',
    'change server settings through your configuration management, not a session',
  ],
  ['block-grant', 'GRANT and REVOKE.', { ...PROTECTED, statement: { kinds: ['grant'] } }, 'GRANT and REVOKE are not allowed on a protected target', 'privileges come from dbgov access rules: ask for access with dbgov connect <target> --access …'],
  ['block-role-management', 'Creating, altering or dropping roles, and role membership.', { ...PROTECTED, statement: { kinds: ['role'] } }, 'managing roles is not allowed on a protected target', 'roles are managed by dbgov and your infrastructure code, not by sessions'],
  [
    'block-unbounded-write',
    'UPDATE or DELETE without a WHERE, also inside a WITH or EXPLAIN ANALYZE (a constant-true WHERE counts as none).',
    { ...PROTECTED, statement: { where: 'missing' } },
    'UPDATE or DELETE without a WHERE clause would change every row',
    'add a WHERE clause that selects the rows you mean',
  ],
  [
    'block-server-files',
    'Server-side file access and program execution (COPY … PROGRAM, COPY to/from a server file, pg_read_file, lo_import, …).',
    { ...PROTECTED, statement: { functionRisks: ['file', 'program'] } },
    'reading or writing files or running programs on the database server is not allowed on a protected target',
    'use COPY … TO STDOUT / FROM STDIN (psql \\copy) to move data through your own connection',
  ],
  [
    'block-extensions-and-foreign-data',
    'Installing or changing extensions and languages (code loaded into the server), foreign data wrappers, servers, user mappings and foreign tables (file_fdw reads server files; postgres_fdw reaches other servers), event triggers (code run on every DDL), and logical replication (a publication or subscription moves table data outside any session).',
    {
      ...PROTECTED,
      statement: {
        tags: ['CREATE EXTENSION', 'ALTER EXTENSION', 'CREATE FOREIGN DATA WRAPPER', 'ALTER FOREIGN DATA WRAPPER', 'CREATE SERVER', 'ALTER SERVER', 'CREATE USER MAPPING', 'ALTER USER MAPPING', 'CREATE FOREIGN TABLE', 'IMPORT FOREIGN SCHEMA', 'CREATE EVENT TRIGGER', 'ALTER EVENT TRIGGER', 'CREATE PUBLICATION', 'ALTER PUBLICATION', 'CREATE SUBSCRIPTION', 'ALTER SUBSCRIPTION'].map(compileGlob),
      },
    },
    'installing extensions, foreign data access, event triggers or replication is not allowed on a protected target',
    'ship it as a reviewed migration, or ask for approval with a ticket: dbgov connect <target> --reason <ticket>',
  ],
  [
    'admin-functions-need-admin-access',
    'Administrative functions (pg_terminate_backend, pg_cancel_backend, pg_reload_conf, replication slots, statistics resets, …) need the admin access level on a protected target.',
    { ...PROTECTED, access: ['read', 'write'], statement: { functionRisks: ['admin'] } },
    'this statement calls an administrative function, which needs admin access on a protected target',
    'reconnect with admin access and a reason: dbgov connect <target> --access admin --reason <ticket>',
  ],
  [
    'server-admin-needs-admin-access',
    'MySQL/MariaDB server administration: SHUTDOWN, RESTART, FLUSH (a global read lock stops every writer), RESET, PURGE, CHANGE MASTER/REPLICATION, STOP, CACHE INDEX, BACKUP.',
    { ...PROTECTED, access: ['read', 'write'], statement: { kinds: ['admin'], tags: ['SHUTDOWN', 'RESTART', 'FLUSH', 'RESET', 'PURGE', 'CHANGE', 'STOP', 'CACHE', 'BACKUP'].map(compileGlob) } },
    'this statement administers the server, which needs admin access on a protected target',
    'reconnect with admin access and a reason: dbgov connect <target> --access admin --reason <ticket>',
  ],
  [
    'admin-settings-need-admin-access',
    'SET of a setting that switches off integrity checks or what the server records (session_replication_role, log_*, MySQL sql_log_bin, foreign_key_checks, …): the same settings as set_config above, in statement form.',
    { ...PROTECTED, access: ['read', 'write'], statement: { settings: ADMIN_SETTINGS.map(compileGlob) } },
    'this statement changes an administrative setting, which needs admin access on a protected target',
    'reconnect with admin access and a reason: dbgov connect <target> --access admin --reason <ticket>',
  ],
  [
    'disabling-protections-needs-admin-access',
    'ALTER TABLE … DISABLE TRIGGER / RULE / ROW LEVEL SECURITY, NO FORCE ROW LEVEL SECURITY, ENABLE REPLICA TRIGGER / RULE, and CREATE / ALTER POLICY switch off or widen what guards a table\'s rows for every session, as session_replication_role = replica does for one: they need the admin access level on a protected target.',
    { ...PROTECTED, access: ['read', 'write'], statement: { tags: ['ALTER TABLE DISABLE TRIGGER', 'ALTER TABLE DISABLE RULE', 'ALTER TABLE DISABLE ROW LEVEL SECURITY', 'CREATE POLICY', 'ALTER POLICY'].map(compileGlob) } },
    'this statement switches off or widens triggers, rules or row security on a table, which needs admin access on a protected target',
    'reconnect with admin access and a reason: dbgov connect <target> --access admin --reason <ticket>',
  ],
  [
    'code-needs-admin-access',
    'Creating or replacing code that runs later (functions, procedures, triggers, rules, events), or binding a function to syntax that calls it unnamed (operators, casts, aggregates, operator classes): what it does is judged only when it is written, not each time it runs, so it needs the admin access level on a protected target.',
    {
      ...PROTECTED,
      access: ['read', 'write'],
      statement: {
        tags: [
          'CREATE FUNCTION', 'CREATE PROCEDURE', 'CREATE TRIGGER', 'CREATE RULE', 'CREATE EVENT', 'ALTER FUNCTION', 'ALTER PROCEDURE', 'ALTER EVENT', 'ALTER ROUTINE', 'CREATE PACKAGE', 'CREATE PACKAGE BODY',
          'CREATE OPERATOR', 'CREATE OPERATOR CLASS', 'CREATE OPERATOR FAMILY', 'ALTER OPERATOR', 'ALTER OPERATOR FAMILY', 'CREATE CAST', 'CREATE AGGREGATE',
        ].map(compileGlob),
      },
    },
    'creating or replacing functions, procedures, triggers, rules, operators, casts or aggregates needs admin access on a protected target',
    'reconnect with admin access and a reason: dbgov connect <target> --access admin --reason <ticket>, or ship it as a reviewed migration',
  ],
  [
    'block-identity-switch',
    'SET ROLE and SET SESSION AUTHORIZATION: the session must stay the identity dbgov authenticated.',
    { ...PROTECTED, statement: { settings: [compileGlob('role'), compileGlob('session_authorization')] } },
    'switching database identity is not allowed on a protected target',
    'connect with the access you need: dbgov connect <target> --access write|admin',
  ],
  [
    'block-identity-function',
    'set_config(\'role\', …) and other functions that switch identity.',
    { ...PROTECTED, statement: { functionRisks: ['identity'] } },
    'switching database identity is not allowed on a protected target',
    'connect with the access you need: dbgov connect <target> --access write|admin',
  ],
  [
    'agents-read-only',
    'AI agents only read protected targets.',
    { ...PROTECTED, identity: { kinds: ['agent'] }, statement: { mutating: true } },
    'agents may only read on a protected target',
    'run the change yourself (not through the agent), or write an explicit rule for this agent',
  ],
];

export function defaultRules(except: IdentityMatch | undefined): StatementRule[] {
  return DEFAULTS.map(([name, description, match, message, hint]) => ({
    name,
    description,
    action: 'block',
    message,
    hint,
    match,
    ...(except ? { except: { identity: except } } : {}),
    origin: 'default',
    path: [],
  }));
}

/**
 * Access when the config writes no access rules: anyone authenticated may read; write and admin
 * are free on unprotected targets and need an approver on protected ones; agents only read there.
 */
export function defaultAccessRules(approvers: Approvers): AccessRule[] {
  const rule = (name: string, description: string, action: AccessAction, match: AccessRule['match'], message: string, hint: string): AccessRule => ({
    name,
    description,
    action,
    message,
    hint,
    match,
    origin: 'default',
    path: [],
    ...(action === 'review' ? { review: { approvers, expiresMs: 3_600_000 } } : {}),
  });
  return [
    rule('default-read', 'Anyone authenticated may read.', 'allow', { access: ['read'] }, '', ''),
    rule('default-unprotected', 'Write and admin on unprotected targets.', 'allow', { access: ['write', 'admin'], target: { protected: false } }, '', ''),
    rule(
      'default-elevation',
      'Write and admin on protected targets need an approver.',
      'review',
      { access: ['write', 'admin'], target: { protected: true } },
      'write and admin access to a protected target need approval',
      'an approver runs: dbgov approve <id>',
    ),
    rule(
      'default-agent-read-only',
      'Agents only read protected targets.',
      'deny',
      { access: ['write', 'admin'], target: { protected: true }, identity: { kinds: ['agent'] } },
      'agents may only read a protected target',
      'connect as yourself: dbgov connect <target> --access write --reason <ticket>',
    ),
  ];
}
