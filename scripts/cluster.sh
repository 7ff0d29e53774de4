#!/usr/bin/env bash
# A local multi-node Ray cluster for autopeft, on explicit ports.
#
#   scripts/cluster.sh up       # head (GCS, dashboard + job server) and N-1 worker nodes
#   scripts/cluster.sh status   # nodes, resources, the addresses to use
#   scripts/cluster.sh down     # stop exactly the processes this script started
#
# Every port is explicit because Ray's defaults collide here (Redis owns 6379; a second
# raylet on the same machine needs its own ports). Each `ray start` runs in a session of
# its own (setsid), so `down` ends the cluster by process group id and never touches other
# Ray instances on the machine (`ray stop` would stop every Ray of this user).
#
# Settings (environment):
#   AUTOPEFT_CLUSTER_DIR       state, logs and Ray's temp dir; at most 38 characters, as
#                              Ray's Unix socket paths below it must stay under 107
#                              (default /tmp/autopeft-cluster-$UID)
#   AUTOPEFT_CLUSTER_NODES     nodes including the head (2)
#   AUTOPEFT_CLUSTER_CPUS      CPUs each node offers (1)
#   AUTOPEFT_CLUSTER_PORT      head GCS port; the head uses PORT..PORT+1, node i uses
#                              PORT+10*(i+1) .. PORT+10*(i+1)+5 (6390)
#   AUTOPEFT_CLUSTER_DASHBOARD_PORT  dashboard and job server (8265)
#   AUTOPEFT_CLUSTER_WORKER_PORTS    first worker port; node i uses 100 from
#                                    WORKER_PORTS+100*i (20000)
#   AUTOPEFT_CLUSTER_OBJECT_STORE    object store bytes per node (268435456)
#   AUTOPEFT_CLUSTER_IP        node address (127.0.0.1)
#   AUTOPEFT_CLUSTER_GRACE     seconds between SIGTERM and SIGKILL on `down` (5)
set -euo pipefail

DIR=${AUTOPEFT_CLUSTER_DIR:-/tmp/autopeft-cluster-$(id -u)}
NODES=${AUTOPEFT_CLUSTER_NODES:-2}
CPUS=${AUTOPEFT_CLUSTER_CPUS:-1}
PORT=${AUTOPEFT_CLUSTER_PORT:-6390}
DASHBOARD_PORT=${AUTOPEFT_CLUSTER_DASHBOARD_PORT:-8265}
WORKER_PORTS=${AUTOPEFT_CLUSTER_WORKER_PORTS:-20000}
OBJECT_STORE=${AUTOPEFT_CLUSTER_OBJECT_STORE:-268435456}
IP=${AUTOPEFT_CLUSTER_IP:-127.0.0.1}
GRACE=${AUTOPEFT_CLUSTER_GRACE:-5}
STATE=$DIR/cluster.env
# Ray 2.60 turns token auth on by default; these clusters are local and unauthenticated.
export RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0

die() { echo "cluster.sh: $*" >&2; exit 1; }

group_alive() { [ "${1:-0}" -gt 1 ] && kill -0 -- "-$1" 2>/dev/null; }

# Stop one process group: SIGTERM, a grace period, then SIGKILL. Raylets exit on SIGTERM
# within a few seconds; the GCS keeps retrying its metrics export for longer and holds
# nothing worth waiting for (no persistence is configured).
stop_group() {
  local pgid=$1 i
  group_alive "$pgid" || return 0
  kill -TERM -- "-$pgid" 2>/dev/null || true
  for i in $(seq $((2 * GRACE))); do group_alive "$pgid" || return 0; sleep 0.5; done
  kill -KILL -- "-$pgid" 2>/dev/null || true
  for i in $(seq 20); do group_alive "$pgid" || return 0; sleep 0.5; done
  echo "cluster.sh: process group $pgid did not exit" >&2
}

# Worker processes put themselves in groups of their own; they leave when their raylet
# dies, and this sweep ends any straggler by pid (only processes under our temp dir).
sweep() {
  local pid
  for pid in $(ps -eo pid=,comm=,args= \
      | awk -v d="$DIR/ray/" '$2 != "awk" && index($0, d) {print $1}'); do
    kill -KILL "$pid" 2>/dev/null || true
  done
}

node_count() {
  timeout 60 ray status --address "$1" 2>/dev/null \
    | awk '/^Active:/{a=1; next} /^Pending:/{a=0} a && /node_/{n++} END{print n+0}'
}

# The state file holds S_* and PGID_* assignments; read them without touching settings.
load_state() {
  # shellcheck disable=SC1090
  [ -f "$STATE" ] && . "$STATE"
}

# start_node INDEX [extra ray start args...]: one `ray start` in a new session.
start_node() {
  local i=$1; shift
  local base=$((PORT + 10 * (i + 1))) low=$((WORKER_PORTS + 100 * i)) pid rc=0
  setsid ray start --node-ip-address "$IP" --num-cpus "$CPUS" \
    --object-store-memory "$OBJECT_STORE" --temp-dir "$DIR/ray" --disable-usage-stats \
    --node-manager-port "$base" --object-manager-port $((base + 1)) \
    --dashboard-agent-listen-port $((base + 2)) --dashboard-agent-grpc-port $((base + 3)) \
    --runtime-env-agent-port $((base + 4)) --metrics-export-port $((base + 5)) \
    --min-worker-port "$low" --max-worker-port $((low + 99)) \
    "$@" >"$DIR/node$i.log" 2>&1 &
  pid=$!
  # Non-interactive bash starts background jobs without job control, so setsid makes
  # this very process the leader: its pid is the group id of everything Ray starts.
  echo "PGID_$i=$pid" >>"$STATE"
  S_STARTED=$((i + 1))
  echo "S_STARTED=$S_STARTED" >>"$STATE"
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    tail -n 20 "$DIR/node$i.log" >&2
    return "$rc"
  fi
}

up() {
  if load_state; then
    if group_alive "${PGID_0:-0}"; then
      die "a cluster is already up ($STATE); run '$0 down' first"
    fi
    down_quiet
  fi
  # $DIR/ray/session_<date>_<time>_<pid>/sockets/plasma_store is ~68 characters more.
  if [ ${#DIR} -gt 38 ]; then
    die "AUTOPEFT_CLUSTER_DIR is too long (${#DIR} > 38 chars): Ray's sockets would not fit"
  fi
  mkdir -p "$DIR/ray"
  {
    echo "S_ADDRESS=$IP:$PORT"
    echo "S_DASHBOARD=http://$IP:$DASHBOARD_PORT"
  } >"$STATE"
  if ! start_node 0 --head --port "$PORT" --ray-client-server-port $((PORT + 1)) \
      --include-dashboard=true --dashboard-host "$IP" --dashboard-port "$DASHBOARD_PORT"; then
    down_quiet
    die "the head node did not start (log: $DIR/node0.log)"
  fi
  for i in $(seq 1 $((NODES - 1))); do
    if ! start_node "$i" --address "$IP:$PORT"; then
      down_quiet
      die "node $i did not start (log: $DIR/node$i.log)"
    fi
  done
  local n=0 deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    n=$(node_count "$IP:$PORT")
    [ "$n" -ge "$NODES" ] && break
    sleep 0.5
  done
  if [ "$n" -lt "$NODES" ]; then
    down_quiet
    die "only $n of $NODES nodes joined within 60 s"
  fi
  echo "Ray cluster up: $NODES nodes x $CPUS CPU"
  echo "  search:  autopeft search ... --ray-address $IP:$PORT"
  echo "  jobs:    autopeft submit --address http://$IP:$DASHBOARD_PORT ..."
  echo "  stop:    $0 down"
}

down_quiet() {
  load_state || return 0
  local i var
  # Worker nodes first, the head (GCS) last, so that raylets do not wait for it.
  for i in $(seq $((${S_STARTED:-1} - 1)) -1 0); do
    var="PGID_$i"
    if [ -n "${!var:-}" ]; then stop_group "${!var}"; fi
  done
  sweep
  # Ray's sockets and session files go; the nodes' start logs stay for post-mortems.
  rm -rf "$DIR/ray" "$STATE"
}

down() {
  [ -f "$STATE" ] || { echo "no cluster state in $DIR: nothing to stop"; return 0; }
  down_quiet
  echo "Ray cluster in $DIR stopped"
}

status() {
  load_state || die "no cluster in $DIR (run '$0 up')"
  group_alive "${PGID_0:-0}" || die "the head node of $DIR is not running"
  ray status --address "$S_ADDRESS"
  echo "ray address:  $S_ADDRESS"
  echo "job server:   $S_DASHBOARD"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
