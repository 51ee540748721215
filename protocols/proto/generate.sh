#!/usr/bin/env bash
# Regenerates the Go code for the .proto files in this directory (see protocols/generate.go). The
# generated files land at each file's go_package path under the module root; stale ones are removed
# first so that a .proto taken out leaves nothing behind.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
PATH="$(go env GOPATH)/bin:$PATH"

want_protoc="libprotoc 3.21.12"
want_go="protoc-gen-go v1.36.12"
want_grpc="protoc-gen-go-grpc 1.5.1"
check() {
	local got
	got="$("$1" --version 2>&1 || true)"
	if [[ "$got" != "$2" ]]; then
		echo "generate.sh: $1 --version says '$got', want '$2' (see protocols/generate.go)" >&2
		exit 1
	fi
}
check protoc "$want_protoc"
check protoc-gen-go "$want_go"
check protoc-gen-go-grpc "$want_grpc"

cd "$root"
rm -f protocols/seldon/seldonpb/*.pb.go protocols/tensorflow/tfpb/*.pb.go protocols/v2/v2pb/*.pb.go
mapfile -t protos < <(cd "$here" && find . -name '*.proto' | sed 's|^\./||' | LC_ALL=C sort)
(cd "$here" && protoc -I . \
	--go_out="$root" --go_opt=module=github.com/seldon-kafka/sidecar \
	--go-grpc_out="$root" --go-grpc_opt=module=github.com/seldon-kafka/sidecar \
	"${protos[@]}")
gofmt -l protocols/seldon/seldonpb protocols/tensorflow/tfpb protocols/v2/v2pb
