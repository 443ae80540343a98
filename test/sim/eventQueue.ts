/**
 * The simulator's virtual clock: a priority queue of events ordered by (time, sequence number), so events at
 * the same virtual time run in the order they were scheduled and a run is a pure function of its seed.
 */
export class EventQueue<T> {
  private heap: { time: number; seq: number; event: T }[] = []
  private seq = 0

  /** Number of pending events. */
  get size(): number {
    return this.heap.length
  }

  /** Schedules an event at virtual time `time`. */
  push(time: number, event: T): void {
    const node = { time, seq: this.seq++, event }
    const h = this.heap
    h.push(node)
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!less(h[i]!, h[parent]!)) break
      ;[h[i], h[parent]] = [h[parent]!, h[i]!]
      i = parent
    }
  }

  /** The time of the earliest event, or undefined when empty. */
  peekTime(): number | undefined {
    return this.heap[0]?.time
  }

  /** Removes and returns the earliest event, or undefined when empty. */
  pop(): { time: number; event: T } | undefined {
    const h = this.heap
    if (h.length === 0) return undefined
    const top = h[0]!
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && less(h[l]!, h[m]!)) m = l
        if (r < h.length && less(h[r]!, h[m]!)) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m]!, h[i]!]
        i = m
      }
    }
    return { time: top.time, event: top.event }
  }
}

function less(a: { time: number; seq: number }, b: { time: number; seq: number }): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq)
}
