/**
 * Statement kind and command tag for every raw statement node libpg-query 18 produces.
 * A node type missing here classifies as 'unknown', which protected environments block.
 */
import type { StatementKind } from '../facts.js';
import { isObject, list, str, type PgNode } from './ast.js';

type Rule = readonly [StatementKind, string | ((n: PgNode) => string)];

/** `OBJECT_MATVIEW` → `MATERIALIZED VIEW`, `OBJECT_FOREIGN_TABLE` → `FOREIGN TABLE`. */
function objectName(objtype: unknown, fallback: string): string {
  const t = str(objtype);
  if (t === undefined) return fallback;
  if (t === 'OBJECT_MATVIEW') return 'MATERIALIZED VIEW';
  return t.replace(/^OBJECT_/, '').replaceAll('_', ' ');
}

const TRANSACTION_TAGS: Record<string, string> = {
  TRANS_STMT_BEGIN: 'BEGIN',
  TRANS_STMT_START: 'START TRANSACTION',
  TRANS_STMT_COMMIT: 'COMMIT',
  TRANS_STMT_ROLLBACK: 'ROLLBACK',
  TRANS_STMT_SAVEPOINT: 'SAVEPOINT',
  TRANS_STMT_RELEASE: 'RELEASE',
  TRANS_STMT_ROLLBACK_TO: 'ROLLBACK',
  TRANS_STMT_PREPARE: 'PREPARE TRANSACTION',
  TRANS_STMT_COMMIT_PREPARED: 'COMMIT PREPARED',
  TRANS_STMT_ROLLBACK_PREPARED: 'ROLLBACK PREPARED',
};

const RULES: Record<string, Rule> = {
  SelectStmt: ['select', 'SELECT'],
  InsertStmt: ['insert', 'INSERT'],
  UpdateStmt: ['update', 'UPDATE'],
  DeleteStmt: ['delete', 'DELETE'],
  MergeStmt: ['merge', 'MERGE'],
  CopyStmt: ['copy', 'COPY'],
  DeclareCursorStmt: ['select', 'DECLARE CURSOR'],

  CreateStmt: ['create', 'CREATE TABLE'],
  CreateTableAsStmt: ['create', (n) => (n.objtype === 'OBJECT_MATVIEW' ? 'CREATE MATERIALIZED VIEW' : 'CREATE TABLE AS')],
  ViewStmt: ['create', 'CREATE VIEW'],
  IndexStmt: ['create', 'CREATE INDEX'],
  CreateSchemaStmt: ['create', 'CREATE SCHEMA'],
  CreateSeqStmt: ['create', 'CREATE SEQUENCE'],
  CreateFunctionStmt: ['create', (n) => (n.is_procedure === true ? 'CREATE PROCEDURE' : 'CREATE FUNCTION')],
  CreateTrigStmt: ['create', 'CREATE TRIGGER'],
  RuleStmt: ['create', 'CREATE RULE'],
  CreateDomainStmt: ['create', 'CREATE DOMAIN'],
  CompositeTypeStmt: ['create', 'CREATE TYPE'],
  CreateEnumStmt: ['create', 'CREATE TYPE'],
  CreateRangeStmt: ['create', 'CREATE TYPE'],
  DefineStmt: ['create', (n) => `CREATE ${objectName(n.kind, 'OBJECT')}`],
  CreateCastStmt: ['create', 'CREATE CAST'],
  CreateConversionStmt: ['create', 'CREATE CONVERSION'],
  CreateOpClassStmt: ['create', 'CREATE OPERATOR CLASS'],
  CreateOpFamilyStmt: ['create', 'CREATE OPERATOR FAMILY'],
  CreateStatsStmt: ['create', 'CREATE STATISTICS'],
  CreatePolicyStmt: ['create', 'CREATE POLICY'],
  CreateForeignTableStmt: ['create', 'CREATE FOREIGN TABLE'],
  CreateTransformStmt: ['create', 'CREATE TRANSFORM'],

  // Objects that reach outside the database, run as superuser or hold credentials.
  CreatePLangStmt: ['admin', 'CREATE LANGUAGE'],
  CreateAmStmt: ['admin', 'CREATE ACCESS METHOD'],
  CreateEventTrigStmt: ['admin', 'CREATE EVENT TRIGGER'],
  AlterEventTrigStmt: ['admin', 'ALTER EVENT TRIGGER'],
  CreateExtensionStmt: ['admin', 'CREATE EXTENSION'],
  AlterExtensionStmt: ['admin', 'ALTER EXTENSION'],
  AlterExtensionContentsStmt: ['admin', 'ALTER EXTENSION'],
  CreateFdwStmt: ['admin', 'CREATE FOREIGN DATA WRAPPER'],
  AlterFdwStmt: ['admin', 'ALTER FOREIGN DATA WRAPPER'],
  CreateForeignServerStmt: ['admin', 'CREATE SERVER'],
  AlterForeignServerStmt: ['admin', 'ALTER SERVER'],
  CreateUserMappingStmt: ['admin', 'CREATE USER MAPPING'],
  AlterUserMappingStmt: ['admin', 'ALTER USER MAPPING'],
  DropUserMappingStmt: ['admin', 'DROP USER MAPPING'],
  ImportForeignSchemaStmt: ['admin', 'IMPORT FOREIGN SCHEMA'],
  CreatePublicationStmt: ['admin', 'CREATE PUBLICATION'],
  AlterPublicationStmt: ['admin', 'ALTER PUBLICATION'],
  CreateSubscriptionStmt: ['admin', 'CREATE SUBSCRIPTION'],
  AlterSubscriptionStmt: ['admin', 'ALTER SUBSCRIPTION'],
  DropSubscriptionStmt: ['admin', 'DROP SUBSCRIPTION'],
  CreateTableSpaceStmt: ['admin', 'CREATE TABLESPACE'],
  DropTableSpaceStmt: ['admin', 'DROP TABLESPACE'],
  AlterTableSpaceOptionsStmt: ['admin', 'ALTER TABLESPACE'],
  AlterTableMoveAllStmt: ['admin', 'ALTER TABLE'],
  CreatedbStmt: ['admin', 'CREATE DATABASE'],
  AlterDatabaseStmt: ['admin', 'ALTER DATABASE'],
  AlterDatabaseSetStmt: ['admin', 'ALTER DATABASE'],
  AlterDatabaseRefreshCollStmt: ['admin', 'ALTER DATABASE'],
  DropdbStmt: ['admin', 'DROP DATABASE'],
  AlterSystemStmt: ['admin', 'ALTER SYSTEM'],
  LoadStmt: ['admin', 'LOAD'],
  CheckPointStmt: ['admin', 'CHECKPOINT'],
  VacuumStmt: ['admin', (n) => (n.is_vacuumcmd === true ? 'VACUUM' : 'ANALYZE')],
  ClusterStmt: ['admin', 'CLUSTER'],
  ReindexStmt: ['admin', 'REINDEX'],
  RefreshMatViewStmt: ['admin', 'REFRESH MATERIALIZED VIEW'],

  AlterTableStmt: ['alter', (n) => `ALTER ${objectName(n.objtype, 'TABLE')}`],
  AlterDomainStmt: ['alter', 'ALTER DOMAIN'],
  AlterSeqStmt: ['alter', 'ALTER SEQUENCE'],
  AlterFunctionStmt: ['alter', (n) => `ALTER ${objectName(n.objtype, 'FUNCTION')}`],
  AlterObjectSchemaStmt: ['alter', (n) => `ALTER ${objectName(n.objectType, 'OBJECT')}`],
  AlterOwnerStmt: ['alter', (n) => `ALTER ${objectName(n.objectType, 'OBJECT')}`],
  RenameStmt: ['alter', (n) => `ALTER ${objectName(n.renameType === 'OBJECT_COLUMN' ? n.relationType : n.renameType, 'OBJECT')}`],
  AlterEnumStmt: ['alter', 'ALTER TYPE'],
  AlterTypeStmt: ['alter', 'ALTER TYPE'],
  AlterOperatorStmt: ['alter', 'ALTER OPERATOR'],
  AlterOpFamilyStmt: ['alter', 'ALTER OPERATOR FAMILY'],
  AlterCollationStmt: ['alter', 'ALTER COLLATION'],
  AlterStatsStmt: ['alter', 'ALTER STATISTICS'],
  AlterPolicyStmt: ['alter', 'ALTER POLICY'],
  AlterObjectDependsStmt: ['alter', (n) => `ALTER ${objectName(n.objectType, 'OBJECT')}`],
  AlterTSDictionaryStmt: ['alter', 'ALTER TEXT SEARCH DICTIONARY'],
  AlterTSConfigurationStmt: ['alter', 'ALTER TEXT SEARCH CONFIGURATION'],
  ReplicaIdentityStmt: ['alter', 'ALTER TABLE'],
  CommentStmt: ['alter', 'COMMENT'],
  SecLabelStmt: ['alter', 'SECURITY LABEL'],

  DropStmt: ['drop', (n) => `DROP ${objectName(n.removeType, 'OBJECT')}`],
  DropOwnedStmt: ['drop', 'DROP OWNED'],
  TruncateStmt: ['truncate', 'TRUNCATE TABLE'],

  GrantStmt: ['grant', (n) => (n.is_grant === true ? 'GRANT' : 'REVOKE')],
  AlterDefaultPrivilegesStmt: ['grant', 'ALTER DEFAULT PRIVILEGES'],
  GrantRoleStmt: ['role', (n) => (n.is_grant === true ? 'GRANT ROLE' : 'REVOKE ROLE')],
  CreateRoleStmt: ['role', (n) => (n.stmt_type === 'ROLESTMT_USER' ? 'CREATE USER' : 'CREATE ROLE')],
  AlterRoleStmt: ['role', 'ALTER ROLE'],
  AlterRoleSetStmt: ['role', 'ALTER ROLE'],
  DropRoleStmt: ['role', 'DROP ROLE'],
  ReassignOwnedStmt: ['role', 'REASSIGN OWNED'],

  VariableSetStmt: ['set', (n) => (str(n.kind)?.startsWith('VAR_RESET') ? 'RESET' : 'SET')],
  TransactionStmt: ['transaction', (n) => TRANSACTION_TAGS[str(n.kind) ?? ''] ?? 'TRANSACTION'],
  ConstraintsSetStmt: ['transaction', 'SET CONSTRAINTS'],

  VariableShowStmt: ['utility', 'SHOW'],
  DiscardStmt: ['utility', (n) => `DISCARD ${str(n.target)?.replace(/^DISCARD_/, '') ?? 'ALL'}`],
  ExplainStmt: ['utility', 'EXPLAIN'],
  PrepareStmt: ['utility', 'PREPARE'],
  ExecuteStmt: ['utility', 'EXECUTE'],
  DeallocateStmt: ['utility', 'DEALLOCATE'],
  FetchStmt: ['utility', (n) => (n.ismove === true ? 'MOVE' : 'FETCH')],
  ClosePortalStmt: ['utility', 'CLOSE CURSOR'],
  ListenStmt: ['utility', 'LISTEN'],
  UnlistenStmt: ['utility', 'UNLISTEN'],
  NotifyStmt: ['utility', 'NOTIFY'],
  LockStmt: ['utility', 'LOCK TABLE'],

  CallStmt: ['call', 'CALL'],
  DoStmt: ['do', 'DO'],
};

export function classify(type: string, n: PgNode): { kind: StatementKind; tag: string } | undefined {
  const rule = RULES[type];
  if (!rule) return undefined;
  const [kind, tag] = rule;
  if (type === 'SelectStmt' && isObject(n.intoClause)) return { kind: 'create', tag: 'SELECT INTO' };
  return { kind, tag: typeof tag === 'string' ? tag : tag(n) };
}

/** True when an EXPLAIN's options run the statement (ANALYZE not explicitly off). */
export function explainRuns(options: unknown): boolean {
  for (const o of list(options)) {
    const d = isObject(o) && isObject(o.DefElem) ? o.DefElem : undefined;
    if (d?.defname !== 'analyze' && d?.defname !== 'analyse') continue;
    const arg = isObject(d.arg) ? d.arg : undefined;
    if (!arg) return true;
    const s = isObject(arg.String) ? str(arg.String.sval)?.toLowerCase() : undefined;
    const b = isObject(arg.Boolean) ? arg.Boolean.boolval === true : undefined;
    const i = isObject(arg.Integer) ? arg.Integer.ival !== undefined && arg.Integer.ival !== 0 : undefined;
    // Anything not clearly "off" runs the statement: fail towards the inner statement's kind.
    if (b === false || i === false || s === 'false' || s === 'off' || s === 'no' || s === '0') return false;
    return true;
  }
  return false;
}
