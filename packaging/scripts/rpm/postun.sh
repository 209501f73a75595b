# RPM %postun ($1: 0 erase, 1 upgrade). Erasing removes the packaged configuration (RPM keeps
# a modified one as hutong.toml.rpmsave) and keeps /var/lib/hutong unless
# HUTONG_PURGE_DATA=yes; the hutong user is kept.
set -eu
#HUTONG_LIB#

if [ "$1" -eq 0 ]; then
    hutong_daemon_reload
    # The package's directories are not in its file list (cargo-generate-rpm lists files
    # only): remove them when empty.
    rmdir /usr/lib/hutong /usr/share/doc/hutong "$HUTONG_ETC" 2>/dev/null || true
    hutong_purge_data_if_asked
fi
