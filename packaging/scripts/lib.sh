# shellcheck shell=sh
# The maintainer scripts' shared library, for the Debian and the RPM package alike.
# packaging/build.sh copies it into every maintainer script in place of the line
# "#HUTONG_LIB#" (a script cannot source it from the package: postrm runs after the files
# are gone) and installs it as /usr/lib/hutong/hutong-setup for the operator's own use
# (`hutong-setup init`). POSIX sh: Debian runs it with dash.
#
# It never needs systemd to be running (chroot, container, image build): every systemctl
# call is guarded and skipped with a note.

HUTONG_USER=hutong
HUTONG_BIN=/usr/bin/hutong
HUTONG_ETC=/etc/hutong
HUTONG_CONF=/etc/hutong/hutong.toml
HUTONG_ENV_FILE=/etc/hutong/hutong.env
HUTONG_DATA=/var/lib/hutong
HUTONG_CREDENTIALS=/var/lib/hutong/initial-admin.txt
HUTONG_UNIT=hutong.service

hutong_say() { printf 'hutong: %s\n' "$*"; }
hutong_warn() { printf 'hutong: WARNING: %s\n' "$*" >&2; }

hutong_systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

# Starts, stops or restarts the service through the init system when one runs.
hutong_service() {
    if ! hutong_systemd_running; then
        hutong_say "systemd is not running here: not running '$1' for $HUTONG_UNIT"
        return 0
    fi
    if command -v deb-systemd-invoke >/dev/null 2>&1; then
        deb-systemd-invoke "$1" "$HUTONG_UNIT" || hutong_warn "'$1' of $HUTONG_UNIT failed (journalctl -u hutong)"
    else
        systemctl "$1" "$HUTONG_UNIT" || hutong_warn "'$1' of $HUTONG_UNIT failed (journalctl -u hutong)"
    fi
}

hutong_service_active() { hutong_systemd_running && systemctl is-active --quiet "$HUTONG_UNIT"; }

hutong_daemon_reload() {
    if hutong_systemd_running; then systemctl daemon-reload || true; fi
}

hutong_nologin_shell() {
    for shell in /usr/sbin/nologin /sbin/nologin; do
        if [ -x "$shell" ]; then echo "$shell"; return 0; fi
    done
    echo /bin/false
}

# The system user and group that run the service (kept on removal: files may still be theirs).
hutong_ensure_user() {
    if ! getent group "$HUTONG_USER" >/dev/null 2>&1; then
        groupadd --system "$HUTONG_USER"
    fi
    if ! getent passwd "$HUTONG_USER" >/dev/null 2>&1; then
        useradd --system --gid "$HUTONG_USER" --home-dir "$HUTONG_DATA" --no-create-home \
            --shell "$(hutong_nologin_shell)" --comment "Hutong seal interoperability platform" \
            "$HUTONG_USER"
        hutong_say "created system user $HUTONG_USER"
    fi
}

# /var/lib/hutong (0750, the service user's; an operator's stricter mode is kept) and the
# configuration readable by the service's group only (it may hold an inline HSM PIN).
hutong_ensure_dirs() {
    if [ ! -d "$HUTONG_DATA" ]; then
        install -d -m 0750 -o "$HUTONG_USER" -g "$HUTONG_USER" "$HUTONG_DATA"
    else
        chown "$HUTONG_USER:$HUTONG_USER" "$HUTONG_DATA"
    fi
    if [ -d "$HUTONG_ETC" ]; then
        chown "root:$HUTONG_USER" "$HUTONG_ETC"
        chmod 0750 "$HUTONG_ETC"
    fi
    if [ -f "$HUTONG_CONF" ]; then
        chown "root:$HUTONG_USER" "$HUTONG_CONF"
        chmod 0640 "$HUTONG_CONF"
    fi
}

# Runs the installed binary as the service runs it: its user, a clean environment plus the
# unit's EnvironmentFile (KEY=value lines), the packaged configuration.
hutong_as_service_user() {
    # shellcheck disable=SC2016 # the inner script expands its own variables
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME="$HUTONG_DATA" \
        HUTONG_ENV_FILE="$HUTONG_ENV_FILE" HUTONG_USER="$HUTONG_USER" HUTONG_BIN="$HUTONG_BIN" \
        HUTONG_CONF="$HUTONG_CONF" \
        sh -c '
            cd /
            if [ -r "$HUTONG_ENV_FILE" ]; then set -a; . "$HUTONG_ENV_FILE"; set +a; fi
            user=$HUTONG_USER bin=$HUTONG_BIN conf=$HUTONG_CONF
            unset HUTONG_ENV_FILE HUTONG_USER HUTONG_BIN HUTONG_CONF
            if command -v setpriv >/dev/null 2>&1; then
                exec setpriv --reuid="$user" --regid="$user" --init-groups -- "$bin" --config "$conf" "$@"
            fi
            exec runuser -u "$user" -- "$bin" --config "$conf" "$@"
        ' hutong "$@"
}

# `hutong init` once, as the service user. The initial administrator's one-time password is
# printed by init on its standard output: that goes straight into a 0600 root-only file and
# nowhere else (not the terminal, not the journal). An init that fails is reported with the
# command to run once the configuration is fixed (maintainer scripts do not fail on it).
hutong_first_init() {
    if [ -e "$HUTONG_DATA/keys/platform.key.wrapped" ]; then
        hutong_say "$HUTONG_DATA is already initialised: keys, store and accounts kept"
        return 0
    fi
    new="$HUTONG_CREDENTIALS.new"
    rm -f "$new"
    (umask 077 && : >"$new")
    if hutong_as_service_user init >"$new"; then
        if grep -q 'password:' "$new"; then
            {
                echo "# Hutong: the initial security administrator, created $(date -u +%Y-%m-%dT%H:%M:%SZ)."
                echo "# Log in to the console (https://<this host>:8443/console/), change the password"
                echo "# (required at the first login), then delete this file."
                cat "$new"
            } >"$HUTONG_CREDENTIALS.tmp"
            chmod 0600 "$HUTONG_CREDENTIALS.tmp"
            mv -f "$HUTONG_CREDENTIALS.tmp" "$HUTONG_CREDENTIALS"
            hutong_say "initialised $HUTONG_DATA; the initial administrator's credentials are in $HUTONG_CREDENTIALS (0600, root only)"
        else
            hutong_say "initialised $HUTONG_DATA (administrator accounts already existed)"
        fi
        rm -f "$new"
        return 0
    fi
    rm -f "$new"
    hutong_warn "hutong init failed (messages above). Fix $HUTONG_CONF, check it with"
    hutong_warn "  hutong --config $HUTONG_CONF config check"
    hutong_warn "then run: /usr/lib/hutong/hutong-setup init"
    return 1
}

# After an upgrade: restart a running service only when the new binary accepts the
# configuration; otherwise the previous process keeps serving and the operator is told why.
hutong_restart_if_config_ok() {
    hutong_daemon_reload
    if ! hutong_service_active; then
        hutong_say "service not running: not restarted (start it with: systemctl start hutong)"
        return 0
    fi
    if hutong_as_service_user config check; then
        hutong_service restart
    else
        hutong_warn "hutong config check failed after the upgrade: the service was NOT restarted"
        hutong_warn "and still runs the previous version. Fix the problems above, then"
        hutong_warn "  systemctl restart hutong"
    fi
}

hutong_next_steps() {
    hutong_say "next: review $HUTONG_CONF (keys.provider, TLS), check it with"
    hutong_say "  hutong --config $HUTONG_CONF config check"
    hutong_say "then: systemctl enable --now hutong   (handbook: /usr/share/doc/hutong/operations.md)"
}

# Data is kept unless the operator asks for it explicitly: HUTONG_PURGE_DATA=yes.
hutong_purge_data_if_asked() {
    if [ "${HUTONG_PURGE_DATA:-}" = yes ]; then
        rm -rf "$HUTONG_DATA"
        hutong_say "HUTONG_PURGE_DATA=yes: removed $HUTONG_DATA"
    elif [ -d "$HUTONG_DATA" ]; then
        hutong_say "kept $HUTONG_DATA (store, keys, audit log); remove it with HUTONG_PURGE_DATA=yes"
    fi
}
