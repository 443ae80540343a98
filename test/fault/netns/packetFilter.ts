import type { HostNetwork } from './hostNetwork.js'

/**
 * Network faults made with iptables inside the validators' namespaces: partitions, isolation, one-way loss, and
 * a detour of one validator's p2p connections through other addresses (the latency fault). Every rule sits in the
 * suite's own chains (filter `TALLY-FAULT`, jumped to from INPUT and OUTPUT; nat `TALLY-DETOUR`, from OUTPUT), so
 * {@link PacketFilter.heal} flushes them all and nothing else. A fault's rules for one namespace land at once
 * (`iptables-restore --noflush`). The root namespace's address stays reachable from every validator throughout,
 * so the test can watch each side over RPC.
 */
export class PacketFilter {
  private constructor(private readonly net: HostNetwork) {}

  /** Creates the chains in every validator's namespace. */
  static async install(net: HostNetwork): Promise<PacketFilter> {
    const f = new PacketFilter(net)
    for (let i = 0; i < net.size; i++) {
      await f.restore(i, {
        filter: [':TALLY-FAULT - [0:0]', '-I INPUT -j TALLY-FAULT', '-I OUTPUT -j TALLY-FAULT'],
        nat: [':TALLY-DETOUR - [0:0]', '-I OUTPUT -j TALLY-DETOUR'],
      })
    }
    return f
  }

  /** Applies lines to the filter and nat tables of validator i's namespace in one transaction each. */
  private async restore(i: number, tables: { filter?: readonly string[]; nat?: readonly string[] }): Promise<void> {
    let text = ''
    for (const [name, lines] of Object.entries(tables)) if (lines.length > 0) text += `*${name}\n${lines.join('\n')}\nCOMMIT\n`
    if (text !== '') await this.net.exec(i, ['iptables-restore', '--noflush'], text)
  }

  /** The rules that drop every packet between validator i and `peers`, both ways. */
  private cut(peers: readonly number[]): string[] {
    return peers.flatMap((j) => [`-A TALLY-FAULT -s ${this.net.address(j)} -j DROP`, `-A TALLY-FAULT -d ${this.net.address(j)} -j DROP`])
  }

  /** Drops every packet between the groups (each validator keeps talking to its own group and to the root). */
  async partition(groups: readonly (readonly number[])[]): Promise<void> {
    for (const group of groups) {
      const others = groups.filter((g) => g !== group).flat()
      for (const i of group) await this.restore(i, { filter: this.cut(others) })
    }
  }

  /** Cuts validator i off from every other validator, both ways. */
  async isolate(i: number): Promise<void> {
    await this.partition([[i], this.others(i)])
  }

  /** Drops what validator i sends to the other validators; what they send to it still arrives. */
  async dropOutgoing(i: number): Promise<void> {
    await this.restore(i, { filter: this.others(i).map((j) => `-A TALLY-FAULT -d ${this.net.address(j)} -j DROP`) })
  }

  /**
   * Refuses direct TCP between validator i and the others, on both ends, with a reset: open connections close as
   * soon as either end sends, and new ones are refused at once (the first half of a latency detour; until
   * {@link detour} the validator is cut off). Resets themselves pass (the reset a refusal makes would otherwise
   * match the refusal and be dropped); other packets between them are dropped.
   */
  async refuse(i: number): Promise<void> {
    const rules = (peers: readonly number[]) => [
      '-A TALLY-FAULT -p tcp --tcp-flags RST RST -j ACCEPT',
      ...peers.flatMap((j) =>
        ['-s', '-d'].flatMap((dir) => [
          `-A TALLY-FAULT -p tcp ${dir} ${this.net.address(j)} -j REJECT --reject-with tcp-reset`,
          `-A TALLY-FAULT ${dir} ${this.net.address(j)} -j DROP`,
        ]),
      ),
    ]
    const rest = this.others(i)
    for (const j of rest) await this.restore(j, { filter: rules([i]) })
    await this.restore(i, { filter: rules(rest) })
  }

  /**
   * Sends validator i's p2p traffic through relays in the root namespace (after {@link refuse}, which keeps direct
   * connections from coming back): its connections to validator j go to `relayPort(j)` on the root's address, the
   * others' connections to it go to `relayPort(i)`. Address translation applies to new connections only.
   */
  async detour(i: number, p2pPort: (j: number) => number, relayPort: (j: number) => number): Promise<void> {
    const dnat = (dest: number) =>
      `-A TALLY-DETOUR -p tcp -d ${this.net.address(dest)} --dport ${p2pPort(dest)} -j DNAT --to-destination ${this.net.hostAddress}:${relayPort(dest)}`
    const rest = this.others(i)
    for (const j of rest) await this.restore(j, { nat: [dnat(i)] })
    await this.restore(i, { nat: rest.map(dnat) })
  }

  private others(i: number): number[] {
    return [...Array(this.net.size).keys()].filter((j) => j !== i)
  }

  /** Removes every fault rule in every namespace. */
  async heal(): Promise<void> {
    for (let i = 0; i < this.net.size; i++) await this.restore(i, { filter: ['-F TALLY-FAULT'], nat: ['-F TALLY-DETOUR'] })
  }
}
