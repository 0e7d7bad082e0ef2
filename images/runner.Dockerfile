# The kith-runner image: the binary, zlib (librdkafka's only shared library
# beyond libc; librdkafka itself is linked statically) and nothing else. No
# shell, no package manager; it runs as the numeric user the operator's pod
# security context names (65532) with a read-only root file system: the
# state, the pipeline and /tmp are volumes the operator mounts.
#
#   make images            (docker, podman or buildah, whichever is present)

FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      cmake libcurl4-openssl-dev libssl-dev libsasl2-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p kith-runner \
 && mkdir -p /out/bin /out/lib \
 && strip -o /out/bin/kith-runner target/release/kith-runner \
 && cp -L "/usr/lib/$(gcc -print-multiarch)/libz.so.1" /out/lib/libz.so.1

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/lib/libz.so.1 /usr/local/lib/kith/libz.so.1
COPY --from=build /out/bin/kith-runner /usr/local/bin/kith-runner
ENV LD_LIBRARY_PATH=/usr/local/lib/kith
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kith-runner"]
