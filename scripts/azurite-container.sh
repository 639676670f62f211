#!/usr/bin/env bash
# Creates a blob container in a local Azurite (object_store cannot create containers), with
# Azure's SharedKey authorisation computed by openssl: `azurite-container.sh NAME ENDPOINT`,
# ENDPOINT like http://127.0.0.1:10000/devstoreaccount1. Azurite's well-known development
# account and key are public (Azure's documentation of the emulator).
set -euo pipefail
name=$1
endpoint=$2
account=devstoreaccount1
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
version=2021-08-06
date=$(LC_ALL=C TZ=GMT date '+%a, %d %b %Y %H:%M:%S GMT')
# The string to sign of a path-style request names the account twice (host part and path).
to_sign="PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:${date}\nx-ms-version:${version}\n/${account}/${account}/${name}\nrestype:container"
hexkey=$(printf '%s' "$key" | base64 -d | od -An -v -tx1 | tr -d ' \n')
sig=$(printf "$to_sign" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:${hexkey}" -binary | base64 -w0)
# Azurite may accept connections a moment before it answers them: retry a refused or reset
# connection (curl's code 000) for up to 10 s, and name the failure rather than exit silently.
for _ in $(seq 50); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Content-Length: 0" \
        -H "x-ms-date: ${date}" -H "x-ms-version: ${version}" \
        -H "Authorization: SharedKey ${account}:${sig}" "${endpoint}/${name}?restype=container") ||
        true
    [ "$code" != 000 ] && break
    sleep 0.2
done
case $code in
    201 | 409) ;;
    *) echo "creating container $name at $endpoint: HTTP $code" >&2; exit 1 ;;
esac
