# Tally validator image: tallyd as the entrypoint, the node's home on the /data volume.
# Build:  docker build -t tally .
# Init:   docker run --rm -v tally-home:/data tally init --home /data --moniker alice
#         then put genesis.json and p2p.peers in the home (docs/operations.md), and set "rpc.host" to "0.0.0.0" in
#         /data/config.json: the default 127.0.0.1 is unreachable through a published port.
# Run:    docker run -d -v tally-home:/data -p 26656:26656 -p 8545:8545 tally
# The HEALTHCHECK asks 127.0.0.1:$TALLY_RPC_PORT/health (default 8545): set TALLY_RPC_PORT when rpc.port differs.
# A 4-validator network on one host: docker-compose.yml.

# --- build stage: full dependencies and the TypeScript build --------------------------------------------------------
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
COPY test ./test
COPY bench ./bench
RUN npx tsc -p tsconfig.json

# --- runtime stage: production dependencies and the compiled code, as a non-root user -------------------------------
FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# classic-level ships prebuilt binaries; no install scripts or compilers are needed at runtime.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
# p2p and JSON-RPC (validator i of a generated testnet uses 26656+i and 8545+i)
EXPOSE 26656 8545
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.TALLY_RPC_PORT||8545)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "/app/bin/tallyd.js"]
CMD ["start", "--home", "/data"]
