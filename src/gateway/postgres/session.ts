/**
 * One client session through the gateway: the statement path of DESIGN.md for PostgreSQL.
 *
 * Client messages are framed, decided (check / opaque), audited (executing) and forwarded as the
 * bytes they arrived as. A FIFO of expected server responses, one entry per forwarded message
 * that gets an answer, attributes every server message to its statement or portal, so that
 * results are masked, errors scrubbed and outcomes reported against the right statement, also
 * in pipelined batches.
 */
import type { Duplex } from 'node:stream';
import { pgEncodingUnsafe } from '../../shared/client-encodings.js';
import { isDbgovError, ProtocolError } from '../../shared/errors.js';
import type { ClientError, CopyMaskPlan, SessionContext, StatementHandle, StatementOutcome, Verdict } from '../engine.js';
import type { CancelRegistry } from './cancel.js';
import { ENCODING_UNSUPPORTED } from './encoding.js';
import { BackendCode, decodeCommandComplete, decodeCopyOutResponse, decodeFields, decodeParameterStatus, decodeRowDescription, ErrorField, fieldValue, tagRows } from './protocol/backend.js';
import { decodeBind, decodeExecute, decodeFunctionCall, decodeParse, decodeQuery, decodeTarget, FrontendCode, isFrontendCode } from './protocol/frontend.js';
import { FrameReader, MessageTooLargeError } from './protocol/reader.js';
import * as ser from './protocol/serializer.js';
import { raiseSql } from './raise.js';
import type { UpstreamSession } from './upstream.js';
import { RowMasker } from './mask-row.js';


interface Prepared {
  stmt: StatementHandle;
  sql: string;
  /** The number its Parse got among the messages forwarded (see PostgresSession.sent). */
  at: number;
}

interface Portal {
  stmt: StatementHandle | undefined;
  sql: string;
  mask: RowMasker | null;
  /** A Describe of this portal was sent upstream, so its RowDescription will set `mask`. */
  described: boolean;
  /** The number its Bind got among the messages forwarded (see PostgresSession.sent). */
  at: number;
  /** An Execute was forwarded: a later one resumes this run (a row-limited fetch), not a new one. */
  started?: boolean;
}

/** A forwarded statement: a simple Query (or FunctionCall) cycle, or one Execute. */
interface StatementEntry extends Place {
  kind: 'query' | 'execute';
  /** Undefined for the gateway's own injected error statements. */
  stmt: StatementHandle | undefined;
  sql: string;
  /** Execute only: the portal whose mask applies. */
  portal: Portal | undefined;
  /** Query only: the mask of the result in progress. */
  mask: RowMasker | null;
  copyPlan: CopyMaskPlan | null;
  rows: number;
  resultRows: number;
  tag: string | undefined;
  error: { sqlstate: string; message: string } | undefined;
  /** CopyInResponses seen for it (a Query may hold several COPY … FROM STDIN). */
  copyIns?: number;
  /** A FunctionCall: the format of its result. */
  functionResult?: 0 | 1;
}

/** Where a statement or Sync stands in the client's stream (set by `forward`). */
interface Place {
  /** Messages forwarded up to and including it. */
  at: number;
  /** COPY messages (CopyData, CopyDone, CopyFail) the client had sent before it. */
  copyMsgs: number;
  /** Of those, the ones that end a COPY (CopyDone, CopyFail). */
  copyEnds: number;
}

/**
 * Puts back the gateway's record of a statement or portal name as it was before a Parse, Bind or
 * Close that the server did not carry out (it failed, or was discarded after an earlier error).
 */
type Undo = () => void;

type Expected =
  | StatementEntry
  | { kind: 'parse' | 'bind'; swallow: boolean; undo?: Undo }
  | { kind: 'describe'; portal: Portal | undefined; swallow: boolean }
  | { kind: 'close'; undo?: Undo }
  | ({ kind: 'sync' } & Place);

/** Queue with O(1) shift; pipelined batches can hold thousands of entries. */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  peek(): T | undefined {
    return this.items[this.head];
  }
  push(item: T): void {
    this.items.push(item);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined as T;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    }
    return item;
  }
  /** The entries after the first, oldest first. */
  rest(): T[] {
    return this.items.slice(this.head + 1);
  }
  /** Removes one entry that is not the first. */
  remove(item: T): void {
    const k = this.items.indexOf(item, this.head + 1);
    if (k >= 0) this.items.splice(k, 1);
  }
  drain(): T[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return rest;
  }
}

/**
 * Output to one socket, written once per flush. Consecutive messages that are adjacent slices
 * of one input chunk merge into one run (zero copy); separate runs are gathered and written
 * together, so a response of many messages (or many masked rows) costs one TLS record and one
 * syscall instead of one per message.
 *
 * `full` is the socket's backpressure: set when a write returns false, cleared on 'drain'.
 * Both edges call `onFlowChange`, so the session pauses the sending side at once; without
 * that, a fast server and a slow client leave the whole result queued in this process.
 */
class Outbox {
  private first: Buffer | null = null;
  private len = 0;
  private runs: Buffer[] = [];
  private runsBytes = 0;
  full = false;

  constructor(private readonly sock: Duplex, private readonly onFlowChange: () => void) {}

  add(msg: Buffer): void {
    const first = this.first;
    if (first !== null && msg.buffer === first.buffer && msg.byteOffset === first.byteOffset + this.len) {
      this.len += msg.length;
      return;
    }
    this.endRun();
    this.first = msg;
    this.len = msg.length;
  }

  /** buf[offset, offset + len), without making a Buffer for it when it continues the current run. */
  addRange(buf: Buffer, offset: number, len: number): void {
    const first = this.first;
    if (first !== null && buf.buffer === first.buffer && buf.byteOffset + offset === first.byteOffset + this.len) {
      this.len += len;
      return;
    }
    this.add(buf.subarray(offset, offset + len));
  }

  private endRun(): void {
    const first = this.first;
    if (first === null) return;
    this.first = null;
    const run = this.len === first.length ? first : Buffer.from(first.buffer, first.byteOffset, this.len);
    this.runs.push(run);
    this.runsBytes += run.length;
  }

  flush(): void {
    this.endRun();
    const runs = this.runs;
    if (runs.length === 0) return;
    this.runs = [];
    const bytes = this.runsBytes;
    this.runsBytes = 0;
    let ok: boolean;
    if (runs.length === 1) ok = this.sock.write(runs[0]);
    else if (bytes <= COALESCE_LIMIT) ok = this.sock.write(Buffer.concat(runs, bytes));
    else {
      // Large output: no copy; corked writes leave as one writev.
      this.sock.cork();
      ok = true;
      for (const r of runs) ok = this.sock.write(r) && ok;
      this.sock.uncork();
    }
    if (!ok && !this.full) {
      this.full = true;
      this.sock.once('drain', () => {
        this.full = false;
        this.onFlowChange();
      });
      this.onFlowChange();
    }
  }
}

/** Up to this many bytes of separate runs are copied into one buffer: one TLS record, one write. */
const COALESCE_LIMIT = 256 * 1024;

/** ReadyForQuery status of a failed transaction block. */
const TX_FAILED = 0x45; // 'E'
/** ReadyForQuery status outside any transaction. */
const TX_IDLE = 0x49; // 'I'

/** What the client sees when the audit hook fails without a client-facing error of its own. */
const AUDIT_FAILED: ClientError = {
  sqlstate: '58000',
  message: 'dbgov: this statement was not run because its audit record could not be written',
  hint: 'Try again in a moment. If it keeps failing, ask the dbgov admin to check the broker log and its audit storage.',
};

export class PostgresSession {
  private readonly clientReader: FrameReader;
  private readonly upReader: FrameReader;
  private readonly clientOut: Outbox;
  private readonly upOut: Outbox;
  private readonly expected = new Fifo<Expected>();
  private readonly statements = new Map<string, Prepared>();
  private readonly portals = new Map<string, Portal>();
  /**
   * Messages forwarded upstream so far, which numbers them. Statements and portals keep the
   * number of their Parse or Bind, statement and Sync entries their own, so that what the server
   * drops at a point (a transaction's end drops its portals) is dropped here for the names
   * recorded before that point, and not for those a pipelined batch recorded after it.
   */
  private sent = 0;
  /** COPY messages the client sent, and of those the CopyDone / CopyFail (see Place). */
  private copyMsgs = 0;
  private copyEnds = 0;
  /**
   * The server is in COPY FROM STDIN and the client has not ended it: `ends` is copyEnds when it
   * started, `msgs` copyMsgs then (null when unknown: a second COPY in one Query).
   */
  private copyIn: { ends: number; msgs: number | null } | null = null;
  /** The client sent a message the gateway refused: drop its messages up to Sync, as the server would. */
  private skipToSync = false;
  /** The server reported an error in a batch whose Sync has not been forwarded yet. */
  private discardUntilSync = false;
  /** The refused batch is answered by the gateway: its Sync gets a local ReadyForQuery. */
  private answerSyncLocally = false;
  /** Transaction status of the last ReadyForQuery ('I', 'T' or 'E'). */
  private txStatus: number;
  private clientBusy = false;
  /** An ErrorResponse came since the last idle ReadyForQuery (see StatementHooks.idle). */
  private errorSinceIdle = false;
  private upstreamBusy = false;
  private clientHeld = false;
  private upstreamHeld = false;
  private clientPaused = false;
  private upstreamPaused = false;
  private closed = false;
  /** The promise onClientMessage returned is a wait for an audit record (see executing). */
  private awaitingRecord = false;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;
  private readonly onAbort = (): void => this.endByAbort();

  constructor(
    private readonly client: Duplex,
    private readonly ctx: SessionContext,
    private readonly upstream: UpstreamSession,
    clientReader: FrameReader,
    private readonly cancelKey: { pid: number; key: number },
    private readonly cancels: CancelRegistry,
  ) {
    this.clientReader = clientReader;
    this.upReader = upstream.reader;
    this.txStatus = upstream.status;
    this.clientOut = new Outbox(client, () => this.syncFlow());
    this.upOut = new Outbox(upstream.socket, () => this.syncFlow());
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  /** Wires both sockets and resolves when the session is over. */
  run(): Promise<void> {
    const { client } = this;
    const up = this.upstream.socket;
    client.on('data', (chunk: Buffer) => {
      this.clientReader.push(chunk);
      this.pumpClient();
    });
    up.on('data', (chunk: Buffer) => {
      this.upReader.push(chunk);
      this.pumpUpstream();
    });
    client.on('close', () => this.close());
    client.on('end', () => this.close());
    up.on('close', () => this.close());
    up.on('end', () => this.close());
    up.on('error', (err) => this.ctx.log.debug({ err }, 'upstream socket error'));
    this.ctx.signal.addEventListener('abort', this.onAbort, { once: true });
    if (this.ctx.signal.aborted) this.endByAbort();
    client.resume();
    up.resume();
    // Bytes that arrived with the startup packet or the upstream's ReadyForQuery.
    this.pumpClient();
    this.pumpUpstream();
    return this.done;
  }

  // ---- client → upstream ----

  private pumpClient(): void {
    if (this.clientBusy || this.closed) return;
    this.clientBusy = true;
    try {
      for (;;) {
        // Judged on its first byte: a type that does not exist (a second startup packet starts
        // with 0) would otherwise keep the session waiting for a length's worth of bytes.
        const type = this.clientReader.peekType();
        if (type !== null && !isFrontendCode(type)) throw new ProtocolError(`unknown frontend message type 0x${type.toString(16)}`);
        const msg = this.clientReader.next();
        if (msg === null) break;
        const wait = this.onClientMessage(msg);
        if (this.closed) return;
        if (wait !== undefined) {
          // Waiting for a statement's audit record takes one event-loop turn and needs nothing
          // from the server: what is queued goes out with the statement, in one write.
          if (!this.awaitingRecord) this.upOut.flush();
          this.awaitingRecord = false;
          wait.then(
            () => {
              this.clientBusy = false;
              this.pumpClient();
            },
            (err: unknown) => this.fail(err),
          );
          return;
        }
      }
      this.upOut.flush();
      this.clientBusy = false;
    } catch (err) {
      this.fail(err);
    }
  }

  /** Returns a promise only while a held statement waits for its decision. */
  private onClientMessage(msg: Buffer): Promise<void> | undefined {
    const code = msg[0];
    if (this.skipToSync) {
      // The server would discard these after a failed message; Flush still asks for output.
      if (code === FrontendCode.sync) {
        this.skipToSync = false;
        if (this.answerSyncLocally) {
          this.answerSyncLocally = false;
          this.clientOut.add(ser.readyForQuery(TX_FAILED));
          this.clientOut.flush();
        } else this.forward(msg, syncEntry());
      } else if (code === FrontendCode.flush) this.upOut.add(msg);
      return undefined;
    }
    switch (code) {
      case FrontendCode.query:
        return this.onQuery(msg);
      case FrontendCode.parse:
        return this.onParse(msg);
      case FrontendCode.bind:
        return this.onBind(msg);
      case FrontendCode.execute:
        return this.onExecute(msg);
      case FrontendCode.describe: {
        const { kind, name } = decodeTarget(msg);
        const portal = kind === 'P' ? this.portals.get(name) : undefined;
        if (portal !== undefined) portal.described = true;
        this.forward(msg, { kind: 'describe', portal, swallow: false });
        return undefined;
      }
      case FrontendCode.close: {
        const { kind, name } = decodeTarget(msg);
        const undo = kind === 'S' ? record(this.statements, name, undefined) : record(this.portals, name, undefined);
        this.forward(msg, { kind: 'close', undo });
        return undefined;
      }
      case FrontendCode.sync:
        if (this.copyIn !== null) {
          // The server ignores a Sync in COPY FROM STDIN, so it gets no ReadyForQuery and no entry.
          // Once data went, the server may have ended the COPY with an error and will answer it:
          // which of the two cannot be told from here.
          if (this.copyIn.msgs !== this.copyMsgs) throw new ProtocolError('Sync inside COPY data: send CopyDone or CopyFail first');
          this.sent++;
          this.upOut.add(msg);
          return undefined;
        }
        this.forward(msg, syncEntry());
        return undefined;
      case FrontendCode.flush:
        this.upOut.add(msg);
        return undefined;
      case FrontendCode.copyData:
        this.sent++;
        this.copyMsgs++;
        this.upOut.add(msg);
        return undefined;
      case FrontendCode.copyDone:
      case FrontendCode.copyFail:
        this.sent++;
        this.copyMsgs++;
        this.copyEnds++;
        this.copyIn = null;
        this.upOut.add(msg);
        return undefined;
      case FrontendCode.terminate:
        this.upOut.add(msg);
        this.upOut.flush();
        this.close();
        return undefined;
      case FrontendCode.functionCall: {
        const { oid, resultFormat } = decodeFunctionCall(msg);
        // FunctionCall runs a function by OID with no SQL text for policy to read.
        return this.decide(
          this.ctx.hooks.opaque('function-call-message', `FunctionCall of function OID ${oid}`),
          (stmt) => this.runSimple(stmt, '', msg, resultFormat),
          (err) => this.raiseSimple(err),
        );
      }
      default:
        // An unknown message might carry SQL the gateway cannot see; never forward it.
        throw new ProtocolError(`unknown frontend message type 0x${code.toString(16)}`);
    }
  }

  private onQuery(msg: Buffer): Promise<void> | undefined {
    const sql = decodeQuery(msg);
    // A simple Query destroys the unnamed statement and portal on the server.
    this.statements.delete('');
    this.portals.delete('');
    return this.decide(
      this.ctx.hooks.check({ sql, via: 'simple' }),
      (stmt) => this.runSimple(stmt, sql, msg),
      (err) => this.raiseSimple(err),
    );
  }

  private runSimple(stmt: StatementHandle, sql: string, msg: Buffer, functionResult?: 0 | 1): Promise<void> | undefined {
    const entry = statementEntry('query', stmt, sql, undefined);
    if (functionResult !== undefined) entry.functionResult = functionResult;
    return this.executing(
      stmt,
      () => this.forward(msg, entry),
      (err) => this.raiseSimple(err),
    );
  }

  private onParse(msg: Buffer): Promise<void> | undefined {
    const { name, sql } = decodeParse(msg);
    return this.decide(
      this.ctx.hooks.check({ sql, via: 'parse', statementName: name }),
      (stmt) => {
        // Taken back if the server refuses the Parse (a name in use keeps its old text there).
        const undo = record(this.statements, name, { stmt, sql, at: this.sent + 1 });
        this.forward(msg, { kind: 'parse', swallow: false, undo });
      },
      (err) => this.raiseExtended(err),
    );
  }

  private onBind(msg: Buffer): Promise<void> | undefined {
    const { portal, statement } = decodeBind(msg);
    const bindTo = (stmt: StatementHandle, sql: string): void => {
      // Taken back if the server refuses the Bind (a cursor of that name keeps its query there).
      const undo = record(this.portals, portal, { stmt, sql, mask: null, described: false, at: this.sent + 1 });
      this.forward(msg, { kind: 'bind', swallow: false, undo });
    };
    const prepared = this.statements.get(statement);
    if (prepared !== undefined) {
      bindTo(prepared.stmt, prepared.sql);
      return undefined;
    }
    // A statement prepared outside this gateway's view (SQL PREPARE, before a DISCARD) was never checked.
    return this.decide(
      this.ctx.hooks.opaque('unprepared-execute', `Bind of statement "${statement}"`),
      (stmt) => bindTo(stmt, ''),
      (err) => this.raiseExtended(err),
    );
  }

  private onExecute(msg: Buffer): Promise<void> | undefined {
    const { portal: name } = decodeExecute(msg);
    const portal = this.portals.get(name);
    if (portal !== undefined) return this.executePortal(name, portal, msg);
    // A portal this gateway never bound (a DECLAREd cursor) runs SQL it did not see parsed.
    return this.decide(
      this.ctx.hooks.opaque('unprepared-execute', `Execute of portal "${name}"`),
      (stmt) => {
        const p: Portal = { stmt, sql: '', mask: null, described: false, at: this.sent + 1 };
        this.portals.set(name, p);
        return this.executePortal(name, p, msg);
      },
      (err) => this.raiseExtended(err),
    );
  }

  private executePortal(name: string, portal: Portal, msg: Buffer): Promise<void> | undefined {
    if (!portal.described) {
      // Without a RowDescription the gateway cannot know which columns to mask: ask for one.
      portal.described = true;
      this.forward(ser.describePortal(name), { kind: 'describe', portal, swallow: true });
    }
    const run = (): void => {
      portal.started = true;
      this.forward(msg, statementEntry('execute', portal.stmt, portal.sql, portal));
    };
    if (portal.stmt !== undefined) return this.executing(portal.stmt, run, (err) => this.raiseExtended(err), portal.started === true);
    run();
    return undefined;
  }

  private decide(verdict: Verdict, allow: (stmt: StatementHandle) => Promise<void> | void, block: (err: ClientError) => void): Promise<void> | undefined {
    switch (verdict.action) {
      case 'allow':
        return allow(verdict.stmt) ?? undefined;
      case 'block':
        block(verdict.error);
        return undefined;
      case 'hold': {
        const say = (message: string | undefined): void => {
          if (message === undefined || this.closed) return;
          this.clientOut.add(ser.noticeResponse({ severity: 'NOTICE', sqlstate: '00000', message }));
          this.clientOut.flush();
        };
        // A notice still being decided settles before `decided` does, so it goes out first.
        if (typeof verdict.notice === 'string') say(verdict.notice);
        else void verdict.notice.then(say, () => undefined);
        // Later messages stay queued in the socket and reader until the decision.
        this.clientHeld = true;
        this.syncFlow();
        return verdict.decided.then(async (final) => {
          this.clientHeld = false;
          if (this.closed) return;
          await this.decide(final, allow, block);
          this.syncFlow();
        });
      }
      default: {
        const never: never = verdict;
        throw new Error(`unknown verdict ${String(never)}`);
      }
    }
  }

  /**
   * Runs the audit hook, then `run` once the statement's record is written, or `refuse` with the
   * error to show when it must not run. With hooks that group records (`executingBatched`), the
   * record goes out with every other session's at the end of this event-loop turn, and the
   * statement waits for it: a promise is returned and later messages wait behind it.
   */
  private executing(stmt: StatementHandle, run: () => void, refuse: (err: ClientError) => void, resumed = false): Promise<void> | undefined {
    const batched = this.ctx.hooks.executingBatched;
    if (batched !== undefined) {
      // Read by pumpClient at once; cleared again when the record is written, in case this wait
      // runs inside another (an approval hold), where pumpClient does not see it.
      this.awaitingRecord = true;
      return batched.call(this.ctx.hooks, stmt, resumed).then(
        () => {
          this.awaitingRecord = false;
          if (!this.closed) run();
        },
        (err: unknown) => {
          this.awaitingRecord = false;
          if (!this.closed) refuse(this.auditFailure(err, stmt));
        },
      );
    }
    try {
      this.ctx.hooks.executing(stmt, resumed);
    } catch (err) {
      refuse(this.auditFailure(err, stmt));
      return undefined;
    }
    run();
    return undefined;
  }

  private auditFailure(err: unknown, stmt: StatementHandle): ClientError {
    this.ctx.log.error({ err, stmt: stmt.id }, 'executing hook failed; statement not forwarded');
    const clientError = (err as { clientError?: ClientError } | null)?.clientError;
    return clientError !== undefined && typeof clientError.message === 'string' ? clientError : AUDIT_FAILED;
  }

  /**
   * Makes the server raise the refusal itself, so its transaction state changes exactly as for a
   * real error and the client's view (ReadyForQuery status) stays in step with it.
   */
  private raiseSimple(err: ClientError): void {
    if (this.answerLocally(err)) {
      this.clientOut.add(ser.readyForQuery(TX_FAILED));
      this.clientOut.flush();
      return;
    }
    this.forward(ser.query(raiseSql(err)), statementEntry('query', undefined, '', undefined));
  }

  /** Extended-protocol refusal: the error surfaces where a failing Parse would, then skip to Sync. */
  private raiseExtended(err: ClientError): void {
    this.skipToSync = true;
    if (this.answerLocally(err)) {
      this.answerSyncLocally = true;
      return;
    }
    this.forward(ser.parse('', raiseSql(err)), { kind: 'parse', swallow: true });
    this.forward(ser.bind('', ''), { kind: 'bind', swallow: true });
    this.forward(ser.execute(''), statementEntry('execute', undefined, '', undefined));
    // The injected statement replaced the unnamed statement and portal on the server.
    this.statements.delete('');
    this.portals.delete('');
  }

  /**
   * In an already-aborted transaction the server would answer any statement with 25P02 and its
   * state cannot change, so with nothing in flight the gateway answers itself and the client
   * sees why the statement was refused.
   */
  private answerLocally(err: ClientError): boolean {
    if (this.txStatus !== TX_FAILED || this.expected.peek() !== undefined || this.discardUntilSync) return false;
    this.clientOut.add(ser.errorResponse({ severity: 'ERROR', sqlstate: err.sqlstate, message: err.message, detail: err.detail, hint: err.hint }));
    return true;
  }

  private forward(msg: Buffer, expect: Expected): void {
    this.sent++;
    if ('at' in expect) {
      expect.at = this.sent;
      expect.copyMsgs = this.copyMsgs;
      expect.copyEnds = this.copyEnds;
    }
    if (this.discardUntilSync) {
      // The server is discarding everything up to Sync after an error: nothing will answer these.
      if (expect.kind === 'sync') this.discardUntilSync = false;
      else {
        if (expect.kind === 'query' || expect.kind === 'execute') this.complete(expect, { rows: null, error: SKIPPED });
        // A discarded Parse, Bind or Close changes nothing on the server, so nothing here either.
        else if (expect.kind === 'parse' || expect.kind === 'bind' || expect.kind === 'close') expect.undo?.();
        this.upOut.add(msg);
        return;
      }
    }
    this.expected.push(expect);
    this.upOut.add(msg);
  }

  // ---- upstream → client ----

  private pumpUpstream(): void {
    if (this.upstreamBusy || this.closed) return;
    this.upstreamBusy = true;
    try {
      for (;;) {
        const msg = this.upReader.next();
        if (msg === null) break;
        const wait = this.onUpstreamMessage(msg);
        if (this.closed) return;
        if (wait !== undefined) {
          this.clientOut.flush();
          this.upstreamHeld = true;
          this.syncFlow();
          wait.then(
            () => {
              this.upstreamHeld = false;
              this.upstreamBusy = false;
              this.syncFlow();
              this.pumpUpstream();
            },
            (err: unknown) => this.fail(err),
          );
          return;
        }
      }
      this.clientOut.flush();
      this.upstreamBusy = false;
    } catch (err) {
      this.fail(err);
    }
  }

  /** Returns a promise only while an asynchronous mask plan is being made. */
  private onUpstreamMessage(msg: Buffer): Promise<void> | undefined {
    const head = this.expected.peek();
    switch (msg[0]) {
      case BackendCode.dataRow: {
        // Rows nobody asked for cannot be attributed, so cannot be masked: fail closed.
        if (head === undefined || (head.kind !== 'query' && head.kind !== 'execute')) throw new ProtocolError('DataRow outside a statement');
        head.resultRows++;
        const mask = head.kind === 'query' ? head.mask : (head.portal?.mask ?? null);
        if (mask === null) this.clientOut.add(msg);
        else mask.maskInto(msg, this.clientOut);
        return undefined;
      }
      case BackendCode.rowDescription:
        if (head?.kind === 'describe') {
          this.expected.shift();
          if (!head.swallow) this.clientOut.add(msg);
          const portal = head.portal;
          if (portal === undefined || portal.stmt === undefined) return undefined;
          const columns = decodeRowDescription(msg);
          return settle(this.ctx.hooks.describe(portal.stmt, columns), (plan) => (portal.mask = plan === null ? null : new RowMasker(plan, columns)));
        }
        this.clientOut.add(msg);
        if (head?.kind === 'query' && head.stmt !== undefined) {
          const columns = decodeRowDescription(msg);
          return settle(this.ctx.hooks.describe(head.stmt, columns), (plan) => (head.mask = plan === null ? null : new RowMasker(plan, columns)));
        }
        return undefined;
      case BackendCode.noData:
        if (head?.kind === 'describe') {
          this.expected.shift();
          if (head.portal !== undefined) head.portal.mask = null;
          if (head.swallow) return undefined;
        }
        this.clientOut.add(msg);
        return undefined;
      case BackendCode.commandComplete:
        this.clientOut.add(msg);
        if (head?.kind === 'query' || head?.kind === 'execute') {
          const tag = decodeCommandComplete(msg);
          head.rows += tagRows(tag) ?? head.resultRows;
          head.resultRows = 0;
          head.tag = tag;
          head.mask = null;
          head.copyPlan = null;
          // SQL that drops cursors or prepared statements names them in text the gateway does
          // not read: forget every name recorded before it, so a name re-created by SQL under
          // it (DECLARE, PREPARE) is not run under the decision of what was there before.
          if (DROPS_PORTALS.has(tag)) forgetBefore(this.portals, head.at);
          if (DROPS_STATEMENTS.has(tag)) forgetBefore(this.statements, head.at);
          if (head.kind === 'execute') this.finish(head);
        }
        return undefined;
      case BackendCode.emptyQuery:
      case BackendCode.portalSuspended:
        this.clientOut.add(msg);
        if (head?.kind === 'execute') {
          head.rows += head.resultRows;
          this.finish(head);
        }
        return undefined;
      case BackendCode.readyForQuery:
        this.copyIn = null;
        this.txStatus = msg[5];
        this.clientOut.add(msg);
        for (let e = this.expected.shift(); e !== undefined; e = this.expected.shift()) {
          if (e.kind === 'query' || e.kind === 'execute') this.complete(e, outcomeOf(e));
          if (e.kind === 'query' || e.kind === 'sync') {
            // Outside a transaction the server has dropped every portal bound before this point;
            // a cursor DECLAREd later under the same name must not run under the old decision.
            if (msg[5] === TX_IDLE) forgetBefore(this.portals, e.at);
            break;
          }
        }
        if (msg[5] === TX_IDLE) {
          this.ctx.hooks.idle?.(this.errorSinceIdle);
          this.errorSinceIdle = false;
        }
        return undefined;
      case BackendCode.parseComplete:
      case BackendCode.bindComplete:
        if (head !== undefined && (head.kind === 'parse' || head.kind === 'bind')) {
          this.expected.shift();
          if (head.swallow) return undefined;
        }
        this.clientOut.add(msg);
        return undefined;
      case BackendCode.closeComplete:
        if (head?.kind === 'close') this.expected.shift();
        this.clientOut.add(msg);
        return undefined;
      case BackendCode.errorResponse:
        // An error ends a COPY FROM STDIN on the server's side.
        this.copyIn = null;
        this.onUpstreamError(msg, head);
        return undefined;
      case BackendCode.functionCallResponse: {
        // Its value has no column origin, like a derived column of an opaque statement: the plan
        // for one such column decides (a value nobody asked for cannot be attributed: fail closed).
        if (head?.kind !== 'query' || head.functionResult === undefined || head.stmt === undefined) throw new ProtocolError('FunctionCallResponse outside a FunctionCall');
        const { stmt, functionResult: format } = head;
        return settle(this.ctx.hooks.describe(stmt, [{ index: 0, name: 'result', tableOid: 0, attnum: 0, typeId: 0, format }]), (plan) => {
          const mask = plan?.columns.find((c) => c.index === 0)?.mask;
          if (mask === undefined) return void this.clientOut.add(msg);
          const len = msg.readInt32BE(5);
          this.clientOut.add(ser.functionCallResponse(mask(len < 0 ? null : msg.subarray(9, 9 + len), format, 0)));
        });
      }
      case BackendCode.copyInResponse:
        this.clientOut.add(msg);
        if (head?.kind === 'query' || head?.kind === 'execute') this.startCopyIn(head);
        return undefined;
      case BackendCode.noticeResponse:
        this.clientOut.add(this.scrub(msg, decodeFields(msg), statementOf(head)));
        return undefined;
      case BackendCode.parameterStatus: {
        const { name, value } = decodeParameterStatus(msg);
        if (name === 'client_encoding' && pgEncodingUnsafe(value)) {
          // A way around the broker's refusal of such a SET: nothing after it may be read as UTF-8.
          this.sendFatal(ENCODING_UNSUPPORTED.sqlstate, ENCODING_UNSUPPORTED.message(value), ENCODING_UNSUPPORTED.hint);
          this.close();
          return undefined;
        }
        this.ctx.hooks.parameter(name, value);
        this.clientOut.add(msg);
        return undefined;
      }
      case BackendCode.copyOutResponse: {
        this.clientOut.add(msg);
        if (head === undefined || (head.kind !== 'query' && head.kind !== 'execute') || head.stmt === undefined) return undefined;
        const { binary, columnCount } = decodeCopyOutResponse(msg);
        const format = binary ? 'binary' : /\bcsv\b/i.test(head.sql) ? 'csv' : 'text';
        return settle(this.ctx.hooks.describeCopy(head.stmt, format, columnCount), (plan) => (head.copyPlan = plan));
      }
      case BackendCode.copyData: {
        const plan = head?.kind === 'query' || head?.kind === 'execute' ? head.copyPlan : null;
        if (plan === null) this.clientOut.add(msg);
        else if (plan.maskMessageInto) plan.maskMessageInto(msg, this.clientOut);
        else this.clientOut.add(ser.copyData(plan.maskChunk(msg.subarray(5))));
        return undefined;
      }
      case BackendCode.copyDone: {
        const plan = head?.kind === 'query' || head?.kind === 'execute' ? head.copyPlan : null;
        const tail = plan?.end() ?? null;
        if (tail !== null) this.clientOut.add(ser.copyData(tail));
        this.clientOut.add(msg);
        return undefined;
      }
      default:
        // ParameterDescription, CopyIn/Both, notifications, FunctionCallResponse: as received.
        this.clientOut.add(msg);
        return undefined;
    }
  }

  /**
   * The server reads COPY data now, until the client's next CopyDone or CopyFail. A Sync the
   * client sent in between is ignored there (libpq sends one with the COPY in the extended
   * protocol), so its entry goes: left in place, it would take the ReadyForQuery of a later
   * Sync and put every answer after it against the wrong statement.
   */
  private startCopyIn(head: StatementEntry): void {
    head.copyIns = (head.copyIns ?? 0) + 1;
    // A second COPY in one Query starts after the client ended the first; where its data began is not known.
    const ends = head.copyEnds + head.copyIns - 1;
    const msgs = head.copyIns === 1 ? head.copyMsgs : null;
    for (const e of this.expected.rest()) {
      if (!('copyEnds' in e) || e.copyEnds > ends) break;
      // A message other than Sync inside COPY data: the server ends the session over it.
      if (e.kind !== 'sync') break;
      if (msgs === null || e.copyMsgs !== msgs) throw new ProtocolError('Sync inside COPY data: send CopyDone or CopyFail first');
      this.expected.remove(e);
    }
    this.copyIn = this.copyEnds === ends ? { ends, msgs } : null;
  }

  private onUpstreamError(msg: Buffer, head: Expected | undefined): void {
    this.errorSinceIdle = true;
    let fields = decodeFields(msg);
    // A refusal raised by the gateway's own injected DO block: its CONTEXT line ("PL/pgSQL
    // function inline_code_block … at RAISE") is an implementation detail the client should not see.
    const injected = (head?.kind === 'query' || head?.kind === 'execute') && head.stmt === undefined;
    if (injected && fieldValue(fields, ErrorField.where) !== undefined) {
      fields = fields.filter(([code]) => code !== ErrorField.where);
      msg = ser.fieldsMessage(msg[0], fields);
    }
    // The refusal is the gateway's own text (rule, request, approver, reason), not the server's:
    // the DO block that raises it reads nothing, so there is nothing in it to scrub.
    const out = injected ? msg : this.scrub(msg, fields, statementOf(head));
    this.clientOut.add(out);
    if (head === undefined || head.kind === 'sync') return;
    const error = {
      sqlstate: fieldValue(fields, ErrorField.code) ?? 'XX000',
      message: fieldValue(out === msg ? fields : decodeFields(out), ErrorField.message) ?? '',
    };
    if (head.kind === 'query') {
      head.error = error;
      head.mask = null;
      head.copyPlan = null;
      return;
    }
    // Extended protocol: the server now discards messages up to Sync, so nothing answers them,
    // and the failed message and those after it change no statement or portal there.
    const undo: Undo[] = [];
    for (let e = this.expected.peek(); e !== undefined && e.kind !== 'sync'; e = this.expected.peek()) {
      this.expected.shift();
      if (e.kind === 'query' || e.kind === 'execute') this.complete(e, e === head ? { rows: e.rows + e.resultRows, error } : { rows: null, error: SKIPPED });
      else if ((e.kind === 'parse' || e.kind === 'bind' || e.kind === 'close') && e.undo !== undefined) undo.push(e.undo);
    }
    for (let k = undo.length - 1; k >= 0; k--) undo[k]();
    if (this.expected.peek() === undefined) this.discardUntilSync = true;
  }

  /** Passes error/notice texts through the scrub hook; re-encodes only when something changed. */
  private scrub(msg: Buffer, fields: [number, string][], stmt: StatementHandle | undefined): Buffer {
    const input = {
      message: fieldValue(fields, ErrorField.message) ?? '',
      detail: fieldValue(fields, ErrorField.detail),
      hint: fieldValue(fields, ErrorField.hint),
      where: fieldValue(fields, ErrorField.where),
    };
    const out = this.ctx.hooks.scrub(stmt, input);
    if (out.message === input.message && out.detail === input.detail && out.hint === input.hint && out.where === input.where) return msg;
    const replaced: Record<number, string | undefined> = { [ErrorField.message]: out.message, [ErrorField.detail]: out.detail, [ErrorField.hint]: out.hint, [ErrorField.where]: out.where };
    const list: [number, string][] = [];
    for (const [code, value] of fields) {
      if (!(code in replaced)) list.push([code, value]);
      else if (replaced[code] !== undefined) list.push([code, replaced[code]]);
    }
    for (const code of [ErrorField.detail, ErrorField.hint, ErrorField.where]) {
      const v = replaced[code];
      if (v !== undefined && fieldValue(fields, code) === undefined) list.push([code, v]);
    }
    return ser.fieldsMessage(msg[0], list);
  }

  private finish(entry: StatementEntry): void {
    this.expected.shift();
    this.complete(entry, outcomeOf(entry));
  }

  private complete(entry: StatementEntry, outcome: StatementOutcome): void {
    if (entry.stmt === undefined) return;
    try {
      this.ctx.hooks.completed(entry.stmt, outcome);
    } catch (err) {
      this.ctx.log.error({ err, stmt: entry.stmt.id }, 'completed hook failed');
    }
  }

  // ---- flow control and session end ----

  private syncFlow(): void {
    if (this.closed) return;
    const pauseClient = this.clientHeld || this.upOut.full;
    if (pauseClient !== this.clientPaused) {
      this.clientPaused = pauseClient;
      if (pauseClient) this.client.pause();
      else this.client.resume();
    }
    const pauseUpstream = this.upstreamHeld || this.clientOut.full;
    if (pauseUpstream !== this.upstreamPaused) {
      this.upstreamPaused = pauseUpstream;
      if (pauseUpstream) this.upstream.socket.pause();
      else this.upstream.socket.resume();
    }
  }

  private endByAbort(): void {
    const reason: unknown = this.ctx.signal.reason;
    const message = reason instanceof Error ? reason.message : 'the credential is no longer valid';
    const actions = isDbgovError(reason) ? reason.actions : [];
    this.sendFatal('57P01', message.startsWith('dbgov:') ? message : `dbgov: session ended: ${message}`, actions.length > 0 ? actions.join(' ') : 'Run `dbgov connect` again to get a new credential.');
    this.close();
  }

  private fail(err: unknown): void {
    if (this.closed) return;
    if (err instanceof MessageTooLargeError) {
      this.sendFatal('54000', 'dbgov: message too large', `The gateway accepts protocol messages up to ${this.ctx.limits.maxMessageBytes} bytes. Send smaller statements or batches.`);
    } else if (err instanceof ProtocolError) {
      this.ctx.log.warn({ err }, 'protocol error; closing the session');
      this.sendFatal('08P01', `dbgov: protocol error: ${err.message}`, 'The client sent bytes that are not valid PostgreSQL protocol. Check the client or driver.');
    } else {
      this.ctx.log.error({ err }, 'internal error in the postgres session; closing it');
      this.sendFatal('XX000', 'dbgov: internal error in the gateway; the session was closed', 'Reconnect and try again. The broker log has the details.');
    }
    this.close();
  }

  private sendFatal(sqlstate: string, message: string, hint: string): void {
    if (this.closed) return;
    this.clientOut.flush();
    this.client.write(ser.errorResponse({ severity: 'FATAL', sqlstate, message, hint }));
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ctx.signal.removeEventListener('abort', this.onAbort);
    this.clientOut.flush();
    for (const e of this.expected.drain()) {
      if (e.kind === 'query' || e.kind === 'execute') this.complete(e, { rows: null, error: { sqlstate: '08006', message: 'dbgov: the session ended before the statement finished' } });
    }
    this.cancels.unregister(this.cancelKey.pid, this.cancelKey.key);
    this.ctx.hooks.ended?.();
    const up = this.upstream.socket;
    if (!up.destroyed) up.end(ser.terminate());
    this.client.end();
    // A peer that never reads would keep the socket (and its buffers) alive forever.
    const timer = setTimeout(() => {
      up.destroy();
      this.client.destroy();
    }, 5_000);
    timer.unref();
    this.resolveDone();
  }
}

const SKIPPED = { sqlstate: '57014', message: 'dbgov: not run: an earlier message in the same batch failed' };

function statementEntry(kind: 'query' | 'execute', stmt: StatementHandle | undefined, sql: string, portal: Portal | undefined): StatementEntry {
  return { kind, stmt, sql, portal, mask: null, copyPlan: null, rows: 0, resultRows: 0, tag: undefined, error: undefined, at: 0, copyMsgs: 0, copyEnds: 0 };
}

function syncEntry(): Expected {
  return { kind: 'sync', at: 0, copyMsgs: 0, copyEnds: 0 };
}

/** Command tags of SQL that drops cursors (portals), by name or all at once. */
const DROPS_PORTALS = new Set(['CLOSE CURSOR', 'CLOSE CURSOR ALL', 'DECLARE CURSOR', 'DISCARD ALL', 'ROLLBACK', 'COMMIT']);
/** Command tags of SQL that drops prepared statements, by name or all at once. */
const DROPS_STATEMENTS = new Set(['DEALLOCATE', 'DEALLOCATE ALL', 'DISCARD ALL']);

/**
 * Records `value` (undefined: removes) under `name`; returns how to put back what was there.
 * The undo does nothing once a later message recorded something else under the name: undos run
 * newest first, so within one batch each finds its own value, and a later batch's stands.
 */
function record<T>(map: Map<string, T>, name: string, value: T | undefined): Undo {
  const had = map.has(name);
  const before = map.get(name);
  if (value === undefined) map.delete(name);
  else map.set(name, value);
  return () => {
    if (map.get(name) !== value) return;
    if (had) map.set(name, before as T);
    else map.delete(name);
  };
}

/** Forgets the names recorded by messages before message number `at`. */
function forgetBefore(map: Map<string, { at: number }>, at: number): void {
  for (const [name, v] of map) if (v.at < at) map.delete(name);
}

function statementOf(head: Expected | undefined): StatementHandle | undefined {
  return head?.kind === 'query' || head?.kind === 'execute' ? head.stmt : undefined;
}

function outcomeOf(e: StatementEntry): StatementOutcome {
  return { rows: e.error === undefined ? e.rows : e.rows + e.resultRows, ...(e.tag === undefined ? {} : { tag: e.tag }), ...(e.error === undefined ? {} : { error: e.error }) };
}

/** Applies a plan now, or returns a promise that applies it once the hook's promise settles. */
function settle<T>(result: T | Promise<T>, apply: (value: T) => void): Promise<void> | undefined {
  if (result instanceof Promise) return result.then(apply);
  apply(result);
  return undefined;
}

