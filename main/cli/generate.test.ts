// `afd generate` with the embedded model, as a user runs it: the response alone on stdout,
// the phases of the wait (reading the weights, preparing, generating, the first token's
// time) on stderr, one line each when stderr is not a terminal.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const AFD = fileURLToPath(new URL('../../bin/afd.js', import.meta.url));

test('afd generate prints the response on stdout and its phases on stderr', () => {
  const r = spawnSync(process.execPath, [AFD, 'generate', '--prompt', 'Human: How are you?\n\nAssistant:', '--greedy', '--max-new-tokens', '6', '--provider', 'cpu'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 5, r.stderr);
  assert.match(lines[0], /^Read default \(\d+(\.\d)? MB\) in \d+\.\d s$/);
  assert.equal(lines[1], "Preparing default: building its graph and ONNX Runtime session...");
  assert.match(lines[2], /^Prepared default in \d+\.\d s \(1 ONNX Runtime session built\)$/);
  assert.match(lines[3], /^Generating \(\d+ prompt tokens\)\.\.\.$/);
  assert.match(lines[4], /^[1-6] tokens? in \d+\.\d\d s, the first after \d+\.\d\d s \(\d+\.\d tokens\/s; finished: (length|eos)\)$/);
  assert.ok(r.stdout.endsWith('\n') && r.stdout.trim().length > 0, 'the response, on stdout only');
  assert.doesNotMatch(r.stdout, /Read |Prepar|Generating/);
});
