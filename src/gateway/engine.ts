/**
 * The one small interface every wire engine (postgres, mysql) plugs into.
 *
 * Engines know framing, session setup, upstream auth and how to express allow / block / hold
 * in their protocol. They know nothing about policy, masking rules or audit: the broker hands
 * them `StatementHooks`, and they call those at fixed points of the statement path.
 */
import type { Duplex } from 'node:stream';
import type { DbgovError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { AccessLevel, EngineName, Identity, TargetInfo } from '../shared/types.js';

/** How the engine reaches the real database. Secrets live only in the broker process. */
export interface UpstreamEndpoint {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  /** `disable` (default), `require` (TLS, no verification), `verify-full` (TLS, checked against `ca`). */
  tls: { mode: 'disable' | 'require' | 'verify-full'; ca?: string; servername?: string };
  connectTimeoutMs: number;
}

/** An error the client is meant to see, in protocol-neutral form. */
export interface ClientError {
  /** Starts with `dbgov: blocked`, `dbgov: approval denied`, `dbgov: approval required (request <id>)`, … */
  message: string;
  detail?: string;
  hint?: string;
  /** PostgreSQL SQLSTATE; the MySQL engine maps it (42501 → 1227 / 42000). */
  sqlstate: string;
}

/** Opaque to engines: the broker's record of one statement on its way through. */
export interface StatementHandle {
  readonly id: string;
}

export type Verdict =
  | { action: 'allow'; stmt: StatementHandle }
  | { action: 'block'; stmt: StatementHandle; error: ClientError }
  | {
      action: 'hold';
      stmt: StatementHandle;
      /**
       * Sent to the client as a notice (`dbgov: waiting for approval <id>`): a string at once, a
       * promise as soon as it settles. A promise may settle with nothing to say: the statement
       * re-runs an approval already granted, and is released without waiting.
       */
      notice: string | Promise<string | undefined>;
      /** Settles when approved (allow), denied or timed out (block). Never rejects. */
      decided: Promise<Exclude<Verdict, { action: 'hold' }>>;
    };

export type StatementVia = 'simple' | 'parse' | 'prepare' | 'function-call' | 'copy-data';

export interface StatementRequest {
  sql: string;
  via: StatementVia;
  /** Extended protocol / MySQL prepared statement name, when there is one. */
  statementName?: string;
}

/** A result column as the server describes it (RowDescription / MySQL column definition). */
export interface ResultColumn {
  index: number;
  name: string;
  /** PostgreSQL: table OID and attribute number (0 when derived). */
  tableOid?: number;
  attnum?: number;
  /** MySQL: org_table / org_name / schema (empty when derived). */
  orgSchema?: string;
  orgTable?: string;
  orgName?: string;
  /** PostgreSQL type OID, or MySQL column type code. */
  typeId: number;
  /** 0 text, 1 binary. */
  format: 0 | 1;
}

/**
 * How to mask one result. `mask` receives the raw field bytes (null for SQL NULL) exactly as
 * they would go to the client, and returns the bytes to send instead.
 */
/** Takes output as ranges of a buffer, so rewritten rows need no Buffer each while they stay adjacent (the session's outbox). */
export interface RangeSink {
  add(msg: Buffer): void;
  addRange(buf: Buffer, offset: number, len: number): void;
}

/** A mask that writes its output into a caller's buffer (see src/masking/functions.ts). */
export interface ValueWriter {
  /** The most bytes `write` produces for an input of `len` bytes. */
  max(len: number): number;
  /** Writes the masked form of src[start, start + len) to out at pos; returns the end, or -1 for SQL NULL. */
  write(src: Buffer, start: number, len: number, out: Buffer, pos: number): number;
  /** Every byte the output can hold that is not copied from the input (formats that escape bytes check these once). */
  emits: Buffer;
}

/**
 * A mask over one value. `writer`, when present, gives a byte-level form for one (format,
 * type) for the row path to write without allocating; null means use the function.
 */
export type ValueMask = ((value: Buffer | null, format: 0 | 1, typeId: number) => Buffer | null) & {
  writer?: (format: 0 | 1, typeId: number) => ValueWriter | null;
};

export interface MaskPlan {
  columns: { index: number; mask: ValueMask }[];
  /** Names of masked columns, for the audit record. */
  maskedColumns: string[];
  /** Classified columns this identity may see, sent in clear: the audit says who read what. */
  unmaskedColumns?: string[];
}

export interface StatementOutcome {
  rows: number | null;
  /** Command tag from the server (`SELECT 12`, `UPDATE 3`, …). */
  tag?: string;
  error?: { sqlstate: string; message: string };
}

export interface StatementHooks {
  /**
   * Analyse and decide one message's SQL (a simple Query, a Parse, a MySQL COM_QUERY/PREPARE).
   * Synchronous in the common case: facts are cached by text and policy is pure.
   */
  check(req: StatementRequest): Verdict;
  /**
   * A protocol message that carries or runs SQL the gateway cannot see (FunctionCall, an unknown
   * message type, executing a statement never prepared through this gateway). Fails closed in
   * protected environments.
   */
  opaque(reason: 'function-call-message' | 'unprepared-execute' | 'unsupported-message', detail: string): Verdict;
  /**
   * Called immediately before the engine writes a statement upstream (simple Query, Execute,
   * COM_STMT_EXECUTE). On return its audit record is durable; if it throws, the engine must not
   * forward, and reports the error (a ClientError is on `.clientError`) to the client instead.
   * `resumed`: this continues a run already started (an Execute of a suspended portal), not a
   * new one.
   */
  executing(stmt: StatementHandle, resumed?: boolean): void;
  /**
   * `executing` for engines that can wait until the end of this event-loop turn before they
   * forward: the record is written in one write with every other session's queued by then, and
   * the promise resolves once it is durable. It rejects like `executing` throws; the engine must
   * then not forward. Optional: an engine without it, or hooks without it, use `executing`.
   */
  executingBatched?(stmt: StatementHandle, resumed?: boolean): Promise<void>;
  /** The result's columns are known. Returns a plan when any column needs masking. */
  describe(stmt: StatementHandle, columns: ResultColumn[]): MaskPlan | null | Promise<MaskPlan | null>;
  /** COPY … TO STDOUT started: plan for rows in `format` (text, csv or binary). */
  describeCopy(stmt: StatementHandle, format: 'text' | 'csv' | 'binary', columnCount: number): CopyMaskPlan | null | Promise<CopyMaskPlan | null>;
  /** The statement finished (CommandComplete, error, or the session ended under it). */
  completed(stmt: StatementHandle, outcome: StatementOutcome): void;
  /**
   * Error and notice texts from the server can echo data (a failed cast quotes the value).
   * Returns the fields to send to the client, with classified values scrubbed.
   */
  scrub(stmt: StatementHandle | undefined, fields: { message: string; detail?: string; hint?: string; where?: string }): {
    message: string;
    detail?: string;
    hint?: string;
    where?: string;
  };
  /** Session settings the server reports (ParameterStatus), e.g. search_path changes. */
  parameter(name: string, value: string): void;
  /**
   * The server is idle, outside any transaction (PostgreSQL ReadyForQuery 'I'). `errored`: some
   * statement failed since the last time, so a transaction may have rolled back what it set.
   */
  idle?(errored: boolean): void;
  /** The session is over (each engine calls it once when it closes). */
  ended?(): void;
  /**
   * The server reset the session in place (MySQL COM_RESET_CONNECTION): its settings are the
   * server's defaults again, and its temporary tables, variables and prepared statements are gone.
   */
  reset?(): void;
}

export interface CopyMaskPlan {
  /** Rewrites one CopyData payload (may hold several rows or a partial row for binary). */
  maskChunk(chunk: Buffer): Buffer;
  /**
   * PostgreSQL: the same for a whole CopyData message, handed to `sink` as one whole CopyData
   * message in a range of one buffer (no copy, and no Buffer per message while output stays adjacent).
   */
  maskMessageInto?(msg: Buffer, sink: RangeSink): void;
  /** Flush anything held back at CopyDone. */
  end(): Buffer | null;
  maskedColumns: string[];
  unmaskedColumns?: string[];
}

export interface SessionContext {
  sessionId: string;
  identity: Identity;
  target: TargetInfo;
  /** The database this credential is scoped to. The client's requested name must match. */
  database: string;
  access: AccessLevel;
  upstream: UpstreamEndpoint;
  hooks: StatementHooks;
  limits: {
    /** Largest protocol message accepted from a client, in bytes. */
    maxMessageBytes: number;
    /** Statements waiting for approval hold the session at most this long (the hook enforces it). */
  };
  /** Aborted when the credential is revoked or expires; `signal.reason` is a DbgovError. */
  signal: AbortSignal;
  log: Logger;
  /** Reported once the upstream session is up, for audit and `dbgov sessions`. */
  onUpstreamReady?(info: { backendPid?: number; serverVersion?: string }): void;
}

export interface Engine {
  readonly name: EngineName;
  /** Serve one authenticated client connection until it ends. Never rejects. */
  serve(client: Duplex, ctx: SessionContext): Promise<void>;
  /**
   * The connection carried no valid credential (or a credential for something else): tell the
   * client why in its own protocol, with the next command to run, then close. Never rejects.
   */
  refuse(client: Duplex, error: DbgovError, log: Logger): Promise<void>;
}
