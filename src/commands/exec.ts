import { readFile } from 'node:fs/promises';
import { Args, Flags } from '@oclif/core';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { DbgovCommand } from '../cli/base-command.js';
import { connectTunnel, loadClientKey } from '../cli/connect.js';
import { cellText, csvLine, jsonValue, renderTable } from '../cli/render.js';
import { DbgovError, DeniedError, UpstreamError, UsageError } from '../shared/errors.js';
import { ACCESS_LEVELS, type AccessLevel } from '../shared/types.js';

export interface ExecStatementResult {
  command: string;
  rowCount: number | null;
  fields: string[];
  rows: Record<string, unknown>[];
}

export interface ExecResult {
  target: string;
  database: string;
  statements: ExecStatementResult[];
}

export default class Exec extends DbgovCommand<ExecResult> {
  static override summary = 'Run SQL through the governed path and print the rows.';
  static override description = 'The same path as `dbgov connect`: a short-lived credential, the tunnel, and every guardrail, approval, mask and audit record in the gateway. For CI and agents: no prompts, --json or --csv output, and exit codes (4 = blocked by policy, 8 = database error).';
  static override examples = ['<%= config.bin %> exec prod --sql "select id, email from users limit 5"', '<%= config.bin %> exec prod --file migration.sql --access write --reason CHG-42 --json', 'cat report.sql | <%= config.bin %> exec prod --file - --csv > report.csv'];
  static override args = { target: Args.string({ required: true, description: 'target name' }) };
  static override flags = {
    sql: Flags.string({ summary: 'SQL text to run (several statements allowed).', exclusive: ['file'] }),
    file: Flags.string({ char: 'f', summary: 'Read the SQL from a file; - reads it from stdin.', exclusive: ['sql'] }),
    csv: Flags.boolean({ summary: 'Print rows as CSV (RFC 4180); several result sets are separated by an empty line.', exclusive: ['json'] }),
    database: Flags.string({ char: 'd', summary: 'Database (default: the target\'s).' }),
    access: Flags.string({ summary: 'Access level.', options: [...ACCESS_LEVELS], default: 'read' }),
    reason: Flags.string({ summary: 'Why; policy may require a ticket id.' }),
    agent: Flags.string({ summary: 'Run as an agent acting on your behalf.' }),
  };

  async run(): Promise<ExecResult> {
    const { args, flags } = await this.parse(Exec);
    const sql = flags.sql ?? (flags.file !== undefined ? await readSql(flags.file) : undefined);
    if (!sql?.trim()) {
      const what = flags.file !== undefined ? `${flags.file === '-' ? 'stdin' : flags.file} holds no SQL` : flags.sql !== undefined ? '--sql is empty' : 'no SQL to run';
      throw new UsageError(what, { actions: [`give the SQL with --sql "…", --file FILE or --file - (stdin), e.g. dbgov exec ${args.target} --sql "select 1"`] });
    }

    const session = await this.session(flags.broker);
    const key = await loadClientKey();
    const conn = await connectTunnel(
      session.client,
      { target: args.target, ...(flags.database ? { database: flags.database } : {}), access: flags.access as AccessLevel, ...(flags.reason ? { reason: flags.reason } : {}), ...(flags.agent ? { agent: flags.agent } : {}) },
      key,
      { onPending: (p) => process.stderr.write(`${p.message}: an approver runs \`dbgov approve ${p.requestId}\`\n`) },
    );
    try {
      const statements = conn.credential.engine === 'postgres' ? await runPostgres(conn.tunnel.port, conn.credential.identity.id, conn.credential.database, sql, (m) => this.warn(m)) : await runMysql(conn.tunnel.port, conn.credential.identity.id, conn.credential.database, sql);
      if (!this.jsonEnabled()) this.print(statements, flags.csv);
      return { target: conn.credential.target, database: conn.credential.database, statements };
    } finally {
      await conn.close();
    }
  }

  private print(statements: ExecStatementResult[], csv: boolean): void {
    let sets = 0;
    for (const st of statements) {
      if (csv) {
        if (st.fields.length) {
          // RFC 4180 records end in CRLF already; an empty line only separates result sets.
          if (sets++ > 0) process.stdout.write('\r\n');
          process.stdout.write(csvLine(st.fields));
          for (const r of st.rows) process.stdout.write(csvLine(st.fields.map((f) => r[f])));
        }
        continue;
      }
      if (st.fields.length) {
        this.log(renderTable(st.rows, st.fields.map((f) => ({ header: f, value: (r: Record<string, unknown>) => cellText(r[f]) })), { width: this.width }));
        this.log(this.style.dim(`(${st.rows.length} row${st.rows.length === 1 ? '' : 's'})`));
      } else {
        this.log(`${st.command}${st.rowCount !== null ? ` ${st.rowCount}` : ''}`);
      }
    }
  }
}

/** The SQL of --file: a path, or `-` for stdin (a pipeline's heredoc or `cat migration.sql |`). */
async function readSql(file: string): Promise<string> {
  if (file === '-') {
    if (process.stdin.isTTY) throw new UsageError('--file - reads the SQL from stdin, which is a terminal here', { actions: ['pipe the SQL in (cat q.sql | dbgov exec …), or pass --file q.sql'] });
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read ${file}: ${code ?? (e as Error).message}`, {
      actions: [code === 'EISDIR' ? 'pass a file, not a folder' : 'check the path (relative to the current folder), or use --sql "…"'],
    });
  }
}

/**
 * One result set as --json prints it (and the table and CSV read it). Bytes become `\x…` text.
 * A repeated column name gets a suffix (`a`, `a_2`) so that no column's values are lost.
 */
function resultSet(command: string, rowCount: number | null, names: string[], rows: unknown[][]): ExecStatementResult {
  const fields: string[] = [];
  for (const name of names) {
    let unique = name;
    for (let n = 2; fields.includes(unique); n++) unique = `${name}_${n}`;
    fields.push(unique);
  }
  return {
    command,
    rowCount,
    fields,
    rows: rows.map((row) => Object.fromEntries(fields.map((f, i) => [f, jsonValue(row[i])]))),
  };
}

/** A refused statement comes back as a database error; map it to the CLI's exit codes. */
function dbError(e: unknown): DbgovError {
  const err = e as { code?: string; message?: string; hint?: string; detail?: string; sqlState?: string; errno?: number };
  const message = err.message ?? String(e);
  const actions = [err.hint, err.detail].filter((x): x is string => Boolean(x));
  if (message.startsWith('dbgov:')) return new DeniedError('statement-refused', message, { actions, detail: { sqlstate: err.code ?? err.sqlState ?? null } });
  return new UpstreamError('database-error', message, { actions, detail: { sqlstate: err.code ?? err.sqlState ?? null } });
}

async function runPostgres(port: number, user: string, database: string, sql: string, notice: (m: string) => void): Promise<ExecStatementResult[]> {
  const client = new pg.Client({ host: '127.0.0.1', port, user, database, ssl: false });
  client.on('notice', (n) => notice(n.message ?? String(n)));
  client.on('error', () => undefined);
  await client.connect().catch((e: unknown) => {
    throw dbError(e);
  });
  try {
    let res: pg.QueryResult<unknown[]> | pg.QueryResult<unknown[]>[];
    try {
      // Simple protocol: several statements in one message, judged together by the gateway.
      // Rows as arrays: `select 1 as a, 2 as a` has two columns, which an object would fold into one.
      res = (await client.query({ text: sql, rowMode: 'array' })) as unknown as pg.QueryResult<unknown[]> | pg.QueryResult<unknown[]>[];
    } catch (e) {
      throw dbError(e);
    }
    const list = Array.isArray(res) ? res : [res];
    return list.map((r) => resultSet(r.command, r.rowCount, (r.fields ?? []).map((f) => f.name), r.rows ?? []));
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function runMysql(port: number, user: string, database: string, sql: string): Promise<ExecStatementResult[]> {
  const c = await mysql.createConnection({ host: '127.0.0.1', port, user, database, multipleStatements: true }).catch((e: unknown) => {
    throw dbError(e);
  });
  try {
    const [result, fields] = await c.query({ sql, rowsAsArray: true }).catch((e: unknown) => {
      throw dbError(e);
    });
    // One statement: rows (or an OK header) and its FieldPackets. Several: one entry per statement
    // in both, fields being a FieldPacket[] for a result set and undefined for an OK header.
    const perStatement = Array.isArray(fields) && fields.length > 0 && fields.every((f) => f === undefined || Array.isArray(f));
    const results = perStatement ? (result as unknown[]) : [result];
    const fieldSets = perStatement ? (fields as unknown as ({ name: string }[] | undefined)[]) : [fields as { name: string }[] | undefined];
    return results.map((r, i) => {
      if (Array.isArray(r)) return resultSet('SELECT', r.length, (fieldSets[i] ?? []).map((f) => f.name), r as unknown[][]);
      const h = r as { affectedRows?: number };
      return { command: 'OK', rowCount: h.affectedRows ?? null, fields: [], rows: [] };
    });
  } finally {
    await c.end().catch(() => undefined);
  }
}
