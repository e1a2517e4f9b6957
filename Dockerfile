# syntax=docker/dockerfile:1

# Tame's image: `tame serve` on 0.0.0.0:8000 as the unprivileged user tame
# (uid 10001). Off loopback the server refuses to start without credentials:
# give it TAME_API_KEYS (see docker-compose.yml and .env.example).

# ---- build ----
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /build

# Dependencies first, in a layer of their own that is rebuilt only when
# Cargo.toml or Cargo.lock change. Stubs stand in for the crate roots
# (src/main.rs, src/lib.rs) and for every target the manifest declares (the
# `policy` bench); examples/ and tests/ are only found by looking, so their
# absence is fine. The bench stub stays: cargo looks for it on every build.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/policy.rs \
    && cargo build --release --locked --bin tame \
    && rm -rf src

# The real sources. The migrations are compiled into the binary (include_str!
# in src/store). COPY keeps the files' own times, which can be older than the
# stub build above: touch the crate roots so that cargo rebuilds tame itself.
COPY src ./src
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin tame

# ---- run ----
FROM debian:bookworm-slim

# ca-certificates: webhooks over https check certificates against the system
# store. curl: the HEALTHCHECK below (tame has no health subcommand).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 tame \
    && useradd --uid 10001 --gid 10001 --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin tame

WORKDIR /app
COPY --from=builder /build/target/release/tame /usr/local/bin/tame
# Settings and policies stay owned by root: the server reads them, never writes
# them. config/tame.yaml is read from the working directory; TAME_… variables
# override it.
COPY config ./config
COPY policies ./policies
# data/ holds the SQLite database when TAME_DATABASE_URL is left at its
# default (sqlite://data/tame.db). Owned before VOLUME, so a new volume
# starts out owned by tame.
RUN mkdir data && chown tame:tame /app /app/data
VOLUME ["/app/data"]

USER 10001:10001
ENV TAME_BIND=0.0.0.0:8000 \
    TAME_LOG_FORMAT=json
EXPOSE 8000

# /ready answers 200 once the database answers and the audit writer runs,
# 503 otherwise (/health is liveness only). No credentials needed for either.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null --max-time 4 http://127.0.0.1:8000/ready || exit 1

ENTRYPOINT ["tame"]
CMD ["serve"]
