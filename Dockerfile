# syntax=docker/dockerfile:1
# The image `action.yml` runs (linux/amd64). Built and pushed to GHCR by
# .github/workflows/release.yml on a version tag:
#
#   docker build -t analytics-action .
#   docker run --rm -v "$PWD:/github/workspace" -w /github/workspace \
#     analytics-action run --mode ci --project example-project
#
# scripts/image-smoke builds the same runtime stage without a Docker engine
# (buildah) from files prepared outside: `--build-arg DIST=prebuilt` takes the
# binary, libduckdb.so and the browser assets from the context's `prebuilt/`
# folder instead of the two build stages, whose toolchain images it cannot pull.
#
# DuckDB is linked, not compiled (DEVELOPERS.md): scripts/fetch-duckdb takes the
# official prebuilt libduckdb.so 1.5.6 from DuckDB's npm package
# `@duckdb/node-bindings-linux-x64` — the very library CI tests against —
# so the first stage only needs node/npm.

# `build` (default): both build stages below; `prebuilt`: the context's prebuilt/.
ARG DIST=build

# 1. The prebuilt DuckDB library, exactly as CI fetches it, and the pinned
#    browser libraries the dashboard copies into a site with `assets: bundled`
#    (only the files its default loads: scripts/image-assets.txt).
FROM node:20-bookworm-slim AS duckdb
WORKDIR /src
COPY scripts/fetch-duckdb scripts/fetch-duckdb
RUN scripts/fetch-duckdb \
    && install -D -m 0644 .duckdb/libduckdb.so /dist/libduckdb.so
COPY package.json package-lock.json scripts/image-assets.txt ./
RUN npm ci --omit=dev --no-audit --no-fund \
    && while read -r f; do \
         case "$f" in ''|'#'*) continue ;; esac; \
         install -D -m 0644 "node_modules/$f" "/dist/node_modules/$f"; \
       done < image-assets.txt

# 2. The binary: the same build CI runs (release profile, locked dependencies),
#    its debug info split off: the shipped binary keeps its symbols (function
#    names in backtraces) but not the ~230 MB of line tables, which stay in
#    /out/analytics.debug (the `debug-info` target exports them).
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY --from=duckdb /src/.duckdb .duckdb
COPY . .
# fetch-duckdb finds the library above and exits at once; the cache mounts keep
# crates and the target dir between builds, so the binary is copied out of it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    scripts/fetch-duckdb \
    && cargo build --release --locked --bin analytics \
    && install -D -m 0755 target/release/analytics /out/analytics \
    && objcopy --only-keep-debug /out/analytics /out/analytics.debug \
    && objcopy --strip-debug --add-gnu-debuglink=/out/analytics.debug /out/analytics

FROM scratch AS debug-info
COPY --from=builder /out/analytics.debug /analytics.debug

# What the runtime stage copies, from one of two places (DIST above).
FROM scratch AS dist-build
COPY --from=duckdb /dist /dist
COPY --from=builder /out/analytics /dist/analytics

FROM scratch AS dist-prebuilt
COPY prebuilt /dist

# hadolint ignore=DL3006
FROM dist-${DIST} AS dist

# 3. Runtime: slim Debian, CA certificates (rustls reads the system roots),
#    libstdc++ for libduckdb.so, the binary and the dashboard assets. The
#    dashboard template (dashboard-template/) is embedded in the binary, so
#    the image needs no copy of it.
FROM debian:bookworm-slim AS runtime
# Unpinned on purpose: Debian security updates replace these versions, and a
# pinned version that leaves the archive would break the release build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=dist /dist/libduckdb.so /usr/local/lib/libduckdb.so
RUN ldconfig
COPY --from=dist /dist/node_modules /usr/share/analytics/node_modules
COPY --from=dist /dist/analytics /usr/local/bin/analytics
ENV ANALYTICS_DASHBOARD_ASSETS=/usr/share/analytics/node_modules \
    LD_LIBRARY_PATH=/usr/local/lib
LABEL org.opencontainers.image.title="analytics-action" \
      org.opencontainers.image.description="Ingest, transform (dbt-style SQL on DuckDB), test, store in Iceberg and publish a DuckDB-WASM dashboard, from one Git repository." \
      org.opencontainers.image.licenses="MIT"
# GitHub runs container actions as root with the workspace mounted at
# /github/workspace; the entrypoint reads the INPUT_* variables there.
WORKDIR /github/workspace
ENTRYPOINT ["/usr/local/bin/analytics"]
CMD ["action"]
