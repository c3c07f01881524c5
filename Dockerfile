# Slipway's container image: one static binary on scratch, CA certificates,
# a passwd entry for the non-root user slipway (uid 10001), and a volume for
# state_dir. See docs/container.md.
#
# Two ways to build it:
#
#   docker build -t slipway .
#       Compiles Slipway in golang:1.26 (needs a registry and BuildKit, the
#       default builder since Docker 23).
#
#   docker build --target offline -t slipway .
#       No registry, no base image: copies dist/rootfs and dist/state,
#       prepared on the host (a static binary built with CGO_ENABLED=0, the
#       host's CA bundle, passwd and group; docs/container.md has the five
#       commands). Works with the legacy builder too.
#
# The offline stage comes first on purpose: the legacy builder builds every
# stage up to --target, so "offline" must not follow the golang stage.
#
# Running it: the Docker socket mounted, with the socket's group added
# (stat -c %g /var/run/docker.sock) so the non-root user may use it:
#
#   docker network create 0-slipway     # sorts before project networks
#   sudo install -d -o 10001 -g 10001 -m 0750 /var/lib/slipway
#   docker run -d --name slipway --network 0-slipway -p 80:80 -p 443:443 \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v "$PWD/slipway.yaml:/etc/slipway/slipway.yaml:ro" \
#     -v /var/lib/slipway:/var/lib/slipway \
#     --read-only --tmpfs /tmp --cap-drop ALL \
#     --security-opt no-new-privileges --restart unless-stopped slipway
#
# state_dir comes from the host at the same path: previews may bind-mount
# files of their checkout, and the engine resolves bind sources on the host.

ARG GO_IMAGE=golang:1.26

# ---- offline: the root filesystem prepared on the host --------------------
FROM scratch AS offline
COPY dist/rootfs/ /
COPY --chown=10001:10001 dist/state/ /var/lib/slipway/
ENV HOME=/var/lib/slipway
USER 10001:10001
WORKDIR /var/lib/slipway
VOLUME ["/var/lib/slipway"]
EXPOSE 80 443
LABEL org.opencontainers.image.title="Slipway" \
      org.opencontainers.image.description="Live preview environments for every pull request" \
      org.opencontainers.image.source="https://github.com/slipwayhq/slipway" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/slipway"]
CMD ["serve", "--config", "/etc/slipway/slipway.yaml"]

# ---- build: compile in the Go image ---------------------------------------
FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/rootfs/slipway ./cmd/slipway
RUN mkdir -p /out/rootfs/etc/ssl/certs /out/rootfs/tmp /out/state \
 && chmod 1777 /out/rootfs/tmp \
 && cp /etc/ssl/certs/ca-certificates.crt /out/rootfs/etc/ssl/certs/ \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nslipway:x:10001:10001:Slipway:/var/lib/slipway:/sbin/nologin\n' > /out/rootfs/etc/passwd \
 && printf 'root:x:0:\nslipway:x:10001:\n' > /out/rootfs/etc/group

# ---- the image (default target) -------------------------------------------
FROM scratch AS image
COPY --from=build /out/rootfs/ /
COPY --from=build --chown=10001:10001 /out/state/ /var/lib/slipway/
ENV HOME=/var/lib/slipway
USER 10001:10001
WORKDIR /var/lib/slipway
VOLUME ["/var/lib/slipway"]
EXPOSE 80 443
LABEL org.opencontainers.image.title="Slipway" \
      org.opencontainers.image.description="Live preview environments for every pull request" \
      org.opencontainers.image.source="https://github.com/slipwayhq/slipway" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/slipway"]
CMD ["serve", "--config", "/etc/slipway/slipway.yaml"]
