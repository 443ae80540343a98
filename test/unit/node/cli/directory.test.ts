import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DirectoryError, checkDirectory, makeDirectory } from '../../../../node/cli/directory.js'

test('makeDirectory creates the missing levels with their mode, and takes a directory that exists', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-dir-'))
  try {
    const deep = join(dir, 'a', 'b', 'c')
    assert.deepEqual(checkDirectory(deep), [join(dir, 'a'), join(dir, 'a', 'b'), deep])
    makeDirectory(deep, 0o700)
    for (const d of [join(dir, 'a'), join(dir, 'a', 'b'), deep]) assert.equal(statSync(d).mode & 0o777, 0o700, d)
    assert.equal(statSync(dir).mode & 0o777, 0o700, 'an existing ancestor keeps its mode')
    assert.deepEqual(checkDirectory(deep), [])
    makeDirectory(deep)
    // through a symlink to a directory
    symlinkSync(join(dir, 'a'), join(dir, 'link'))
    makeDirectory(join(dir, 'link', 'd'))
    assert.ok(statSync(join(dir, 'a', 'd')).isDirectory())
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('what is not a directory on the path is named, before anything is made', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-dir-'))
  try {
    writeFileSync(join(dir, 'file'), '')
    assert.equal(spawnSync('mkfifo', [join(dir, 'fifo')]).status, 0)
    symlinkSync(join(dir, 'nothing'), join(dir, 'dangling'))
    symlinkSync(join(dir, 'loop-b'), join(dir, 'loop-a'))
    symlinkSync(join(dir, 'loop-a'), join(dir, 'loop-b'))
    mkdirSync(join(dir, 'shut'), 0o500)
    const rows: [string, string, RegExp][] = [
      [join(dir, 'file'), join(dir, 'file'), /is a regular file, not a directory/],
      [join(dir, 'file', 'x', 'y'), join(dir, 'file'), /is a regular file, not a directory/],
      [join(dir, 'fifo', 'x'), join(dir, 'fifo'), /is a FIFO, not a directory/],
      [join(dir, 'dangling', 'x'), join(dir, 'dangling'), /is a symlink to nothing/],
      [join(dir, 'loop-a', 'x'), join(dir, 'loop-a', 'x'), /is a symlink loop/],
      [join('/dev/null', 'x'), '/dev/null', /is a device, not a directory/],
    ]
    // root may create entries in a directory of mode 0500
    if (process.getuid?.() !== 0) rows.push([join(dir, 'shut', 'x'), join(dir, 'shut'), /is not writable/])
    for (const [target, at, reason] of rows) {
      assert.throws(
        () => makeDirectory(target),
        (e: unknown) => e instanceof DirectoryError && e.path === at && reason.test(e.message) && e.message.startsWith(at),
        target,
      )
    }
    assert.deepEqual(readdirSync(dir).sort(), ['dangling', 'fifo', 'file', 'loop-a', 'loop-b', 'shut'], 'nothing made')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
