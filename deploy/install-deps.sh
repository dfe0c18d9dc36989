#!/usr/bin/env bash
# Installs the Debian packages Kontor needs (deploy/packages.txt) if any is missing.
set -euo pipefail

prog=install-deps.sh
packages_file=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/packages.txt

usage() {
  cat <<'EOF_USAGE'
Usage: install-deps.sh [--check] [PACKAGE...]

Installs the Debian packages listed in deploy/packages.txt (one per line), plus
any PACKAGE given, that are not installed yet: apt-get update, then
apt-get install -y. Does nothing, and needs no root, when all are installed.
As non-root it uses sudo when packages are missing.

  --check   only report: print the missing packages, exit 1 if there are any
EOF_USAGE
}

die() { echo "$prog: $*" >&2; exit 1; }

check_only=0
extra=()
for arg in "$@"; do
  case $arg in
    -h | --help) usage; exit 0 ;;
    --check) check_only=1 ;;
    -*) echo "$prog: unknown option '$arg' (see $prog --help)" >&2; exit 2 ;;
    *) extra+=("$arg") ;;
  esac
done

[[ -r $packages_file ]] || die "cannot read $packages_file"
command -v dpkg-query >/dev/null || die "dpkg-query not found: this script is for Debian"

wanted=()
while IFS= read -r line; do
  line=${line%%#*}
  line=${line//[[:space:]]/}
  [[ -z $line ]] || wanted+=("$line")
done <"$packages_file"
wanted+=("${extra[@]}")

# A package counts as present only when fully installed ("ii"): dpkg -s also
# succeeds for a removed package whose config files are left.
missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null) || status=
  [[ $status == ii* ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "$prog: all ${#wanted[@]} packages are installed" >&2
  exit 0
fi
if ((check_only)); then
  echo "$prog: missing packages: ${missing[*]}" >&2
  printf '%s\n' "${missing[@]}"
  exit 1
fi

sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || die "missing packages (${missing[*]}): run as root to install them"
  sudo=(sudo)
fi
echo "$prog: installing: ${missing[*]}" >&2
"${sudo[@]}" apt-get update || die "apt-get update failed"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" ||
  die "apt-get install failed"
