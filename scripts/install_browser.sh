#!/bin/sh
# Installs Debian's chromium, which the report's browser test drives headlessly.
# Does nothing when chromium is already on PATH; installs with apt only when
# running as root where apt-get exists; otherwise says why not and fails, and
# the browser test is then reported as ignored with that message.
set -eu

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "install_browser: chromium is not on the PATH, and only root can install it with apt-get (as root: apt-get install chromium)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser: chromium is not on the PATH, and there is no apt-get to install it with; install a Chromium that runs as 'chromium'" >&2
  exit 1
fi
log=$(mktemp)
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >"$log" 2>&1; then
  echo "install_browser: apt-get could not install chromium; its output:" >&2
  tail -n 20 "$log" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
command -v chromium >/dev/null 2>&1
