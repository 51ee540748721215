# The sidecar image: a drop-in for the Seldon executor image in serverType: kafka deployments.
# confluent-kafka-go links a bundled static librdkafka with cgo, so the build needs a C compiler and the
# runtime needs glibc (not Alpine, not static scratch).
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t seldon-kafka-executor .
#
# VERSION is what `executor --version` prints (and the start-up log says); .git is not sent to the
# build (.dockerignore), so without it the version is "(devel)".
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=
RUN CGO_ENABLED=1 go build -trimpath -buildvcs=false -ldflags="-s -w -X main.version=${VERSION}" -o /out/executor ./cmd/executor

FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/executor /executor
EXPOSE 8000
# distroless's nonroot user, by number: Kubernetes' runAsNonRoot can check a number, not a name.
USER 65532:65532
ENTRYPOINT ["/executor"]
