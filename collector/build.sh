#!/usr/bin/env bash
# Builds the otelcol-promptcanary distribution (builder-config.yaml) with the pinned OpenTelemetry
# Collector Builder (ocb) into collector/_build/ and prints the binary's absolute path on stdout
# (build logs go to stderr). The build is reused while nothing it depends on changed: the stamp
# is a hash of the manifest, the processor's sources, the ocb version and the Go version.
#
#   collector/build.sh            # build if needed, print the path
#   collector/build.sh --force    # rebuild even if the stamp matches
set -euo pipefail
cd "$(dirname "$0")"

OCB_VERSION=v0.161.0
build_dir=_build
binary="$build_dir/otelcol-promptcanary/otelcol-promptcanary"
stamp_file="$build_dir/otelcol-promptcanary.stamp"
export GOBIN="$PWD/$build_dir/bin"

force=false
[ "${1:-}" = "--force" ] && force=true

stamp=$(
  {
    echo "ocb $OCB_VERSION"
    go version
    cat builder-config.yaml
    find processor/promptcanaryprocessor -type f \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' -o -name 'metadata.yaml' \) \
      -not -name '*_test.go' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-32
)

if ! $force && [ -x "$binary" ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
  echo "build.sh: $binary is up to date" >&2
  echo "$PWD/$binary"
  exit 0
fi

mkdir -p "$build_dir"
if ! "$GOBIN/builder" version 2>/dev/null | grep -qx "ocb version $OCB_VERSION"; then
  echo "build.sh: installing ocb $OCB_VERSION into $GOBIN" >&2
  go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION"
fi

start=$(date +%s)
rm -f "$stamp_file"
"$GOBIN/builder" --config=builder-config.yaml >&2
echo "$stamp" > "$stamp_file"
echo "build.sh: built $binary in $(( $(date +%s) - start ))s" >&2
echo "$PWD/$binary"
