# The gateway and the offline verifier. Multi-stage: build tools stay behind; the final image is
# Debian slim with the runtime libraries, a non-root user and a healthcheck.
# Build from the repository root:  docker build -f docker/gateway.Dockerfile -t defendable-gateway .
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${DEBIAN_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libssl-dev libjansson-dev \
        libmicrohttpd-dev libpq-dev libcurl4-openssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY extension/core/ extension/core/
COPY gateway/ gateway/
RUN make -C gateway -j"$(nproc)" defendable-gateway defendable-verify

FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 libjansson4 libmicrohttpd12 libpq5 libcurl4 \
        ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin defendable
COPY --from=build /src/gateway/defendable-gateway /src/gateway/defendable-verify /usr/local/bin/
USER 10001
EXPOSE 8080
# bash's /dev/tcp: no curl in the image
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/defendable-gateway"]
