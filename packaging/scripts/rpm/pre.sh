# RPM %pre ($1: 1 install, 2 upgrade): the user first, so the configuration file's group
# resolves when the files are laid down.
set -eu
#HUTONG_LIB#

hutong_ensure_user
