#!/usr/bin/env bash
# Makes the Pulumi CLI available to this project and prints the folder that holds it.
#
#   scripts/pulumi-cli.sh            find or build; the last line of stdout is the folder to put first on PATH
#   scripts/pulumi-cli.sh --find     find only (never builds); exit 3 when there is nothing to find
#
# Order:
#   1. $SOURCING_KIT_PULUMI_DIR, when set: a folder holding `pulumi` (used as is, must be new enough).
#   2. `pulumi` on PATH, when it is at least v$MIN_VERSION and `pulumi-language-nodejs` is beside it.
#   3. The version-keyed cache: ${XDG_CACHE_HOME:-~/.cache}/sourcing-kit/pulumi-v$VERSION, built once with Go
#      from the Go module proxy (about 5 minutes on 2 cores), reused afterwards (a second run takes well under
#      a second).
#
# What the cache holds, and why:
#   pulumi                          CLI, module github.com/pulumi/pulumi/pkg/v3 at v$VERSION (our npm SDK's version)
#   pulumi-language-nodejs          nodejs language host, from github.com/pulumi/pulumi/sdk/v3 at v$HOST_VERSION:
#                                   the host's own module (sdk/nodejs/cmd/pulumi-language-nodejs/v3) is not served
#                                   by the module proxy, and sdk/v3 carried the host's package up to v3.68
#   pulumi-resource-pulumi-nodejs   the dynamic provider plugin's launcher, copied from node_modules/@pulumi/pulumi
#                                   (it runs @pulumi/pulumi/cmd/dynamic-provider of the project it is started in)
# Messages go to stderr; only the folder goes to stdout.
set -euo pipefail

VERSION="3.248.0"
MIN_VERSION="3.248.0"
HOST_VERSION="3.68.0"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
CACHE_ROOT="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/sourcing-kit"
CACHE_DIR="$CACHE_ROOT/pulumi-v$VERSION"
MODE="${1:-build}"

say() { echo "pulumi-cli: $*" >&2; }
die() { say "$*"; exit "${2:-1}"; }

# "3.248.0" >= "3.248.0"? Plain numeric comparison of the three parts.
version_at_least() {
  local have="$1" want="$2"
  local IFS=.
  read -r -a h <<<"$have"
  read -r -a w <<<"$want"
  for i in 0 1 2; do
    local a="${h[$i]:-0}" b="${w[$i]:-0}"
    a="${a%%[^0-9]*}"; b="${b%%[^0-9]*}"
    if (( ${a:-0} > ${b:-0} )); then return 0; fi
    if (( ${a:-0} < ${b:-0} )); then return 1; fi
  done
  return 0
}

cli_version() { # prints e.g. 3.248.0, or nothing
  PULUMI_SKIP_UPDATE_CHECK=true "$1" version 2>/dev/null | head -n1 | sed -e 's/^v//' || true
}

complete_dir() { # a folder with all three programs, pulumi new enough
  local dir="$1"
  [[ -x "$dir/pulumi" && -x "$dir/pulumi-language-nodejs" ]] || return 1
  local v
  v="$(cli_version "$dir/pulumi")"
  [[ -n "$v" ]] && version_at_least "$v" "$MIN_VERSION"
}

ensure_dynamic_plugin() { # the dynamic provider launcher beside the CLI, when the folder is ours to write
  local dir="$1"
  if command -v pulumi-resource-pulumi-nodejs >/dev/null 2>&1 || [[ -x "$dir/pulumi-resource-pulumi-nodejs" ]]; then
    return 0
  fi
  local src="$HERE/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs"
  [[ -f "$src" ]] || die "node_modules/@pulumi/pulumi is missing: run 'npm ci' first (it ships pulumi-resource-pulumi-nodejs)"
  cp "$src" "$dir/pulumi-resource-pulumi-nodejs"
  chmod +x "$dir/pulumi-resource-pulumi-nodejs"
}

if [[ -n "${SOURCING_KIT_PULUMI_DIR:-}" ]]; then
  complete_dir "$SOURCING_KIT_PULUMI_DIR" ||
    die "SOURCING_KIT_PULUMI_DIR=$SOURCING_KIT_PULUMI_DIR must hold pulumi (at least v$MIN_VERSION) and pulumi-language-nodejs"
  say "using SOURCING_KIT_PULUMI_DIR=$SOURCING_KIT_PULUMI_DIR"
  echo "$SOURCING_KIT_PULUMI_DIR"
  exit 0
fi

if command -v pulumi >/dev/null 2>&1; then
  on_path="$(dirname "$(command -v pulumi)")"
  v="$(cli_version "$on_path/pulumi")"
  if [[ -n "$v" ]] && version_at_least "$v" "$MIN_VERSION" && [[ -x "$on_path/pulumi-language-nodejs" ]]; then
    say "using pulumi v$v from PATH ($on_path)"
    echo "$on_path"
    exit 0
  fi
  say "pulumi on PATH ($on_path) is v${v:-unknown} or has no pulumi-language-nodejs beside it; need v$MIN_VERSION or later: using the cache"
fi

if complete_dir "$CACHE_DIR"; then
  ensure_dynamic_plugin "$CACHE_DIR"
  say "using cached pulumi v$VERSION ($CACHE_DIR)"
  echo "$CACHE_DIR"
  exit 0
fi

if [[ "$MODE" == "--find" ]]; then
  say "no Pulumi CLI: none on PATH and nothing built in $CACHE_DIR (run scripts/pulumi-cli.sh to build it)"
  exit 3
fi

command -v go >/dev/null 2>&1 ||
  die "no Pulumi CLI found and no Go toolchain to build one: install Pulumi v$MIN_VERSION or later (https://www.pulumi.com/docs/install/) or Go 1.22+, then run this again"

say "building Pulumi v$VERSION into $CACHE_DIR with $(go version | cut -d' ' -f3) (one time, about 5 minutes on 2 cores)"
mkdir -p "$CACHE_ROOT"
work="$(mktemp -d "$CACHE_ROOT/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
out="$work/out"
mkdir -p "$out"

build_module() { # name, package, version, output
  local name="$1" pkg="$2" mod_version="$3" binary="$4" ldflags="$5"
  shift 5
  local dir="$work/$name"
  mkdir -p "$dir"
  (
    cd "$dir"
    go mod init "sourcingkit/$name" >/dev/null 2>&1
    printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" >tools.go
    # The modules' own go.mod files carry replace lines, so `go install m@v` refuses; a wrapper module pins them.
    GOFLAGS=-mod=mod go get "$@" >/dev/null 2>"$dir/get.log" || { cat "$dir/get.log" >&2; exit 1; }
    GOFLAGS=-mod=mod go get "$pkg@v$mod_version" >/dev/null 2>>"$dir/get.log" || { cat "$dir/get.log" >&2; exit 1; }
    GOFLAGS=-mod=mod go build -trimpath -tags osusergo,grpcnotrace -ldflags "$ldflags" -o "$binary" "$pkg"
  ) || die "go build of $pkg@v$mod_version failed (output above); the Go module proxy must serve it"
}

say "1/2 CLI: github.com/pulumi/pulumi/pkg/v3@v$VERSION"
build_module cli github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "$VERSION" "$out/pulumi" \
  "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$VERSION" \
  "github.com/pulumi/pulumi/pkg/v3@v$VERSION" "github.com/pulumi/pulumi/sdk/v3@v$VERSION"
say "2/2 nodejs language host: github.com/pulumi/pulumi/sdk/v3@v$HOST_VERSION"
build_module language-host github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs "$HOST_VERSION" \
  "$out/pulumi-language-nodejs" \
  "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$HOST_VERSION" \
  "github.com/pulumi/pulumi/sdk/v3@v$HOST_VERSION"

v="$(cli_version "$out/pulumi")"
[[ "$v" == "$VERSION" ]] || die "the built pulumi reports version '${v}', expected $VERSION"
rm -rf "$CACHE_DIR"
mv "$out" "$CACHE_DIR"
ensure_dynamic_plugin "$CACHE_DIR"
say "built pulumi v$VERSION in $CACHE_DIR"
echo "$CACHE_DIR"
