/**
 * Statement facts cached by exact text. The extended protocol sends the same text over and over;
 * a hit must cost no more than a Map lookup. Eviction is first-in-first-out.
 */
import type { MessageAnalysis, StatementFacts } from './facts.js';

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
      // A hit is a plain lookup (no LRU reordering, which cost more than the lookup itself);
      // eviction is first-in-first-out, and a hot statement evicted is simply analysed again.
      if (hit !== undefined) return hit;
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

/**
 * Whether two analyses report the same facts, apart from `text` and the other given members of
 * each statement: how a literal-normalised shape is checked against a text it stands for.
 */
export function sameFacts(a: MessageAnalysis, b: MessageAnalysis, ignore: readonly (keyof StatementFacts)[] = ['text']): boolean {
  const view = (x: MessageAnalysis): string =>
    JSON.stringify(
      x.statements.map((f) => {
        const rest: Partial<StatementFacts> = { ...f };
        for (const k of ignore) delete rest[k];
        return rest;
      }),
    );
  return view(a) === view(b);
}
