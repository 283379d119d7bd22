# ailogs, one image for every role (serve, consume, migrate, kafka create-topics, demo).
# The pattern catalog, model prices, Kafka topic list and migrations are compiled into the
# binary, so the runtime image holds the binary and its shared libraries only.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libhyperscan-dev pkg-config zlib1g-dev cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY pipeline pipeline
COPY src src
COPY migrations migrations
COPY kafka kafka
COPY benches benches
COPY examples examples
COPY tests tests
COPY README.md ./
RUN cargo build --release --locked --bin ailogs \
    && cp target/release/ailogs /usr/local/bin/ailogs

FROM debian:bookworm-slim
# libhs5 is Hyperscan's runtime; curl serves the health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libhyperscan5 zlib1g ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/ailogs --create-home ailogs \
    && install -d -o ailogs -g ailogs /var/log/ai-apps
COPY --from=build /usr/local/bin/ailogs /usr/local/bin/ailogs
USER ailogs
WORKDIR /var/lib/ailogs
ENV AILOGS_LISTEN=0.0.0.0:8080 \
    AILOGS_KAFKA__SPOOL_DIR=/var/lib/ailogs/spool
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/api/v1/ai_logs/health >/dev/null || exit 1
ENTRYPOINT ["ailogs"]
CMD ["serve"]
