import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startupSettings } from '../../../src/gateway/postgres/startup-settings.js';

describe('startupSettings: a startup packet read as the server reads it', () => {
  const cases: { name: string; params: [string, string][]; settings: [string, string][]; dropped?: string[] }[] = [
    { name: 'the last of two switches wins', params: [['options', '-c search_path=a -c search_path=b']], settings: [['search_path', 'b']] },
    { name: 'names fold case and dashes', params: [['options', '-c SEARCH-PATH=a --Statement-Timeout=5s -cdatestyle=ISO']], settings: [['search_path', 'a'], ['statement_timeout', '5s'], ['datestyle', 'ISO']] },
    { name: 'a backslash keeps a space in a value', params: [['options', '-c search_path=a,\\ b']], settings: [['search_path', 'a, b']] },
    { name: 'an escaped space does not start a new switch', params: [['options', '-c application_name=x\\ -c\\ search_path=b']], settings: [['application_name', 'x -c search_path=b']] },
    { name: 'packet fields come after options, and fold case', params: [['Search_Path', 'b'], ['options', '-c search_path=a']], settings: [['search_path', 'b']] },
    { name: 'user, database never become settings', params: [['user', 'u'], ['database', 'd']], settings: [] },
    { name: 'one unknown switch drops the whole options', params: [['options', '-c search_path=a -c role=postgres']], settings: [], dropped: ['options'] },
    { name: 'a switch with no value', params: [['options', '-c search_path']], settings: [], dropped: ['options'] },
    { name: 'other getopt switches', params: [['options', '-e -c search_path=a']], settings: [], dropped: ['options'] },
    { name: 'replication and unknown fields are dropped', params: [['replication', 'database'], ['session_authorization', 'postgres'], ['_pq_.x', '1']], settings: [], dropped: ['replication', 'session_authorization', '_pq_.x'] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const out = startupSettings(new Map(c.params));
      assert.deepEqual([...out.settings], c.settings);
      assert.deepEqual(out.dropped, c.dropped ?? []);
    });
  }
});
