// What some tests need from outside npm: Chromium, a Vulkan driver, Python with the
// oracles' modules, the real model's file. Where one is missing, the tests that need it
// skip with one line that names it and how to get it; under CI=true, where .ci/run
// installs them all, a missing one fails instead. Each component has one helper beside
// the code that uses it (chromiumSkip, webgpuSkip, pythonSkip, smollm2Skip), all through
// skipWithout here.
//
// AFD_TEST_ASSUME_MISSING=chromium,vulkan,python,smollm2 (any of them) makes components
// look missing, to check the skips on a machine that has them.

export type ComponentKey = 'chromium' | 'vulkan' | 'python' | 'smollm2';
const KEYS: readonly ComponentKey[] = ['chromium', 'vulkan', 'python', 'smollm2'];

export interface Component {
  /** The name AFD_TEST_ASSUME_MISSING uses. */
  key: ComponentKey;
  /** What it is, as the notice names it: "Chromium", "python3 with torch, transformers". */
  name: string;
  /** How it is missing here ("there is no /usr/bin/chromium"), or false where it is present. */
  absence(): string | false;
  /** How to get it: a command, or where to read. */
  howToGet: string;
}

const absences = new Map<string, string | false>();
const noticed = new Set<string>();

/**
 * A skip reason for node:test when `component` is missing, or false; `tests` names the
 * tests in the notice ("renderer component tests"). Under CI=true a missing component
 * throws. The check runs once per component name and process.
 */
export function skipWithout(component: Component, tests: string): string | false {
  let absence = absences.get(component.name);
  if (absence === undefined) {
    absence = assumedMissing().has(component.key) ? `AFD_TEST_ASSUME_MISSING=${process.env.AFD_TEST_ASSUME_MISSING}` : component.absence();
    absences.set(component.name, absence);
  }
  if (absence === false) return false;
  const reason = `${component.name} is missing (${absence}); ${component.howToGet}`;
  if (process.env.CI === 'true') throw new Error(`CI=true, so the ${tests} must run, but ${reason}`);
  const notice = `# notice: skipping the ${tests}: ${reason}`;
  if (!noticed.has(notice)) console.log(notice);
  noticed.add(notice);
  return reason;
}

function assumedMissing(): Set<ComponentKey> {
  const listed = (process.env.AFD_TEST_ASSUME_MISSING ?? '').split(',').map((k) => k.trim()).filter((k) => k !== '');
  const unknown = listed.filter((k) => !(KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) throw new Error(`AFD_TEST_ASSUME_MISSING names ${unknown.map((k) => `"${k}"`).join(', ')}; the components are ${KEYS.join(', ')}.`);
  return new Set(listed as ComponentKey[]);
}
