import type { FunctionRef, FunctionRisk } from '../facts.js';

/**
 * Risk classes of MySQL/MariaDB functions, by upper-case name. Names absent here carry no
 * known risk. UDF names from the well-known lib_mysqludf_sys family are listed because an
 * attacker who loaded them uses exactly these names.
 */
const RISKS: Record<string, FunctionRisk[]> = {
  LOAD_FILE: ['file'],
  SLEEP: ['side-effect'],
  BENCHMARK: ['side-effect'],
  GET_LOCK: ['side-effect'],
  RELEASE_LOCK: ['side-effect'],
  RELEASE_ALL_LOCKS: ['side-effect'],
  MASTER_POS_WAIT: ['side-effect'],
  SOURCE_POS_WAIT: ['side-effect'],
  MASTER_GTID_WAIT: ['side-effect'],
  WAIT_FOR_EXECUTED_GTID_SET: ['side-effect'],
  NEXTVAL: ['side-effect'],
  SETVAL: ['side-effect'],
  SYS_EXEC: ['program'],
  SYS_EVAL: ['program'],
  SYS_GET: ['admin'],
  SYS_SET: ['admin', 'side-effect'],
  LIB_MYSQLUDF_SYS_INFO: ['program'],
};

export function functionRisks(upperName: string): FunctionRisk[] {
  return RISKS[upperName] ?? [];
}

/**
 * Reserved and clause words: never an alias, a column reference or a function name.
 * Not the full reserved list; only words that can appear where an alias or identifier could.
 */
export const CLAUSE_WORDS = new Set([
  'ACCESSIBLE', 'ADD', 'ALL', 'ALTER', 'AND', 'ANY', 'AS', 'ASC', 'BETWEEN', 'BINARY', 'BY', 'CASE', 'CHECK', 'COLLATE',
  'CONSTRAINT', 'CROSS', 'DEFAULT', 'DELETE', 'DESC', 'DISTINCT', 'DISTINCTROW', 'DIV', 'DUAL', 'ELSE', 'END', 'ESCAPE',
  'EXCEPT', 'EXISTS', 'FALSE', 'FETCH', 'FOR', 'FORCE', 'FROM', 'FULL', 'GROUP', 'HAVING', 'IGNORE', 'IN', 'INNER',
  'INTERSECT', 'INTERVAL', 'INTO', 'IS', 'JOIN', 'KEY', 'LATERAL', 'LEFT', 'LIKE', 'LIMIT', 'LOCK', 'MOD', 'NATURAL', 'NOT',
  'NULL', 'OFFSET', 'ON', 'OR', 'ORDER', 'OUTER', 'OVER', 'PARTITION', 'PROCEDURE', 'REGEXP', 'RETURNING', 'RIGHT', 'RLIKE',
  'ROWS', 'SELECT', 'SET', 'SOME', 'STRAIGHT_JOIN', 'THEN', 'TRUE', 'UNION', 'UNKNOWN', 'UPDATE', 'USE', 'USING', 'VALUES',
  'WHEN', 'WHERE', 'WINDOW', 'WITH', 'XOR', 'RECURSIVE', 'INDEX', 'TABLE', 'SOUNDS', 'MINUS',
]);

/** Words that look like a call (`word (`) but are syntax, not functions. */
export const NOT_FUNCTIONS = new Set([
  ...[...CLAUSE_WORDS].filter((w) => w !== 'LEFT' && w !== 'RIGHT' && w !== 'MOD' && w !== 'DEFAULT'),
  'ROW', 'AGAINST', 'MATCH', 'PRIMARY', 'UNIQUE', 'FOREIGN', 'REFERENCES', 'CAST_AS', 'ARRAY', 'OF',
]);

/**
 * What a catalog knows of the functions a call may reach: the target database's stored
 * functions and the server's UDFs (upper case), and, where the server lists them (MariaDB 10.6+:
 * information_schema.SQL_FUNCTIONS and KEYWORDS), the names of its built-in functions.
 */
export interface KnownFunctions {
  stored: ReadonlySet<string>;
  builtins?: ReadonlySet<string>;
}

/**
 * Whether a call may run a stored function or a UDF. Their bodies are not analysed, and the
 * server does not enforce a routine's declared data access (READS SQL DATA may still write), so
 * such a call is code dbgov cannot follow: what it returns may be any column of any table, and
 * what it changes is unseen. A schema-qualified call is never a built-in. Where the built-ins are
 * known, any other name counts too: a function created after the catalog was read is unknown.
 */
export function runsStoredCode(fn: FunctionRef, known: KnownFunctions): boolean {
  if (fn.procedure) return false;
  if (fn.schema !== undefined) return true;
  const name = fn.name.toUpperCase();
  if (known.stored.has(name)) return true;
  return known.builtins !== undefined && !known.builtins.has(name) && !SPATIAL_BUILTINS.has(name);
}

/**
 * MariaDB's built-in spatial functions, which information_schema.SQL_FUNCTIONS does not list.
 * An unqualified call of a built-in name always runs the built-in, so listing them lets no
 * stored function through.
 */
const SPATIAL_BUILTINS = new Set(
  `GEOMETRYCOLLECTION LINESTRING MULTILINESTRING MULTIPOINT MULTIPOLYGON POINT POLYGON
  ST_GEOMFROMTEXT GEOMFROMTEXT ST_GEOMETRYFROMTEXT GEOMETRYFROMTEXT ST_GEOMCOLLFROMTEXT GEOMCOLLFROMTEXT
  ST_GEOMETRYCOLLECTIONFROMTEXT GEOMETRYCOLLECTIONFROMTEXT ST_LINEFROMTEXT LINEFROMTEXT ST_LINESTRINGFROMTEXT
  LINESTRINGFROMTEXT ST_MLINEFROMTEXT MLINEFROMTEXT MULTILINESTRINGFROMTEXT ST_MPOINTFROMTEXT MPOINTFROMTEXT
  MULTIPOINTFROMTEXT ST_MPOLYFROMTEXT MPOLYFROMTEXT MULTIPOLYGONFROMTEXT ST_POINTFROMTEXT POINTFROMTEXT ST_POLYFROMTEXT
  POLYFROMTEXT ST_POLYGONFROMTEXT POLYGONFROMTEXT ST_ASTEXT ASTEXT ST_ASWKT ASWKT ST_GEOMFROMWKB GEOMFROMWKB
  ST_GEOMETRYFROMWKB GEOMETRYFROMWKB ST_GEOMCOLLFROMWKB GEOMCOLLFROMWKB ST_GEOMETRYCOLLECTIONFROMWKB
  GEOMETRYCOLLECTIONFROMWKB ST_LINEFROMWKB LINEFROMWKB ST_LINESTRINGFROMWKB LINESTRINGFROMWKB ST_MLINEFROMWKB MLINEFROMWKB
  MULTILINESTRINGFROMWKB ST_MPOINTFROMWKB MPOINTFROMWKB MULTIPOINTFROMWKB ST_MPOLYFROMWKB MPOLYFROMWKB MULTIPOLYGONFROMWKB
  ST_POINTFROMWKB POINTFROMWKB ST_POLYFROMWKB POLYFROMWKB ST_POLYGONFROMWKB POLYGONFROMWKB ST_ASBINARY ASBINARY ST_ASWKB
  ASWKB ST_ASGEOJSON ST_GEOMFROMGEOJSON ST_BOUNDARY BOUNDARY ST_DIMENSION DIMENSION ST_ENVELOPE ENVELOPE ST_GEOMETRYN
  GEOMETRYN ST_GEOMETRYTYPE GEOMETRYTYPE ST_ISCLOSED ISCLOSED ST_ISEMPTY ISEMPTY ST_ISRING ISRING ST_ISSIMPLE ISSIMPLE
  ST_NUMGEOMETRIES NUMGEOMETRIES ST_RELATE ST_SRID SRID ST_X X ST_Y Y ST_AREA AREA ST_CENTROID CENTROID ST_EXTERIORRING
  EXTERIORRING ST_INTERIORRINGN INTERIORRINGN ST_NUMINTERIORRINGS NUMINTERIORRINGS ST_ENDPOINT ENDPOINT ST_LENGTH GLENGTH
  ST_NUMPOINTS NUMPOINTS ST_POINTN POINTN ST_STARTPOINT STARTPOINT ST_POINTONSURFACE POINTONSURFACE ST_CONTAINS CONTAINS
  ST_CROSSES CROSSES ST_DISJOINT DISJOINT ST_EQUALS EQUALS ST_INTERSECTS INTERSECTS ST_OVERLAPS OVERLAPS ST_TOUCHES
  TOUCHES ST_WITHIN WITHIN MBRCONTAINS MBRCOVEREDBY MBRDISJOINT MBREQUAL MBREQUALS MBRINTERSECTS MBROVERLAPS MBRTOUCHES
  MBRWITHIN ST_BUFFER BUFFER ST_CONVEXHULL CONVEXHULL ST_DIFFERENCE ST_INTERSECTION ST_SYMDIFFERENCE ST_UNION ST_DISTANCE
  ST_DISTANCE_SPHERE ST_SIMPLIFY ST_VALIDATE ST_ISVALID ST_LATFROMGEOHASH ST_LONGFROMGEOHASH ST_POINTFROMGEOHASH
  ST_GEOHASH ST_COLLECT`.split(/\s+/),
);
