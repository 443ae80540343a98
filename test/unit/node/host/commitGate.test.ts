import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CommitGate } from '../../../../node/host/commitGate.js'

/** A promise and the function that settles it. */
function latch(): { promise: Promise<void>; open: () => void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => {
    open = resolve
  })
  return { promise, open }
}

const turns = async (n = 10) => {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r))
}

test('a commit waits for the reads under way; reads started during it wait for it; reads share the gate', async () => {
  const gate = new CommitGate()
  const events: string[] = []
  const r1 = latch()
  const r2 = latch()
  const read1 = gate.read(async () => {
    events.push('read 1 starts')
    await r1.promise
    events.push('read 1 ends')
  })
  const read2 = gate.read(async () => {
    events.push('read 2 starts')
    await r2.promise
    events.push('read 2 ends')
  })
  await turns()
  assert.deepEqual(events, ['read 1 starts', 'read 2 starts'], 'reads run together')

  const commit = gate.commit(async () => {
    events.push('commit')
    return 7
  })
  const read3 = gate.read(async () => {
    events.push('read 3')
  })
  await turns()
  assert.deepEqual(events, ['read 1 starts', 'read 2 starts'], 'the commit waits for both reads, the new read for the commit')
  r1.open()
  await turns()
  assert.equal(events.at(-1), 'read 1 ends')
  assert.ok(!events.includes('commit'), 'one read is still under way')
  r2.open()
  assert.equal(await commit, 7)
  await Promise.all([read1, read2, read3])
  assert.deepEqual(events, ['read 1 starts', 'read 2 starts', 'read 1 ends', 'read 2 ends', 'commit', 'read 3'])
})

test('a failing read or commit releases the gate', async () => {
  const gate = new CommitGate()
  await assert.rejects(
    gate.read(async () => {
      throw new Error('read failed')
    }),
    /read failed/,
  )
  await assert.rejects(
    gate.commit(async () => {
      throw new Error('commit failed')
    }),
    /commit failed/,
  )
  assert.equal(await gate.commit(() => 'next commit'), 'next commit')
  assert.equal(await gate.read(async () => 'next read'), 'next read')
})
