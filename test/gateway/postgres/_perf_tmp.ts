import { spawnSync } from 'node:child_process';
import { createDatabase, dropDatabase, startGateway } from './harness.js';
const db = await createDatabase();
const gw = await startGateway({ database: db });
const bench = (port: number, extra: string[]) => {
  const r = spawnSync('pgbench', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', ...extra, db], { encoding: 'utf8' });
  return r.stdout + r.stderr;
};
bench(5432, ['-i', '-s', '1', '-q']);
for (const mode of ['simple', 'extended']) {
  const direct = bench(5432, ['-S', '-M', mode, '-c', '8', '-j', '2', '-T', '5', '-n']);
  const via = bench(gw.port, ['-S', '-M', mode, '-c', '8', '-j', '2', '-T', '5', '-n']);
  const tps = (s: string) => Number(/tps = ([\d.]+)/.exec(s)?.[1]);
  const lat = (s: string) => Number(/latency average = ([\d.]+)/.exec(s)?.[1]);
  console.log(via.slice(-600)); console.log(mode, 'direct', tps(direct), lat(direct), 'via', tps(via), lat(via), 'ratio', (tps(via) / tps(direct)).toFixed(2));
}
await gw.close();
await dropDatabase(db);
