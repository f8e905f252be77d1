#!/bin/sh
# onacc installer (POSIX sh): fetches the release binary for this machine, checks its SHA-256, installs it
# with its systemd unit, makes sure a clamd is there, and runs `onacc setup` when a terminal is available.
#
#   curl -fsSL https://github.com/onacc/onacc/releases/latest/download/install.sh | sudo sh
#   curl -fsSL …/install.sh | sudo sh -s -- --no-setup          (options after `sh -s --`)
#   sudo sh install.sh --from-source                              (inside a checkout: build, then install)
#   sudo sh install.sh --uninstall [--purge]
#
# Run `sh install.sh --help` for every option. Everything after `--` is passed to `onacc setup`, e.g.
#   sudo sh install.sh -- --yes --protect /srv/www --action move:/var/lib/onacc/quarantine
#
# It never reads its own standard input (so `curl | sh` is safe): every command it runs gets /dev/null,
# except `onacc setup`, which gets the terminal (/dev/tty) or is skipped.

# Everything runs inside main(), called on the last line: a download cut short runs nothing at all.

ONACC_BUN_VERSION=1.4.5
# Where the release binaries are published: the one setting to change for another host or mirror (or set
# ONACC_RELEASES in the environment). It must serve onacc-linux-{x64,arm64}[-musl] and a .sha256 for each,
# as `bun run release` writes them into dist/release/.
ONACC_RELEASES=${ONACC_RELEASES:-https://github.com/onacc/onacc/releases/latest/download}

usage() {
  cat <<'EOF'
Usage: sh install.sh [options] [-- onacc setup options]

Where the binary comes from (default: the release for this machine's architecture and C library,
$ONACC_RELEASES/onacc-linux-{x64,arm64}[-musl], with ONACC_RELEASES defaulting to
https://github.com/onacc/onacc/releases/latest/download):
  ONACC_URL=URL          download the binary from URL (its checksum from URL.sha256)
  ONACC_SHA256_URL=URL   take the checksum from URL instead
  --from FILE            install the local binary FILE (checked against FILE.sha256 or --sha256, if given)
  --sha256 HEX           the SHA-256 the binary must have, taken from another channel than the download
                         (a signed announcement, your own build): a .sha256 file from the same server
                         only shows the download is complete, not that the server is honest
  --from-source          build dist/onacc from the checkout this script is in (`bun run build`);
                         installs Bun with `npm install -g bun@1.4.5` when it is missing

Where it goes:
  --prefix DIR           install DIR/bin/onacc (default /usr/local)
  --config-dir DIR       configuration directory (default /etc/onacc); onacc.conf there is never
                         overwritten, and only `onacc setup` writes it
  --systemd-dir DIR      where onacc.service goes (default /etc/systemd/system); skipped when the
                         directory does not exist and systemd is not running

What else it does:
  --no-clamd             do not install clamd when it is missing (print the command instead); by default
                         root installs the distribution's package (apt-get, dnf or apk)
  --no-setup             do not run `onacc setup` (it runs only with a terminal, and only when there is
                         no configuration yet)
  --trial                for hosts without a signature database: start a trial clamd that knows one
                         test signature (EICAR), as onacc-trial-clamd.service under systemd, and set
                         up onacc with it (`onacc setup --trial`)
  --uninstall            remove the binary, the unit and setup's drop-in (the configuration stays)
  --purge                with --uninstall: also remove onacc.conf and trial-clamd.conf (and the
                         configuration directory when nothing else is left in it)
  -h, --help             show this help

Exit status: 0 done, 1 failed (nothing half-installed is left behind), 2 bad command line;
otherwise the exit status of `onacc setup`.
EOF
}

say() { printf '%s\n' "onacc-install: $*"; }
warn() { printf '%s\n' "onacc-install: warning: $*" >&2; }
die() {
  printf '%s\n' "onacc-install: error: $*" >&2
  exit 1
}
usage_error() {
  printf '%s\n' "onacc-install: $*" "Run 'sh install.sh --help' for the options." >&2
  exit 2
}
have() { command -v "$1" >/dev/null 2>&1; }

# Paths end up in sed expressions and unit files: keep them to characters that need no quoting there.
check_path() {
  case $2 in
    /*) ;;
    *) usage_error "$1 must be an absolute path, got \"$2\"" ;;
  esac
  case $2 in
    *[!A-Za-z0-9._/+@:-]*) usage_error "$1 \"$2\" contains characters this installer does not handle (use letters, digits and . _ / + @ : -)" ;;
  esac
}

systemd_running() { [ -d /run/systemd/system ]; }

# --- download and checksum -------------------------------------------------------------------------

fetch() {
  if have curl; then
    curl -fsSL --retry 2 -o "$2" "$1" </dev/null
  elif have wget; then
    wget -q -O "$2" "$1" </dev/null
  else
    die "neither curl nor wget is installed: install one of them, or use --from FILE"
  fi
}

sha256_of() {
  if have sha256sum; then
    sha256sum "$1" </dev/null | cut -d ' ' -f 1
  elif have shasum; then
    shasum -a 256 "$1" </dev/null | cut -d ' ' -f 1
  elif have openssl; then
    openssl dgst -sha256 -r "$1" </dev/null | cut -d ' ' -f 1
  else
    die "no sha256sum, shasum or openssl to check the download with"
  fi
}

# verify_sha256 FILE EXPECTED WHAT [SOURCE]: refuses (exit 1) unless FILE's SHA-256 is EXPECTED; SOURCE says
# where EXPECTED came from, for the message.
verify_sha256() {
  vs_expected=$(printf '%s' "$2" | tr 'ABCDEF' 'abcdef')
  case $vs_expected in
    *[!0-9a-f]*) die "the checksum for $3 is not a SHA-256 (64 hex digits): \"$2\"" ;;
  esac
  [ ${#vs_expected} -eq 64 ] || die "the checksum for $3 is not a SHA-256 (64 hex digits): \"$2\""
  vs_actual=$(sha256_of "$1")
  if [ "$vs_actual" != "$vs_expected" ]; then
    die "SHA-256 mismatch for $3: expected $vs_expected, got $vs_actual; nothing was installed"
  fi
  say "SHA-256 of $3 verified ($vs_actual${4:+, against $4})"
}

# checksum_from_file SHAFILE NAME: the checksum in a sha256sum-format file ("<64 hex>  <name>"), refusing a
# file that is not in that format or that names another file than NAME (a checksum for the wrong asset).
checksum_from_file() {
  cf_line=$(sed -n '1p' "$1")
  cf_sum=$(printf '%s\n' "$cf_line" | sed -n 's/^\([0-9A-Fa-f]\{64\}\)[[:space:]][[:space:]]*\*\{0,1\}\([^[:space:]]*\)[[:space:]]*$/\1/p')
  cf_name=$(printf '%s\n' "$cf_line" | sed -n 's/^\([0-9A-Fa-f]\{64\}\)[[:space:]][[:space:]]*\*\{0,1\}\([^[:space:]]*\)[[:space:]]*$/\2/p')
  [ -n "$cf_sum" ] || die "the checksum file for $2 is not in sha256sum format (\"<64 hex digits>  $2\"): \"$cf_line\""
  [ -z "$cf_name" ] || [ "$cf_name" = "$2" ] || die "the checksum file for $2 names another file: \"$cf_name\""
  printf '%s\n' "$cf_sum"
}

# --- what machine is this ----------------------------------------------------------------------------

detect_platform() {
  [ "$(uname -s)" = Linux ] || die "onacc runs on Linux only (fanotify); this is $(uname -s)"
  case $(uname -m) in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "no onacc release for the $(uname -m) architecture (there are x86_64 and aarch64 builds); try --from-source" ;;
  esac
  # musl: Alpine and friends. ldd names itself; else the loaders present decide: a glibc system may carry
  # musl's loader too (Debian's musl package), so musl counts only where no glibc loader exists.
  libc=glibc
  if ldd --version 2>&1 </dev/null | grep -qi musl; then
    libc=musl
  elif ! ls /lib64/ld-linux-* >/dev/null 2>&1 && ! ls /lib/ld-linux-* >/dev/null 2>&1 && ls /lib/ld-musl-* >/dev/null 2>&1; then
    libc=musl
  fi
  asset=onacc-linux-$arch
  [ "$libc" = musl ] && asset=$asset-musl
  return 0
}

# --- getting the binary ------------------------------------------------------------------------------

obtain_binary() {
  if [ "$from_source" = 1 ]; then
    build_from_source
    cp "$src_dir/dist/onacc" "$tmp/onacc"
    return 0
  fi
  if [ -n "$from_file" ]; then
    [ -f "$from_file" ] || die "--from \"$from_file\": no such file"
    cp "$from_file" "$tmp/onacc" || die "cannot copy \"$from_file\""
    if [ -n "$expected_sha" ]; then
      verify_sha256 "$tmp/onacc" "$expected_sha" "$from_file" "--sha256"
    elif [ -f "$from_file.sha256" ]; then
      ob_sum=$(checksum_from_file "$from_file.sha256" "${from_file##*/}") || exit 1
      verify_sha256 "$tmp/onacc" "$ob_sum" "$from_file" "$from_file.sha256"
    else
      say "installing the local file $from_file (no $from_file.sha256 or --sha256 to check it against)"
    fi
    return 0
  fi

  ob_url=${ONACC_URL:-$ONACC_RELEASES/$asset}
  ob_sha_url=${ONACC_SHA256_URL:-$ob_url.sha256}
  say "downloading $ob_url ($arch, $libc)"
  fetch "$ob_url" "$tmp/onacc" || die "download failed: $ob_url"
  if [ -n "$expected_sha" ]; then
    verify_sha256 "$tmp/onacc" "$expected_sha" "$ob_url" "the --sha256 you gave"
  else
    fetch "$ob_sha_url" "$tmp/onacc.sha256" || die "cannot download the checksum $ob_sha_url; refusing to install an unchecked binary"
    ob_sum=$(checksum_from_file "$tmp/onacc.sha256" "${ob_url##*/}") || exit 1
    verify_sha256 "$tmp/onacc" "$ob_sum" "$ob_url" "$ob_sha_url"
    # Both files came from the same server: whoever controls it can replace both.
    say "note: that checksum came from the same server as the binary, so it proves the download is intact, not that the release is genuine; to check that, pass --sha256 HEX with the checksum from another channel"
  fi
}

build_from_source() {
  [ -f "$src_dir/package.json" ] && grep -q '"name": "onacc"' "$src_dir/package.json" ||
    die "--from-source needs the onacc checkout next to this script (looked in $src_dir); run it as: sh ./install.sh --from-source"
  if ! have bun; then
    have npm || die "Bun is not installed and npm is not there to install it: install Node.js (npm), or Bun $ONACC_BUN_VERSION"
    say "installing Bun $ONACC_BUN_VERSION: npm install -g bun@$ONACC_BUN_VERSION"
    npm install -g "bun@$ONACC_BUN_VERSION" </dev/null || die "npm install -g bun@$ONACC_BUN_VERSION failed"
    bs_npm_bin=$(npm prefix -g </dev/null 2>/dev/null)/bin
    have bun || PATH=$bs_npm_bin:$PATH
    have bun || die "Bun was installed but is not on PATH (looked in $bs_npm_bin)"
  fi
  say "building dist/onacc in $src_dir (bun $(bun --version </dev/null))"
  if [ ! -d "$src_dir/node_modules" ]; then
    (cd "$src_dir" && bun install --frozen-lockfile </dev/null) || die "bun install failed in $src_dir"
  fi
  (cd "$src_dir" && bun run build </dev/null) || die "bun run build failed in $src_dir"
  [ -x "$src_dir/dist/onacc" ] || die "the build did not produce $src_dir/dist/onacc"
}

# --- installing ----------------------------------------------------------------------------------------

# install_file SRC DEST MODE: atomic replace (a running binary cannot be written in place); unchanged
# files are left alone, so a second run changes nothing. Sets $changed to 1 when DEST was (re)written.
install_file() {
  changed=0
  if [ -f "$2" ] && cmp -s "$1" "$2"; then
    return 0
  fi
  if_dir=$(dirname "$2")
  mkdir -p "$if_dir" || die "cannot create $if_dir"
  cp "$1" "$if_dir/.onacc-install.$$" &&
    chmod "$3" "$if_dir/.onacc-install.$$" &&
    mv -f "$if_dir/.onacc-install.$$" "$2" || {
    rm -f "$if_dir/.onacc-install.$$"
    die "cannot install $2"
  }
  changed=1
}

# The musl builds of Bun's runtime (inside onacc) link libstdc++ and libgcc dynamically; musl systems do not
# always have them (Alpine: the libstdc++ and libgcc packages).
ensure_musl_runtime() {
  [ "$libc" = musl ] || return 0
  for emr_dir in /usr/lib /lib /usr/local/lib; do
    [ -e "$emr_dir/libstdc++.so.6" ] && return 0
  done
  if have apk && [ "$(id -u)" = 0 ]; then
    say "onacc's runtime needs libstdc++ and libgcc: apk add libstdc++ libgcc"
    apk add --no-cache libstdc++ libgcc </dev/null || die "apk add libstdc++ libgcc failed"
  else
    die "onacc's musl build needs libstdc++.so.6 and libgcc_s.so.1 (Alpine: apk add libstdc++ libgcc); install them and run this again"
  fi
}

install_binary() {
  ensure_musl_runtime
  # A binary for another architecture or C library fails here, before anything is replaced.
  chmod 0755 "$tmp/onacc"
  ib_version=$("$tmp/onacc" --version </dev/null 2>/dev/null) ||
    die "the downloaded onacc does not run on this machine ($arch, $libc): $("$tmp/onacc" --version </dev/null 2>&1 | head -n 1)"
  install_file "$tmp/onacc" "$bin" 0755
  if [ "$changed" = 1 ]; then
    say "installed $bin ($(printf '%s' "$ib_version" | head -n 1))"
    binary_changed=1
  else
    say "$bin is already this version ($(printf '%s' "$ib_version" | head -n 1))"
  fi
}

install_unit() {
  if [ ! -d "$systemd_dir" ]; then
    if systemd_running; then
      mkdir -p "$systemd_dir" || die "cannot create $systemd_dir"
    else
      say "no systemd here ($systemd_dir does not exist): skipping the service; run onacc yourself"
      unit_installed=0
      return 0
    fi
  fi
  unit_text | sed -e "s#/usr/local/bin/onacc#$bin#g" -e "s#/etc/onacc/onacc.conf#$config#g" >"$tmp/onacc.service"
  install_file "$tmp/onacc.service" "$unit" 0644
  unit_installed=1
  if [ "$changed" = 1 ]; then
    say "installed $unit"
    if systemd_running && [ "$systemd_dir" = /etc/systemd/system ]; then systemctl daemon-reload </dev/null || true; fi
  else
    say "$unit is up to date"
  fi
}

# --- clamd ---------------------------------------------------------------------------------------------

clamd_present() {
  have clamd || [ -x /usr/sbin/clamd ] || [ -x /usr/local/sbin/clamd ]
}

# The package manager's command for clamd, or nothing.
clamd_install_command() {
  if have apt-get; then
    echo "apt-get install -y clamav-daemon clamav-freshclam"
  elif have dnf; then
    echo "dnf install -y clamd clamav-update"
  elif have apk; then
    echo "apk add clamav-daemon freshclam"
  fi
}

ensure_clamd() {
  if clamd_present; then
    say "clamd is installed ($(clamd --version </dev/null 2>/dev/null || echo clamd))"
  else
    ec_cmd=$(clamd_install_command)
    if [ -z "$ec_cmd" ]; then
      warn "clamd is not installed and no apt-get, dnf or apk was found: install ClamAV's clamd with your package manager"
    elif [ "$install_clamd" = no ] || [ "$(id -u)" != 0 ]; then
      warn "clamd is not installed; install it with: $ec_cmd"
    else
      say "clamd is not installed: $ec_cmd"
      if [ "${ec_cmd%% *}" = apt-get ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null || warn "apt-get update failed"
        # shellcheck disable=SC2086 # the command is split on purpose
        DEBIAN_FRONTEND=noninteractive $ec_cmd </dev/null || warn "installing clamd failed; install it with: $ec_cmd"
      else
        # shellcheck disable=SC2086
        $ec_cmd </dev/null || warn "installing clamd failed; install it with: $ec_cmd"
      fi
    fi
  fi
  # clamd refuses to start without signatures; freshclam fetches them (needs network access).
  if clamd_present; then
    ec_db=$(clamd_database_dir)
    if ! has_signatures "$ec_db"; then
      if [ "$trial" = 1 ]; then
        say "clamd has no signature database in $ec_db: onacc uses the trial clamd (--trial) instead"
      else
        ec_from="DatabaseDirectory in $clamd_conf"
        [ -r "$clamd_conf" ] || ec_from="clamd's default: there is no $clamd_conf"
        warn "clamd has no signature database in $ec_db ($ec_from), so it cannot start and onacc has no clamd to ask."
        warn "  get one with: freshclam (downloads ClamAV's signatures; needs Internet access), then: systemctl restart clamav-daemon"
        warn "  or try onacc now with a test signature: run this installer again with --trial"
      fi
    fi
  fi
  return 0
}

# clamd's DatabaseDirectory from its clamd.conf (clamd's default when the file or the option is missing).
clamd_database_dir() {
  cdd=$(sed -n 's/^[[:space:]]*DatabaseDirectory[[:space:]][[:space:]]*\([^[:space:]#]*\).*/\1/p' "$clamd_conf" 2>/dev/null | head -n 1)
  printf '%s\n' "${cdd:-/var/lib/clamav}"
}

# has_signatures DIR: does DIR hold a signature database (official .cvd/.cld or signature files of its own)?
has_signatures() {
  for hs_file in "$1"/*.cvd "$1"/*.cld "$1"/*.cud "$1"/*.hdb "$1"/*.hsb "$1"/*.ndb "$1"/*.ldb "$1"/*.yar "$1"/*.yara; do
    [ -e "$hs_file" ] && return 0
  done
  return 1
}

# --- setup ----------------------------------------------------------------------------------------------

# Sets setup_ran=1 when `onacc setup` ran to its end (its closing lines are then the last words).
run_setup() {
  setup_ran=0
  rs_trial=
  # The paths are check_path'ed (no blanks), so splitting this list is safe.
  [ "$trial" = 1 ] && rs_trial="--trial --trial-config $config_dir/trial-clamd.conf"
  if [ -e "$config" ]; then
    say "keeping the existing configuration $config (the installer never overwrites it; onacc setup asks first)"
    run_trial_only
    return 0
  fi
  rs_hint="configure onacc with: $bin setup${rs_trial:+ --trial} --config $config"
  if [ "$setup" = no ]; then
    run_trial_only
    say "$rs_hint"
    return 0
  fi
  rs_yes=0
  for rs_arg in "$@"; do
    case "$rs_arg" in --yes | -y) rs_yes=1 ;; esac
  done
  rs_status=0
  # shellcheck disable=SC2086 # $rs_trial is split on purpose
  if [ "$rs_yes" = 1 ]; then
    "$bin" setup $rs_trial --config "$config" --systemd-dir "$systemd_dir" "$@" </dev/null || rs_status=$?
  elif [ -t 0 ]; then
    "$bin" setup $rs_trial --config "$config" --systemd-dir "$systemd_dir" "$@" || rs_status=$?
  elif (: </dev/tty) 2>/dev/null; then
    # Run from a pipe (curl | sh): the wizard talks to the terminal, never to the pipe.
    "$bin" setup $rs_trial --config "$config" --systemd-dir "$systemd_dir" "$@" </dev/tty || rs_status=$?
  else
    run_trial_only
    say "no terminal to ask questions on: $rs_hint (or non-interactively: $bin setup${rs_trial:+ --trial} --yes --protect DIR ...)"
    return 0
  fi
  if [ "$rs_status" != 0 ]; then
    warn "onacc setup did not finish (exit status $rs_status); onacc is installed: $rs_hint"
    exit "$rs_status"
  fi
  setup_ran=1
}

# With --trial when onacc itself is not (re)configured: the trial clamd still gets started (a no-op when
# it already runs).
run_trial_only() {
  [ -n "$rs_trial" ] || return 0
  # shellcheck disable=SC2086
  "$bin" setup $rs_trial --yes --config "$config" --systemd-dir "$systemd_dir" </dev/null || die "onacc setup --trial failed"
}

# --- uninstall -------------------------------------------------------------------------------------------

uninstall() {
  un_removed=0
  if [ -f "$unit" ] && systemd_running && [ "$systemd_dir" = /etc/systemd/system ]; then
    systemctl disable --now onacc.service </dev/null || warn "systemctl disable --now onacc failed"
  fi
  if [ -f "$trial_unit" ] && systemd_running && [ "$systemd_dir" = /etc/systemd/system ]; then
    systemctl disable --now onacc-trial-clamd.service </dev/null || warn "systemctl disable --now onacc-trial-clamd failed"
  fi
  for un_file in "$bin" "$unit" "$dropin_dir/setup.conf" "$trial_unit"; do
    if [ -e "$un_file" ]; then
      rm -f "$un_file" || die "cannot remove $un_file"
      say "removed $un_file"
      un_removed=1
    fi
  done
  # Other drop-ins are the administrator's: the directory goes only when setup's was the last one.
  [ -d "$dropin_dir" ] && rmdir "$dropin_dir" 2>/dev/null && say "removed $dropin_dir"
  if [ "$un_removed" = 1 ] && systemd_running && [ "$systemd_dir" = /etc/systemd/system ]; then
    systemctl daemon-reload </dev/null || true
  fi
  if [ "$purge" = 1 ]; then
    # Only the files onacc writes there: --config-dir may name a shared directory such as /etc/clamav.
    for un_file in "$config_dir/onacc.conf" "$config_dir/trial-clamd.conf"; do
      if [ -e "$un_file" ]; then
        rm -f "$un_file" || die "cannot remove $un_file"
        say "removed $un_file"
      fi
    done
    [ -d "$config_dir" ] && rmdir "$config_dir" 2>/dev/null && say "removed $config_dir"
    say "left /var/lib/onacc (quarantine, trial database) and /var/log/onacc: remove them yourself if you want"
  elif [ -e "$config" ]; then
    say "kept the configuration $config (--purge removes it)"
  fi
  [ "$un_removed" = 1 ] || say "onacc was not installed under $prefix and $systemd_dir: nothing to remove"
  return 0
}

# --- the unit, kept identical to systemd/onacc.service (tests/ship checks) ---------------------------------

unit_text() {
  cat <<'ONACC_UNIT'
# onacc: on-access malware scanning with ClamAV's clamd (a drop-in successor to clamonacc).
# install.sh puts this file in /etc/systemd/system/ (rewriting the two paths below for --prefix and
# --config-dir). Change nothing here: `onacc setup` writes onacc.service.d/setup.conf, and your own
# settings go in another drop-in (`systemctl edit onacc`), so an upgrade can replace this file.

[Unit]
Description=onacc on-access malware scanner (ClamAV clamd client)
Documentation=https://github.com/onacc/onacc#readme man:clamd.conf(5)
# clamd is usually local and socket-activated (Debian/Ubuntu clamav-daemon.socket): order after both, and
# pull clamd in without failing when it is missing (a remote clamd over TCP needs neither).
Wants=clamav-daemon.service
After=clamav-daemon.socket clamav-daemon.service network.target
# Two on-access scanners on the same files would each block and scan every open.
Conflicts=clamav-clamonacc.service

[Service]
# onacc sends READY=1 once its marks are placed, then WATCHDOG=1 only while its scanner workers make
# progress: a scan stuck in a dead clamd connection stops the pings, and systemd restarts onacc.
Type=notify
NotifyAccess=main
WatchdogSec=30s
Restart=on-failure
RestartSec=5s
# clamd may still be loading its database after a boot (it takes tens of seconds): --wait --ping waits up
# to two minutes for it before onacc gives up, and the start timeout leaves room for that.
TimeoutStartSec=180s
TimeoutStopSec=30s

# ONACC_CONFIG and ONACC_OPTIONS (the action on FOUND, e.g. --move=DIR) are set by `onacc setup` in
# onacc.service.d/setup.conf. $ONACC_OPTIONS is split at spaces; unset, it adds nothing.
Environment=ONACC_CONFIG=/etc/onacc/onacc.conf
ExecStart=/usr/local/bin/onacc --foreground --wait --ping=120:1 --config-file=${ONACC_CONFIG} --log=/var/log/onacc/onacc.log $ONACC_OPTIONS
# SIGHUP: reopen the log file (after logrotate).
ExecReload=/bin/kill -HUP $MAINPID
# Every pending permission event holds an open descriptor of the file being scanned.
LimitNOFILE=65536

# --- Privileges: onacc runs as root, but only with these capabilities. ---
# CAP_SYS_ADMIN        fanotify_init() of a permission-event (content) group, and its unlimited queue
#                      and marks; there is no narrower capability for it.
# CAP_DAC_READ_SEARCH  walk every directory of a protected tree to mark it (also mode-0700 ones owned by
#                      other users), and open_by_handle_at() for directory-entry events.
# CAP_DAC_OVERRIDE     --remove/--move: unlink or link files in directories root does not own, and hard-
#                      link another user's file into the quarantine (fs.protected_hardlinks).
# CAP_FOWNER           --move: chmod the quarantined file (owned by its old user) to 0400, and unlink it
#                      from sticky directories such as /tmp.
# Not needed: CAP_SYS_PTRACE (the uid of an accessing process comes from /proc/PID/status, readable by
# all), CAP_SETUID/CAP_SETGID (onacc never changes user), CAP_SYS_RESOURCE (LimitNOFILE sets the limit),
# CAP_CHOWN (quarantine copies belong to root). Without --remove/--move, the first two are enough.
CapabilityBoundingSet=CAP_SYS_ADMIN CAP_DAC_READ_SEARCH CAP_DAC_OVERRIDE CAP_FOWNER CAP_LEASE
AmbientCapabilities=
NoNewPrivileges=yes

# --- File system: what fanotify needs from the service's own mount namespace. ---
# The options below give the service a private mount namespace: the same files (inodes) and file systems,
# reached through private copies of the mounts. Directory marks (OnAccessIncludePath, all that `onacc
# setup` writes) sit on inodes, so they see every access whichever mount namespace it comes from; the
# event's descriptor is opened through the accessing process's mount, so a read-only view here does not
# stop scanning. Three consequences:
# - OnAccessMountPath places a filesystem mark (FAN_MARK_FILESYSTEM): it sits on the file system, not on
#   the service's private copy of the mount, so it sees opens from every mount namespace as well.
# - ProtectHome= is deliberately absent: "yes"/"tmpfs" put empty stand-ins over /home, /root and
#   /run/user, so protecting a directory there would mark the stand-in ("read-only" adds nothing to
#   ProtectSystem=strict). ProtectProc=invisible is absent too: it would hide other users' processes, so
#   OnAccessExcludeUname could not see who opened a file.
# - PrivateTmp=yes hides the real /tmp and /var/tmp: to protect a directory there, `onacc setup` sets
#   PrivateTmp=no in its drop-in.
# ProtectSystem=strict makes everything read-only for onacc, except its log and state directories below.
# --remove/--move change protected directories: `onacc setup` adds them (and a quarantine outside
# /var/lib/onacc) to ReadWritePaths= in its drop-in.
ProtectSystem=strict
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
# /var/log/onacc (--log) and /var/lib/onacc (default quarantine /var/lib/onacc/quarantine), created by
# systemd and writable despite ProtectSystem=strict.
LogsDirectory=onacc
StateDirectory=onacc
StateDirectoryMode=0700
# /run/onacc holds the status socket (`onacc status`); root only.
RuntimeDirectory=onacc
RuntimeDirectoryMode=0700
UMask=0077

# --- Everything else onacc never does. ---
# Unix sockets (clamd's LocalSocket, fd passing, sd_notify) and TCP to a remote clamd.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
# A deny list, not an allow list: fanotify_*, open_by_handle_at and the calls of Bun's runtime span
# several groups, and a missing one would break onacc at its first event rather than at start. Denied
# calls fail with EPERM instead of killing onacc.
SystemCallFilter=~@clock @cpu-emulation @debug @module @mount @obsolete @raw-io @reboot @swap
SystemCallErrorNumber=EPERM
# Not set: MemoryDenyWriteExecute= (Bun's JavaScript JIT needs writable and executable memory).

[Install]
WantedBy=multi-user.target
ONACC_UNIT
}

# --- main ----------------------------------------------------------------------------------------------

main() {
  set -u
  prefix=/usr/local
  config_dir=/etc/onacc
  systemd_dir=/etc/systemd/system
  from_file=
  from_source=0
  expected_sha=
  do_uninstall=0
  purge=0
  setup=auto
  trial=0
  install_clamd=auto

  while [ $# -gt 0 ]; do
    case $1 in
      --prefix | --config-dir | --systemd-dir | --from | --sha256)
        [ $# -ge 2 ] || usage_error "$1 needs a value"
        m_opt=$1
        m_val=$2
        shift 2
        ;;
      --prefix=* | --config-dir=* | --systemd-dir=* | --from=* | --sha256=*)
        m_opt=${1%%=*}
        m_val=${1#*=}
        shift
        ;;
      --from-source) from_source=1; shift; continue ;;
      --no-clamd) install_clamd=no; shift; continue ;;
      --no-setup) setup=no; shift; continue ;;
      --trial) trial=1; shift; continue ;;
      --uninstall) do_uninstall=1; shift; continue ;;
      --purge) purge=1; shift; continue ;;
      -h | --help) usage; exit 0 ;;
      --) shift; break ;;
      *) usage_error "unknown option \"$1\"" ;;
    esac
    [ -n "$m_val" ] || usage_error "$m_opt needs a value"
    case $m_opt in
      --prefix) prefix=${m_val%/} ;;
      --config-dir) config_dir=${m_val%/} ;;
      --systemd-dir) systemd_dir=${m_val%/} ;;
      --from) from_file=$m_val ;;
      --sha256) expected_sha=$m_val ;;
    esac
  done

  check_path --prefix "${prefix:-/}"
  check_path --config-dir "$config_dir"
  check_path --systemd-dir "$systemd_dir"
  [ "$purge" = 0 ] || [ "$do_uninstall" = 1 ] || usage_error "--purge goes with --uninstall"
  [ -z "$from_file" ] || [ "$from_source" = 0 ] || usage_error "--from and --from-source exclude each other"

  bin=$prefix/bin/onacc
  config=$config_dir/onacc.conf
  unit=$systemd_dir/onacc.service
  dropin_dir=$systemd_dir/onacc.service.d
  trial_unit=$systemd_dir/onacc-trial-clamd.service
  clamd_conf=/etc/clamav/clamd.conf

  if [ "$do_uninstall" = 1 ]; then
    uninstall
    exit 0
  fi

  case $0 in
    */*) src_dir=$(cd "${0%/*}" && pwd) ;;
    *) src_dir=$(pwd) ;;
  esac

  detect_platform
  if [ "$(id -u)" != 0 ] && ! mkdir -p "$prefix/bin" 2>/dev/null; then
    die "cannot write to $prefix/bin: run as root (curl -fsSL … | sudo sh), or pick a --prefix you own"
  fi

  tmp=$(mktemp -d 2>/dev/null || mktemp -d -t onacc-install) || die "cannot create a temporary directory"
  trap 'rm -rf "$tmp"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  obtain_binary
  install_binary
  install_unit
  ensure_clamd
  # An upgrade: a running onacc restarts on the new binary (try-restart leaves a stopped one stopped).
  if [ "${binary_changed:-0}" = 1 ] && [ "${unit_installed:-0}" = 1 ] && systemd_running && [ "$systemd_dir" = /etc/systemd/system ]; then
    systemctl try-restart onacc.service </dev/null || warn "systemctl try-restart onacc failed"
  fi
  run_setup "$@"
  # After a setup that ran, its closing lines (how to try it, what next) stay the last words.
  [ "$setup_ran" = 1 ] && return 0
  if [ "${unit_installed:-0}" = 1 ] && [ -e "$config" ] && systemd_running && [ "$systemd_dir" = /etc/systemd/system ] &&
    systemctl is-active --quiet onacc.service </dev/null; then
    say "done: onacc is running (systemctl status onacc)"
  elif [ "${unit_installed:-0}" = 1 ] && [ -e "$config" ]; then
    say "done: start it with systemctl enable --now onacc (onacc setup offers to)"
  else
    say "done"
  fi
}

main "$@"
