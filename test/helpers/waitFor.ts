/** Waits until `condition` holds, polling every few ms; throws with `what` after `deadlineMs`. No fixed sleeps. */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, deadlineMs = 5_000): Promise<void> {
  const until = Date.now() + deadlineMs
  for (;;) {
    if (await condition()) return
    if (Date.now() > until) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}
