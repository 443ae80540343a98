import type { HostNetwork } from './hostNetwork.js'

/**
 * Network faults made with iptables inside the validators' namespaces: partitions, isolation, one-way loss, and
 * a detour of one validator's p2p connections through other addresses (the latency fault). Every rule sits in the
 * suite's own chains (filter `TALLY-FAULT`, jumped to from INPUT and OUTPUT; nat `TALLY-DETOUR`, from OUTPUT), so
 * {@link PacketFilter.heal} flushes them all and nothing else. The root namespace's address stays reachable from
 * every validator throughout, so the test can watch each side over RPC.
 */
export class PacketFilter {
  private constructor(private readonly net: HostNetwork) {}

  /** Creates the chains in every validator's namespace. */
  static async install(net: HostNetwork): Promise<PacketFilter> {
    for (let i = 0; i < net.size; i++) {
      await net.exec(i, ['iptables', '-N', 'TALLY-FAULT'])
      await net.exec(i, ['iptables', '-I', 'INPUT', '-j', 'TALLY-FAULT'])
      await net.exec(i, ['iptables', '-I', 'OUTPUT', '-j', 'TALLY-FAULT'])
      await net.exec(i, ['iptables', '-t', 'nat', '-N', 'TALLY-DETOUR'])
      await net.exec(i, ['iptables', '-t', 'nat', '-I', 'OUTPUT', '-j', 'TALLY-DETOUR'])
    }
    return new PacketFilter(net)
  }

  private async add(i: number, rule: string[]): Promise<void> {
    await this.net.exec(i, ['iptables', '-A', 'TALLY-FAULT', ...rule])
  }

  /** Drops every packet between the groups (each validator keeps talking to its own group and to the root). */
  async partition(groups: readonly (readonly number[])[]): Promise<void> {
    for (const group of groups) {
      for (const i of group) {
        for (const other of groups) {
          if (other === group) continue
          for (const j of other) {
            await this.add(i, ['-s', this.net.address(j), '-j', 'DROP'])
            await this.add(i, ['-d', this.net.address(j), '-j', 'DROP'])
          }
        }
      }
    }
  }

  /** Cuts validator i off from every other validator, both ways. */
  async isolate(i: number): Promise<void> {
    const rest = [...Array(this.net.size).keys()].filter((j) => j !== i)
    await this.partition([[i], rest])
  }

  /** Drops what validator i sends to the other validators; what they send to it still arrives. */
  async dropOutgoing(i: number): Promise<void> {
    for (let j = 0; j < this.net.size; j++) if (j !== i) await this.add(i, ['-d', this.net.address(j), '-j', 'DROP'])
  }

  /**
   * Sends validator i's p2p traffic through relays in the root namespace: its connections to validator j go to
   * `relayPort(j)` on the root's address, the others' connections to it go to `relayPort(i)`. Direct TCP between
   * i and the others is refused with a reset on both ends, so connections made before the detour close as soon
   * as either end sends, and are dialed again through the relays. Resets themselves pass (the reset a refusal
   * makes would otherwise match the refusal and be dropped).
   */
  async detour(i: number, p2pPort: (j: number) => number, relayPort: (j: number) => number): Promise<void> {
    const to = (j: number) => `${this.net.hostAddress}:${relayPort(j)}`
    const nat = (k: number, dest: number) => this.net.exec(k, [
      'iptables', '-t', 'nat', '-A', 'TALLY-DETOUR', '-p', 'tcp', '-d', this.net.address(dest), '--dport', String(p2pPort(dest)),
      '-j', 'DNAT', '--to-destination', to(dest),
    ])
    const refuse = async (k: number, peer: number) => {
      for (const dir of ['-s', '-d']) {
        await this.add(k, ['-p', 'tcp', dir, this.net.address(peer), '-j', 'REJECT', '--reject-with', 'tcp-reset'])
        await this.add(k, [dir, this.net.address(peer), '-j', 'DROP'])
      }
    }
    for (let k = 0; k < this.net.size; k++) await this.add(k, ['-p', 'tcp', '--tcp-flags', 'RST', 'RST', '-j', 'ACCEPT'])
    for (let j = 0; j < this.net.size; j++) {
      if (j === i) continue
      await nat(i, j)
      await nat(j, i)
      await refuse(i, j)
      await refuse(j, i)
    }
  }

  /** Removes every fault rule in every namespace. */
  async heal(): Promise<void> {
    for (let i = 0; i < this.net.size; i++) {
      await this.net.exec(i, ['iptables', '-F', 'TALLY-FAULT'])
      await this.net.exec(i, ['iptables', '-t', 'nat', '-F', 'TALLY-DETOUR'])
    }
  }
}
