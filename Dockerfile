# One image for all five services; pick one with the SERVICE build arg or `command`.
FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends openssh-client ca-certificates \
  && rm -rf /var/lib/apt/lists/* && npm install -g pnpm@9.15.9
WORKDIR /app
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml turbo.json tsconfig.base.json ./
COPY packages ./packages
COPY services ./services
COPY tests/package.json ./tests/package.json
RUN pnpm install --frozen-lockfile
# The web console the api serves under /ui.
RUN pnpm --filter @trainyard/console build
USER node
ENV NODE_ENV=production
ENTRYPOINT ["/app/node_modules/.bin/tsx"]
CMD ["services/api/src/main.ts"]
