# gitmesh's image for a Docker engine (docker build -t gitmesh .). Where none
# runs, `make image` builds the same image as an OCI tarball with
# go-containerregistry (internal/ociimage): the binary at
# /usr/local/bin/gitmesh, run as uid 65532, command serve.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=linux GOARCH=${TARGETARCH} go build -trimpath \
    -ldflags "-X main.version=${VERSION} -s -w" -o /out/gitmesh ./cmd/gitmesh

# distroless/static: CA certificates, /etc/passwd with "nonroot" (65532),
# no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gitmesh /usr/local/bin/gitmesh
USER 65532:65532
EXPOSE 15010 15014 15017
ENTRYPOINT ["/usr/local/bin/gitmesh"]
CMD ["serve"]
