# tokenmeter: one static binary on distroless. `docker compose up` builds it.
FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=auto
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# timetzdata: calendar periods use IANA zones (Asia/Hong_Kong) on any base image.
RUN go build -trimpath -tags timetzdata -ldflags="-s -w" -o /out/tokenmeter ./cmd/tokenmeter

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tokenmeter /usr/local/bin/tokenmeter
COPY pipelines /etc/tokenmeter
USER nonroot:nonroot
# HTTP API + /metrics, OTLP gRPC, OTLP HTTP
EXPOSE 8080 4317 4318
ENTRYPOINT ["/usr/local/bin/tokenmeter"]
CMD ["run", "/etc/tokenmeter/production.yaml"]
