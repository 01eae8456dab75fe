import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultDatabasePath } from './open-studio.ts';

test('the default database lives in the platform folder for application data', () => {
  assert.equal(defaultDatabasePath({ XDG_DATA_HOME: '/data' }, 'linux', '/home/u'), '/data/afd-studio/studio.db');
  assert.equal(defaultDatabasePath({}, 'linux', '/home/u'), '/home/u/.local/share/afd-studio/studio.db');
  assert.equal(defaultDatabasePath({ XDG_DATA_HOME: 'relative' }, 'linux', '/home/u'), '/home/u/.local/share/afd-studio/studio.db');
  assert.equal(defaultDatabasePath({}, 'darwin', '/Users/u'), '/Users/u/Library/Application Support/AfD Studio/studio.db');
  assert.equal(defaultDatabasePath({ APPDATA: 'C:\\Users\\u\\AppData\\Roaming' }, 'win32', 'C:\\Users\\u'), 'C:\\Users\\u\\AppData\\Roaming\\AfD Studio\\studio.db');
});
