#!/usr/bin/env bash
# Runs a Kontor federation on loopback: one kontord per node, all in one DIR.
set -euo pipefail

prog=federation.sh
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo_root=$(dirname "$script_dir")
make_pki=$repo_root/certs-example/make-pki.sh
key_files=(tls.crt tls.key signing.crt signing.key encryption.crt encryption.key)

usage() {
  cat <<'EOF'
Usage: federation.sh start DIR [NODE...] [--route A:B:VIA]...
                                             start a loopback federation
       federation.sh stop DIR [NODE...]      stop all (or the named) nodes
       federation.sh restart DIR NODE...     stop and start nodes, same config
       federation.sh status DIR              one line per node

start makes DIR (any depth), a demo PKI in DIR/pki (certs-example/make-pki.sh),
and per node DIR/NODE/ with node.textproto, links to its keys and certificates,
data/, kontord.log and kontord.pid. Each node gets two free TCP ports on
127.0.0.1: its federation port and its monitoring port (/metrics, /healthz).
start waits (up to 20 s) until every node's local socket exists and its
federation port accepts connections, then prints one line per node on
stdout, and nothing else:

    export KONTOR_NODE=<local socket path>  # <node>

and on stderr, per node, where its metrics are:

    federation.sh: <node>: metrics http://127.0.0.1:<port>/metrics (and /healthz)

Re-running start on an existing DIR reuses its PKI, configs and ports and starts
the nodes that are not running; without NODE it starts every node of DIR.
Naming a node DIR does not have yet adds it to the federation: the configs of
the other nodes are rewritten (same ports) and running nodes reload them by
themselves within their reload_check_seconds (or at once on SIGHUP).

--route A:B:VIA (e.g. --route ee:lv:fi) takes the direct link between A and B
out of the federation: A and B reach each other only through VIA, which relays
both ways (routes in A's and B's configs, relay rules in VIA's). Routes are
kept in DIR/routes and apply to every later start; all configs are rewritten.

The local socket is DIR/NODE/kontor.sock when that path has at most 100 bytes,
else /tmp/kontor-<hash of DIR>/NODE.sock; DIR/NODE/socket records the choice.

kontord is $KONTORD if set, else kontord on PATH, else build/daemon/kontord or
build/kontord in the repository.

stop sends SIGTERM, waits up to 10 s, then SIGKILL; it succeeds when nothing
runs. status exits 0 when every node runs, 3 when some do not.
EOF
}

die() { echo "$prog: $*" >&2; exit 1; }
usage_error() { echo "$prog: $* (see $prog --help)" >&2; exit 2; }
note() { echo "$prog: $*" >&2; }

# --- DIR and its nodes -------------------------------------------------------

# Sets dir to the absolute, symlink-free form of existing directory $1.
set_dir() {
  [[ $1 != *$'\n'* ]] || usage_error "DIR must not contain a newline"
  [[ -d $1 ]] || die "no such directory: $1"
  dir=$(cd "$1" && pwd -P)
}

# Prints the nodes that have a config in $dir, one per line, sorted.
existing_nodes() {
  local cfg
  for cfg in "$dir"/*/node.textproto; do
    [[ -f $cfg ]] || continue
    cfg=${cfg%/node.textproto}
    echo "${cfg##*/}"
  done
}

config_of() { echo "$dir/$1/node.textproto"; }
# The /metrics URL of node $1, from its config ("" if it has no listener).
metrics_url_of() {
  sed -n 's|^metrics { listen_address: "\([^"]*\)" }$|http://\1/metrics|p' "$(config_of "$1")"
}
pidfile_of() { echo "$dir/$1/kontord.pid"; }
log_of() { echo "$dir/$1/kontord.log"; }
socket_of() { cat "$dir/$1/socket"; }

# Prints the federation port from node $1's config.
port_of() {
  local port
  port=$(sed -n 's/^[[:space:]]*listen_address:[[:space:]]*"[^"]*:\([0-9][0-9]*\)".*/\1/p' \
    "$(config_of "$1")" | head -n 1)
  [[ -n $port ]] || die "no listen_address with a port in $(config_of "$1")"
  echo "$port"
}

# Prints the socket path for node $1: DIR/NODE/kontor.sock if short enough,
# else one in a private directory under /tmp named after DIR.
choose_socket() {
  local node=$1 path short hash
  path=$dir/$node/kontor.sock
  if (($(LC_ALL=C && echo ${#path}) <= 100)); then
    echo "$path"
    return
  fi
  hash=$(printf '%s' "$dir" | sha256sum | cut -c1-12)
  short=/tmp/kontor-$hash
  path=$short/$node.sock
  (($(LC_ALL=C && echo ${#path}) <= 107)) || die "socket path $path is longer than 107 bytes"
  echo "$path"
}

# Makes the directory of socket $1 if it is missing (/tmp is cleaned, and stop
# removes an empty /tmp/kontor-* directory); a /tmp one must be private.
ensure_socket_dir() {
  local parent
  parent=$(dirname "$1")
  [[ -d $parent ]] || mkdir -m 0700 "$parent" || die "cannot create $parent"
  [[ $parent != /tmp/kontor-* || -O $parent ]] ||
    die "$parent belongs to another user: refusing to put sockets there"
}

# --- processes ---------------------------------------------------------------

# Returns 0 if node $1's kontord runs; sets pid. A pid counts only if that
# process was started with this node's config (pid files outlive reboots).
is_running() {
  local node=$1 pidfile cfg arg
  local -a args=()
  pidfile=$(pidfile_of "$node")
  pid=
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  mapfile -d '' args 2>/dev/null <"/proc/$pid/cmdline" || return 1
  cfg=$(config_of "$node")
  for arg in "${args[@]}"; do
    [[ $arg != "$cfg" ]] || return 0
  done
  return 1
}

# Returns 0 once process $1 has no running thread left. After SIGKILL the
# thread group leader turns zombie (empty cmdline) first, while its other
# threads still exit and keep the open files, the data directory's lock
# among them; a new kontord on that directory must wait for the last one.
process_gone() {
  local t state rest
  [[ -d /proc/$1 ]] || return 0
  for t in /proc/"$1"/task/*/stat; do
    [[ -r $t ]] || continue
    IFS= read -r rest 2>/dev/null <"$t" || continue
    rest=${rest##*) }
    state=${rest%% *}
    [[ $state == Z || $state == X ]] || return 1
  done
  return 0
}

# Waits up to 10 s for process $1 to be gone (see process_gone).
wait_gone() {
  local i
  for ((i = 0; i < 100; i++)); do
    process_gone "$1" && return 0
    sleep 0.1
  done
  return 1
}

# If node $1's pid file names a kontord that is still exiting (SIGKILLed by
# someone else: its leader a zombie, whose cmdline is empty, so is_running
# no longer sees it), waits up to 10 s for it to be gone. Identified by its
# name (comm stays on the zombie), so a reused pid of another program, or a
# kernel thread, costs no wait.
wait_killed() {
  local pidfile old comm
  pidfile=$(pidfile_of "$1")
  [[ -s $pidfile ]] || return 0
  old=$(<"$pidfile")
  [[ $old =~ ^[0-9]+$ ]] || return 0
  IFS= read -r comm 2>/dev/null <"/proc/$old/comm" || return 0
  [[ $comm == kontord* ]] || return 0
  wait_gone "$old" || note "$1: kontord (pid $old) is still exiting after 10 s"
}

# Sets kontord to the absolute path of the daemon binary, or dies.
find_kontord() {
  local c
  kontord=
  if [[ -n ${KONTORD:-} ]]; then
    [[ -f $KONTORD && -x $KONTORD ]] || die "KONTORD=$KONTORD is not an executable file"
    kontord=$KONTORD
  elif c=$(command -v kontord); then
    kontord=$c
  else
    for c in "$repo_root/build/daemon/kontord" "$repo_root/build/kontord"; do
      if [[ -f $c && -x $c ]]; then kontord=$c && break; fi
    done
  fi
  [[ -n $kontord ]] ||
    die "kontord not found: set KONTORD, put kontord on PATH, or build it (cmake --build build)"
  [[ $kontord == /* ]] || kontord=$PWD/$kontord
}

# Starts node $1's kontord in the background, in its own session, with
# DIR/NODE as working directory, and waits for its pid file.
launch() {
  local node=$1 cfg log pidfile sock i
  cfg=$(config_of "$node")
  log=$(log_of "$node")
  pidfile=$(pidfile_of "$node")
  sock=$(socket_of "$node")
  ensure_socket_dir "$sock"
  # A kontord just SIGKILLed by someone else may still hold the data
  # directory's lock: wait for it.
  wait_killed "$node"
  rm -f "$pidfile"
  # A socket left by a killed kontord would look like a ready node.
  if [[ -S $sock ]]; then rm -f "$sock"; fi
  echo "=== $(date -u +%Y-%m-%dT%H:%M:%SZ) $prog: starting $kontord --config $cfg" >>"$log"
  # The wrapper records its pid and closes inherited descriptors (a caller's
  # pipe kept open by the daemon would hang the caller), then becomes kontord.
  (
    cd "$dir/$node"
    # shellcheck disable=SC2016  # expanded by the inner bash
    exec setsid bash -c '
      echo $$ >"$1.tmp" && mv -f "$1.tmp" "$1"
      for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        if ((fd > 2)); then eval "exec $fd>&-"; fi
      done
      shift
      exec "$@"' federation-launch "$pidfile" "$kontord" --config "$cfg" \
      </dev/null >>"$log" 2>&1
  ) &
  for ((i = 0; i < 50; i++)); do
    [[ -s $pidfile ]] && return 0
    sleep 0.1
  done
  die "$node: kontord did not start (no $pidfile after 5 s); see $log"
}

# Prints the log lines of node $1's latest start (at most 20) on stderr.
show_log_tail() {
  local log first
  log=$(log_of "$1")
  [[ -f $log ]] || return 0
  first=$(grep -n "^=== .* $prog: starting " "$log" | tail -n 1 | cut -d: -f1) || true
  echo "--- last lines of $log:" >&2
  sed -n "${first:-1},\$p" "$log" | tail -n 20 >&2
  echo "---" >&2
}

port_accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until every node in "$@" has its socket and accepts TCP connections.
# On a dead node or after 20 s: shows its log, stops the nodes this run
# started (array started) and exits 1.
wait_ready() {
  local -a pending=("$@") still
  local node deadline now port
  deadline=$((${EPOCHREALTIME//[.,]/} + 20000000))
  while ((${#pending[@]} > 0)); do
    still=()
    for node in "${pending[@]}"; do
      if ! is_running "$node"; then
        note "$node: kontord exited during start-up"
        show_log_tail "$node"
        abort_start
      fi
      port=$(port_of "$node")
      if [[ -S $(socket_of "$node") ]] && port_accepts "$port"; then continue; fi
      still+=("$node")
    done
    ((${#still[@]} > 0)) || break
    now=${EPOCHREALTIME//[.,]/}
    if ((now > deadline)); then
      for node in "${still[@]}"; do
        note "$node: not ready after 20 s (socket $(socket_of "$node"), port $(port_of "$node"))"
        show_log_tail "$node"
      done
      abort_start
    fi
    sleep 0.1
    pending=("${still[@]}")
  done
}

abort_start() {
  if ((${#started[@]} > 0)); then
    note "stopping the nodes this run started: ${started[*]}"
    stop_nodes "${started[@]}" 2>/dev/null || true
  fi
  exit 1
}

# Stops the nodes in "$@": SIGTERM, up to 10 s, then SIGKILL.
stop_nodes() {
  local -a running=() still
  local node i
  declare -A pid_of=()
  for node in "$@"; do
    if is_running "$node"; then
      kill -TERM "$pid" 2>/dev/null || true
      pid_of[$node]=$pid
      running+=("$node")
    fi
  done
  for ((i = 0; i < 100 && ${#running[@]} > 0; i++)); do
    sleep 0.1
    still=()
    for node in "${running[@]}"; do
      if is_running "$node"; then still+=("$node"); else note "$node: stopped (pid ${pid_of[$node]})"; fi
    done
    running=("${still[@]}")
  done
  for node in "${running[@]}"; do
    note "$node: still running after 10 s: SIGKILL (pid ${pid_of[$node]})"
    kill -KILL "${pid_of[$node]}" 2>/dev/null || true
  done
  for ((i = 0; i < 50 && ${#running[@]} > 0; i++)); do
    still=()
    for node in "${running[@]}"; do
      if is_running "$node"; then still+=("$node"); fi
    done
    running=("${still[@]}")
    sleep 0.1
  done
  ((${#running[@]} == 0)) || die "could not stop: ${running[*]}"
  for node in "${!pid_of[@]}"; do
    wait_gone "${pid_of[$node]}" || die "could not stop: $node (pid ${pid_of[$node]} is still exiting)"
  done
  for node in "$@"; do
    wait_killed "$node"
    rm -f "$(pidfile_of "$node")"
    [[ -f $dir/$node/socket ]] || continue
    local sock
    sock=$(socket_of "$node")
    if [[ -S $sock ]]; then rm -f "$sock"; fi
    if [[ $sock == /tmp/kontor-* ]]; then rmdir "$(dirname "$sock")" 2>/dev/null || true; fi
  done
}

print_export() {
  printf 'export KONTOR_NODE=%q  # %s\n' "$(socket_of "$1")" "$1"
}

# --- configuration -----------------------------------------------------------

# Prints $1 as a protobuf text format string literal.
tp() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# Writes DIR/NODE/node.textproto for node $1 of the federation "${members[@]}",
# with ports from port[] and sockets from socket[].
write_config() {
  local node=$1 cfg peer m
  cfg=$(config_of "$node")
  {
    echo "# Node $node of the loopback federation in $dir (written by deploy/federation.sh)."
    echo "# Relative paths are resolved against this file's directory."
    echo "node_id: $(tp "$node")"
    echo 'data_dir: "data"'
    echo "listen_address: \"127.0.0.1:${port[$node]}\""
    echo "local_socket: $(tp "${socket[$node]}")"
    echo 'tls { cert: "tls.crt" key: "tls.key" }'
    echo 'signing { cert: "signing.crt" key: "signing.key" }'
    echo 'encryption { cert: "encryption.crt" key: "encryption.key" }'
    echo 'trusted_cas {'
    echo '  cert: "../pki/ca/federation-ca.crt"'
    echo '  crl: "../pki/ca/federation-ca.crl.pem"'
    for m in "${members[@]}"; do echo "  allowed_node_ids: $(tp "$m")"; done
    echo '}'
    local a b via address
    for peer in "${members[@]}"; do
      [[ $peer != "$node" ]] || continue
      address=" address: \"127.0.0.1:${port[$peer]}\""
      while read -r a b via; do
        if [[ $node == "$a" && $peer == "$b" || $node == "$b" && $peer == "$a" ]]; then
          address=""  # reached through $via only
        fi
      done < <(routes_list)
      echo "peers { id: $(tp "$peer")$address" \
        "signing_certs: $(tp "../pki/$peer/signing.crt")" \
        "encryption_cert: $(tp "../pki/$peer/encryption.crt") }"
    done
    while read -r a b via; do
      if [[ $node == "$a" ]]; then echo "routes { destination: $(tp "$b") via: $(tp "$via") }"; fi
      if [[ $node == "$b" ]]; then echo "routes { destination: $(tp "$a") via: $(tp "$via") }"; fi
      if [[ $node == "$via" ]]; then
        echo "relay { origin: $(tp "$a") destination: $(tp "$b") }"
        echo "relay { origin: $(tp "$b") destination: $(tp "$a") }"
      fi
    done < <(routes_list)
    echo 'limits { max_message_bytes: 4194304 max_clock_skew_seconds: 300 }'
    if [[ -n ${mport[$node]:-} ]]; then
      echo "metrics { listen_address: \"127.0.0.1:${mport[$node]}\" }"
    fi
  } >"$cfg.tmp"
  mv -f "$cfg.tmp" "$cfg"
}

# Prints the routes of DIR ("A B VIA" per line; none if there is no DIR/routes).
routes_list() {
  [[ -f $dir/routes ]] || return 0
  cat "$dir/routes"
}

# Prints the allowed_node_ids of node $1's config, sorted, one line.
config_members() {
  sed -n 's/.*allowed_node_ids:[[:space:]]*"\([^"]*\)".*/\1/p' "$(config_of "$1")" |
    sort -u | tr '\n' ' '
}

# Prints $1 free TCP ports on 127.0.0.1, not among the ports in $2 (spaces).
free_ports() {
  local py=/usr/bin/python3
  [[ -x $py ]] || py=$(command -v python3) || die "python3 not found (apt-get install python3)"
  "$py" - "$1" "$2" <<'EOF'
import socket, sys
want, taken = int(sys.argv[1]), set(sys.argv[2].split())
held, ports = [], []
while len(ports) < want:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    held.append(s)  # keep it bound so the next bind gets another port
    p = s.getsockname()[1]
    if str(p) not in taken:
        ports.append(p)
print(" ".join(map(str, ports)))
EOF
}

# --- commands ----------------------------------------------------------------

cmd_start() {
  (($# >= 1)) || usage_error "start needs DIR"
  local arg_dir=$1 node f
  shift
  [[ $arg_dir != *$'\n'* ]] || usage_error "DIR must not contain a newline"
  local -a named=() members=() new_routes=()
  declare -A seen=()
  while (($# > 0)); do
    node=$1
    shift
    if [[ $node == --route ]]; then
      (($# > 0)) || usage_error "--route needs A:B:VIA"
      [[ $1 =~ ^([a-z0-9-]+):([a-z0-9-]+):([a-z0-9-]+)$ ]] ||
        usage_error "--route $1: expected A:B:VIA, e.g. ee:lv:fi"
      [[ ${BASH_REMATCH[1]} != "${BASH_REMATCH[2]}" && ${BASH_REMATCH[3]} != "${BASH_REMATCH[1]}" &&
        ${BASH_REMATCH[3]} != "${BASH_REMATCH[2]}" ]] || usage_error "--route $1: three different nodes"
      new_routes+=("${BASH_REMATCH[1]} ${BASH_REMATCH[2]} ${BASH_REMATCH[3]}")
      shift
      continue
    fi
    [[ -z ${seen[$node]:-} ]] || continue
    seen[$node]=1
    named+=("$node")
  done
  if [[ -d $arg_dir ]]; then
    set_dir "$arg_dir"
    while IFS= read -r node; do
      [[ -n ${seen[$node]:-} ]] || { seen[$node]=1 && members+=("$node"); }
    done < <(existing_nodes)
  fi
  members=("${named[@]}" "${members[@]}")
  ((${#members[@]} > 0)) || usage_error "start needs at least one NODE (DIR has none yet)"
  ((${#named[@]} > 0)) || named=("${members[@]}")
  mapfile -t members < <(printf '%s\n' "${members[@]}" | sort)

  find_kontord
  [[ -x $make_pki ]] || die "missing $make_pki"
  "$make_pki" "$arg_dir/pki" "${members[@]}" >&2 || exit $?
  set_dir "$arg_dir"

  # Ports and sockets: kept for nodes that have a config, chosen for the others.
  declare -A port=() socket=()
  local -a new_nodes=()
  local taken=""
  for node in "${members[@]}"; do
    if [[ -f $(config_of "$node") && -s $dir/$node/socket ]]; then
      port[$node]=$(port_of "$node")
      socket[$node]=$(socket_of "$node")
      taken+=" ${port[$node]}"
    else
      new_nodes+=("$node")
    fi
  done
  if ((${#new_nodes[@]} > 0)); then
    local -a ports
    local line
    line=$(free_ports "${#new_nodes[@]}" "$taken") || die "cannot pick free ports"
    read -r -a ports <<<"$line"
    local i=0
    for node in "${new_nodes[@]}"; do
      port[$node]=${ports[i]}
      i=$((i + 1))
      mkdir -p "$dir/$node"
      socket[$node]=$(choose_socket "$node")
      echo "${socket[$node]}" >"$dir/$node/socket"
    done
  fi

  local rewrite_all=""
  if ((${#new_routes[@]} > 0)); then
    local r
    for r in "${new_routes[@]}"; do
      for node in $r; do
        [[ -n ${seen[$node]:-} ]] || die "--route: $node is not a node of the federation"
      done
      grep -qxF "$r" "$dir/routes" 2>/dev/null || echo "$r" >>"$dir/routes"
    done
    rewrite_all=1
  fi

  # Metrics ports (/metrics, /healthz): kept in DIR/NODE/metrics_port.
  declare -A mport=()
  local -a need_metrics=()
  for node in "${members[@]}"; do
    taken+=" ${port[$node]}"
    if [[ -s $dir/$node/metrics_port ]]; then
      mport[$node]=$(cat "$dir/$node/metrics_port")
      taken+=" ${mport[$node]}"
    else
      need_metrics+=("$node")
    fi
  done
  if ((${#need_metrics[@]} > 0)); then
    local -a mports
    local mline
    mline=$(free_ports "${#need_metrics[@]}" "$taken") || die "cannot pick free ports"
    read -r -a mports <<<"$mline"
    local j=0
    for node in "${need_metrics[@]}"; do
      mport[$node]=${mports[j]}
      j=$((j + 1))
      echo "${mport[$node]}" >"$dir/$node/metrics_port"
    done
  fi

  # Configs: written for new nodes, rewritten for nodes whose peer set changed.
  local want
  want=$(printf '%s\n' "${members[@]}" | tr '\n' ' ')
  for node in "${members[@]}"; do
    mkdir -p "$dir/$node"
    # shellcheck disable=SC2174  # the parent exists: -m is for data/ itself
    mkdir -p -m 0700 "$dir/$node/data"
    for f in "${key_files[@]}"; do
      [[ -e $dir/$node/$f || -L $dir/$node/$f ]] || ln -s "../pki/$node/$f" "$dir/$node/$f"
    done
    if [[ ! -f $(config_of "$node") ]]; then
      write_config "$node"
    elif [[ $(config_members "$node") != "$want" || -n $rewrite_all ]]; then
      write_config "$node"
      if is_running "$node"; then
        note "$node: peers changed; it reloads its config by itself within its reload_check_seconds (or now: kill -HUP \$(cat $(printf '%q' "$dir/$node/kontord.pid")))"
      fi
    fi
  done

  local -a started=()
  for node in "${named[@]}"; do
    if is_running "$node"; then
      note "$node: already running (pid $pid)"
    else
      launch "$node"
      started+=("$node")
    fi
  done
  wait_ready "${named[@]}"
  note "federation in $dir: ${named[*]} ready"
  local url
  for node in "${named[@]}"; do
    url=$(metrics_url_of "$node")
    [[ -z $url ]] || note "$node: metrics $url (and /healthz)"
  done
  for node in "${named[@]}"; do print_export "$node"; done
}

cmd_stop() {
  (($# >= 1)) || usage_error "stop needs DIR"
  if [[ ! -d $1 ]]; then
    note "no directory $1: nothing to stop"
    return 0
  fi
  set_dir "$1"
  shift
  local -a nodes=("$@")
  ((${#nodes[@]} > 0)) || mapfile -t nodes < <(existing_nodes)
  local node
  for node in "${nodes[@]}"; do
    [[ -f $(config_of "$node") ]] || die "$node is not a node of $dir"
  done
  ((${#nodes[@]} == 0)) || stop_nodes "${nodes[@]}"
}

cmd_restart() {
  (($# >= 2)) || usage_error "restart needs DIR and NODE"
  set_dir "$1"
  shift
  local node
  local -a started=()
  for node in "$@"; do
    [[ -f $(config_of "$node") && -s $dir/$node/socket ]] || die "$node is not a node of $dir"
  done
  find_kontord
  stop_nodes "$@"
  for node in "$@"; do
    launch "$node"
    started+=("$node")
  done
  wait_ready "$@"
  for node in "$@"; do print_export "$node"; done
}

cmd_status() {
  (($# == 1)) || usage_error "status needs exactly DIR"
  set_dir "$1"
  local node all=0
  local -a nodes
  mapfile -t nodes < <(existing_nodes)
  ((${#nodes[@]} > 0)) || die "no nodes in $dir"
  for node in "${nodes[@]}"; do
    if is_running "$node"; then
      printf '%-12s running  pid %-8s 127.0.0.1:%-6s %s %s\n' "$node" "$pid" "$(port_of "$node")" "$(socket_of "$node")" "$(metrics_url_of "$node")"
    else
      printf '%-12s stopped\n' "$node"
      all=3
    fi
  done
  return "$all"
}

case "${1:-}" in
  -h | --help | help) usage ;;
  start) shift && cmd_start "$@" ;;
  stop) shift && cmd_stop "$@" ;;
  restart) shift && cmd_restart "$@" ;;
  status) shift && cmd_status "$@" ;;
  "") usage_error "missing command (start, stop, restart, status)" ;;
  *) usage_error "unknown command '$1'" ;;
esac
