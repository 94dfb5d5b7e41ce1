# syntax=docker/dockerfile:1
#
# kinesis-ingest container image: a static binary (no cgo, stripped, no build
# paths) on a small Alpine base, run as an unprivileged user.
#
#   docker build -t kinesis-ingest .
#   docker run -v $PWD/config.yaml:/etc/kinesis-ingest/config.yaml:ro kinesis-ingest
#
# The configuration is read from /etc/kinesis-ingest/config.yaml; AWS region,
# credentials and endpoints from the SDK's standard environment variables
# (README: "Run on LocalStack", "Run on AWS"). internal/tools/deploycheck/compose_test.go
# runs this file's `go build` line with the same flags on every `make test` and
# checks that the binary is static.

ARG GO_VERSION=1.26

# ---- build ------------------------------------------------------------------
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Set by buildx for the platform being built (docker buildx build --platform
# linux/arm64 ...); empty means the build platform's own.
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/kinesis-ingest ./cmd/kinesis-ingest

# ---- run --------------------------------------------------------------------
# Alpine rather than scratch or distroless for busybox's wget, which the
# HEALTHCHECK needs; the binary itself needs nothing from the image but the CA
# certificates (Alpine's base has them) for HTTPS to AWS.
FROM alpine:3.22
RUN addgroup -S -g 10001 kinesis-ingest \
 && adduser -S -D -H -u 10001 -G kinesis-ingest -h /data -s /sbin/nologin kinesis-ingest \
 && mkdir -p /data /etc/kinesis-ingest \
 && chown 10001:10001 /data
COPY --from=build /out/kinesis-ingest /usr/local/bin/kinesis-ingest
# /data is where the compose config puts rows and dead letters: a named volume
# mounted there starts out owned by the unprivileged user.
WORKDIR /data
USER 10001:10001
# /metrics, /healthz and /readyz are served on metrics.listen, which must be
# 0.0.0.0:9108 in a container: the config's default, a free loopback port,
# answers neither this HEALTHCHECK nor anything outside the container
# (Prometheus). A config with another port needs its own healthcheck
# (compose: healthcheck.test).
EXPOSE 9108
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9108/healthz"]
# SIGTERM (docker stop) drains, checkpoints and releases the leases within
# consumer.shutdown_timeout (default 30s): stop with a longer grace period
# (docker stop -t 45; compose: stop_grace_period: 45s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/kinesis-ingest"]
CMD ["run", "--config", "/etc/kinesis-ingest/config.yaml"]
