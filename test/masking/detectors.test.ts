import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detect, detects, ibanValid, luhnValid, redactDetected, type DetectorName } from '../../src/masking/detectors.js';

const GH = `ghp_${'a1B2c3D4e5'.repeat(4)}`;

/** [detector, text, should it match] */
const CASES: [DetectorName, string, boolean][] = [
  ['email', 'contact alice@example.com now', true],
  ['email', 'first.last+tag@sub.example.co.uk', true],
  ['email', 'not an email: user@localhost', false],
  ['email', 'price @ 5 dollars', false],
  ['phone', '+14155552671', true],
  ['phone', 'call +1 (555) 123-4567', true],
  ['phone', '555-123-4567', true],
  ['phone', '+44 20 7946 0958', true],
  ['phone', 'order 123456789', false],
  ['phone', 'year 2024', false],
  ['phone', '2024-01-15', false],
  ['ssn', '123-45-6789', true],
  ['ssn', '000-12-3456', false],
  ['ssn', '666-12-3456', false],
  ['ssn', '912-34-5678', false],
  ['ssn', '123456789', false],
  ['card', '4111 1111 1111 1111', true],
  ['card', '4111-1111-1111-1111', true],
  ['card', '5500005555555559', true],
  ['card', '378282246310005', true],
  ['card', '4111111111111112', false],
  ['card', '1234567890123456', false],
  ['card', 'id 1700000000000', false],
  ['iban', 'DE89370400440532013000', true],
  ['iban', 'GB82 WEST 1234 5698 7654 32', true],
  ['iban', 'DE89370400440532013001', false],
  ['iban', 'ABCD', false],
  ['ipv4', 'from 192.168.1.20 at', true],
  ['ipv4', '10.0.0.256', false],
  ['ipv4', 'version 1.2.3', false],
  ['ipv6', '2001:db8::1', true],
  ['ipv6', 'fe80::1ff:fe23:4567:890a', true],
  ['ipv6', 'at 12:30:45', false],
  ['jwt', 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U', true],
  ['jwt', 'eyJ is a prefix', false],
  ['aws-key', 'AKIAIOSFODNN7EXAMPLE', true],
  ['aws-key', 'AKIA-short', false],
  ['github-token', GH, true],
  ['github-token', 'ghp_short', false],
  ['slack-token', 'xoxb-123456789012-abcdefghij', true],
  ['api-key', 'sk_live_4eC39HqLyjWDarjtT1zdp7dc', true],
  ['api-key', 'user_id_column_name_is_long', false],
  ['api-key', 'created_aaaaaaaaaaaaaaaaaaaaaaaa', false],
  ['private-key', '-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----', true],
  ['private-key', '-----BEGIN PUBLIC KEY-----', false],
];

test('detectors: each pattern matches what it should and nothing ordinary', () => {
  for (const [name, text, expected] of CASES) assert.equal(detects(name, text), expected, `${name}: ${JSON.stringify(text)}`);
});

test('detect: ordinary text, numbers and words have no hits', () => {
  for (const text of ['hello world', 'SELECT 1', 'order 42 shipped on 2024-03-01', 'total 1234.56 EUR', 'id=987654321', 'v1.2.3-beta', 'snake_case_identifier_here', 'Ünïcödé ñame']) {
    assert.deepEqual(detect(text), [], text);
  }
});

test('detect: spans are ordered and do not overlap', () => {
  const text = 'a alice@example.com b 4111 1111 1111 1111 c 123-45-6789';
  const hits = detect(text);
  assert.deepEqual(hits.map((h) => [h.detector, text.slice(h.start, h.end)]), [
    ['email', 'alice@example.com'],
    ['card', '4111 1111 1111 1111'],
    ['ssn', '123-45-6789'],
  ]);
});

test('redactDetected replaces every hit and keeps the rest', () => {
  assert.equal(redactDetected('mail bob@x.io or 123-45-6789.'), 'mail **** or ****.');
  const same = 'nothing here';
  assert.equal(redactDetected(same), same);
});

test('checksums', () => {
  const cases: [(s: string) => boolean, string, boolean][] = [
    [luhnValid, '79927398713', true],
    [luhnValid, '79927398710', false],
    [luhnValid, '', false],
    [ibanValid, 'GB82WEST12345698765432', true],
    [ibanValid, 'GB82WEST12345698765433', false],
  ];
  for (const [fn, input, expected] of cases) assert.equal(fn(input), expected, input);
});
