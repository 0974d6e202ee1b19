import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as ser from '../../../src/gateway/postgres/protocol/serializer.js';
import { codes, createDatabase, dropDatabase, RawClient, startGateway, type Gateway } from './harness.js';

let db: string;
let gw: Gateway;
before(async () => {
  db = await createDatabase();
  gw = await startGateway({ database: db, maxMessageBytes: 4096 });
});
after(async () => {
  await gw.close();
  await dropDatabase(db);
});

/** Sends bytes and waits until the gateway closes the session or stays quiet for a moment. */
async function feed(raw: RawClient, bytes: Buffer): Promise<void> {
  raw.send(bytes);
  await raw.until(-1, 150).catch(() => undefined);
  raw.end();
}

test('property: random bytes as the first packet or after startup never hurt the gateway', async () => {
  await fc.assert(
    fc.asyncProperty(fc.boolean(), fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.constantFrom(0x51, 0x50, 0x42, 0x45, 0x44, 0x43, 0x46, 0x64, 0x7a, 0x00), async (afterStartup, body, code) => {
      const raw = afterStartup ? await RawClient.session(gw.port, db) : await RawClient.open(gw.port);
      // Half the cases get a plausible header so the fuzz reaches the message decoders.
      const framed = body.length % 2 === 0 ? Buffer.concat([Buffer.from([code, 0, 0, (body.length + 4) >> 8, (body.length + 4) & 0xff]), body]) : Buffer.from(body);
      await feed(raw, framed);
    }),
    { numRuns: 60 },
  );
  const after = await RawClient.session(gw.port, db);
  after.send(ser.query('SELECT 1'));
  assert.equal(codes(await after.until(0x5a)), 'TDCZ', 'a normal client is still served');
  after.end();
});
