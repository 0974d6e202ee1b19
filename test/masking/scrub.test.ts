import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scrubMessage, type MessageFields, type ScrubContext } from '../../src/masking/scrub.js';

const classified: ScrubContext = { classified: true, contentScan: false };
const scanOnly: ScrubContext = { classified: false, contentScan: true };
const off: ScrubContext = { classified: false, contentScan: false };
/** The client's statement named these, or the catalog has them. */
const names = new Set(['ssn', 'users', 'users.ssn', 'users_email_key', 'c', 'orders', 'userz']);
const knowing: ScrubContext = { ...classified, known: (n) => names.has(n) };

const CASES: [string, MessageFields, ScrubContext, MessageFields][] = [
  // RAISE puts a function's text in the message unquoted: all of it goes, the context stays.
  [
    'a PL/pgSQL RAISE',
    { message: 'v=7 Yard Road, Leeds', detail: 'Alice', where: 'PL/pgSQL function zn() line 1 at RAISE' },
    classified,
    { message: '****', detail: '****', where: 'PL/pgSQL function zn() line 1 at RAISE' },
  ],
  ['a RAISE when nothing classified was read', { message: 'v=7 Yard Road, Leeds', where: 'PL/pgSQL function zn() line 1 at RAISE' }, off, { message: 'v=7 Yard Road, Leeds', where: 'PL/pgSQL function zn() line 1 at RAISE' }],
  ['failed cast quotes the value', { message: 'invalid input syntax for type integer: "alice@example.com"' }, classified, { message: 'invalid input syntax for type integer: "****"' }],
  ['failed cast of a plain word', { message: 'invalid input syntax for type integer: "Alice Smith"' }, classified, { message: 'invalid input syntax for type integer: "****"' }],
  [
    'unique violation detail',
    { message: 'duplicate key value violates unique constraint "users_email_key"', detail: 'Key (email)=(bob@x.io) already exists.' },
    knowing,
    { message: 'duplicate key value violates unique constraint "users_email_key"', detail: 'Key (email)=(****) already exists.' },
  ],
  ['expression key', { message: 'x', detail: 'Key (lower(email::text))=(bob (the) builder) already exists.' }, classified, { message: 'x', detail: 'Key (lower(email::text))=(****) already exists.' }],
  ['failing row', { message: 'new row for relation "users" violates check constraint "c"', detail: 'Failing row contains (1, Alice, 123-45-6789).' }, knowing, { message: 'new row for relation "users" violates check constraint "c"', detail: 'Failing row contains (****).' }],
  ['known identifiers stay', { message: 'column "ssn" of relation "users" does not exist', hint: 'Perhaps you meant to reference the column "users.ssn".' }, knowing, { message: 'column "ssn" of relation "users" does not exist', hint: 'Perhaps you meant to reference the column "users.ssn".' }],
  ['a value in the place of a name', { message: 'relation "Alice Liddell" does not exist' }, knowing, { message: 'relation "****" does not exist' }],
  ['a value as a setting name', { message: 'unrecognized configuration parameter "Carol Danvers"' }, knowing, { message: 'unrecognized configuration parameter "****"' }],
  ['a value as a column name', { message: 'column "Alice Liddell" of relation "users" does not exist' }, knowing, { message: 'column "****" of relation "users" does not exist' }],
  ['names unknown without a catalog', { message: 'relation "users" does not exist' }, classified, { message: 'relation "****" does not exist' }],
  ['a typo the client wrote stays', { message: 'relation "userz" does not exist' }, knowing, { message: 'relation "userz" does not exist' }],
  ['XML parser echoes the input line', { message: 'invalid XML document', detail: "line 1: Start tag expected, '<' not found\n12 Rabbit Hole Lane, Oxford\n^" }, knowing, { message: 'invalid XML document', detail: "line 1: Start tag expected, '****' not found\n****" }],
  ['key expression nested twice', { message: 'could not create unique index "ux"', detail: 'Key (lower(upper(full_name)))=(alice liddell) is duplicated.' }, knowing, { message: 'could not create unique index "****"', detail: 'Key (lower(upper(full_name)))=(****) is duplicated.' }],
  ['exclusion conflict names both keys', { message: 'm', detail: 'Key (lower(upper(x)))=(alice) conflicts with existing key (lower(upper(x)))=(bob).' }, knowing, { message: 'm', detail: 'Key (lower(upper(x)))=(****).' }],
  ['unbalanced key', { message: 'm', detail: 'Key (lower(x)=(alice' }, knowing, { message: 'm', detail: 'Key (****)' }],
  ['bytes of a value', { message: 'invalid byte sequence for encoding "UTF8": 0xe9 0x41' }, knowing, { message: 'invalid byte sequence for encoding "****": ****' }],
  ['where with quoted value', { message: 'm', where: "COPY users, line 1, column email: \"zed@x.io\"" }, classified, { message: 'm', where: 'COPY users, line 1, column email: "****"' }],
  ['single quotes', { message: "value 'Alice' is wrong" }, classified, { message: "value '****' is wrong" }],
  ['detectors only with content scan', { message: 'saw 123-45-6789 and "word"' }, scanOnly, { message: 'saw **** and "word"' }],
  ['nothing applies: unchanged', { message: 'invalid input syntax for type integer: "alice@example.com"' }, off, { message: 'invalid input syntax for type integer: "alice@example.com"' }],
];

test('scrubMessage', () => {
  for (const [name, fields, ctx, expected] of CASES) assert.deepEqual(scrubMessage(fields, ctx), expected, name);
});
