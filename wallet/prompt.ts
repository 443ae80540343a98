/**
 * Reads a password from the terminal without echoing it. Used only when stdin is a TTY; otherwise the wallet
 * asks for TALLY_PASSWORD instead of hanging on a prompt nobody sees.
 */

/** A prompt on the process's terminal, or null when stdin is not a terminal. */
export function terminalPrompt(): ((question: string) => Promise<string>) | null {
  const stdin = process.stdin
  if (!stdin.isTTY) return null
  return (question) =>
    new Promise<string>((resolve, reject) => {
      process.stderr.write(question)
      let value = ''
      const wasRaw = stdin.isRaw
      stdin.setRawMode(true)
      stdin.resume()
      stdin.setEncoding('utf8')
      const done = (err?: Error) => {
        stdin.off('data', onData)
        stdin.setRawMode(wasRaw)
        stdin.pause()
        process.stderr.write('\n')
        if (err !== undefined) reject(err)
        else resolve(value)
      }
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') return done()
          if (ch === '\u0003') return done(new Error('cancelled'))
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1)
          else value += ch
        }
      }
      stdin.on('data', onData)
    })
}
