# RPM %preun ($1: 0 erase, 1 upgrade): erasing stops and disables the service; an upgrade
# leaves it running for the new version's %post.
set -eu
#HUTONG_LIB#

if [ "$1" -eq 0 ]; then
    hutong_service stop
    if command -v systemctl >/dev/null 2>&1; then
        systemctl --no-reload disable --quiet "$HUTONG_UNIT" >/dev/null 2>&1 || true
    fi
fi
