#!/usr/bin/env bash
# Builds the Debian and the RPM package and checks them (run by .ci/run):
#
#   packaging/test-packages.sh
#
# 1. both packages' file lists hold every expected path; the configuration is a conffile /
#    %config(noreplace); the maintainer scripts parse (sh -n) and pass shellcheck;
# 2. the .deb extracted with dpkg -x: the installed binary's --version, `config check` with
#    the packaged configuration pointed at a temporary data directory, init, and a short
#    serve-and-/healthz on a free loopback port;
# 3. as root, a throw-away root: an overlay over this machine's own root (upper layer on a
#    tmpfs, in a private mount namespace, so nothing reaches the real system) entered with
#    chroot, without systemd (as in a container): `dpkg -i` for real (user, /var/lib/hutong,
#    init, credentials file), `systemd-analyze verify` of the unit, `config check` and serve
#    from the unit's ExecStart as the hutong user, upgrade (data kept), the handbook's SoftHSM2
#    start and first member run as written in docs/operations.md, remove, purge (data kept),
#    purge with HUTONG_PURGE_DATA=yes; then the same for the RPM with rpm -i/-U/-e.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test-packages: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }
passed=0
ok() { passed=$((passed + 1)); echo "   ok: $*"; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to 60 s for GET https://127.0.0.1:PORT/healthz to answer 200.
wait_healthy() {
    local port=$1 pid=$2 _
    for _ in $(seq 1 120); do
        if python3 - "$port" <<'PY' 2>/dev/null; then return 0; fi
import ssl, sys, urllib.request
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with urllib.request.urlopen(f"https://127.0.0.1:{sys.argv[1]}/healthz", context=ctx, timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.5
    done
    return 1
}

# The code block under `<!-- package-test: NAME -->` in docs/operations.md.
handbook_block() {
    awk -v want="<!-- package-test: $1 -->" '
        $0 == want { armed = 1; next }
        armed && /^```/ { if (inside) exit; inside = 1; next }
        inside { print }' docs/operations.md
}

# Stops a server started by this script (by its pid) and expects a clean exit.
stop_server() {
    local pid=$1 log=$2
    kill -TERM "$pid"
    if ! wait "$pid"; then cat "$log" >&2; fail "server $pid did not exit cleanly on SIGTERM"; fi
}

# The paths both packages must hold; @UNIT@ and @ZSH@ differ between the two.
expected_paths() {
    cat <<EOF
/usr/bin/hutong
/etc/hutong/hutong.toml
@UNIT@/hutong.service
/usr/lib/hutong/hutong-setup
/usr/share/bash-completion/completions/hutong
@ZSH@/_hutong
/usr/share/doc/hutong/HSM.md
/usr/share/doc/hutong/dev-token.sh
/usr/share/doc/hutong/softhsm2.conf.template
/usr/share/doc/hutong/operations.md
EOF
    for page in target/packaging/man/*.1.gz; do echo "/usr/share/man/man1/${page##*/}"; done
}

check_list() {
    local what=$1 unit=$2 zsh=$3 listing=$4 missing
    missing=$(expected_paths | sed "s|@UNIT@|$unit|; s|@ZSH@|$zsh|" | sort | comm -23 - <(sort "$listing"))
    [ -z "$missing" ] || fail "$what lacks: $missing"
    ok "$what holds all $(expected_paths | wc -l) expected paths"
}

# ---------------------------------------------------------------- phase 3 (inside unshare)
# Runs in a private mount namespace: everything mounted here disappears with it.
in_throwaway_root() {
    local deb=$1 rpm=$2 work=$3 root upper
    upper=$work/layers
    mkdir -p "$upper"
    mount -t tmpfs -o mode=0755 hutong-test "$upper"
    mkdir -p "$upper/upper" "$upper/work" "$upper/root"
    root=$upper/root
    mount -t overlay overlay -o "lowerdir=/,upperdir=$upper/upper,workdir=$upper/work" "$root" ||
        fail "cannot mount an overlay root here"
    mount --bind /proc "$root/proc"
    mount --rbind /dev "$root/dev"
    # A fresh /run without /run/systemd/system: systemd is not running in there.
    mount -t tmpfs -o mode=0755 run "$root/run"
    mount -t tmpfs -o mode=1777 tmp "$root/tmp"
    cp "$deb" "$root/tmp/hutong.deb"
    cp "$rpm" "$root/tmp/hutong.rpm"
    in_root() { chroot "$root" "$@"; }
    as_hutong() {
        chroot "$root" setpriv --reuid=hutong --regid=hutong --init-groups \
            env -i PATH=/usr/bin:/bin HOME=/var/lib/hutong "$@"
    }
    mode_of() { in_root stat -c '%a %U:%G' "$1"; }

    check_installed() {
        local what=$1 unit=$2 log=$3 pw
        in_root getent passwd hutong >/dev/null || fail "$what: no hutong user"
        [ "$(mode_of /var/lib/hutong)" = "750 hutong:hutong" ] ||
            fail "$what: /var/lib/hutong is $(mode_of /var/lib/hutong)"
        [ "$(mode_of /etc/hutong/hutong.toml)" = "640 root:hutong" ] ||
            fail "$what: hutong.toml is $(mode_of /etc/hutong/hutong.toml)"
        [ "$(mode_of /var/lib/hutong/initial-admin.txt)" = "600 root:root" ] ||
            fail "$what: the credentials file is $(mode_of /var/lib/hutong/initial-admin.txt)"
        pw=$(sed -n 's|^ *password: *\([^ ]*\)$|\1|p' "$root/var/lib/hutong/initial-admin.txt")
        [ -n "$pw" ] || fail "$what: no password in the credentials file"
        if grep -qF -- "$pw" "$log"; then fail "$what: the password reached the installer's output"; fi
        grep -q 'credentials are in /var/lib/hutong/initial-admin.txt' "$log" ||
            fail "$what: the installer did not say where the credentials are"
        ok "$what: user, /var/lib/hutong 0750, config 0640 root:hutong, credentials only in a 0600 file"

        if in_root sh -c 'command -v systemd-analyze' >/dev/null; then
            in_root systemd-analyze verify "$unit/hutong.service" ||
                fail "$what: systemd-analyze verify $unit/hutong.service"
            ok "$what: systemd-analyze verify of the installed unit"
        fi

        local port execstart slog pid
        port=$(free_port)
        as_hutong HUTONG_LISTEN="127.0.0.1:$port" /usr/bin/hutong --config /etc/hutong/hutong.toml \
            config check >"$work/check.log" 2>&1 || { cat "$work/check.log"; fail "$what: config check"; }
        ok "$what: config check as the hutong user passes"
        execstart=$(sed -n 's/^ExecStart=//p' "$root$unit/hutong.service")
        slog=$work/serve-root.log
        # shellcheck disable=SC2086 # ExecStart is a command line
        chroot "$root" setpriv --reuid=hutong --regid=hutong --init-groups \
            env -i PATH=/usr/bin:/bin HOME=/var/lib/hutong HUTONG_LISTEN="127.0.0.1:$port" \
            $execstart >"$slog" 2>&1 &
        pid=$!
        wait_healthy "$port" "$pid" || { cat "$slog" >&2; fail "$what: /healthz from the unit's ExecStart"; }
        [ -S "$root/var/lib/hutong/control.sock" ] || fail "$what: no control socket"
        stop_server "$pid" "$slog"
        if grep -qF -- "$pw" "$slog"; then fail "$what: the password reached the server's output"; fi
        ok "$what: the unit's ExecStart serves /healthz as the hutong user"
    }

    step "throw-away root: dpkg -i (chroot into an overlay, no systemd)"
    in_root dpkg -i /tmp/hutong.deb >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dpkg -i"; }
    sed 's/^/   | /' "$work/install.log"
    check_installed deb /lib/systemd/system "$work/install.log"

    step "throw-away root: upgrade keeps data and configuration"
    local key_sum creds_sum
    key_sum=$(sha256sum <"$root/var/lib/hutong/keys/platform.key.wrapped")
    creds_sum=$(sha256sum <"$root/var/lib/hutong/initial-admin.txt")
    echo '# changed by the operator' >>"$root/etc/hutong/hutong.toml"
    in_root dpkg -i --force-confold /tmp/hutong.deb >"$work/upgrade.log" 2>&1 ||
        { cat "$work/upgrade.log"; fail "dpkg -i (upgrade)"; }
    sed 's/^/   | /' "$work/upgrade.log"
    grep -q 'already initialised' "$work/upgrade.log" || fail "upgrade: init not skipped"
    [ "$(sha256sum <"$root/var/lib/hutong/keys/platform.key.wrapped")" = "$key_sum" ] || fail "upgrade changed the keys"
    [ "$(sha256sum <"$root/var/lib/hutong/initial-admin.txt")" = "$creds_sum" ] || fail "upgrade rewrote the credentials"
    grep -q '^# changed by the operator' "$root/etc/hutong/hutong.toml" || fail "upgrade replaced the changed conffile"
    ok "upgrade: keys, credentials and the changed configuration kept"

    step "throw-away root: upgrade of a running service (a stand-in systemctl records the calls)"
    mkdir -p "$root/run/systemd/system"
    # A container image's policy-rc.d (exit 101: no service actions) would rightly stop
    # deb-systemd-invoke; this step is about what the script asks for.
    if [ -e "$root/usr/sbin/policy-rc.d" ]; then mv "$root/usr/sbin/policy-rc.d" "$root/usr/sbin/policy-rc.d.off"; fi
    printf '#!/bin/sh\necho "$*" >>/tmp/systemctl.calls\nexit 0\n' >"$root/usr/local/sbin/systemctl"
    chmod 0755 "$root/usr/local/sbin/systemctl"
    in_root dpkg -i --force-confold /tmp/hutong.deb >"$work/upgrade2.log" 2>&1 ||
        { cat "$work/upgrade2.log"; fail "dpkg -i (upgrade, running)"; }
    grep -q 'restart.*hutong.service' "$root/tmp/systemctl.calls" ||
        { cat "$work/upgrade2.log" "$root/tmp/systemctl.calls"; fail "upgrade did not restart the running service"; }
    ok "upgrade: config check passed, the running service restarted"
    : >"$root/tmp/systemctl.calls"
    sed -i 's/^region_code = .*/region_code = "12"/' "$root/etc/hutong/hutong.toml"
    in_root dpkg -i --force-confold /tmp/hutong.deb >"$work/upgrade3.log" 2>&1 ||
        { cat "$work/upgrade3.log"; fail "dpkg -i (upgrade, bad configuration)"; }
    sed 's/^/   | /' "$work/upgrade3.log"
    grep -q 'was NOT restarted' "$work/upgrade3.log" || fail "upgrade with a bad configuration: no warning"
    if grep -q 'restart.*hutong.service' "$root/tmp/systemctl.calls"; then
        fail "upgrade restarted the service although config check failed"
    fi
    ok "upgrade: config check failed, the running service left alone, the operator told"
    sed -i 's/^region_code = .*/region_code = "340000"/' "$root/etc/hutong/hutong.toml"
    rm -rf "$root/run/systemd/system" "$root/usr/local/sbin/systemctl"
    if [ -e "$root/usr/sbin/policy-rc.d.off" ]; then mv "$root/usr/sbin/policy-rc.d.off" "$root/usr/sbin/policy-rc.d"; fi

    step "throw-away root: the handbook's SoftHSM2 start and first member, as written (docs/operations.md)"
    # Stand-ins for what a chroot lacks: apt (no network; SoftHSM2 is this machine's own) and
    # systemd (start runs the unit's ExecStart as the service user with its EnvironmentFile).
    local bin=/tmp/handbook-bin hb_port=8443 serve_pid
    mkdir -p "$root$bin"
    printf '#!/bin/sh\necho "apt stand-in: $*"\ncommand -v softhsm2-util >/dev/null\n' >"$root$bin/apt"
    cat >"$root$bin/systemctl" <<'STANDIN'
#!/bin/sh
pidfile=/run/hutong-handbook.pid
case "$1" in
    stop)
        if [ -f "$pidfile" ]; then
            pid=$(cat "$pidfile"); kill "$pid" 2>/dev/null
            while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
            rm -f "$pidfile"
        fi ;;
    enable|start|restart)
        execstart=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/hutong.service)
        # shellcheck disable=SC2086,SC2016 # ExecStart is a command line; the inner script expands its own
        env -i PATH=/usr/bin:/bin HOME=/var/lib/hutong sh -c '
            if [ -r /etc/hutong/hutong.env ]; then set -a; . /etc/hutong/hutong.env; set +a; fi
            exec setpriv --reuid=hutong --regid=hutong --init-groups "$@"' hutong $execstart \
            >/tmp/handbook-serve.log 2>&1 &
        echo $! >"$pidfile" ;;
    *) echo "systemctl stand-in: $*" >&2 ;;
esac
STANDIN
    chmod 0755 "$root$bin/apt" "$root$bin/systemctl"
    # As the operator's root shell: a clean environment (hutong refuses unknown HUTONG_* names).
    in_handbook() { chroot "$root" env -i PATH="$bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME=/root bash -c "$1"; }
    # A failed check must not leave the service running on this machine's ports.
    trap 'in_handbook "systemctl stop hutong" >/dev/null 2>&1 || true' EXIT
    in_handbook "$(handbook_block softhsm)" >"$work/handbook-hsm.log" 2>&1 ||
        { cat "$work/handbook-hsm.log"; fail "handbook: the SoftHSM2 steps"; }
    sed 's/^/   | /' "$work/handbook-hsm.log"
    serve_pid=$(cat "$root/run/hutong-handbook.pid")
    wait_healthy "$hb_port" "$serve_pid" ||
        { cat "$root/tmp/handbook-serve.log" >&2; fail "handbook: the service on SoftHSM2 did not come up"; }
    in_handbook "hutong --config /etc/hutong/hutong.toml status" >"$work/handbook-status.log" 2>&1 ||
        { cat "$work/handbook-status.log"; fail "handbook: hutong status"; }
    grep -q pkcs11 "$work/handbook-status.log" ||
        { cat "$work/handbook-status.log"; fail "handbook: status does not name the pkcs11 provider"; }
    [ "$(mode_of /var/lib/hutong/initial-admin.txt)" = "600 root:root" ] ||
        fail "handbook: no fresh credentials file after hutong-setup init"
    ok "handbook: SoftHSM2 token made, init with the KEK in the token, the service serves on pkcs11"

    : >"$work/handbook-member.log"
    setsid chroot "$root" env -i PATH="$bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME=/root \
        bash -c "$(handbook_block first-member)" >"$work/handbook-member.log" 2>&1 &
    local member=$! _
    for _ in $(seq 1 180); do
        [ "$(grep -c '^filed seal ' "$work/handbook-member.log")" -ge 2 ] && break
        kill -0 "$member" 2>/dev/null || break
        sleep 0.5
    done
    kill -- -"$member" 2>/dev/null || true
    wait "$member" 2>/dev/null || true
    [ "$(grep -c '^filed seal ' "$work/handbook-member.log")" -ge 2 ] ||
        { cat "$work/handbook-member.log" "$root/tmp/handbook-serve.log"; fail "handbook: the simulated member filed no seals"; }
    in_handbook "hutong --config /etc/hutong/hutong.toml system list --json" >"$work/handbook-systems.json" 2>&1 ||
        { cat "$work/handbook-systems.json"; fail "handbook: system list"; }
    if ! { grep -q '模拟印章系统' "$work/handbook-systems.json" && grep -qi 'online' "$work/handbook-systems.json"; }; then
        cat "$work/handbook-systems.json"; fail "handbook: the simulated member is not listed online"
    fi
    in_handbook "systemctl stop hutong"
    trap - EXIT
    if kill -0 "$serve_pid" 2>/dev/null; then fail "handbook: the service did not stop"; fi
    local hb_pw
    hb_pw=$(sed -n 's|^ *password: *\([^ ]*\)$|\1|p' "$root/var/lib/hutong/initial-admin.txt")
    [ -n "$hb_pw" ] || fail "handbook: no password in the new credentials file"
    if grep -qF -- "$hb_pw" "$root/tmp/handbook-serve.log" "$work/handbook-hsm.log"; then
        fail "handbook: the password reached the output"
    fi
    ok "handbook: the simulated member onboarded online and filed its seals; the service stopped"

    step "throw-away root: remove keeps configuration and data, purge keeps data"
    in_root dpkg -r hutong >"$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail "dpkg -r"; }
    [ ! -e "$root/usr/bin/hutong" ] || fail "remove left /usr/bin/hutong"
    [ -f "$root/etc/hutong/hutong.toml" ] || fail "remove deleted the configuration"
    [ -f "$root/var/lib/hutong/keys/platform.key.wrapped" ] || fail "remove deleted data"
    ok "remove: binary gone, configuration and data kept"
    in_root dpkg -P hutong >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg -P"; }
    [ ! -e "$root/etc/hutong" ] || fail "purge left /etc/hutong"
    [ -f "$root/var/lib/hutong/keys/platform.key.wrapped" ] || fail "purge deleted data without HUTONG_PURGE_DATA=yes"
    ok "purge: /etc/hutong gone, /var/lib/hutong kept"
    in_root dpkg -i /tmp/hutong.deb >"$work/reinstall.log" 2>&1 || { cat "$work/reinstall.log"; fail "dpkg -i (again)"; }
    grep -q 'already initialised' "$work/reinstall.log" || fail "reinstall over kept data ran init again"
    HUTONG_PURGE_DATA=yes in_root dpkg -P hutong >"$work/purge2.log" 2>&1 || { cat "$work/purge2.log"; fail "dpkg -P (data)"; }
    [ ! -e "$root/var/lib/hutong" ] || fail "HUTONG_PURGE_DATA=yes kept /var/lib/hutong"
    ok "reinstall over kept data keeps it; purge with HUTONG_PURGE_DATA=yes removes it"

    step "throw-away root: rpm -i / -U / -e"
    local rpm_flags=(--nodeps)
    if in_root rpm --help 2>&1 | grep -q -- --force-debian; then rpm_flags+=(--force-debian); fi
    in_root rpm -i "${rpm_flags[@]}" /tmp/hutong.rpm >"$work/rpm-install.log" 2>&1 ||
        { cat "$work/rpm-install.log"; fail "rpm -i"; }
    sed 's/^/   | /' "$work/rpm-install.log"
    check_installed rpm /usr/lib/systemd/system "$work/rpm-install.log"
    key_sum=$(sha256sum <"$root/var/lib/hutong/keys/platform.key.wrapped")
    in_root rpm -U --replacepkgs "${rpm_flags[@]}" /tmp/hutong.rpm >"$work/rpm-upgrade.log" 2>&1 ||
        { cat "$work/rpm-upgrade.log"; fail "rpm -U"; }
    grep -q 'already initialised' "$work/rpm-upgrade.log" || fail "rpm upgrade: init not skipped"
    [ "$(sha256sum <"$root/var/lib/hutong/keys/platform.key.wrapped")" = "$key_sum" ] || fail "rpm upgrade changed the keys"
    ok "rpm upgrade: keys kept"
    in_root rpm -e "${rpm_flags[@]}" hutong >"$work/rpm-erase.log" 2>&1 || { cat "$work/rpm-erase.log"; fail "rpm -e"; }
    [ ! -e "$root/usr/bin/hutong" ] || fail "rpm -e left /usr/bin/hutong"
    [ ! -e "$root/etc/hutong/hutong.toml" ] || fail "rpm -e left the unchanged configuration"
    [ -f "$root/var/lib/hutong/keys/platform.key.wrapped" ] || fail "rpm -e deleted data"
    for d in /usr/lib/hutong /usr/share/doc/hutong /etc/hutong; do
        [ ! -e "$root$d" ] || fail "rpm -e left $d"
    done
    ok "rpm erase: binary and unchanged configuration gone, /var/lib/hutong kept"
    echo "$passed" >"$work/root-passed"
}

if [ "${1:-}" = --in-throwaway-root ]; then
    shift
    in_throwaway_root "$@"
    exit 0
fi

# ---------------------------------------------------------------- phase 1: build and lists
step "building the packages"
mapfile -t built < <(bash packaging/build.sh | tail -n 2)
deb=${built[0]:-} rpm=${built[1]:-}
if [ ! -f "$deb" ] || [ ! -f "$rpm" ]; then fail "packaging/build.sh printed no package paths"; fi
echo "   $deb"
echo "   $rpm"

work=$(mktemp -d /tmp/hutong-pkgtest.XXXXXX)
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

step "file lists"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/deb.list"
check_list deb /lib/systemd/system /usr/share/zsh/vendor-completions "$work/deb.list"
command -v rpm >/dev/null || fail "rpm not found (apt-get install rpm)"
rpm -qlp "$rpm" >"$work/rpm.list" 2>/dev/null
check_list rpm /usr/lib/systemd/system /usr/share/zsh/site-functions "$work/rpm.list"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/hutong/hutong.toml ||
    fail "deb: /etc/hutong/hutong.toml is not a conffile"
rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILEGROUPNAME} %{FILENAMES}\n]' "$rpm" 2>/dev/null |
    grep -qx 'cn hutong /etc/hutong/hutong.toml' || fail "rpm: hutong.toml is not %config(noreplace) of group hutong"
ok "the configuration is a conffile (deb) and %config(noreplace) (rpm)"

step "maintainer scripts"
mkdir -p "$work/control"
dpkg-deb -e "$deb" "$work/control"
scripts=("$work"/control/postinst "$work"/control/prerm "$work"/control/postrm target/packaging/hutong-setup)
for tag in PREIN POSTIN PREUN POSTUN; do
    rpm -qp --qf "%{$tag}\n" "$rpm" 2>/dev/null >"$work/rpm-$tag.sh"
    grep -q hutong_ "$work/rpm-$tag.sh" || fail "rpm: no %$tag scriptlet"
    scripts+=("$work/rpm-$tag.sh")
done
for s in "${scripts[@]}"; do sh -n "$s" || fail "sh -n $s"; done
ok "${#scripts[@]} scripts parse (sh -n)"
if command -v shellcheck >/dev/null; then
    # SC2317: a script uses only some of the shared library's functions.
    shellcheck -s sh -e SC2317 "${scripts[@]}" || fail "shellcheck of the maintainer scripts"
    shellcheck packaging/build.sh packaging/test-packages.sh || fail "shellcheck of the packaging scripts"
    ok "shellcheck: maintainer scripts and packaging scripts"
else
    echo "   (shellcheck not installed: skipped)"
fi

# ---------------------------------------------------------------- phase 2: dpkg -x
step "installed files (dpkg -x): --version, config check, init, serve"
x=$work/x
dpkg -x "$deb" "$x"
hutong=$x/usr/bin/hutong
version=$(env -i "$hutong" --version)
[ "$version" = "hutong $(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)" ] ||
    fail "unexpected --version: $version"
ok "$version"
conf=$work/hutong.toml
sed "s|^data_dir = .*|data_dir = \"$work/data\"|" "$x/etc/hutong/hutong.toml" >"$conf"
grep -qx "data_dir = \"$work/data\"" "$conf" || fail "the packaged configuration has no data_dir line"
port=$(free_port)
run() { env -i PATH=/usr/bin:/bin HUTONG_LISTEN="127.0.0.1:$port" "$hutong" --config "$conf" "$@"; }
run config check >"$work/check0.log" 2>&1 || { cat "$work/check0.log"; fail "config check (before init)"; }
run init >"$work/init.log" 2>&1 || { cat "$work/init.log"; fail "init"; }
grep -q 'initial security administrator' "$work/init.log" || fail "init printed no credentials"
run config check >"$work/check1.log" 2>&1 || { cat "$work/check1.log"; fail "config check (after init)"; }
grep -q '✓' "$work/check1.log" || fail "config check printed no passed finding"
ok "config check before and after init"
# A simple command (not the function) in the background, so $! is the server itself.
env -i PATH=/usr/bin:/bin HUTONG_LISTEN="127.0.0.1:$port" "$hutong" --config "$conf" serve >"$work/serve.log" 2>&1 &
server=$!
wait_healthy "$port" "$server" || { cat "$work/serve.log" >&2; fail "/healthz of the extracted binary"; }
stop_server "$server" "$work/serve.log"
server=
ok "serve answers /healthz on 127.0.0.1:$port and stops on SIGTERM"

# ---------------------------------------------------------------- phase 3: throw-away root
if [ "$(id -u)" != 0 ]; then
    echo "== throw-away root: SKIPPED (needs root for a mount namespace and chroot)"
else
    unshare --mount --propagation private bash "$0" --in-throwaway-root "$deb" "$rpm" "$work" ||
        fail "throw-away root install"
    passed=$((passed + $(cat "$work/root-passed")))
fi

echo "packages: $passed passed, 0 failed"
