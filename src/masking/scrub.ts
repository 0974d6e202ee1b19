/**
 * Scrubbing ErrorResponse / NoticeResponse texts. The server echoes data in errors:
 *   invalid input syntax for type integer: "alice@example.com"
 *   Key (email)=(bob@x.io) already exists.
 *   Failing row contains (1, Alice, 123-45-6789).
 * Quoted values are masked. Identifiers (`column "email"`, `constraint "users_email_key"`) are
 * kept so the message stays useful, but only names the client already knows (its statement's
 * text, the catalog): a value can stand where a name does. Detector hits are masked anywhere.
 */
import { DETECTOR_NAMES, redactDetected, type DetectorName } from './detectors.js';

export interface MessageFields {
  message: string;
  detail?: string;
  hint?: string;
  where?: string;
}

export interface ScrubContext {
  /** The statement touched classified data this identity may not see, or it is unknown which. */
  classified: boolean;
  /** The content safety net is on for this target. */
  contentScan: boolean;
  /** Detectors to run; default all. */
  detectors?: readonly DetectorName[];
  replacement?: string;
  /**
   * Names that may stay readable where a message names an object (`relation "users"`): those
   * the statement's own text holds, and those in the catalog. Without it, none may. A value
   * can sit in that place too (`SELECT full_name::regclass` → relation "Alice Liddell" does not
   * exist), so a quoted name is kept only when the client already knows it.
   */
  known?: (name: string) => boolean;
}

/** Words after which a quoted string names an object rather than carrying a value. */
const IDENTIFIER_BEFORE =
  /(?:\b(?:column|columns|relation|table|view|index|sequence|schema|database|role|user|type|function|procedure|constraint|trigger|extension|operator|cursor|prepared statement|portal|savepoint|collation|domain|publication|subscription|server|tablespace|policy|rule|attribute|parameter|encoding|language|aggregate|channel|foreign table|materialized view|object|event trigger|operator class|operator family|access method|conversion|statistics object|text search configuration|text search dictionary|large object|transaction)\s+)$/i;

/** `Failing row contains (…)` in not-null / check violations. */
const FAILING_ROW = /(\bFailing row contains \()(.*)(\))/gs;
/** A value quoted at the end of a message (`…: "value"`): greedy, since values are not escaped. */
const TRAILING_VALUE = /(:\s*)"(.*)"(\.?)$/s;
const QUOTED = /"([^"]*)"|'([^']*)'/g;
/** Bytes of a value in encoding errors: `invalid byte sequence for encoding "UTF8": 0xe9 0x41`. */
const HEX_BYTES = /\b0x[0-9a-f]{2}(?:\s+0x[0-9a-f]{2})*/gi;

/**
 * `Key (cols)=(values)` in unique, exclusion and foreign-key violations: the values, to the last
 * parenthesis of the text (values are not escaped, so they may hold parentheses of their own).
 * The column part is an expression list that may nest parentheses to any depth.
 */
function maskKeyValues(text: string, mask: string): string {
  let from = 0;
  for (;;) {
    const at = text.indexOf('Key (', from);
    if (at < 0) return text;
    let depth = 0;
    let i = at + 4;
    for (; i < text.length; i++) {
      if (text[i] === '(') depth++;
      else if (text[i] === ')' && --depth === 0) break;
    }
    if (i >= text.length || !text.startsWith('=(', i + 1)) {
      // Not the shape expected: everything after "Key (" may be a value.
      return text.slice(0, at + 5) + mask + ')';
    }
    const start = i + 3;
    const end = text.lastIndexOf(')');
    if (end < start) return text.slice(0, start) + mask + ')';
    text = text.slice(0, start) + mask + text.slice(end);
    from = start + mask.length + 1;
  }
}

function scrubQuoted(text: string, mask: string, known: (name: string) => boolean): string {
  let out = maskKeyValues(text, mask).replace(FAILING_ROW, `$1${mask}$3`);
  // A name is kept where the message names an object and the client knows the name already.
  const keep = (name: string, offset: number): boolean => IDENTIFIER_BEFORE.test(out.slice(0, offset)) && (known(name) || name.split('.').every((part) => part !== '' && known(part)));
  out = out.replace(TRAILING_VALUE, (m, pre: string, v: string, dot: string, offset: number) => (keep(v, offset) ? m : `${pre}"${mask}"${dot}`));
  out = out.replace(QUOTED, (m, dq: string | undefined, sq: string | undefined, offset: number) => {
    if (m === `"${mask}"`) return m;
    if (keep(dq ?? sq ?? '', offset)) return m;
    return dq === undefined ? `'${mask}'` : `"${mask}"`;
  });
  out = out.replace(HEX_BYTES, mask);
  // Lines after the first echo input (XML and JSON parsers print the offending line).
  const nl = out.indexOf('\n');
  return nl < 0 ? out : `${out.slice(0, nl)}\n${mask}`;
}

const NOTHING_KNOWN = (): boolean => false;

function scrubOne(text: string, ctx: ScrubContext, mask: string): string {
  const quotedDone = ctx.classified ? scrubQuoted(text, mask, ctx.known ?? NOTHING_KNOWN) : text;
  return redactDetected(quotedDone, mask, ctx.detectors ?? DETECTOR_NAMES);
}

/** The context line of a message a PL/pgSQL RAISE made (`PL/pgSQL function f(text) line 3 at RAISE`). */
const RAISED = /\bat RAISE$/m;

/** The fields to send to the client. Unchanged when neither classified data nor content scan applies. */
export function scrubMessage(fields: MessageFields, ctx: ScrubContext): MessageFields {
  if (!ctx.classified && !ctx.contentScan) return fields;
  const mask = ctx.replacement ?? '****';
  // RAISE writes whatever a function puts in it, unquoted (`RAISE NOTICE 'v=%', v`): no pattern
  // finds the value in free text, so the whole text goes.
  if (ctx.classified && RAISED.test(fields.where ?? '')) {
    return { message: mask, ...(fields.detail !== undefined ? { detail: mask } : {}), ...(fields.hint !== undefined ? { hint: mask } : {}), where: fields.where! };
  }
  const out: MessageFields = { message: scrubOne(fields.message, ctx, mask) };
  if (fields.detail !== undefined) out.detail = scrubOne(fields.detail, ctx, mask);
  if (fields.hint !== undefined) out.hint = scrubOne(fields.hint, ctx, mask);
  if (fields.where !== undefined) out.where = scrubOne(fields.where, ctx, mask);
  return out;
}
