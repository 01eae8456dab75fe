// The studio's version, for `afd doctor`, the status bar and diagnostics.
import { readFileSync } from 'node:fs';

/** The version in package.json. */
export function studioVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
