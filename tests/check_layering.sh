#!/usr/bin/env bash
# The layering of DESIGN.md §11, checked on the sources: which module (folder
# under daemon/, and client/) may include which, and which may include gRPC
# or HTTP headers. Prints every include that breaks a rule and exits 1 if
# there is one; exits 0 otherwise.
#
#   tests/check_layering.sh [ROOT]     ROOT: the repository (default: this one)
set -euo pipefail
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)}

# module -> the modules it may include (itself always).
declare -A allowed=(
  [common]=""
  [metrics]="common"
  [crypto]="common"
  [kinds]="common"
  [config]="common"
  [policy]="common"
  [envelope]="common crypto"
  [attachment]="common crypto"
  [store]="common crypto metrics"
  [outbox]="common crypto metrics envelope attachment store"
  [inbox]="common crypto metrics envelope attachment store kinds policy"
  [app]="common crypto metrics envelope attachment store kinds policy config outbox inbox"
  [transport]="common crypto metrics envelope attachment store inbox outbox"
  [api]="common crypto metrics envelope attachment store kinds policy config outbox app"
  [web]="common crypto metrics kinds policy config app"
  [server]="*"
  [client]="common kinds"
)
# Modules whose sources may include gRPC (the gRPC edges, the composition
# root, the CLI) and HTTP (cpp-httplib: the web edge).
grpc_ok=" transport api server client "
http_ok=" web "

bad=0
report() { echo "LAYERING: $*"; bad=1; }

for dir in "$root"/daemon/*/ "$root/client/"; do
  module=$(basename "$dir")
  if [[ -z ${allowed[$module]+set} ]]; then
    report "daemon/$module/ is a module the layering does not know: add it to tests/check_layering.sh"
    continue
  fi
  while IFS= read -r file; do
    rel=${file#"$root"/}
    while IFS= read -r line; do
      inc=$(sed -n 's/^#include "daemon\/\([a-z_]*\)\/.*/\1/p' <<<"$line")
      if [[ -n $inc && $inc != "$module" && ${allowed[$module]} != "*" &&
            " ${allowed[$module]} " != *" $inc "* ]]; then
        report "$rel includes daemon/$inc/ ($module may include: ${allowed[$module]:-nothing else})"
      fi
      if [[ $line =~ ^#include\ [\<\"](grpcpp/|grpc/) && $grpc_ok != *" $module "* ]]; then
        report "$rel includes gRPC ($line): only transport, api, server and the CLI do"
      fi
      if [[ $line =~ ^#include\ [\<\"]httplib\.h && $http_ok != *" $module "* ]]; then
        report "$rel includes cpp-httplib: only web does"
      fi
    done < <(grep -E '^#include' "$file" || true)
  done < <(find "$dir" -maxdepth 1 -name '*.cc' -o -maxdepth 1 -name '*.h')
done
# Within the store: the operations and rules are written against the SQL
# interface (store/sql.h); only a backend's own files (sqlite*, postgres*)
# and the SQLite file check and key file (check, content_keys) touch their
# database.
for file in "$root"/daemon/store/*.cc "$root"/daemon/store/*.h; do
  name=$(basename "$file")
  case $name in sqlite* | check.* | content_keys.cc) ;; *)
    while IFS= read -r line; do
      report "daemon/store/$name includes SQLite ($line): only the backend's files (sqlite*) do"
    done < <(grep -E '^#include [<"](sqlite3\.h|daemon/store/sqlite)' "$file" || true) ;;
  esac
  case $name in postgres*) ;; *)
    while IFS= read -r line; do
      report "daemon/store/$name includes libpq ($line): only the backend's files (postgres*) do"
    done < <(grep -E '^#include [<"]libpq' "$file" || true) ;;
  esac
done
# The CLI's link line: protos, kinds and common only (no crypto, store,
# attachment, outbox, inbox).
if grep -Eq 'kontor_(crypto|store|attachment|outbox|inbox|envelope|transport|api|server|web|metrics)' \
    "$root/client/CMakeLists.txt"; then
  report "client/CMakeLists.txt links a daemon module the CLI must not"
fi
((bad == 0)) && echo "layering: ok"
exit $bad
