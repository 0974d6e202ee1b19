/**
 * Client character sets the gateway can read statements in.
 *
 * The gateway reads statement text as UTF-8, and UTF-8 never folds an ASCII byte into a wider
 * character. Some client encodings do: in Shift-JIS, Big5, GBK, GB18030, UHC and Johab the second
 * byte of a character may be `\` (0x5c) or a letter. With one of them, bytes such as
 * `E'<0x81>\' …` end a string literal for the server where the gateway sees the string go on, so
 * the server runs text the analyser never saw. These are exactly PostgreSQL's client-only
 * encodings (https://www.postgresql.org/docs/current/multibyte.html) and MySQL's character sets
 * that are not ASCII-safe; a session may not use them.
 */

/** PostgreSQL names and aliases (pg_encname_tbl, compared without case and punctuation). */
const PG_NOT_ASCII_SAFE = new Set([
  'big5',
  'gb18030',
  'gbk',
  'johab',
  'mskanji',
  'shiftjis',
  'shiftjis2004',
  'sjis',
  'uhc',
  'win932',
  'win936',
  'win949',
  'win950',
  'windows932',
  'windows936',
  'windows949',
  'windows950',
]);

/** MySQL / MariaDB character sets whose multi-byte characters may end in an ASCII byte. */
const MYSQL_NOT_ASCII_SAFE = new Set(['big5', 'cp932', 'gb18030', 'gbk', 'sjis']);

/**
 * MySQL collation ids (the handshake's one-byte character set field) of those character sets.
 * https://mariadb.com/kb/en/supported-character-sets-and-collations/
 */
const MYSQL_NOT_ASCII_SAFE_IDS = new Set([1, 84, 13, 88, 95, 96, 28, 87, 248, 249, 250]);

/** PostgreSQL compares encoding names without case and without anything but letters and digits. */
function clean(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** Whether a PostgreSQL client_encoding value lets the server read text other than the gateway does. */
export function pgEncodingUnsafe(name: string): boolean {
  return PG_NOT_ASCII_SAFE.has(clean(name));
}

/** Whether a MySQL character set name (SET NAMES, character_set_client) is unsafe, as above. */
export function mysqlCharsetUnsafe(name: string): boolean {
  const n = name.toLowerCase().replace(/^['"`]|['"`]$/g, '');
  return MYSQL_NOT_ASCII_SAFE.has(n) || MYSQL_NOT_ASCII_SAFE.has(n.split('_')[0]);
}

/** Whether a MySQL handshake collation id selects one of those character sets. */
export function mysqlCollationUnsafe(id: number): boolean {
  return MYSQL_NOT_ASCII_SAFE_IDS.has(id);
}
