#!/usr/bin/env bash
# A whole local mesh in one command, on the embedded default:
#
#   namerd        SQLite in .local/mesh/namerd.db (kept across runs), the fs
#                 namer over .local/mesh/disco/, dtab API :4180, gRPC :4321
#   linkerd-proxy HTTP/1.1 :4140, HTTP/2 :4240, gRPC :4340, admin :9990
#   backends      world-v1 and world-v2 (HTTP), greeter (gRPC), each
#                 answering with its own name
#
# The configurations it runs are deploy/local/{namerd,linkerd}.yaml and
# internal.dtab. Ctrl-C (or SIGTERM, SIGHUP) stops everything. Running it again reuses the
# stored dtabs and cleans up what an interrupted run left behind.
#
# Environment: L5D_PROFILE=release|debug (default release),
# L5D_SKIP_BUILD=1 to use already built binaries (L5D_BIN_DIR says where),
# L5D_LOCAL_STATE to keep state elsewhere than .local/mesh.
set -euo pipefail

# A shell started in the background of a non-interactive shell (a CI job,
# `./mesh.sh &` in a script) inherits SIGINT as ignored, and bash cannot trap
# a signal that was ignored when it started: Ctrl-C would never stop the
# mesh. Start again once with the default dispositions, so the traps below
# always work however the launcher was started.
if [[ -z "${L5D_MESH_SIGNALS_RESET:-}" ]]; then
  export L5D_MESH_SIGNALS_RESET=1
  exec env --default-signal=INT,TERM,HUP bash "${BASH_SOURCE[0]}" "$@"
fi
unset L5D_MESH_SIGNALS_RESET

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
state=${L5D_LOCAL_STATE:-.local/mesh}
profile=${L5D_PROFILE:-release}
bin=${L5D_BIN_DIR:-${CARGO_TARGET_DIR:-$root/target}/$profile}

say() { printf '%s\n' "$*"; }

if [[ -z "${L5D_SKIP_BUILD:-}" ]]; then
  say "building namerd, linkerd-proxy, namerctl and the demo backends ($profile)..."
  if [[ $profile == release ]]; then flags=(--release); else flags=(); fi
  cargo build "${flags[@]}" -p namerd -p linkerd-proxy -p namerctl -p l5d-demo
fi

mkdir -p "$state/disco" "$state/logs"

# Whatever a previous run left behind (killed without Ctrl-C): stop it, by
# the process ids it recorded, if they still run our binaries.
if [[ -f "$state/pids" ]]; then
  while read -r pid; do
    if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "$bin/"; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done < "$state/pids"
  rm -f "$state/pids"
  sleep 1
fi

pids=()
cleanup() {
  trap - INT TERM EXIT
  say ""
  say "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -f "$state/pids"
  say "stopped."
}
trap cleanup EXIT
trap 'cleanup; exit 0' INT TERM HUP

# start NAME CMD...: runs CMD with its output in $state/logs/NAME.*, and
# waits (up to 60 s) for the readiness line it prints first; sets $line.
start() {
  local name=$1
  shift
  "$@" > "$state/logs/$name.out" 2> "$state/logs/$name.err" &
  local pid=$!
  pids+=("$pid")
  echo "$pid" >> "$state/pids"
  for _ in $(seq 600); do
    line=$(head -n 1 "$state/logs/$name.out" 2>/dev/null || true)
    if [[ -n $line ]]; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      say "$name exited; its log ($state/logs/$name.err):"
      cat "$state/logs/$name.err" >&2
      exit 1
    fi
    sleep 0.1
  done
  say "$name did not become ready within 60 s; see $state/logs/$name.err"
  exit 1
}

field() { tr ' ' '\n' <<< "$line" | sed -n "s/^$1=//p"; }

for backend in "http world-v1" "http world-v2" "grpc greeter"; do
  read -r kind name <<< "$backend"
  start "$name" "$bin/l5d-demo" "$kind" --name "$name" --listen 127.0.0.1:0
  addr=$(field addr)
  printf '%s %s\n' "${addr%:*}" "${addr##*:}" > "$state/disco/$name.tmp"
  mv "$state/disco/$name.tmp" "$state/disco/$name"
done

sed "s#\.local/mesh#$state#g" deploy/local/namerd.yaml > "$state/namerd.yaml"
start namerd "$bin/namerd" "$state/namerd.yaml"

# Named explicitly, so a NAMERCTL_BASE_URL or .namerctl.yaml of the user's
# cannot send the seed elsewhere; nothing is exported, so the commands
# printed below behave the same in the user's own shell.
namerd_url=http://127.0.0.1:4180
if ! "$bin/namerctl" --base-url "$namerd_url" dtab get internal > /dev/null 2>&1; then
  "$bin/namerctl" --base-url "$namerd_url" dtab create internal deploy/local/internal.dtab
fi

start linkerd-proxy "$bin/linkerd-proxy" deploy/local/linkerd.yaml

cat <<EOF2

The mesh is up.

  curl -x localhost:4140 http://world/                      # HTTP/1.1 via http_proxy -> world-v1
  curl --http2-prior-knowledge -H 'Host: world' http://localhost:4240/   # HTTP/2
  python3 tests/grpcio/demo_client.py --target localhost:4340 unary you  # gRPC (pip install grpcio)

  $bin/namerctl dtab get internal                           # the dtab and its version
  $bin/namerctl canary start internal --path /host/world --from /srv/world-v1 --to /srv/world-v2 --steps 10,50,100 --interval 5s
                                     # shifts world 10%, 50%, then all to v2 (canary status / abort from another shell)

  dashboard  http://localhost:9990/        metrics  http://localhost:9990/admin/metrics/prometheus
  delegator  http://localhost:9990/delegator.json?path=/svc/world
  namerd     http://localhost:4180/api/1/dtabs    admin http://localhost:9991/admin/metrics/prometheus
  logs       $state/logs/

Ctrl-C stops everything.
EOF2

# Until Ctrl-C, or until one of the processes dies.
set +e
wait -n "${pids[@]}"
say "a process exited; see $state/logs/"
exit 1
