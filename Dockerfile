# Multi-stage build of both binaries. Untested here: this project's machines have no Docker
# engine (see README). Build: docker build -t ticketflow .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ticketflow-api -p ticketflow-worker

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 ticketflow
COPY --from=build /src/target/release/ticketflow-api /src/target/release/ticketflow-worker /usr/local/bin/
USER ticketflow
WORKDIR /var/lib/ticketflow
ENV BIND_ADDR=0.0.0.0:8000 WORKER_BIND_ADDR=0.0.0.0:9100 LOG_FORMAT=json
EXPOSE 8000 9100
CMD ["ticketflow-api"]
