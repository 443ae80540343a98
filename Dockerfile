# Tally validator image: tallyd is the entrypoint, the node's home is /data, the process runs as uid:gid 1000:1000.
# Build:  docker build -t tally .
# One validator per host (docs/operations.md, "Docker on separate hosts"), with the home bind-mounted from the host:
#   mkdir -p /var/lib/tally && chown 1000:1000 /var/lib/tally     # or run every command with --user "$(id -u):$(id -g)"
#   docker run --rm -v /var/lib/tally:/data tally init --home /data --moniker alice
#   (add genesis.json and p2p.peers; set "rpc.host" to "0.0.0.0" in config.json to reach the RPC through -p)
#   docker run -d --name tally -v /var/lib/tally:/data -p 26656:26656 -p 127.0.0.1:8545:8545 tally
# A four-validator network on one host: docker-compose.yml.
# The HEALTHCHECK asks 127.0.0.1:$TALLY_RPC_PORT/health (default 8545): set TALLY_RPC_PORT when rpc.port differs.

# --- build stage: the TypeScript build of the node, the RPC and the wallet ------------------------------------------
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --ignore-scripts
COPY crypto ./crypto
COPY ledger ./ledger
COPY consensus ./consensus
COPY genesis ./genesis
COPY node ./node
COPY rpc ./rpc
COPY wallet ./wallet
# test/ and bench/ are not copied, so they are not compiled and cannot reach the runtime image; source maps are left
# out because the image carries no sources for them to point at.
RUN npx tsc -p tsconfig.json --sourceMap false

# --- dependency stage: production packages only, without what Node never loads at run time --------------------------
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# classic-level ships prebuilt binaries, so no install scripts or compilers are needed. Removed afterwards: source
# maps and TypeScript sources/declarations, and the prebuilt binaries of other platforms (this stage's arch is kept).
RUN npm ci --omit=dev --ignore-scripts \
 && find node_modules -type f \( -name '*.map' -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' \) -delete \
 && find node_modules -type d -path '*/prebuilds/*' -prune ! -name "linux-$(node -p process.arch)*" -exec rm -rf {} +

# --- runtime stage: compiled code and production packages, as a non-root user --------------------------------------
FROM node:20-slim
# Two malloc arenas instead of up to eight per core: each allocating thread (the libuv pool's LevelDB work, LevelDB's
# compaction, V8's compiler) would otherwise keep freed memory in an arena of its own (docs/operations.md, "Memory").
ENV NODE_ENV=production MALLOC_ARENA_MAX=2
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/crypto ./dist/crypto
COPY --from=build /app/dist/ledger ./dist/ledger
COPY --from=build /app/dist/consensus ./dist/consensus
COPY --from=build /app/dist/genesis ./dist/genesis
COPY --from=build /app/dist/node ./dist/node
COPY --from=build /app/dist/rpc ./dist/rpc
COPY --from=build /app/dist/wallet ./dist/wallet
COPY bin ./bin
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
# p2p (p2p.listen) and JSON-RPC (rpc.port) at their defaults; the compose network gives every validator these two
EXPOSE 26656 8545
# One bash process per check, no Node start-up: an HTTP/1.0 GET over bash's /dev/tcp, healthy on status 200.
# (The slim base has neither curl nor wget; bash and its /dev/tcp redirection are part of Debian's base.)
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${TALLY_RPC_PORT:-8545} && printf 'GET /health HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' >&3 && read -r -t 2 _ status _ <&3 && [ \"$status\" = 200 ]"]
# tallyd, as PID 1 (exec), so that `docker stop` reaches it with SIGTERM. `init` or `start` on a bind-mounted /data the
# process cannot write (a host directory of another owner) would fail with a bare EACCES: a hint says what to do first.
ENTRYPOINT ["sh", "-c", "case $1 in init|start) [ -w /data ] || echo \"tallyd: /data is not writable by uid $(id -u): chown the host directory to $(id -u):$(id -g), or run with --user set to its owner (docs/operations.md)\" >&2;; esac; exec node /app/bin/tallyd.js \"$@\"", "tallyd"]
CMD ["start", "--home", "/data"]
