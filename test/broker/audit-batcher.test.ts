import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuditEvent, AuditEventInput } from '../../src/audit/event.js';
import { AuditBatcher } from '../../src/broker/audit-batcher.js';
import { silentLogger } from '../../src/shared/logger.js';
import type { AuditLog } from '../../src/store/store.js';

/** An audit log that records each write (one appendManySync call) and can be made to fail. */
function fakeLog(): { log: AuditLog & { appendManySync(inputs: AuditEventInput[]): AuditEvent[] }; writes: string[][]; fail: { now: boolean } } {
  const writes: string[][] = [];
  const fail = { now: false };
  let seq = 0;
  const toEvent = (i: AuditEventInput): AuditEvent => ({ ...i, seq: ++seq, id: `evt_${seq}`, time: '', broker: 'b', prevHash: '', hash: '' }) as unknown as AuditEvent;
  const appendManySync = (inputs: AuditEventInput[]): AuditEvent[] => {
    if (fail.now) throw new Error('disk full');
    writes.push(inputs.map((i) => String(i.detail?.name)));
    return inputs.map(toEvent);
  };
  const log = { appendSync: (i: AuditEventInput) => appendManySync([i])[0], appendManySync } as unknown as AuditLog & { appendManySync: typeof appendManySync };
  return { log, writes, fail };
}

const input = (name: string): AuditEventInput => ({ kind: 'statement', identity: null, target: null, database: null, sessionId: null, detail: { name } });
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('audit batcher', () => {
  it('writes the decisions queued in one event-loop turn together, after pending outcomes, then lets each statement go', async () => {
    const { log, writes } = fakeLog();
    const b = new AuditBatcher(log, silentLogger);
    const done: string[] = [];
    b.later(input('outcome-1'));
    b.soon(input('decision-a'), (ev) => done.push(`a:${ev?.id}`));
    b.soon(input('decision-b'), (ev) => done.push(`b:${ev?.id}`));
    assert.deepEqual(done, [], 'nothing is released before the write');
    await turn();
    assert.deepEqual(writes, [['outcome-1', 'decision-a', 'decision-b']]);
    assert.deepEqual(done, ['a:evt_2', 'b:evt_3']);
  });

  it('refuses every waiting statement when the write fails', async () => {
    const { log, fail } = fakeLog();
    const b = new AuditBatcher(log, silentLogger);
    const got: unknown[] = [];
    fail.now = true;
    b.soon(input('decision'), (ev, err) => got.push(ev ?? (err as Error).message));
    await turn();
    assert.deepEqual(got, ['disk full']);
  });
});
