# RPM %post ($1: 1 install, 2 or more upgrade): /var/lib/hutong, `hutong init` until it has
# succeeded once; on an upgrade, a restart of the running service only after
# `hutong config check` passes.
set -eu
#HUTONG_LIB#

hutong_ensure_user
hutong_ensure_dirs
hutong_first_init || true
if [ "$1" -ge 2 ]; then
    hutong_restart_if_config_ok
else
    hutong_daemon_reload
    hutong_next_steps
fi
