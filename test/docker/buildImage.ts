import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from '../helpers/fixtures.js'
import { mustRun, runCommand, tail } from './runCommand.js'

/**
 * Builds the repository's Dockerfile into a tag for the Docker end-to-end test, making sure first that the base
 * image is there: in the local image store, else pulled, else made by the command in
 * `TALLY_DOCKER_BASE_IMAGE_CMD` (for machines that cannot reach the registry; docs/operations.md, "Testing the
 * image"). A rebuild that replaces the tag removes the image it replaced, so repeated runs do not pile up images.
 */

/** The environment variable naming a shell command that builds the base image locally. */
export const BASE_IMAGE_CMD_ENV = 'TALLY_DOCKER_BASE_IMAGE_CMD'

/** The image every stage of the Dockerfile starts `FROM` (the first `FROM` line names it). */
export function baseImageOf(dockerfile: string): string {
  const m = /^FROM\s+(\S+)/im.exec(dockerfile)
  if (m === null || m[1] === undefined) throw new Error('the Dockerfile has no FROM line')
  return m[1]
}

async function imageId(ref: string): Promise<string | undefined> {
  const r = await runCommand('docker', ['image', 'inspect', '--format', '{{.Id}}', ref], { timeoutMs: 30_000 })
  return r.code === 0 ? r.stdout.trim() : undefined
}

/** Makes `image` present locally: already there, pulled, or built by the command in {@link BASE_IMAGE_CMD_ENV}. */
async function ensureBaseImage(image: string, log: (s: string) => void): Promise<void> {
  if ((await imageId(image)) !== undefined) return
  log(`${image} is not in the local image store: docker pull ${image}`)
  const pull = await runCommand('docker', ['pull', image], { timeoutMs: 10 * 60_000 })
  if (pull.code === 0) return
  const cmd = process.env[BASE_IMAGE_CMD_ENV]
  if (cmd === undefined || cmd.trim() === '') {
    throw new Error(
      `${image} is not in the local image store and docker pull failed:\n${tail(pull.stderr, 5)}\n` +
        `load it (docker load), or set ${BASE_IMAGE_CMD_ENV} to a command that builds a stand-in tagged ${image}`,
    )
  }
  log(`docker pull failed; building ${image} with ${BASE_IMAGE_CMD_ENV}: ${cmd}`)
  await mustRun('sh', ['-c', cmd], { timeoutMs: 20 * 60_000 })
  if ((await imageId(image)) === undefined) throw new Error(`${BASE_IMAGE_CMD_ENV} finished but ${image} is still missing`)
}

/** Builds the repository's image as `tag`; returns the image id. */
export async function buildImage(tag: string, log: (s: string) => void): Promise<string> {
  await ensureBaseImage(baseImageOf(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8')), log)
  const before = await imageId(tag)
  await mustRun('docker', ['build', '--tag', tag, repoRoot], { timeoutMs: 20 * 60_000 })
  const after = await imageId(tag)
  if (after === undefined) throw new Error(`docker build succeeded but ${tag} is missing`)
  if (before !== undefined && before !== after) {
    // the replaced image, now untagged; still in use by a container, it stays, which is harmless
    await runCommand('docker', ['image', 'rm', before], { timeoutMs: 60_000 })
  }
  return after
}
