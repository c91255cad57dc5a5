# syntax=docker/dockerfile:1
# The image `action.yml` runs (linux/amd64). Built and pushed to GHCR by
# .github/workflows/release.yml on a version tag:
#
#   docker build -t analytics-action .
#   docker run --rm -v "$PWD:/github/workspace" -w /github/workspace \
#     analytics-action run --mode ci --project example-project
#
# DuckDB is linked, not compiled (DEVELOPERS.md): scripts/fetch-duckdb takes the
# official prebuilt libduckdb.so 1.5.6 from DuckDB's npm package
# `@duckdb/node-bindings-linux-x64` — the very library CI tests against —
# so the first stage only needs node/npm.

# 1. The prebuilt DuckDB library, exactly as CI fetches it, and the pinned
#    browser libraries the dashboard copies into a site with `assets: bundled`
#    (only the files it uses; see WASM_FILES in src/dashboard/mod.rs).
FROM node:20-bookworm-slim AS duckdb
WORKDIR /src
COPY scripts/fetch-duckdb scripts/fetch-duckdb
RUN scripts/fetch-duckdb
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
    && for f in @duckdb/duckdb-wasm/package.json \
                @duckdb/duckdb-wasm/dist/duckdb-browser.mjs \
                @duckdb/duckdb-wasm/dist/duckdb-eh.wasm \
                @duckdb/duckdb-wasm/dist/duckdb-browser-eh.worker.js \
                @duckdb/duckdb-wasm/dist/duckdb-mvp.wasm \
                @duckdb/duckdb-wasm/dist/duckdb-browser-mvp.worker.js \
                @duckdb/duckdb-wasm/dist/duckdb-coi.wasm \
                @duckdb/duckdb-wasm/dist/duckdb-browser-coi.worker.js \
                @duckdb/duckdb-wasm/dist/duckdb-browser-coi.pthread.worker.js \
                apache-arrow/package.json apache-arrow/Arrow.es2015.min.js \
                echarts/package.json echarts/dist/echarts.min.js; do \
         install -D -m 0644 "node_modules/$f" "/assets/node_modules/$f"; \
       done

# 2. The binary: the same build CI runs (release profile, locked dependencies).
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY --from=duckdb /src/.duckdb .duckdb
COPY . .
# fetch-duckdb finds the library above and exits at once; the cache mounts keep
# crates and the target dir between builds, so the binary is copied out of it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    scripts/fetch-duckdb \
    && cargo build --release --locked \
    && install -D -m 0755 target/release/analytics /out/analytics \
    && mkdir -p dashboard-template

# 3. Runtime: slim Debian, CA certificates (rustls reads the system roots),
#    libstdc++ for libduckdb.so, the binary and the dashboard assets.
FROM debian:bookworm-slim
# Unpinned on purpose: Debian security updates replace these versions, and a
# pinned version that leaves the archive would break the release build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=duckdb /src/.duckdb/libduckdb.so /usr/local/lib/libduckdb.so
RUN ldconfig
COPY --from=builder /out/analytics /usr/local/bin/analytics
COPY --from=builder /src/dashboard-template /usr/share/analytics/dashboard-template
COPY --from=duckdb /assets/node_modules /usr/share/analytics/node_modules
ENV ANALYTICS_DASHBOARD_TEMPLATE=/usr/share/analytics/dashboard-template \
    ANALYTICS_DASHBOARD_ASSETS=/usr/share/analytics/node_modules \
    LD_LIBRARY_PATH=/usr/local/lib
LABEL org.opencontainers.image.title="analytics-action" \
      org.opencontainers.image.description="Ingest, transform (dbt-style SQL on DuckDB), test, store in Iceberg and publish a DuckDB-WASM dashboard, from one Git repository." \
      org.opencontainers.image.licenses="MIT"
# GitHub runs container actions as root with the workspace mounted at
# /github/workspace; the entrypoint reads the INPUT_* variables there.
WORKDIR /github/workspace
ENTRYPOINT ["/usr/local/bin/analytics"]
CMD ["action"]
