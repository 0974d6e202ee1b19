/**
 * Risk classes of SQL-callable functions. Matched by name in any schema: extensions such as
 * dblink or adminpack install into whatever schema the admin chose, and a same-named function
 * earlier on the search_path would still be the one an unqualified call reaches.
 */
import type { FunctionRisk } from '../facts.js';

const table: [FunctionRisk[], string[]][] = [
  [
    ['file'],
    [
      'pg_read_file', 'pg_read_binary_file', 'pg_ls_dir', 'pg_stat_file', 'pg_ls_logdir', 'pg_ls_waldir',
      'pg_ls_tmpdir', 'pg_ls_archive_statusdir', 'pg_ls_logicalsnapdir', 'pg_ls_logicalmapdir',
      'pg_ls_replslotdir', 'lo_import', 'lo_export', 'pg_file_write', 'pg_file_rename', 'pg_file_unlink',
      'pg_file_sync', 'pg_logdir_ls', 'pg_current_logfile',
    ],
  ],
  [
    ['dynamic-sql'],
    [
      'query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema', 'cursor_to_xml', 'cursor_to_xmlschema',
      'table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema', 'schema_to_xml', 'schema_to_xmlschema',
      'schema_to_xml_and_xmlschema', 'database_to_xml', 'database_to_xmlschema', 'database_to_xml_and_xmlschema',
      'ts_stat', 'ts_rewrite',
    ],
  ],
  [
    ['remote'],
    [
      'dblink', 'dblink_exec', 'dblink_open', 'dblink_fetch', 'dblink_close', 'dblink_connect', 'dblink_connect_u',
      'dblink_send_query', 'dblink_get_result', 'dblink_get_connections', 'dblink_disconnect', 'dblink_is_busy',
      'dblink_cancel_query', 'dblink_error_message', 'dblink_get_notify', 'dblink_build_sql_insert',
      'dblink_build_sql_update', 'dblink_build_sql_delete', 'postgres_fdw_get_connections',
      'postgres_fdw_disconnect', 'postgres_fdw_disconnect_all',
    ],
  ],
  [
    ['admin'],
    [
      'pg_terminate_backend', 'pg_cancel_backend', 'pg_reload_conf', 'pg_rotate_logfile', 'pg_promote',
      'pg_switch_wal', 'pg_create_restore_point', 'pg_backup_start', 'pg_backup_stop', 'pg_start_backup',
      'pg_stop_backup', 'pg_wal_replay_pause', 'pg_wal_replay_resume', 'pg_create_physical_replication_slot',
      'pg_create_logical_replication_slot', 'pg_drop_replication_slot', 'pg_copy_physical_replication_slot',
      'pg_copy_logical_replication_slot', 'pg_replication_slot_advance', 'pg_logical_slot_get_changes',
      'pg_logical_slot_get_binary_changes', 'pg_logical_slot_peek_changes', 'pg_logical_emit_message',
      'pg_replication_origin_create', 'pg_replication_origin_drop', 'pg_replication_origin_advance',
      'pg_replication_origin_session_setup', 'pg_stat_reset', 'pg_stat_reset_shared', 'pg_stat_reset_single_table_counters',
      'pg_stat_reset_single_function_counters', 'pg_stat_reset_slru', 'pg_stat_reset_replication_slot',
      'pg_stat_reset_subscription_stats', 'pg_import_system_collations', 'pg_log_backend_memory_contexts',
      'pg_sync_replication_slots', 'pg_truncate_visibility_map', 'pg_drop_all_sessions',
    ],
  ],
  [
    ['side-effect'],
    [
      'nextval', 'setval', 'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_advisory_xact_lock',
      'pg_advisory_xact_lock_shared', 'pg_try_advisory_lock', 'pg_try_advisory_lock_shared',
      'pg_try_advisory_xact_lock', 'pg_try_advisory_xact_lock_shared', 'pg_advisory_unlock',
      'pg_advisory_unlock_shared', 'pg_advisory_unlock_all', 'lo_unlink', 'lo_create', 'lo_creat', 'lo_from_bytea',
      'lo_put', 'lowrite', 'lo_truncate', 'lo_truncate64', 'lo_open', 'pg_notify', 'txid_current',
      'pg_current_xact_id', 'pg_export_snapshot',
    ],
  ],
];

const risksByName = new Map<string, FunctionRisk[]>();
for (const [risks, fnames] of table) for (const n of fnames) risksByName.set(n, risks);

/**
 * Functions that keep what they are given outside any table the gateway reads results from: a
 * notification payload, a session setting, a large object (its bytes, or the OID lo_create gives
 * it), a logical decoding message, a sequence's value (setval: currval reads it back), an advisory
 * lock's key (pg_locks shows it). Eight bytes of a value per call are enough to rebuild it.
 */
export const STORING_FUNCTIONS: ReadonlySet<string> = new Set([
  'pg_notify', 'set_config', 'lo_from_bytea', 'lo_put', 'lowrite', 'lo_create', 'pg_logical_emit_message', 'setval',
  'pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_advisory_xact_lock', 'pg_advisory_xact_lock_shared',
  'pg_try_advisory_lock', 'pg_try_advisory_lock_shared', 'pg_try_advisory_xact_lock', 'pg_try_advisory_xact_lock_shared',
]);

/**
 * Settings whose change is an administrative act, as names or `prefix*` globs: replica mode skips
 * triggers and foreign keys, the others switch off integrity checks or what the server records.
 * The same list judges `SET name = …` (policy's settings match) and `set_config('name', …)`.
 */
export const ADMIN_SETTINGS: readonly string[] = [
  'session_replication_role',
  'ignore_system_indexes',
  'zero_damaged_pages',
  'ignore_checksum_failure',
  'allow_system_table_mods',
  'log_*',
  'debug_*',
  'track_*',
  // MySQL/MariaDB: what the binary log and the query logs record, and integrity checks.
  'sql_log_bin',
  'sql_log_off',
  'general_log',
  'slow_query_log',
  'foreign_key_checks',
  'unique_checks',
];

function isAdminSetting(name: string): boolean {
  return ADMIN_SETTINGS.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

/** Settings whose change switches the session's identity (SET ROLE in function form). */
export const IDENTITY_SETTINGS: ReadonlySet<string> = new Set(['role', 'session_authorization']);

/**
 * Risks of calling `name`. `settingName` is the first argument of set_config when it is a
 * constant: undefined means it was computed, which could be any setting, identity included.
 */
export function functionRisks(name: string, settingName?: string | null): FunctionRisk[] {
  if (name === 'set_config') {
    // A computed name could be 'role': treat it as both, so policy cannot be steered around.
    if (settingName === undefined || settingName === null) return ['identity', 'admin'];
    const setting = settingName.toLowerCase();
    if (IDENTITY_SETTINGS.has(setting)) return ['identity'];
    // The rest (search_path, statement_timeout, …) are what SET does in any session.
    return isAdminSetting(setting) ? ['admin'] : [];
  }
  return risksByName.get(name) ?? [];
}

/** Functions whose output may carry data read by SQL text or from outside: lineage is unknown. */
export function hidesLineage(risks: FunctionRisk[]): boolean {
  return risks.includes('dynamic-sql') || risks.includes('remote') || risks.includes('file');
}
