# PostgreSQL 15 with the defendable extension built in. Multi-stage: the compiler and headers stay
# in the build stage; the final image is the official one plus the extension's files.
# Build from the repository root:  docker build -f docker/postgres.Dockerfile -t defendable-db .
# Pin the base by digest in production (docker buildx imagetools inspect postgres:15-bookworm).
ARG PG_IMAGE=postgres:15-bookworm

FROM ${PG_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential postgresql-server-dev-15 libssl-dev \
        libjansson-dev libmicrohttpd-dev libpq-dev libcurl4-openssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile defendable.control ./
COPY extension/ extension/
COPY gateway/ gateway/
RUN make -j"$(nproc)" && make install DESTDIR=/out

FROM ${PG_IMAGE}
COPY --from=build /out/usr/lib/postgresql/ /usr/lib/postgresql/
COPY --from=build /out/usr/share/postgresql/ /usr/share/postgresql/
# creates the extension in the first database at first start (an empty data directory only)
COPY docker/initdb-defendable.sql /docker-entrypoint-initdb.d/10-defendable.sql
