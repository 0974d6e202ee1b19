/**
 * MySQL column types in the vocabulary of the broker's mask functions, which speak PostgreSQL
 * type OIDs (the shared ResultColumn contract). A value is only ever given a mask of the kind
 * its bytes really are: text for character data, a decimal for integers in the text protocol.
 * Anything else maps to 0 ("other"), whose masks send NULL: never the clear value.
 */
import { ColumnType } from './constants.js';

/** PostgreSQL OIDs the mask functions understand (src/masking/functions.ts PgType). */
const PG = { text: 25, json: 114, int8: 20, float8: 701, numeric: 1700, other: 0 } as const;

/** Character set 63 is `binary`: BLOB / VARBINARY hold bytes, not text. */
const BINARY_CHARSET = 63;

export function maskingTypeOf(col: { type: number; charset: number }, binaryProtocol: boolean): number {
  switch (col.type) {
    case ColumnType.VARCHAR:
    case ColumnType.VAR_STRING:
    case ColumnType.STRING:
    case ColumnType.ENUM:
    case ColumnType.SET:
    case ColumnType.TINY_BLOB:
    case ColumnType.MEDIUM_BLOB:
    case ColumnType.LONG_BLOB:
    case ColumnType.BLOB:
      // Strings are length-encoded text in both protocols; binary strings get no text mask.
      return col.charset === BINARY_CHARSET ? PG.other : PG.text;
    case ColumnType.JSON:
      return PG.json;
    case ColumnType.TINY:
    case ColumnType.SHORT:
    case ColumnType.LONG:
    case ColumnType.INT24:
    case ColumnType.LONGLONG:
    case ColumnType.YEAR:
      // Binary-protocol integers are little-endian fixed width, unlike PostgreSQL's: NULL them.
      return binaryProtocol ? PG.other : PG.int8;
    case ColumnType.FLOAT:
    case ColumnType.DOUBLE:
      return binaryProtocol ? PG.other : PG.float8;
    case ColumnType.DECIMAL:
    case ColumnType.NEWDECIMAL:
      return PG.numeric;
    default:
      return PG.other;
  }
}
