import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scrubMessage, type MessageFields, type ScrubContext } from '../../src/masking/scrub.js';

const classified: ScrubContext = { classified: true, contentScan: false };
const scanOnly: ScrubContext = { classified: false, contentScan: true };
const off: ScrubContext = { classified: false, contentScan: false };

const CASES: [string, MessageFields, ScrubContext, MessageFields][] = [
  ['failed cast quotes the value', { message: 'invalid input syntax for type integer: "alice@example.com"' }, classified, { message: 'invalid input syntax for type integer: "****"' }],
  ['failed cast of a plain word', { message: 'invalid input syntax for type integer: "Alice Smith"' }, classified, { message: 'invalid input syntax for type integer: "****"' }],
  [
    'unique violation detail',
    { message: 'duplicate key value violates unique constraint "users_email_key"', detail: 'Key (email)=(bob@x.io) already exists.' },
    classified,
    { message: 'duplicate key value violates unique constraint "users_email_key"', detail: 'Key (email)=(****) already exists.' },
  ],
  ['expression key', { message: 'x', detail: 'Key (lower(email::text))=(bob (the) builder) already exists.' }, classified, { message: 'x', detail: 'Key (lower(email::text))=(****) already exists.' }],
  ['failing row', { message: 'new row for relation "users" violates check constraint "c"', detail: 'Failing row contains (1, Alice, 123-45-6789).' }, classified, { message: 'new row for relation "users" violates check constraint "c"', detail: 'Failing row contains (****).' }],
  ['identifiers stay', { message: 'column "ssn" of relation "users" does not exist', hint: 'Perhaps you meant to reference the column "users.ssn".' }, classified, { message: 'column "ssn" of relation "users" does not exist', hint: 'Perhaps you meant to reference the column "users.ssn".' }],
  ['where with quoted value', { message: 'm', where: "COPY users, line 1, column email: \"zed@x.io\"" }, classified, { message: 'm', where: 'COPY users, line 1, column email: "****"' }],
  ['single quotes', { message: "value 'Alice' is wrong" }, classified, { message: "value '****' is wrong" }],
  ['detectors only with content scan', { message: 'saw 123-45-6789 and "word"' }, scanOnly, { message: 'saw **** and "word"' }],
  ['nothing applies: unchanged', { message: 'invalid input syntax for type integer: "alice@example.com"' }, off, { message: 'invalid input syntax for type integer: "alice@example.com"' }],
];

test('scrubMessage', () => {
  for (const [name, fields, ctx, expected] of CASES) assert.deepEqual(scrubMessage(fields, ctx), expected, name);
});
