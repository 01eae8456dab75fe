import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { test } from 'node:test';
import { isLiveOwner, isLivePid, parseOwner, processOwner } from './owner.ts';

test('an owner is live while its process runs, on this host, in this boot', () => {
  const me = processOwner();
  assert.deepEqual(parseOwner(me)?.pid, process.pid);
  assert.equal(parseOwner(me)?.host, hostname());
  assert.equal(isLiveOwner(me), true);
  const child = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  const gone = Number(child.stdout.trim());
  assert.equal(isLivePid(gone), false);
  assert.equal(isLiveOwner(processOwner(gone)), false);
  const o = parseOwner(me)!;
  assert.equal(isLiveOwner(`other-host|${o.boot}|${process.pid}`), false);
  assert.equal(isLiveOwner(`${o.host}|${o.boot - 86_400}|${process.pid}`), false, 'the same pid in an earlier boot is another process');
  assert.equal(isLiveOwner('garbage'), false);
  assert.equal(parseOwner('a|b|c|123|45')?.host, 'a|b|c'); // a host name with | still parses
});
