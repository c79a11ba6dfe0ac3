# kvh for the CPU: the single binary of `deno task compile` with the native helpers beside it,
# on Deno's distroless image of the same version, pinned by tag (distroless cc: glibc, libgcc
# and OpenSSL's libcrypto for libkvh_hash.so; no shell, no package manager; its deno binary is
# unused).
#
#   docker build -t kvh:0.1.0 .
#
# Runs as the distroless `nonroot` user (65532) with a read-only root file system: kvh writes
# only below its working directory /var/lib/kvh (forensics/ is a volume) and Deno's cache goes
# to /tmp (an emptyDir in Kubernetes).

FROM denoland/deno:debian-2.9.6 AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends gcc libc6-dev libssl-dev \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY deno.json deno.lock ./
RUN deno install --frozen
COPY cli/ cli/
COPY lib/ lib/
COPY ffi/ ffi/
RUN ffi/native/build.sh && deno task compile
# The working directory with an empty forensics/ (0700), owned by the runtime user: a volume
# mounted there starts with that owner and mode.
RUN mkdir -p /out/forensics && chmod 700 /out/forensics

FROM denoland/deno:distroless-2.9.6
LABEL org.opencontainers.image.title="kvh" \
  org.opencontainers.image.description="KV-cache hygiene for multi-tenant LLM serving"
COPY --from=build /src/dist/ /opt/kvh/
COPY --from=build --chown=65532:65532 /out/ /var/lib/kvh/
ENV DENO_DIR=/tmp/deno NO_COLOR=1
WORKDIR /var/lib/kvh
VOLUME ["/var/lib/kvh/forensics"]
USER 65532:65532
ENTRYPOINT ["/opt/kvh/kvh"]
CMD ["--help"]
