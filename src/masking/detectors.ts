/**
 * Content detectors: find PII and secrets inside free text. Used by the scanner (`dbgov scan`),
 * the content safety net on unclassified columns, and error-message scrubbing.
 *
 * Each detector is a regular expression for candidates plus, where the format has one, a
 * checksum (Luhn, mod-97) or structural check, so ordinary numbers and words do not match.
 */
import { isIPv6 } from 'node:net';

export const DETECTOR_NAMES = ['email', 'phone', 'ssn', 'card', 'iban', 'ipv4', 'ipv6', 'jwt', 'aws-key', 'github-token', 'slack-token', 'api-key', 'private-key'] as const;
export type DetectorName = (typeof DETECTOR_NAMES)[number];

/** The mask class each detector's hits belong to. */
export const DETECTOR_CLASS: Record<DetectorName, 'email' | 'phone' | 'ssn' | 'card' | 'iban' | 'ip' | 'secret'> = {
  email: 'email',
  phone: 'phone',
  ssn: 'ssn',
  card: 'card',
  iban: 'iban',
  ipv4: 'ip',
  ipv6: 'ip',
  jwt: 'secret',
  'aws-key': 'secret',
  'github-token': 'secret',
  'slack-token': 'secret',
  'api-key': 'secret',
  'private-key': 'secret',
};

export interface DetectorHit {
  detector: DetectorName;
  start: number;
  end: number;
}

interface Detector {
  name: DetectorName;
  /** Global (g) expression; the check, when present, must accept the match. */
  re: RegExp;
  check?: (match: string) => boolean;
  /** Cheap precondition on the whole text, so most values skip the expression. */
  hint: RegExp | null;
}

/** Luhn checksum over the digits of s. */
export function luhnValid(s: string): boolean {
  let sum = 0;
  let double = false;
  let digits = 0;
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) continue;
    digits++;
    let d = c;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits > 0 && sum % 10 === 0;
}

/** ISO 13616 check: move the first four characters to the end, letters to numbers, mod 97 = 1. */
export function ibanValid(s: string): boolean {
  const iban = s.replace(/ /g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let rem = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    const v = code >= 65 ? String(code - 55) : ch;
    for (const d of v) rem = (rem * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return rem === 1;
}

/** Shannon entropy in bits per character. */
function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) h -= (n / s.length) * Math.log2(n / s.length);
  return h;
}

function cardCheck(m: string): boolean {
  const digits = m.replace(/[ -]/g, '');
  // Issuer prefixes (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay) keep order numbers and timestamps out.
  return digits.length >= 13 && digits.length <= 19 && /^(?:4|5[1-5]|2[2-7]|3[47]|3[0689]|6|35)/.test(digits) && luhnValid(digits);
}

const DETECTORS: readonly Detector[] = [
  { name: 'private-key', re: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|$)/g, hint: /-----BEGIN/ },
  { name: 'jwt', re: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}/g, hint: /eyJ/ },
  { name: 'aws-key', re: /\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b/g, hint: /A[KSGIR][IP]A/ },
  { name: 'github-token', re: /\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b/g, hint: /gh[pousr]_|github_pat_/ },
  { name: 'slack-token', re: /\bxox[abposr]-[A-Za-z0-9-]{10,}/g, hint: /xox/ },
  {
    name: 'api-key',
    // `sk_live_…`-style: a short lower-case prefix, then a long random-looking body.
    re: /\b[a-z]{2,10}_(?:(?:live|test|prod)_)?[A-Za-z0-9]{20,}\b/g,
    check: (m) => {
      const body = m.slice(m.lastIndexOf('_') + 1);
      return /[0-9]/.test(body) && /[A-Za-z]/.test(body) && entropy(body) >= 3.5;
    },
    hint: /_/,
  },
  { name: 'email', re: /\b[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b/g, hint: /@/ },
  { name: 'iban', re: /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b/g, check: ibanValid, hint: /[A-Z]{2}\d\d/ },
  { name: 'card', re: /(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])/g, check: cardCheck, hint: /\d{4}/ },
  // Dashed form only, excluding ranges never issued (000, 666, 9xx areas; 00 group; 0000 serial).
  { name: 'ssn', re: /(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])/g, hint: /\d-\d/ },
  {
    name: 'phone',
    // E.164 (+ and 8-15 digits) or a separated national number; bare digit runs are too ambiguous.
    re: /(?<![\w+])(?:\+[1-9]\d{7,14}|(?:\+\d{1,3}[ .-]?)?\(?\d{2,4}\)?[ .-]\d{3,4}[ .-]\d{3,4})(?![\w-])/g,
    check: (m) => {
      const digits = m.replace(/\D/g, '');
      return digits.length >= 9 && digits.length <= 15 && !/^(\d)\1+$/.test(digits);
    },
    hint: /\d{3}/,
  },
  {
    name: 'ipv4',
    re: /(?<![\d.])(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}(?![\d.])/g,
    hint: /\d\.\d/,
  },
  { name: 'ipv6', re: /(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])/g, check: (m) => m.length >= 3 && isIPv6(m) && m !== '::', hint: /:.*:/ },
];

const BY_NAME = new Map(DETECTORS.map((d) => [d.name, d]));

/**
 * Every hit in `text`, in order, without overlaps (earlier detectors in the list win: a JWT
 * is not also reported as an API key).
 */
export function detect(text: string, names: readonly DetectorName[] = DETECTOR_NAMES): DetectorHit[] {
  const hits: DetectorHit[] = [];
  for (const d of DETECTORS) {
    if (names !== DETECTOR_NAMES && !names.includes(d.name)) continue;
    if (d.hint && !d.hint.test(text)) continue;
    d.re.lastIndex = 0;
    for (let m = d.re.exec(text); m !== null; m = d.re.exec(text)) {
      if (m[0].length === 0) {
        d.re.lastIndex++;
        continue;
      }
      if (d.check && !d.check(m[0])) continue;
      const start = m.index;
      const end = start + m[0].length;
      if (hits.some((h) => start < h.end && end > h.start)) continue;
      hits.push({ detector: d.name, start, end });
    }
  }
  return hits.sort((a, b) => a.start - b.start);
}

/** Whether one detector finds anything in `text`. */
export function detects(name: DetectorName, text: string): boolean {
  const d = BY_NAME.get(name)!;
  if (d.hint && !d.hint.test(text)) return false;
  d.re.lastIndex = 0;
  for (let m = d.re.exec(text); m !== null; m = d.re.exec(text)) {
    if (m[0].length === 0) {
      d.re.lastIndex++;
      continue;
    }
    if (!d.check || d.check(m[0])) return true;
  }
  return false;
}

/** `text` with every hit replaced by `mask`. Returns the same string when nothing matched. */
export function redactDetected(text: string, mask = '****', names: readonly DetectorName[] = DETECTOR_NAMES): string {
  const hits = detect(text, names);
  if (hits.length === 0) return text;
  let out = '';
  let at = 0;
  for (const h of hits) {
    out += text.slice(at, h.start) + mask;
    at = h.end;
  }
  return out + text.slice(at);
}
