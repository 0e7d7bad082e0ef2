# The kith-operator image: the binary alone (it links no librdkafka and no
# AWS SDK). No shell; it runs as the numeric user of the chart's pod
# security context (65532) with a read-only root file system.
#
#   make images            (docker, podman or buildah, whichever is present)

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p kith-operator \
 && mkdir -p /out/bin \
 && strip -o /out/bin/kith-operator target/release/kith-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/bin/kith-operator /usr/local/bin/kith-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kith-operator"]
