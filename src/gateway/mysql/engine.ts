/**
 * The MySQL/MariaDB wire engine. The broker has already authenticated the tunnel; this engine
 * plays the server to the client (handshake, then one command at a time) and the client to the
 * real database, and calls the broker's hooks at the fixed points of the statement path.
 *
 * Held statements: MySQL has no asynchronous notice channel, so a held statement waits silently
 * (the client just sees a slow query) until the approval is decided; then it runs, or the client
 * gets ERR 1227 with the contract message (`dbgov: approval denied`, `dbgov: approval required …`).
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { mysqlCollationUnsafe } from '../../shared/client-encodings.js';
import { DbgovError, ProtocolError, UpstreamError, isDbgovError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { ClientError, Engine, MaskPlan, ResultColumn, SessionContext, StatementHandle, Verdict } from '../engine.js';
import { authenticateUpstream, connectSocket, readGreeting } from './protocol/auth.js';
import { Command, ErrorCode, GATEWAY_CAPABILITIES, ServerStatus } from './protocol/constants.js';
import { PacketChannel, type Packet } from './protocol/framing.js';
import { maskingTypeOf } from './protocol/types.js';
import {
  encodeServerHandshake,
  eofStatus,
  errPacket,
  isEof,
  maskBinaryRow,
  maskTextRow,
  okPacket,
  parseColumnDefinition,
  parseErr,
  parseHandshakeResponse,
  parseOk,
  PayloadReader,
  type ServerHandshake,
} from './protocol/packets.js';

/** utf8mb4_general_ci: the collation announced when the database's own is unknown. */
const DEFAULT_CHARSET = 45;
const FALLBACK_VERSION = '8.0.0-dbgov';
const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * Gateway-issued connection ids, mapped to the real upstream thread. Clients only ever see the
 * gateway id, so `KILL QUERY <id>` can be checked against the identity that owns the connection.
 */
interface ConnectionEntry {
  identityId: string;
  upstreamThreadId: number;
  upstream: string;
}
const connections = new Map<number, ConnectionEntry>();
let nextConnectionId = 1;

function issueConnectionId(): number {
  while (connections.has(nextConnectionId)) nextConnectionId = (nextConnectionId % 0x7fffffff) + 1;
  const id = nextConnectionId;
  nextConnectionId = (nextConnectionId % 0x7fffffff) + 1;
  return id;
}

/** SQLSTATE of a ClientError (PostgreSQL vocabulary) → MySQL error number and SQLSTATE. */
function mysqlError(e: ClientError): { code: number; sqlstate: string } {
  switch (e.sqlstate) {
    case '42501':
      return { code: ErrorCode.SPECIFIC_ACCESS_DENIED, sqlstate: '42000' };
    case '28000':
    case '28P01':
      return { code: ErrorCode.ACCESS_DENIED, sqlstate: '28000' };
    default:
      return { code: 1105, sqlstate: 'HY000' };
  }
}

/** MySQL's ERR packet has one message field: detail and hint follow on their own lines. */
function clientErrorText(e: { message: string; detail?: string; hint?: string }): string {
  return [e.message, e.detail ? `DETAIL: ${e.detail}` : '', e.hint ? `HINT: ${e.hint}` : ''].filter(Boolean).join('\n');
}

function clientErrPacket(e: ClientError): Buffer {
  const { code, sqlstate } = mysqlError(e);
  return errPacket(code, sqlstate, clientErrorText(e));
}

const KILL_RE = /^\s*KILL\s+(?:(QUERY|CONNECTION)\s+)?(\d+)\s*;?\s*$/i;

type FinalVerdict = Exclude<Verdict, { action: 'hold' }>;

class SessionClosed extends Error {}

class MysqlSession {
  private readonly client: PacketChannel;
  private upstream: PacketChannel | undefined;
  private upstreamSocket: Socket | undefined;
  private readonly log: Logger;
  private readonly connectionId = issueConnectionId();
  /** Next sequence id for packets to the client within the current command. */
  private cseq = 0;
  private status: number = ServerStatus.AUTOCOMMIT;
  private readonly statements = new Map<number, { stmt: StatementHandle; cursorMasks?: MaskPlan | null; types?: number[] }>();
  private inflight: StatementHandle | undefined;
  private closed = false;

  constructor(
    private readonly socket: Duplex,
    private readonly ctx: SessionContext,
  ) {
    this.log = ctx.log.child({ engine: 'mysql', connectionId: this.connectionId });
    if ('setNoDelay' in socket && typeof socket.setNoDelay === 'function') (socket as Socket).setNoDelay(true);
    this.client = new PacketChannel(socket, ctx.limits.maxMessageBytes);
  }

  async run(): Promise<void> {
    const onAbort = (): void => {
      const reason: unknown = this.ctx.signal.reason;
      const message = isDbgovError(reason) ? reason.message : 'dbgov: session ended: the credential was revoked or expired';
      void this.fatal(errPacket(ErrorCode.ACCESS_DENIED, '28000', message));
    };
    this.ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      if (this.ctx.signal.aborted) return onAbort();
      if (!(await this.handshake())) return;
      await this.commandLoop();
    } catch (e) {
      if (e instanceof SessionClosed) return;
      if (e instanceof ProtocolError) {
        this.log.warn({ err: e.message }, 'mysql protocol error; closing session');
        await this.fatal(errPacket(ErrorCode.NET_PACKETS_OUT_OF_ORDER, '08S01', `dbgov: protocol error: ${e.message}`));
      } else if (isDbgovError(e)) {
        this.log.warn({ err: e.message, code: e.code }, 'mysql session ended');
        await this.fatal(errPacket(2013, 'HY000', `dbgov: ${e.message}`));
      } else {
        this.log.error({ err: e }, 'mysql session failed');
        await this.fatal(errPacket(1105, 'HY000', 'dbgov: internal error; the session was closed'));
      }
    } finally {
      this.ctx.signal.removeEventListener('abort', onAbort);
      if (this.inflight) this.ctx.hooks.completed(this.inflight, { rows: null, error: { sqlstate: '08006', message: 'session ended during the statement' } });
      this.close();
    }
  }

  // ---- connection phase ----------------------------------------------------------------------

  private async handshake(): Promise<boolean> {
    const { upstream } = this.ctx;
    let greeting: ServerHandshake | undefined;
    let upstreamFailure: unknown;
    try {
      this.upstreamSocket = await connectSocket(upstream);
      this.upstream = new PacketChannel(this.upstreamSocket, 1 << 30);
      greeting = await withTimeout(readGreeting(this.upstream), upstream.connectTimeoutMs, 'the database greeting');
    } catch (e) {
      upstreamFailure = e;
    }
    const scramble = randomScramble();
    this.cseq = await this.client.write(
      encodeServerHandshake({
        serverVersion: greeting?.serverVersion ?? FALLBACK_VERSION,
        connectionId: this.connectionId,
        scramble,
        capabilities: GATEWAY_CAPABILITIES,
        charset: greeting?.charset ?? DEFAULT_CHARSET,
        status: ServerStatus.AUTOCOMMIT,
        authPlugin: 'mysql_native_password',
      }),
      0,
    );
    const p = await withTimeout(this.client.next(), HANDSHAKE_TIMEOUT_MS, 'the client handshake');
    if (!p) return false;
    if (p.seq !== 1) throw new ProtocolError(`handshake response has sequence id ${p.seq}, expected 1`);
    this.cseq = (p.lastSeq + 1) & 0xff;
    const resp = parseHandshakeResponse(p.payload);
    if (resp.sslRequest) {
      await this.fatal(errPacket(ErrorCode.ACCESS_DENIED, '28000', 'dbgov: TLS is not offered here: the dbgov tunnel already encrypts this connection. Connect with --ssl-mode=DISABLED (or ssl: false).'));
      return false;
    }
    // In GBK, Big5, SJIS, CP932 and GB18030 a character may end in `\`: the server would read
    // statements differently from the analyser (src/shared/client-encodings.ts).
    if (mysqlCollationUnsafe(resp.charset)) {
      await this.fatal(errPacket(ErrorCode.UNKNOWN_CHARACTER_SET, '42000', `dbgov: character set ${resp.charset} (collation id) is not supported through dbgov: a character can end in a backslash there, so the database would read statements differently from the checks dbgov makes. Connect with charset utf8mb4.`));
      return false;
    }
    // The credential is scoped to one database; a client asking for another must not get it.
    if (resp.database !== undefined && resp.database !== this.ctx.database) {
      await this.fatal(errPacket(ErrorCode.DBACCESS_DENIED, '42000', `dbgov: access denied to database '${resp.database}': this connection's credential is for '${this.ctx.database}'. Run: dbgov connect <target> --database ${resp.database}`));
      return false;
    }
    if (upstreamFailure !== undefined || !this.upstream || !this.upstreamSocket || !greeting) {
      const message = isDbgovError(upstreamFailure) ? upstreamFailure.message : 'the database did not answer';
      this.log.warn({ err: message }, 'mysql upstream unavailable');
      await this.fatal(errPacket(ErrorCode.CONN_HOST_ERROR, 'HY000', `dbgov: cannot reach the database for target '${this.ctx.target.name}': ${message}`));
      return false;
    }
    let session;
    try {
      session = await withTimeout(
        authenticateUpstream(this.upstreamSocket, { ...upstream, database: this.ctx.database }, resp.capabilities & GATEWAY_CAPABILITIES, resp.charset, { channel: this.upstream, handshake: greeting }),
        upstream.connectTimeoutMs,
        'upstream authentication',
      );
    } catch (e) {
      this.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'mysql upstream login failed');
      await this.fatal(errPacket(ErrorCode.ACCESS_DENIED, '28000', `dbgov: the gateway could not log in to the database for target '${this.ctx.target.name}'. Ask the platform team to check the target's credentials (dbgov broker logs say why).`));
      return false;
    }
    this.upstreamSocket = session.socket;
    this.status = session.status;
    connections.set(this.connectionId, { identityId: this.ctx.identity.id, upstreamThreadId: greeting.connectionId, upstream: `${upstream.host}:${upstream.port}` });
    this.toClient(okPacket(this.status));
    this.ctx.onUpstreamReady?.({ backendPid: greeting.connectionId, serverVersion: greeting.serverVersion });
    return true;
  }

  // ---- command phase -------------------------------------------------------------------------

  private async commandLoop(): Promise<void> {
    for (;;) {
      // The answer to the last command leaves in one write before waiting for the next; a
      // database slow to take what was forwarded holds the next command back.
      const toClient = this.client.flush();
      if (toClient) await toClient;
      const toUpstream = this.upstream?.backpressure();
      if (toUpstream) await toUpstream;
      const p = this.client.poll() ?? (await this.client.next());
      if (!p) {
        const err = this.client.error;
        if (err instanceof ProtocolError) throw new ProtocolError(err.message);
        return;
      }
      // Every command starts a new exchange at sequence 0; anything else is a desynchronised client.
      if (p.seq !== 0) throw new ProtocolError(`command packet has sequence id ${p.seq}, expected 0`);
      if (p.payload.length === 0) throw new ProtocolError('empty command packet');
      this.cseq = (p.lastSeq + 1) & 0xff;
      if (!(await this.command(p))) return;
    }
  }

  /** Returns false when the session should end (COM_QUIT). */
  private async command(p: Packet): Promise<boolean> {
    const cmd = p.payload[0];
    const hooks = this.ctx.hooks;
    switch (cmd) {
      case Command.QUIT:
        return false;
      case Command.QUERY: {
        const sql = p.payload.toString('utf8', 1);
        const v = await this.decide(hooks.check({ sql, via: 'simple' }));
        if (v.action === 'block') return this.refuseStatement(v.error);
        if (!(await this.executing(v.stmt))) return true;
        // KILL is checked and audited like any statement, then its id is translated: clients only know gateway ids.
        const kill = KILL_RE.exec(sql);
        if (kill) return this.kill(Number(kill[2]), (kill[1] ?? 'CONNECTION').toUpperCase() as 'QUERY' | 'CONNECTION', v.stmt);
        this.toUpstream(p.payload);
        await this.relayResults(v.stmt, false);
        return true;
      }
      case Command.STMT_PREPARE: {
        const sql = p.payload.toString('utf8', 1);
        const v = await this.decide(hooks.check({ sql, via: 'prepare' }));
        if (v.action === 'block') return this.refuseStatement(v.error);
        this.toUpstream(p.payload);
        await this.relayPrepare(v.stmt);
        return true;
      }
      case Command.STMT_EXECUTE: {
        const id = new PayloadReader(p.payload, 1).u32();
        const known = this.statements.get(id);
        let stmt: StatementHandle;
        if (known) stmt = known.stmt;
        else {
          // An id never prepared through this gateway would run SQL that nobody checked.
          const v = await this.decide(hooks.opaque('unprepared-execute', `COM_STMT_EXECUTE of statement id ${id}`));
          if (v.action === 'block') return this.refuseStatement(v.error);
          stmt = v.stmt;
        }
        if (!(await this.executing(stmt))) return true;
        this.toUpstream(p.payload);
        await this.relayResults(stmt, true, id);
        return true;
      }
      case Command.STMT_FETCH: {
        const id = new PayloadReader(p.payload, 1).u32();
        const known = this.statements.get(id);
        if (!known) {
          this.toClient(errPacket(ErrorCode.UNKNOWN_STMT_HANDLER, 'HY000', `Unknown prepared statement handler (${id}) given to mysqld_stmt_fetch`));
          return true;
        }
        this.toUpstream(p.payload);
        await this.relayRows(known.stmt, true, known.types ?? [], known.cursorMasks ?? null);
        return true;
      }
      case Command.STMT_CLOSE: {
        this.statements.delete(new PayloadReader(p.payload, 1).u32());
        this.toUpstream(p.payload);
        return true;
      }
      case Command.STMT_SEND_LONG_DATA:
        this.toUpstream(p.payload);
        return true;
      case Command.STMT_RESET:
      case Command.PING:
      case Command.SET_OPTION:
      case Command.STATISTICS:
        this.toUpstream(p.payload);
        await this.relaySimple(undefined);
        return true;
      case Command.RESET_CONNECTION:
        this.statements.clear();
        this.toUpstream(p.payload);
        // Settings the broker tracks (sql_mode decides how text lexes) are the server's defaults again.
        if (await this.relaySimple(undefined)) this.ctx.hooks.reset?.();
        return true;
      case Command.FIELD_LIST: {
        // The column list of a table (the mysql client's name completion): checked and audited as
        // the SHOW COLUMNS it stands for, so policy on that table applies and the read is on record.
        const v = await this.decide(hooks.check({ sql: fieldListSql(p.payload), via: 'simple' }));
        if (v.action === 'block') return this.refuseStatement(v.error);
        if (!(await this.executing(v.stmt))) return true;
        this.toUpstream(p.payload);
        await this.relayUntilEof(v.stmt);
        return true;
      }
      case Command.PROCESS_INFO:
        // The process list shows every session's statement text: the statement it is, checked and audited.
        return this.synthesizedStatement('SHOW PROCESSLIST', p.payload, 'results');
      case Command.INIT_DB: {
        const db = p.payload.subarray(1).toString('utf8');
        if (db !== this.ctx.database) {
          // COM_INIT_DB to another database would step outside the credential's scope.
          this.toClient(errPacket(ErrorCode.DBACCESS_DENIED, '42000', `dbgov: blocked: this connection's credential is for database '${this.ctx.database}', not '${db}'.\nHINT: run dbgov connect <target> --database ${db}`));
          return true;
        }
        return this.synthesizedStatement(`USE \`${db.replace(/`/g, '``')}\``, p.payload);
      }
      case Command.CREATE_DB:
      case Command.DROP_DB: {
        // Legacy commands that are DDL in disguise: check them as the statements they are.
        const db = p.payload.subarray(1).toString('utf8').replace(/`/g, '``');
        return this.synthesizedStatement(`${cmd === Command.CREATE_DB ? 'CREATE' : 'DROP'} DATABASE \`${db}\``, p.payload);
      }
      case Command.PROCESS_KILL:
        return this.kill(new PayloadReader(p.payload, 1).u32(), 'CONNECTION');
      case Command.CHANGE_USER:
        // Switching users in-band would bypass the credential check; re-authorisation goes through dbgov.
        this.toClient(
          errPacket(ErrorCode.SPECIFIC_ACCESS_DENIED, '42000', 'dbgov: blocked: COM_CHANGE_USER is not allowed through dbgov.\nHINT: open a new connection with dbgov connect for the other user or database.'),
        );
        return true;
      default: {
        const v = await this.decide(hooks.opaque('unsupported-message', `MySQL command 0x${cmd.toString(16).padStart(2, '0')}`));
        if (v.action === 'block') return this.refuseStatement(v.error);
        // Replication, debug and shutdown commands are never relayed, even when policy allows opaque messages.
        this.toClient(errPacket(ErrorCode.UNKNOWN_COM_ERROR, '08S01', `dbgov: command 0x${cmd.toString(16).padStart(2, '0')} is not supported through the gateway`));
        return true;
      }
    }
  }

  /** A legacy command checked, audited and answered as the statement it stands for. */
  private async synthesizedStatement(sql: string, payload: Buffer, answer: 'simple' | 'results' = 'simple'): Promise<boolean> {
    const v = await this.decide(this.ctx.hooks.check({ sql, via: 'simple' }));
    if (v.action === 'block') return this.refuseStatement(v.error);
    if (!(await this.executing(v.stmt))) return true;
    this.toUpstream(payload);
    if (answer === 'results') await this.relayResults(v.stmt, false);
    else await this.relaySimple(v.stmt);
    return true;
  }

  /**
   * Held statements wait silently: MySQL has no channel to tell the client while a query runs.
   * A verdict decided at once is returned as is: no promise on the statement path.
   */
  private decide(v: Verdict): FinalVerdict | Promise<FinalVerdict> {
    if (v.action !== 'hold') return v;
    void Promise.resolve(v.notice).then((notice) => notice !== undefined && this.log.info({ stmt: v.stmt.id }, notice), () => undefined);
    return this.flushClient().then(() => v.decided);
  }

  private refuseStatement(error: ClientError): true {
    this.toClient(clientErrPacket(error));
    return true;
  }

  /**
   * The audit record must be durable before the statement goes upstream; if not, refuse it.
   * With batched hooks the record is written at the end of this event-loop turn, in one write
   * with the other sessions' records, and the statement waits for it.
   */
  private executing(stmt: StatementHandle): boolean | Promise<boolean> {
    const hooks = this.ctx.hooks;
    if (hooks.executingBatched) {
      return hooks.executingBatched(stmt).then(
        () => this.started(stmt),
        (e: unknown) => this.notRecorded(e),
      );
    }
    try {
      hooks.executing(stmt);
    } catch (e) {
      return this.notRecorded(e);
    }
    return this.started(stmt);
  }

  private started(stmt: StatementHandle): true {
    this.inflight = stmt;
    return true;
  }

  private notRecorded(e: unknown): false {
    const ce = (e as { clientError?: ClientError }).clientError;
    this.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'statement refused before execution');
    if (!this.closed) this.toClient(ce ? clientErrPacket(ce) : errPacket(1105, 'HY000', 'dbgov: blocked: the statement could not be recorded in the audit log, so it was not run. Try again; if it persists, tell the platform team.'));
    return false;
  }

  private async kill(id: number, what: 'QUERY' | 'CONNECTION', stmt?: StatementHandle): Promise<boolean> {
    const entry = connections.get(id);
    const here = `${this.ctx.upstream.host}:${this.ctx.upstream.port}`;
    // Only the identity that owns a gateway connection may cancel it; real thread ids are never accepted.
    if (!entry || entry.identityId !== this.ctx.identity.id || entry.upstream !== here) {
      const message = `dbgov: blocked: connection ${id} is not one of your dbgov connections`;
      this.toClient(errPacket(ErrorCode.SPECIFIC_ACCESS_DENIED, '42000', `${message}\nHINT: use the connection id your client reported when it connected through dbgov.`));
      this.finish(stmt, { rows: null, error: { sqlstate: '42000', message } });
      return true;
    }
    const sql = `KILL ${what} ${entry.upstreamThreadId}`;
    this.toUpstream(Buffer.concat([Buffer.from([Command.QUERY]), Buffer.from(sql, 'utf8')]));
    await this.relaySimple(stmt);
    return true;
  }

  // ---- responses -----------------------------------------------------------------------------

  /**
   * The next packet from the database when none has arrived yet (callers first take what
   * already did, `upstream.poll()`): what the client is owed leaves first, so each upstream
   * chunk goes to the client as one write.
   */
  private async waitUpstream(): Promise<Packet> {
    const drained = this.closed ? undefined : this.client.flush();
    if (drained) await drained;
    const p = await this.upstream!.next();
    if (!p) throw new UpstreamError('mysql-upstream-closed', 'the database closed the connection');
    return p;
  }

  /** Commands go to the database at once: the gateway never holds one back once it was allowed. */
  private toUpstream(payload: Buffer): void {
    this.upstream!.send(payload, 0);
    void this.upstream!.flush();
  }

  /** Queues a packet for the client; it leaves with the next flush (before any wait). */
  private toClient(payload: Buffer): void {
    if (this.closed) throw new SessionClosed();
    this.cseq = this.client.send(payload, this.cseq);
  }

  private async flushClient(): Promise<void> {
    if (this.closed) return;
    const wait = this.client.flush();
    if (wait) await wait;
  }

  private forwardErr(stmt: StatementHandle | undefined, payload: Buffer): { sqlstate: string; message: string } {
    const e = parseErr(payload);
    // Server errors can quote data (a duplicate key shows the value): scrub before the client sees it.
    const scrubbed = this.ctx.hooks.scrub(stmt, { message: e.message });
    this.toClient(errPacket(e.code, e.sqlstate, scrubbed.message));
    return { sqlstate: e.sqlstate, message: scrubbed.message };
  }

  private finish(stmt: StatementHandle | undefined, outcome: { rows: number | null; tag?: string; error?: { sqlstate: string; message: string } }): void {
    if (!stmt) return;
    if (this.inflight === stmt) this.inflight = undefined;
    this.ctx.hooks.completed(stmt, outcome);
  }

  /** One OK, ERR or EOF (or a COM_STATISTICS string). Resolves to false for ERR. */
  private async relaySimple(stmt: StatementHandle | undefined): Promise<boolean> {
    const p = this.upstream!.poll() ?? (await this.waitUpstream());
    if (p.payload[0] === 0xff) {
      const error = this.forwardErr(stmt, p.payload);
      this.finish(stmt, { rows: null, error });
      return false;
    }
    if (p.payload[0] === 0x00) this.status = parseOk(p.payload).status;
    this.toClient(p.payload);
    this.finish(stmt, { rows: 0, tag: 'OK' });
    return true;
  }

  /** Column definitions up to EOF (COM_FIELD_LIST), or an ERR. */
  private async relayUntilEof(stmt: StatementHandle): Promise<void> {
    for (let columns = 0; ; columns++) {
      const p = this.upstream!.poll() ?? (await this.waitUpstream());
      if (p.payload[0] === 0xff) {
        const error = this.forwardErr(stmt, p.payload);
        this.finish(stmt, { rows: null, error });
        return;
      }
      this.toClient(p.payload);
      if (isEof(p.payload)) {
        this.finish(stmt, { rows: columns });
        return;
      }
    }
  }

  private async relayPrepare(stmt: StatementHandle): Promise<void> {
    const p = this.upstream!.poll() ?? (await this.waitUpstream());
    if (p.payload[0] === 0xff) {
      this.forwardErr(stmt, p.payload);
      return;
    }
    if (p.payload[0] !== 0x00) throw new ProtocolError('unexpected COM_STMT_PREPARE response');
    const r = new PayloadReader(p.payload, 1);
    const id = r.u32();
    const columns = r.u16();
    const params = r.u16();
    this.toClient(p.payload);
    for (const n of [params, columns]) {
      if (n === 0) continue;
      for (let k = 0; k < n; k++) this.toClient((this.upstream!.poll() ?? (await this.waitUpstream())).payload);
      const eof = this.upstream!.poll() ?? (await this.waitUpstream());
      if (!isEof(eof.payload)) throw new ProtocolError('expected EOF after prepared statement definitions');
      this.toClient(eof.payload);
    }
    this.statements.set(id, { stmt });
  }

  /**
   * The response to COM_QUERY / COM_STMT_EXECUTE: OK, ERR, or result sets, possibly several
   * (multi-statements, CALL). Rows stream through; nothing buffers more than a received chunk.
   */
  private async relayResults(stmt: StatementHandle | undefined, binary: boolean, stmtId?: number): Promise<void> {
    let rows = 0;
    let affected = 0;
    let sawResultSet = false;
    for (;;) {
      const p = this.upstream!.poll() ?? (await this.waitUpstream());
      const tag = p.payload[0];
      if (tag === 0x00) {
        const ok = parseOk(p.payload);
        this.status = ok.status;
        affected += ok.affectedRows;
        this.toClient(p.payload);
        if (ok.status & ServerStatus.MORE_RESULTS_EXISTS) continue;
        break;
      }
      if (tag === 0xff) {
        const error = this.forwardErr(stmt, p.payload);
        this.finish(stmt, { rows: null, error });
        return;
      }
      if (tag === 0xfb) {
        // LOCAL INFILE request: never let the server pull a file from the client; send an empty one.
        this.upstream!.send(Buffer.alloc(0), (p.lastSeq + 1) & 0xff);
        void this.upstream!.flush();
        continue;
      }
      sawResultSet = true;
      const count = new PayloadReader(p.payload).lenenc();
      if (count === null || count === 0) throw new ProtocolError('invalid column count');
      this.toClient(p.payload);
      const columns: ResultColumn[] = [];
      const types: number[] = [];
      for (let k = 0; k < count; k++) {
        const def = this.upstream!.poll() ?? (await this.waitUpstream());
        const c = parseColumnDefinition(def.payload);
        // typeId is given in the mask functions' vocabulary; the wire type stays in `types` for framing.
        columns.push({ index: k, name: c.name, orgSchema: c.schema, orgTable: c.orgTable, orgName: c.orgName, typeId: maskingTypeOf(c, binary), format: binary ? 1 : 0 });
        types.push(c.type);
        this.toClient(def.payload);
      }
      const eof = this.upstream!.poll() ?? (await this.waitUpstream());
      if (!isEof(eof.payload)) throw new ProtocolError('expected EOF after column definitions');
      let described: MaskPlan | null | Promise<MaskPlan | null> = stmt ? this.ctx.hooks.describe(stmt, columns) : null;
      if (described instanceof Promise) described = await described;
      const plan = described && withMaskingTypes(described, columns);
      this.toClient(eof.payload);
      if (stmtId !== undefined && eofStatus(eof.payload) & ServerStatus.CURSOR_EXISTS) {
        // Rows come later through COM_STMT_FETCH: keep the plan for them.
        const known = this.statements.get(stmtId);
        if (known) Object.assign(known, { cursorMasks: plan, types });
        this.finish(stmt, { rows: 0, tag: 'SELECT 0' });
        return;
      }
      const r = await this.relayRows(stmt, binary, types, plan);
      if (r.error) return;
      rows += r.rows;
      if (!(r.status & ServerStatus.MORE_RESULTS_EXISTS)) break;
    }
    this.finish(stmt, sawResultSet ? { rows, tag: `SELECT ${rows}` } : { rows: affected, tag: `OK ${affected}` });
  }

  private async relayRows(stmt: StatementHandle | undefined, binary: boolean, types: number[], plan: MaskPlan | null): Promise<{ rows: number; status: number; error?: true }> {
    const masks = plan !== null && plan.columns.length > 0 ? new Map(plan.columns.map((c) => [c.index, c.mask] as const)) : null;
    let rows = 0;
    for (;;) {
      const row = this.upstream!.poll() ?? (await this.waitUpstream());
      if (isEof(row.payload)) {
        this.status = eofStatus(row.payload);
        this.toClient(row.payload);
        return { rows, status: this.status };
      }
      if (row.payload[0] === 0xff) {
        const error = this.forwardErr(stmt, row.payload);
        this.finish(stmt, { rows: null, error });
        return { rows, status: 0, error: true };
      }
      rows++;
      this.toClient(masks === null ? row.payload : binary ? maskBinaryRow(row.payload, types, masks) : maskTextRow(row.payload, types, masks));
    }
  }

  // ---- teardown ------------------------------------------------------------------------------

  /** Sends a last ERR (best effort) and closes this session only. */
  private async fatal(err: Buffer): Promise<void> {
    if (this.closed) return;
    try {
      // Whatever the client is still owed goes first, in order, then the error.
      this.cseq = this.client.send(err, this.cseq);
      void this.client.flush();
    } catch {
      // The client may already be gone; closing is all that is left to do.
    }
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    connections.delete(this.connectionId);
    this.socket.end();
    this.upstreamSocket?.destroy();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}

/** Masks are called with the column's type in their own vocabulary, not the MySQL wire code. */
function withMaskingTypes(plan: MaskPlan, columns: ResultColumn[]): MaskPlan {
  return {
    maskedColumns: plan.maskedColumns,
    columns: plan.columns.map((c) => {
      const typeId = columns[c.index]?.typeId ?? 0;
      return { index: c.index, mask: (value: Buffer | null, format: 0 | 1) => c.mask(value, format, typeId) };
    }),
  };
}

function randomScramble(): Buffer {
  // The scramble is NUL-terminated on the wire, so it must not contain NUL bytes.
  const b = randomBytes(20);
  for (let k = 0; k < b.length; k++) b[k] = (b[k] % 94) + 33;
  return b;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new UpstreamError('mysql-timeout', `timed out waiting for ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

export function mysqlEngine(): Engine {
  return {
    name: 'mysql',
    async serve(client: Duplex, ctx: SessionContext): Promise<void> {
      try {
        await new MysqlSession(client, ctx).run();
      } catch (e) {
        ctx.log.error({ err: e }, 'mysql session crashed');
        client.destroy();
      }
    },
    async refuse(client: Duplex, error: DbgovError, log: Logger): Promise<void> {
      try {
        if ('setNoDelay' in client && typeof client.setNoDelay === 'function') (client as Socket).setNoDelay(true);
        const channel = new PacketChannel(client, 1 << 20);
        await channel.write(
          encodeServerHandshake({
            serverVersion: FALLBACK_VERSION,
            connectionId: 0,
            scramble: randomScramble(),
            capabilities: GATEWAY_CAPABILITIES,
            charset: DEFAULT_CHARSET,
            status: ServerStatus.AUTOCOMMIT,
            authPlugin: 'mysql_native_password',
          }),
          0,
        );
        const p = await withTimeout(channel.next(), HANDSHAKE_TIMEOUT_MS, 'the client handshake').catch(() => null);
        const seq = p ? (p.lastSeq + 1) & 0xff : 2;
        const hint = error.actions.length > 0 ? `\nHINT: ${error.actions.join(' ')}` : '';
        await channel.write(errPacket(ErrorCode.ACCESS_DENIED, '28000', `${error.message}${hint}`), seq);
      } catch (e) {
        log.warn({ err: e instanceof Error ? e.message : String(e) }, 'mysql refuse failed');
      } finally {
        client.end();
        setTimeout(() => client.destroy(), 1000).unref();
      }
    },
  };
}

/**
 * The statement a COM_FIELD_LIST stands for: `SHOW COLUMNS FROM \`table\` LIKE 'wildcard'`. The
 * payload is the command byte, the table name up to a NUL, then the optional wildcard.
 */
export function fieldListSql(payload: Buffer): string {
  const nul = payload.indexOf(0, 1);
  const table = payload.toString('utf8', 1, nul < 0 ? payload.length : nul);
  const wild = nul < 0 ? '' : payload.toString('utf8', nul + 1);
  // Doubling both quote and backslash keeps the literal closed under any sql_mode.
  const like = wild === '' ? '' : ` LIKE '${wild.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
  return `SHOW COLUMNS FROM \`${table.replace(/`/g, '``')}\`${like}`;
}
