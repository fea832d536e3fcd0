#!/usr/bin/env bash
# demo.sh — the grpc-canary demo: gitmesh serves examples/grpc-canary over
# xDS, two greeter versions answer on loopback, and a proxyless grpc-go
# client prints the traffic split once per second. Edit the weights in
# examples/grpc-canary/mesh.cue and watch the split move. Ctrl-C stops
# everything this script started.
#
# Environment: MESH_DIR (default examples/grpc-canary) serves another copy
# of the mesh; DEMO_SECONDS stops the demo after that many seconds;
# DEMO_XDS_ADDR and DEMO_HTTP_ADDR move gitmesh off 127.0.0.1:15010 and
# 127.0.0.1:15014 (the client's bootstrap follows; the mesh's greeter
# endpoints stay on 50061 and 50062).
set -euo pipefail

cd "$(dirname "$0")/.."
MESH_DIR=${MESH_DIR:-examples/grpc-canary}
XDS_ADDR=${DEMO_XDS_ADDR:-127.0.0.1:15010}
HTTP_ADDR=${DEMO_HTTP_ADDR:-127.0.0.1:15014}

# Refuse before building or starting anything when a port the demo needs is
# taken: otherwise gitmesh fails in the background and the client prints
# "Unavailable" forever. The usual holder is a make run still going.
in_use() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for addr in "$XDS_ADDR" "$HTTP_ADDR" 127.0.0.1:50061 127.0.0.1:50062; do
	if in_use "$addr"; then
		echo "make demo: $addr is already in use, so the demo cannot start." >&2
		echo "  Is make run (or another demo) still going? Stop it with Ctrl-C in its terminal." >&2
		echo "  Otherwise find the process with: lsof -iTCP:${addr##*:} -sTCP:LISTEN  (or: ss -ltnp 'sport = :${addr##*:}')" >&2
		exit 1
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gitmesh-demo.XXXXXX")
pids=()
cleanup() {
	trap - INT TERM EXIT
	# Only the processes started below, by pid.
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building gitmesh and the example programs..."
go build -o bin/gitmesh ./cmd/gitmesh
go build -o bin/greeter ./examples/grpc-canary/greeter
go build -o bin/canary-client ./examples/grpc-canary/client

bin/gitmesh serve --dir "$MESH_DIR" --xds-insecure --xds-addr "$XDS_ADDR" \
	--http-addr "$HTTP_ADDR" --state-dir "$tmp/state" >"$tmp/gitmesh.log" 2>&1 &
pids+=($!)

# The client starts once gitmesh serves a good revision: before that its
# ADS stream is refused and the first second would show only errors.
for _ in $(seq 100); do
	if curl -fsS "http://$HTTP_ADDR/readyz" >/dev/null 2>&1; then break; fi
	if ! kill -0 "${pids[0]}" 2>/dev/null; then
		echo "gitmesh serve exited:" >&2
		cat "$tmp/gitmesh.log" >&2
		exit 1
	fi
	sleep 0.1
done

bin/gitmesh bootstrap --proxy proxyless/default/client/v1/demo --xds "$XDS_ADDR" >"$tmp/bootstrap.json"

bin/greeter --version v1 --port 50061 >"$tmp/greeter-v1.log" 2>&1 &
pids+=($!)
bin/greeter --version v2 --port 50062 >"$tmp/greeter-v2.log" 2>&1 &
pids+=($!)

cat <<MSG

gitmesh serves $MESH_DIR on $XDS_ADDR (status: http://$HTTP_ADDR/api/v1/status)
logs in $tmp; Ctrl-C stops everything.

  edit the weights in $MESH_DIR/mesh.cue and watch the split move

MSG

GRPC_XDS_BOOTSTRAP="$tmp/bootstrap.json" bin/canary-client --target xds:///greeter:50051 &
pids+=($!)

if [[ -n "${DEMO_SECONDS:-}" ]]; then
	sleep "$DEMO_SECONDS"
else
	wait "${pids[-1]}"
fi
