import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root (tests run compiled from dist/test/…). */
export const repoRoot = join(fileURLToPath(import.meta.url), '..', '..', '..', '..')

/** Reads and parses a JSON file under test/fixtures. */
export function loadFixture<T = unknown>(relativePath: string): T {
  return JSON.parse(readFileSync(join(repoRoot, 'test', 'fixtures', relativePath), 'utf8')) as T
}
