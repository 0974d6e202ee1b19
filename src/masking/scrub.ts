/**
 * Scrubbing ErrorResponse / NoticeResponse texts. The server echoes data in errors:
 *   invalid input syntax for type integer: "alice@example.com"
 *   Key (email)=(bob@x.io) already exists.
 *   Failing row contains (1, Alice, 123-45-6789).
 * Quoted values are masked, identifiers (`column "email"`, `constraint "users_email_key"`) are
 * kept so the message stays useful, and detector hits are masked anywhere.
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
}

/** Words after which a quoted string names an object rather than carrying a value. */
const IDENTIFIER_BEFORE =
  /(?:\b(?:column|columns|relation|table|view|index|sequence|schema|database|role|user|type|function|procedure|constraint|trigger|extension|operator|cursor|prepared statement|portal|savepoint|collation|domain|publication|subscription|server|tablespace|policy|rule|attribute|parameter|encoding|language|aggregate|channel|foreign table|materialized view|object|event trigger|operator class|operator family|access method|conversion|statistics object|text search configuration|text search dictionary|large object|transaction)\s+)$/i;

/** `Key (cols)=(values)` in unique / foreign-key violations: the values part, to its last parenthesis. */
const KEY_VALUES = /(\bKey \((?:[^()]|\([^()]*\))*\)=\()(.*)(\))/gs;
/** `Failing row contains (…)` in not-null / check violations. */
const FAILING_ROW = /(\bFailing row contains \()(.*)(\))/gs;
/** A value quoted at the end of a message (`…: "value"`): greedy, since values are not escaped. */
const TRAILING_VALUE = /(:\s*)"(.*)"(\.?)$/s;
const QUOTED = /"([^"]*)"|'([^']*)'/g;

function scrubQuoted(text: string, mask: string): string {
  let out = text.replace(KEY_VALUES, `$1${mask}$3`).replace(FAILING_ROW, `$1${mask}$3`);
  out = out.replace(TRAILING_VALUE, (m, pre: string, _v: string, dot: string, offset: number) => (IDENTIFIER_BEFORE.test(out.slice(0, offset)) ? m : `${pre}"${mask}"${dot}`));
  return out.replace(QUOTED, (m, dq: string | undefined, _sq: string | undefined, offset: number) => {
    if (m === `"${mask}"`) return m;
    // Identifiers stay readable; anything else quoted may be a value the statement read.
    if (IDENTIFIER_BEFORE.test(out.slice(0, offset))) return m;
    return dq === undefined ? `'${mask}'` : `"${mask}"`;
  });
}

function scrubOne(text: string, ctx: ScrubContext, mask: string): string {
  const quotedDone = ctx.classified ? scrubQuoted(text, mask) : text;
  return redactDetected(quotedDone, mask, ctx.detectors ?? DETECTOR_NAMES);
}

/** The fields to send to the client. Unchanged when neither classified data nor content scan applies. */
export function scrubMessage(fields: MessageFields, ctx: ScrubContext): MessageFields {
  if (!ctx.classified && !ctx.contentScan) return fields;
  const mask = ctx.replacement ?? '****';
  const out: MessageFields = { message: scrubOne(fields.message, ctx, mask) };
  if (fields.detail !== undefined) out.detail = scrubOne(fields.detail, ctx, mask);
  if (fields.hint !== undefined) out.hint = scrubOne(fields.hint, ctx, mask);
  if (fields.where !== undefined) out.where = scrubOne(fields.where, ctx, mask);
  return out;
}
