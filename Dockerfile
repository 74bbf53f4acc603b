# pairrm serve in a container (see docs/server.md, "Container").
#
#   docker build -t pairrm .
#   docker run --rm -p 127.0.0.1:8080:8080 -v pairrm-hf:/data/huggingface \
#       -e PAIRRM_API_KEY=change-me pairrm serve --model llm-blender/PairRM
#
# Two stages: the release binary is built with the toolchain image, then copied alone into a
# slim Debian image where it runs as an unprivileged user. The Hugging Face cache is a volume
# (HF_HOME=/data/huggingface): models downloaded on the first start are kept, and with
# HF_HUB_OFFLINE=1 the cache alone is used. Every `pairrm serve` option can be given as a flag
# after the image name or as a PAIRRM_* environment variable.

# The workspace's rust-version (Cargo.toml); a test of `pairrm serve` checks that they agree.
FROM rust:1.89-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p pairrm-cli \
 && install -m 0755 target/release/pairrm /usr/local/bin/pairrm

FROM debian:bookworm-slim
# CA certificates for model downloads over HTTPS; no other package is needed at run time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin pairrm \
 && mkdir -p /data/huggingface \
 && chown -R pairrm:pairrm /data
COPY --from=build /usr/local/bin/pairrm /usr/local/bin/pairrm
ENV HF_HOME=/data/huggingface \
    PAIRRM_HOST=0.0.0.0 \
    PAIRRM_PORT=8080
VOLUME ["/data/huggingface"]
USER pairrm
EXPOSE 8080
ENTRYPOINT ["pairrm"]
CMD ["serve"]
