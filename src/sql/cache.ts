/**
 * Statement facts cached by exact text. The extended protocol sends the same text over and over;
 * a hit must cost no more than a Map lookup and a re-insert (LRU order is the Map's order).
 */
import type { MessageAnalysis } from './facts.js';

export interface FactsCache {
  /** Cached analysis for `text`, or the result of `analyse(text)`, which is then cached. */
  get(text: string, analyse: (text: string) => MessageAnalysis): MessageAnalysis;
  /** Forget everything, e.g. after the catalog changed what names resolve to. */
  clear(): void;
  readonly size: number;
}

export function createFactsCache(maxEntries: number): FactsCache {
  const entries = new Map<string, MessageAnalysis>();
  return {
    get(text, analyse) {
      const hit = entries.get(text);
      if (hit !== undefined) {
        // Re-inserting moves the key to the end: the Map's insertion order is the LRU order.
        entries.delete(text);
        entries.set(text, hit);
        return hit;
      }
      const fresh = analyse(text);
      entries.set(text, fresh);
      if (entries.size > maxEntries) {
        const oldest = entries.keys().next();
        if (!oldest.done) entries.delete(oldest.value);
      }
      return fresh;
    },
    clear() {
      entries.clear();
    },
    get size() {
      return entries.size;
    },
  };
}
