# syntax=docker/dockerfile:1.7
#
# retainwise-app: web app, worker and migrations (DESIGN.md section 3), one
# image; the subcommand chooses (serve, worker, migrate).
#
#   docker build -f Dockerfile.app -t retainwise-app .
#
# Stages as in Dockerfile.proxy: dependencies are cooked in their own layer,
# the runtime is distroless (glibc, CA certificates for S3/SQS/RDS TLS, no
# shell) and runs as a non-root user.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only: this layer is reused until the lockfile or a manifest changes.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo chef cook --release --locked --recipe-path recipe.json \
        --package retainwise-app --bin retainwise-app
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo build --release --locked --package retainwise-app --bin retainwise-app \
    && install -D -m 0755 target/release/retainwise-app /out/retainwise-app

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
LABEL org.opencontainers.image.title="retainwise-app" \
      org.opencontainers.image.description="RetainWise app: uploads, prediction worker, migrations"
COPY --from=build /out/retainwise-app /usr/local/bin/retainwise-app
# The shipped churn model (retainwise-churn's app/churn/model/) is compiled
# into the binary; this copy is for operators (inspect it, or score offline
# with `retainwise-app score --model`).
COPY app/churn/model/churn-model.json /app/model/churn-model.json
WORKDIR /app
USER 65532:65532
# The app listens on 127.0.0.1:3000 (only the proxy in the same task reaches
# it, so it is not exposed); 9100 is its Prometheus endpoint.
EXPOSE 9100
# No curl, no shell: the binary checks its own health endpoint (serve mode;
# the worker's task definition checks its metrics listener instead).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/retainwise-app", "healthcheck", "--url", "http://127.0.0.1:3000/api/health"]
ENTRYPOINT ["/usr/local/bin/retainwise-app"]
CMD ["serve"]
