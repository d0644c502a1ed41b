# The `aiops` binary (pipeline, gateway, replay, models) in a small Debian image.
# Build: docker build -t aiops .     Run: docker run --rm aiops --help
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
COPY . .
# The ScyllaDB model store is a feature; the production topology keeps its models there.
RUN cargo build --release --locked --features scylla --bin aiops

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/aiops --create-home aiops
COPY --from=build /src/target/release/aiops /usr/local/bin/aiops
USER aiops
WORKDIR /var/lib/aiops
ENTRYPOINT ["aiops"]
CMD ["--help"]
