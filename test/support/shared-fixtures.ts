/**
 * @module test/support/shared-fixtures
 * Where the project's shared QEMU 7.2 dumps live (`../shared/fixtures/qemu-7.2`, beside the clone),
 * and one clear failure when they are not there, instead of an ENOENT from deep inside a test.
 */

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** The shared fixtures folder, relative to the repository root (where the tests run). */
export const SHARED_FIXTURES = '../shared/fixtures/qemu-7.2';

/** The message a test without the shared fixtures fails with. */
export function missingSharedMessage(): string {
  return (
    `the shared QEMU 7.2 fixtures are missing: ${resolve(SHARED_FIXTURES)} does not exist. ` +
    "These tests read the project's shared dumps from ../shared/fixtures/qemu-7.2 beside the " +
    'clone; put that folder there (the dumps in fixtures/qemu-7.2 are used where they suffice).'
  );
}

/** `SHARED_FIXTURES/sub`, or a thrown Error naming the missing folder. */
export function sharedFixture(sub = ''): string {
  if (!existsSync(SHARED_FIXTURES)) throw new Error(missingSharedMessage());
  return sub ? `${SHARED_FIXTURES}/${sub}` : SHARED_FIXTURES;
}
