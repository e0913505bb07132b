# syntax=docker/dockerfile:1
# Builds the ticket-authz container image in two stages: the release binary
# is compiled in the official Rust image, then copied alone into a
# distroless image with only glibc, libgcc and CA certificates, running as
# the non-root user 65532. Build it from the repository root:
#   docker build -t ticket-authz:0.1.0 .
# No protoc is needed: build.rs uses the one vendored by protoc-bin-vendored.
# The SQLite and mimalloc C sources are compiled by the builder's gcc.

# The builder's Rust matches Cargo.toml's rust-version (edition 2024), on the
# same Debian release (bookworm, glibc 2.36) as the runtime image below, so
# the binary finds the glibc it was linked against.
ARG RUST_VERSION=1.94
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep downloaded crates and compiled dependencies between
# builds; the binary is copied out of the cached target directory in the
# same step, since the cache is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ticket-authz \
 && install -D -m 0755 target/release/ticket-authz /out/ticket-authz

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="ticket-authz" \
      org.opencontainers.image.description="gRPC authorisation for helpdesk and ticketing systems" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/ticket-authz /usr/local/bin/ticket-authz
# Numeric, so that Kubernetes' runAsNonRoot can check it without a passwd lookup.
USER 65532:65532
# Writable by the nonroot user: a default SQLite file lands here when the
# container runs without TICKET_AUTHZ_DATABASE_URL and with a writable root.
WORKDIR /home/nonroot
# Inside a container the loopback address is unreachable from outside, so
# listen on every interface; the Helm chart sets these (and the rest) itself.
ENV TICKET_AUTHZ_LISTEN=0.0.0.0:50051 \
    TICKET_AUTHZ_HEALTH_LISTEN=0.0.0.0:8081
# gRPC, plaintext health (for probes), Prometheus metrics (when turned on).
EXPOSE 50051 8081 9090
ENTRYPOINT ["/usr/local/bin/ticket-authz"]
CMD ["serve"]
