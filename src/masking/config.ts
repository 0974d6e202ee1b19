/**
 * The `masking:` section of dbgov.yaml: its published JSON Schema and its compiler.
 *
 * ```yaml
 * masking:
 *   key: "${env:DBGOV_MASK_KEY}"      # one per deployment: hash tokens and fakes are keyed by it
 *   onUnprovable: mask                 # or block: what to do when lineage cannot prove a column safe
 *   classes:                           # override built-in classes or add custom ones
 *     email: { function: partial }
 *     customer_ref: { function: hash, like: text }
 *   columns:
 *     public.users.email: email
 *     "*.*.password": secret
 *     billing.cards.pan: { class: card, targets: [prod] }
 *   unmask:
 *     - { groups: [support], classes: [email, phone] }
 *   contentScan: { targets: [prod] }
 * ```
 */
import { ConfigError } from '../shared/errors.js';
import type { IdentityRef } from '../shared/types.js';
import { DETECTOR_NAMES, type DetectorName } from './detectors.js';

export const MASK_FUNCTIONS = ['redact', 'partial', 'hash', 'null', 'fake'] as const;
export type MaskFunctionName = (typeof MASK_FUNCTIONS)[number];

/** Value shapes that partial masking and fake values know how to preserve. */
export const SHAPES = ['email', 'phone', 'ssn', 'card', 'name', 'address', 'secret', 'ip', 'iban', 'text'] as const;
export type Shape = (typeof SHAPES)[number];

export const BUILTIN_CLASSES = ['email', 'phone', 'ssn', 'card', 'name', 'address', 'secret', 'ip', 'iban'] as const;
export type BuiltinClass = (typeof BUILTIN_CLASSES)[number];

export interface MaskOptions {
  /** redact: the text that replaces the value. */
  replacement: string;
  /** partial: how many trailing digits (card, phone, ssn, iban) or characters (text) stay clear. */
  keepLast: number;
  /** hash: hex characters of the HMAC kept in the token. */
  length: number;
  /** hash: token prefix, so a reader sees it is not the real value. */
  prefix: string;
}

export interface MaskClass {
  name: string;
  function: MaskFunctionName;
  shape: Shape;
  options: MaskOptions;
}

export interface ColumnRule {
  /** As written in the config, for messages and audit. */
  pattern: string;
  parts: [RegExp, RegExp, RegExp];
  className: string;
  /** A per-column function overriding the class default. */
  function: MaskFunctionName | null;
  /** Only on these targets; null means every target. */
  targets: ReadonlySet<string> | null;
}

export interface UnmaskRule {
  groups: ReadonlySet<string>;
  /** null means every class. */
  classes: ReadonlySet<string> | null;
  targets: ReadonlySet<string> | null;
  /** Agents stay masked unless a rule says so explicitly. */
  agents: boolean;
}

export interface ContentScanConfig {
  /** null means every target. */
  targets: ReadonlySet<string> | null;
  detectors: readonly DetectorName[];
}

export interface MaskingConfig {
  /** HMAC key for hash tokens and fake values; null when no class needs one. */
  key: Buffer | null;
  onUnprovable: 'mask' | 'block';
  classes: ReadonlyMap<string, MaskClass>;
  columns: readonly ColumnRule[];
  unmask: readonly UnmaskRule[];
  contentScan: ContentScanConfig | null;
}

/** What a classified column resolves to for one target. */
export interface ColumnClassification {
  cls: MaskClass;
  function: MaskFunctionName;
  rule: string;
}

const DEFAULT_OPTIONS: MaskOptions = { replacement: '****', keepLast: 4, length: 16, prefix: 'tok_' };

/** Built-in defaults: partial where a fragment is useful to a person and safe, redact otherwise. */
const BUILTIN_DEFAULTS: Record<BuiltinClass, MaskFunctionName> = {
  email: 'partial',
  phone: 'partial',
  ssn: 'redact',
  card: 'partial',
  name: 'redact',
  address: 'redact',
  secret: 'redact',
  ip: 'redact',
  iban: 'partial',
};

const stringList = (description: string) => ({ type: 'array', items: { type: 'string', minLength: 1 }, description });

/** JSON Schema (draft-07) fragment for the `masking:` key. */
export const maskingJsonSchema = {
  type: 'object',
  description: 'Data classification and dynamic masking of result rows, COPY output and error texts.',
  additionalProperties: false,
  properties: {
    key: {
      type: 'string',
      minLength: 16,
      description: 'Deployment key (at least 16 characters) for hash tokens and fake values. Same key, same token: joins and GROUP BY on hashed columns keep working. Use "${env:DBGOV_MASK_KEY}".',
    },
    onUnprovable: {
      type: 'string',
      enum: ['mask', 'block'],
      default: 'mask',
      description: 'A derived column whose lineage cannot be proven free of classified data: mask it (redact) or block the statement.',
    },
    classes: {
      type: 'object',
      description: `Mask classes. Built-in: ${BUILTIN_CLASSES.join(', ')}. Any other name defines a custom class.`,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          function: { type: 'string', enum: [...MASK_FUNCTIONS], description: 'redact: fixed text; partial: keep the email domain or last digits; hash: keyed deterministic token; null: SQL NULL; fake: format-preserving fake value.' },
          like: { type: 'string', enum: [...SHAPES], description: 'Custom classes: the value shape partial and fake masking should preserve. Default text.' },
          replacement: { type: 'string', description: 'redact: the replacement text. Default ****.' },
          keepLast: { type: 'integer', minimum: 0, maximum: 8, description: 'partial: trailing digits or characters kept. Default 4.' },
          length: { type: 'integer', minimum: 8, maximum: 64, description: 'hash: hex characters in the token. Default 16.' },
          prefix: { type: 'string', description: 'hash: token prefix. Default tok_.' },
        },
      },
    },
    columns: {
      type: 'object',
      description: 'schema.table.column (each part may use * and ?) → class name, or {class, function, targets}.',
      additionalProperties: {
        oneOf: [
          { type: 'string', minLength: 1 },
          {
            type: 'object',
            additionalProperties: false,
            required: ['class'],
            properties: {
              class: { type: 'string', minLength: 1 },
              function: { type: 'string', enum: [...MASK_FUNCTIONS], description: 'Overrides the class function for this column.' },
              targets: stringList('Only on these targets. Default: every target.'),
            },
          },
        ],
      },
    },
    unmask: {
      type: 'array',
      description: 'Who sees clear values. Agents never do unless a rule sets agents: true.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['groups'],
        properties: {
          groups: stringList('Identity groups this rule applies to.'),
          classes: stringList('Classes shown in clear. Default: every class.'),
          targets: stringList('Only on these targets. Default: every target.'),
          agents: { type: 'boolean', default: false, description: 'Let identities of kind agent in these groups see clear values too.' },
        },
      },
    },
    contentScan: {
      type: 'object',
      additionalProperties: false,
      description: 'Safety net: run detectors over text values of unclassified columns and mask what they find.',
      properties: {
        targets: stringList('Targets to scan. Default: every target.'),
        detectors: { type: 'array', items: { type: 'string', enum: [...DETECTOR_NAMES] }, description: 'Detectors to run. Default: all.' },
      },
    },
  },
} as const;

export interface MaskingSource {
  file: string;
  /** Line of the value at a path from the document root (`['masking', 'columns', …]`). */
  lineOf?(path: (string | number)[]): number | undefined;
}

type Path = (string | number)[];

/** Validates and compiles the raw `masking:` section. Throws ConfigError with file, line and fix. */
export function compileMasking(raw: unknown, source: MaskingSource = { file: 'dbgov.yaml' }): MaskingConfig {
  const fail = (path: Path, problem: string, fix: string): never => {
    throw new ConfigError(source.file, source.lineOf?.(['masking', ...path]), `masking${path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('')}: ${problem}`, fix);
  };
  const obj = (v: unknown, path: Path, what: string): Record<string, unknown> => {
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) fail(path, `expected ${what} (a mapping)`, `write ${what} as "key: value" lines under it`);
    return v as Record<string, unknown>;
  };
  const known = (o: Record<string, unknown>, path: Path, keys: readonly string[]): void => {
    for (const k of Object.keys(o)) if (!keys.includes(k)) fail([...path, k], `unknown key "${k}"`, `use one of: ${keys.join(', ')}`);
  };
  const strings = (v: unknown, path: Path): string[] | null => {
    if (v === undefined) return null;
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s === '')) fail(path, 'expected a list of names', 'write it as [a, b]');
    return v as string[];
  };
  const fnName = (v: unknown, path: Path): MaskFunctionName => {
    if (typeof v !== 'string' || !(MASK_FUNCTIONS as readonly string[]).includes(v)) fail(path, `unknown function ${JSON.stringify(v)}`, `use one of: ${MASK_FUNCTIONS.join(', ')}`);
    return v as MaskFunctionName;
  };

  const root = obj(raw, [], 'the masking section');
  known(root, [], ['key', 'onUnprovable', 'classes', 'columns', 'unmask', 'contentScan']);

  const onUnprovable = root.onUnprovable ?? 'mask';
  if (onUnprovable !== 'mask' && onUnprovable !== 'block') fail(['onUnprovable'], `unknown value ${JSON.stringify(onUnprovable)}`, 'use mask or block');

  const classes = new Map<string, MaskClass>();
  for (const name of BUILTIN_CLASSES) classes.set(name, { name, function: BUILTIN_DEFAULTS[name], shape: name, options: DEFAULT_OPTIONS });
  for (const [name, v] of Object.entries(obj(root.classes, ['classes'], 'classes'))) {
    const path = ['classes', name];
    const c = obj(v, path, `class ${name}`);
    known(c, path, ['function', 'like', 'replacement', 'keepLast', 'length', 'prefix']);
    const builtin = classes.get(name);
    const like = c.like ?? builtin?.shape ?? 'text';
    if (typeof like !== 'string' || !(SHAPES as readonly string[]).includes(like)) fail([...path, 'like'], `unknown shape ${JSON.stringify(like)}`, `use one of: ${SHAPES.join(', ')}`);
    const int = (key: 'keepLast' | 'length', min: number, max: number): number => {
      const n = c[key] ?? DEFAULT_OPTIONS[key];
      if (!Number.isInteger(n) || (n as number) < min || (n as number) > max) fail([...path, key], `${key} must be a whole number from ${min} to ${max}`, `set ${key}: ${DEFAULT_OPTIONS[key]}`);
      return n as number;
    };
    const str = (key: 'replacement' | 'prefix'): string => {
      const s = c[key] ?? DEFAULT_OPTIONS[key];
      if (typeof s !== 'string') fail([...path, key], `${key} must be text`, `quote it: ${key}: "${DEFAULT_OPTIONS[key]}"`);
      return s as string;
    };
    classes.set(name, {
      name,
      function: c.function === undefined ? (builtin?.function ?? 'redact') : fnName(c.function, [...path, 'function']),
      shape: like as Shape,
      options: { replacement: str('replacement'), keepLast: int('keepLast', 0, 8), length: int('length', 8, 64), prefix: str('prefix') },
    });
  }

  const columns: ColumnRule[] = [];
  for (const [pattern, v] of Object.entries(obj(root.columns, ['columns'], 'columns'))) {
    const path = ['columns', pattern];
    const parts = pattern.split('.');
    if (parts.length !== 3 || parts.some((p) => p === '')) fail(path, `"${pattern}" is not schema.table.column`, `write it in three parts, e.g. public.users.email or *.users.email`);
    const spec = typeof v === 'string' ? { class: v } : obj(v, path, `column ${pattern}`);
    known(spec, path, ['class', 'function', 'targets']);
    const className = spec.class;
    if (typeof className !== 'string' || !classes.has(className)) {
      fail(typeof v === 'string' ? path : [...path, 'class'], `unknown class ${JSON.stringify(className)}`, `use one of: ${[...classes.keys()].join(', ')}, or define it under masking.classes`);
    }
    const targets = strings(spec.targets, [...path, 'targets']);
    columns.push({
      pattern,
      parts: parts.map(globToRegExp) as [RegExp, RegExp, RegExp],
      className: className as string,
      function: spec.function === undefined ? null : fnName(spec.function, [...path, 'function']),
      targets: targets && new Set(targets),
    });
  }

  const unmaskRaw = root.unmask ?? [];
  if (!Array.isArray(unmaskRaw)) fail(['unmask'], 'expected a list of rules', 'write each rule as "- { groups: [support], classes: [email] }"');
  const unmask = (unmaskRaw as unknown[]).map((v, i): UnmaskRule => {
    const path = ['unmask', i];
    const r = obj(v, path, 'an unmask rule');
    known(r, path, ['groups', 'classes', 'targets', 'agents']);
    const groups = strings(r.groups, [...path, 'groups']);
    if (!groups || groups.length === 0) fail([...path, 'groups'], 'an unmask rule needs at least one group', 'add groups: [your-group]');
    const cls = strings(r.classes, [...path, 'classes']);
    for (const [j, c] of (cls ?? []).entries()) if (!classes.has(c)) fail([...path, 'classes', j], `unknown class "${c}"`, `use one of: ${[...classes.keys()].join(', ')}`);
    if (r.agents !== undefined && typeof r.agents !== 'boolean') fail([...path, 'agents'], 'agents must be true or false', 'write agents: true');
    const targets = strings(r.targets, [...path, 'targets']);
    return { groups: new Set(groups), classes: cls && new Set(cls), targets: targets && new Set(targets), agents: r.agents === true };
  });

  let contentScan: ContentScanConfig | null = null;
  if (root.contentScan !== undefined && root.contentScan !== false) {
    const path = ['contentScan'];
    const s = root.contentScan === true ? {} : obj(root.contentScan, path, 'contentScan');
    known(s, path, ['targets', 'detectors']);
    const detectors = strings(s.detectors, [...path, 'detectors']) ?? [...DETECTOR_NAMES];
    for (const [j, d] of detectors.entries()) if (!(DETECTOR_NAMES as readonly string[]).includes(d)) fail([...path, 'detectors', j], `unknown detector "${d}"`, `use one of: ${DETECTOR_NAMES.join(', ')}`);
    const targets = strings(s.targets, [...path, 'targets']);
    contentScan = { targets: targets && new Set(targets), detectors: detectors as DetectorName[] };
  }

  let key: Buffer | null = null;
  if (root.key !== undefined) {
    if (typeof root.key !== 'string' || root.key.length < 16) fail(['key'], 'the key must be text of at least 16 characters', 'generate one with `openssl rand -hex 32` and set key: "${env:DBGOV_MASK_KEY}"');
    key = Buffer.from(root.key as string, 'utf8');
  }
  const keyed = [...classes.values()].some((c) => c.function === 'hash' || c.function === 'fake') || columns.some((c) => c.function === 'hash' || c.function === 'fake');
  if (keyed && key === null) fail(['key'], 'hash and fake masking need a deployment key', 'generate one with `openssl rand -hex 32`, export DBGOV_MASK_KEY, and set key: "${env:DBGOV_MASK_KEY}"');

  return { key, onUnprovable: onUnprovable as 'mask' | 'block', classes, columns, unmask, contentScan };
}

/** `*` matches any run of characters within one part, `?` one character; case-insensitive. */
function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/**
 * The classification of one column on one target, or null. A missing schema (unqualified lineage)
 * matches any schema: guessing the wrong schema would leave a classified column in clear.
 */
export function classifyColumn(config: MaskingConfig, target: string, schema: string | undefined, table: string, column: string): ColumnClassification | null {
  for (const rule of config.columns) {
    if (rule.targets && !rule.targets.has(target)) continue;
    if (schema !== undefined && !rule.parts[0].test(schema)) continue;
    if (!rule.parts[1].test(table) || !rule.parts[2].test(column)) continue;
    const cls = config.classes.get(rule.className)!;
    return { cls, function: rule.function ?? cls.function, rule: rule.pattern };
  }
  return null;
}

/** Every classification a table may hold: for `*`, whole-row references and "touches a classified table". */
export function classifyTable(config: MaskingConfig, target: string, schema: string | undefined, table: string): ColumnClassification[] {
  const out: ColumnClassification[] = [];
  for (const rule of config.columns) {
    if (rule.targets && !rule.targets.has(target)) continue;
    if (schema !== undefined && !rule.parts[0].test(schema)) continue;
    if (!rule.parts[1].test(table)) continue;
    const cls = config.classes.get(rule.className)!;
    out.push({ cls, function: rule.function ?? cls.function, rule: rule.pattern });
  }
  return out;
}

/**
 * Whether this identity may see this class in clear on this target. `approved` lists classes an
 * approval unmasked for this statement.
 */
export function mayUnmask(config: MaskingConfig, identity: IdentityRef, target: string, className: string, approved?: readonly string[]): boolean {
  if (approved?.includes(className)) return true;
  for (const rule of config.unmask) {
    // Agents are excluded unless the rule opts in: a group shared with a person must not leak to their bot.
    if (identity.kind === 'agent' && !rule.agents) continue;
    if (rule.targets && !rule.targets.has(target)) continue;
    if (rule.classes && !rule.classes.has(className)) continue;
    if (identity.groups.some((g) => rule.groups.has(g))) return true;
  }
  return false;
}

export function contentScanOn(config: MaskingConfig, target: string): boolean {
  return config.contentScan !== null && (config.contentScan.targets === null || config.contentScan.targets.has(target));
}
