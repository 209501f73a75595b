#!/usr/bin/env bash
# Creates a SoftHSM2 development token for Hutong in DIR and prints the SOFTHSM2_CONF to
# export (stdout holds only that line, so `eval "$(hsm/dev-token.sh DIR)"` works; everything
# else goes to stderr).
#
#   hsm/dev-token.sh DIR [TOKEN_LABEL]
#
# PINs: HUTONG_HSM_PIN (user PIN, default 1234) and HUTONG_HSM_SO_PIN (default 5678).
# Development only: SoftHSM2 keeps keys in files under DIR, protected by the PIN alone.
set -euo pipefail

usage() { echo "usage: $0 DIR [TOKEN_LABEL]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage

dir=$1
label=${2:-hutong-dev}
user_pin=${HUTONG_HSM_PIN:-1234}
so_pin=${HUTONG_HSM_SO_PIN:-5678}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if ! command -v softhsm2-util >/dev/null; then
    echo "softhsm2-util not found: install SoftHSM2 (apt-get install -y softhsm2)" >&2
    exit 1
fi
module=
for candidate in \
    /usr/lib/softhsm/libsofthsm2.so \
    /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
    /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so \
    /usr/lib64/pkcs11/libsofthsm2.so \
    /usr/local/lib/softhsm/libsofthsm2.so; do
    if [[ -e $candidate ]]; then module=$candidate; break; fi
done
[[ -n $module ]] || { echo "libsofthsm2.so not found (dpkg -L libsofthsm2)" >&2; exit 1; }

mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
chmod 0700 "$dir" "$dir/tokens"
conf="$dir/softhsm2.conf"
template=$(<"$here/softhsm2.conf.template")
printf '%s\n' "${template//@TOKENDIR@/$dir/tokens}" >"$conf"
export SOFTHSM2_CONF=$conf

# Token labels are how Hutong finds its token; a second token with the same label would be
# ambiguous, so refuse rather than add one.
label_exists() {
    softhsm2-util --show-slots 2>/dev/null | awk -v want="$1" '
        $1 == "Label:" { sub(/^[ \t]*Label:[ \t]*/, ""); sub(/[ \t]+$/, ""); if ($0 == want) found = 1 }
        END { exit !found }'
}
if label_exists "$label"; then
    echo "a token labelled '$label' already exists in $dir/tokens; reusing it" >&2
else
    softhsm2-util --init-token --free --label "$label" --pin "$user_pin" --so-pin "$so_pin" >&2
fi

cat >&2 <<MSG

Development token '$label' is in $dir/tokens.
Configure Hutong with:

  [keys]
  provider = "pkcs11"
  [keys.pkcs11]
  module = "$module"
  token_label = "$label"
  kek_label = "hutong-kek"

then, with SOFTHSM2_CONF and HUTONG_HSM_PIN exported, create the KEK and the platform key once: hutong init

MSG
echo "export SOFTHSM2_CONF=$conf"
