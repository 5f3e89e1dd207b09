#!/usr/bin/env bash
# The Debian package, end to end: builds it (cmake --build BUILD --target
# package), checks its contents and control data, installs it, runs the
# server the way its systemd unit would (same command, same user, no systemd
# needed), publishes and reads back a retained message, then removes and
# purges it and checks what each step leaves behind.
#   tests/package/test_deb.sh [BUILD_DIR]     (default: build-release)
# Needs root (or sudo), dpkg-dev, mosquitto-clients; runs in CI from
# scripts/test.sh --ci. Refuses to run if mqtt-server is already installed, so
# it never replaces a real installation.
set -euo pipefail
cd "$(dirname "$0")/../.."

build="${1:-build-release}"
pkg=mqtt-server
unit=/lib/systemd/system/mqtt-server.service
conffile=/etc/mqtt-server/mqtt-server.toml
state=/var/lib/mqtt-server
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi

step() { echo "-- package test: $*"; }
fail() {
  echo "package test FAILED: $*" >&2
  exit 1
}

installed() { dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; }
known() { dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -qv "not-installed"; }
if known; then
  fail "$pkg is already installed here (dpkg -l $pkg); this test installs and purges it, so it" \
    "runs only where it is not installed"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
  local rc=$?
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    $sudo kill -TERM "$server_pid" 2>/dev/null || true
    sleep 1
    $sudo kill -KILL "$server_pid" 2>/dev/null || true
  fi
  if ((rc != 0)); then
    for log in "$work"/*.log; do
      [[ -f "$log" ]] && { echo "--- $log"; tail -20 "$log"; } >&2
    done
  fi
  if known; then
    echo "-- package test: cleanup: purging $pkg" >&2
    $sudo dpkg -P "$pkg" >/dev/null || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- the .deb
step "cmake --build $build --target package"
[[ -f "$build/CMakeCache.txt" ]] || fail "$build is not a configured build folder (scripts/build.sh release)"
cmake --build "$build" -j "${JOBS:-2}" --target package >"$work/cpack.log" 2>&1 ||
  fail "building the package target (see above)"
version="$(sed -n 's/^project(mqtt-server VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)"
deb="$build/${pkg}_${version}_$(dpkg --print-architecture).deb"
[[ -f "$deb" ]] || fail "expected $deb (CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)"

step "contents (dpkg-deb -c)"
dpkg-deb -c "$deb" | awk '{print $1, $NF}' >"$work/contents"
for f in ./usr/bin/mqtt-server ./usr/bin/mqtt-server-ctl; do
  grep -qx -- "-rwxr-xr-x $f" "$work/contents" || fail "$f missing or not 0755 in the package"
done
for f in .$conffile .$unit ./usr/share/man/man1/mqtt-server.1.gz \
  ./usr/share/man/man1/mqtt-server-ctl.1.gz ./usr/share/doc/mqtt-server/copyright \
  ./usr/share/doc/mqtt-server/README.md; do
  grep -qx -- "-rw-r--r-- $f" "$work/contents" || fail "$f missing or not 0644 in the package"
done
for page in mqtt-server mqtt-server-ctl; do
  dpkg-deb --fsys-tarfile "$deb" | tar -xOf - "./usr/share/man/man1/$page.1.gz" | zcat |
    grep -q "^\.TH .* \"mqtt-server $version\"" || fail "man page $page.1 lacks the version $version"
done
if grep -q -e '/build' -e '/usr/local' -e '/work/' "$work/contents"; then
  fail "build-machine paths in the package: $(grep -e /build -e /usr/local -e /work/ "$work/contents")"
fi

step "control data (dpkg-deb -I)"
dpkg-deb -I "$deb" >"$work/info"
field() { dpkg-deb -f "$deb" "$1"; }
[[ "$(field Package)" == "$pkg" ]] || fail "Package is '$(field Package)'"
[[ "$(field Version)" == "$version" ]] || fail "Version is '$(field Version)', project() says $version"
[[ "$(field Section)" == net ]] || fail "Section is '$(field Section)'"
[[ -n "$(field Maintainer)" ]] || fail "no Maintainer"
depends="$(field Depends)"
# adduser for the postinst; the others prove dpkg-shlibdeps ran.
for d in adduser libc6 libstdc++6 libssl3 librocksdb libgrpc++ libprotobuf libsystemd0; do
  [[ ", $depends" == *", $d"* ]] || fail "Depends lacks $d: $depends"
done
for s in conffiles postinst prerm postrm; do
  grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +(\* +)?$s( |$)" "$work/info" || fail "no $s in the control archive"
done
for s in postinst prerm postrm; do
  grep -qE "\* +$s " "$work/info" || fail "$s is not executable"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xf - -C "$work" ./conffiles ./postinst ./prerm ./postrm
[[ "$(cat "$work/conffiles")" == "$conffile" ]] || fail "conffiles is '$(cat "$work/conffiles")'"
for s in postinst prerm postrm; do
  sh -n "$work/$s" || fail "$s: shell syntax error"
  grep -q '^set -e' "$work/$s" || fail "$s does not set -e"
done

# ---------------------------------------------------------------- install
step "dpkg -i"
$sudo dpkg -i "$deb" >"$work/dpkg-i.log" 2>&1 || fail "dpkg -i: $(cat "$work/dpkg-i.log")"
installed || fail "dpkg -i left $pkg in state: $(dpkg-query -W -f='${Status}' "$pkg")"
[[ -x /usr/bin/mqtt-server && -x /usr/bin/mqtt-server-ctl ]] || fail "binaries not in /usr/bin"
[[ -f "$conffile" && -f "$unit" ]] || fail "$conffile or $unit not installed"
/usr/bin/mqtt-server --version | grep -qx "mqtt-server $version" ||
  fail "/usr/bin/mqtt-server --version: $(/usr/bin/mqtt-server --version)"
# Every shared library found: Depends was enough.
if ldd /usr/bin/mqtt-server /usr/bin/mqtt-server-ctl | grep -q 'not found'; then
  fail "missing libraries: $(ldd /usr/bin/mqtt-server | grep 'not found')"
fi

step "service user and state folder"
getent passwd mqtt-server >/dev/null || fail "no user mqtt-server"
getent group mqtt-server >/dev/null || fail "no group mqtt-server"
uid="$(id -u mqtt-server)"
((uid < 1000)) || fail "mqtt-server is not a system user (uid $uid)"
[[ "$(getent passwd mqtt-server | cut -d: -f6)" == "$state" ]] || fail "home of mqtt-server is not $state"
[[ "$(stat -c '%U:%G %a' "$state")" == "mqtt-server:mqtt-server 750" ]] ||
  fail "$state is $(stat -c '%U:%G %a' "$state"), expected mqtt-server:mqtt-server 750"
# No running systemd here: the postinst must only have recorded the enablement.
if [[ ! -d /run/systemd/system ]]; then
  [[ -L /etc/systemd/system/multi-user.target.wants/mqtt-server.service ]] ||
    fail "the unit is not enabled (no multi-user.target.wants link)"
fi

step "the postinst is idempotent and keeps an edited conffile (dpkg -i again)"
echo "# edited by the package test" | $sudo tee -a "$conffile" >/dev/null
$sudo dpkg -i "$deb" </dev/null >"$work/dpkg-i2.log" 2>&1 || fail "second dpkg -i: $(cat "$work/dpkg-i2.log")"
grep -q "^# edited by the package test" "$conffile" || fail "reinstalling lost the edit of $conffile"
[[ "$(id -u mqtt-server)" == "$uid" ]] || fail "reinstalling changed the uid of mqtt-server"

if command -v systemd-analyze >/dev/null; then
  step "systemd-analyze verify $unit"
  # --man=no: containers often have no man-db (or drop /usr/share/man).
  if ! systemd-analyze verify --man=no "$unit" >"$work/verify.log" 2>&1; then
    fail "systemd-analyze verify: $(cat "$work/verify.log")"
  fi
  # It exits 0 on some problems too; any line naming our unit is one.
  if grep -q "mqtt-server.service" "$work/verify.log"; then
    fail "systemd-analyze verify: $(cat "$work/verify.log")"
  fi
else
  step "systemd-analyze not installed: unit not verified"
fi

# ---------------------------------------------------------------- the conffile's keys
# Every key of the default config, commented examples included, is one the
# installed server accepts: uncomment them all (the TLS listener tables
# instead of addr/non_tls), point the files at throw-away ones, and start it.
step "every key of $conffile, examples included, is accepted"
etc="$work/etc"
mkdir -p "$etc" "$work/full-data"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$etc/server.key" -out "$etc/server.crt" \
  -days 1 -subj /CN=localhost 2>/dev/null
cp "$etc/server.crt" "$etc/clients-ca.pem"
cp "$etc/server.crt" "$etc/grpc.crt"
cp "$etc/server.key" "$etc/grpc.key"
echo token >"$etc/grpc-token"
: >"$etc/acl"
/usr/bin/mqtt-server passwd -c -b "$etc/passwd" user password
sed -E -e '/^(addr|non_tls) = /d' -e 's/^# ([a-z_]+ = )/\1/' -e 's/^# (\[\[listener\]\])/\1/' \
  -e "s#/etc/mqtt-server/#$etc/#g" -e "s#$state#$work/full-data#" \
  -e "s/(127\.0\.0\.1|0\.0\.0\.0):[0-9]+/127.0.0.1:0/" -e "s/\[::1\]:10000/127.0.0.1:0/" \
  -e "s/^http_addr = .*/http_addr = \"127.0.0.1:$(free_port)\"/" \
  "$conffile" >"$work/full.toml"
grep -q '^\[\[listener\]\]' "$work/full.toml" || fail "no [[listener]] example in $conffile"
grep -q '^protocol = "tls"' "$work/full.toml" || fail "no TLS listener example in $conffile"
/usr/bin/mqtt-server --config "$work/full.toml" >"$work/full.log" 2>&1 &
full_pid=$!
for _ in $(seq 50); do
  grep -q "listening on" "$work/full.log" && break
  kill -0 "$full_pid" 2>/dev/null || break
  sleep 0.2
done
if ! grep -q "listening on" "$work/full.log"; then
  kill "$full_pid" 2>/dev/null || true
  fail "the server refused the uncommented examples: $(cat "$work/full.log")"
fi
kill -TERM "$full_pid"
wait "$full_pid" || fail "the server with every example key did not exit 0"

# The unit is Type=notify with WatchdogSec: the server must send READY=1, then
# WATCHDOG=1 every half $WATCHDOG_USEC, and STOPPING=1 on SIGTERM. A socket of
# our own stands in for systemd's, with a 1 s watchdog to keep this short.
step "sd_notify: READY=1, WATCHDOG=1 every WATCHDOG_USEC/2, STOPPING=1"
grep -qx "Type=notify" "$unit" || fail "$unit is not Type=notify"
grep -qE "^WatchdogSec=[1-9]" "$unit" || fail "$unit sets no WatchdogSec"
/usr/bin/python3 - "$work/notify.sock" >"$work/notify.log" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(15)
while True:
    m = s.recv(4096).decode()
    print(f"{time.monotonic():.3f}", m.split("\n")[0], flush=True)
    if m.startswith("STOPPING=1"):
        break
PY
notify_pid=$!
for _ in $(seq 50); do [[ -S "$work/notify.sock" ]] && break; sleep 0.1; done
NOTIFY_SOCKET="$work/notify.sock" WATCHDOG_USEC=1000000 /usr/bin/mqtt-server --config "$conffile" \
  --addr "127.0.0.1:$(free_port)" --grpc-addr "127.0.0.1:$(free_port)" --data-dir "$work/notify-data" \
  >"$work/notify-server.log" 2>&1 &
notify_server=$!
for _ in $(seq 100); do  # four pings, 2 s at one per 0.5 s; at most 10 s
  (($(grep -c ' WATCHDOG=1$' "$work/notify.log" || true) >= 4)) && break
  kill -0 "$notify_server" 2>/dev/null || break
  sleep 0.1
done
kill -TERM "$notify_server" 2>/dev/null || true
wait "$notify_server" || fail "the server under a notify socket did not exit 0: $(cat "$work/notify-server.log")"
wait "$notify_pid" || fail "no STOPPING=1 on the notify socket: $(cat "$work/notify.log")"
[[ "$(head -1 "$work/notify.log" | cut -d' ' -f2)" == "READY=1" ]] || fail "first notification is not READY=1"
[[ "$(tail -1 "$work/notify.log" | cut -d' ' -f2)" == "STOPPING=1" ]] || fail "last notification is not STOPPING=1"
# The gaps between pings: half of WATCHDOG_USEC (0.5 s), with room for a busy machine.
awk '$2 == "WATCHDOG=1" { if (n++) { gap = $1 - last; if (gap < 0.3 || gap > 0.9) bad = bad " " gap } last = $1 }
  END { if (n < 4 || bad != "") { print n " pings, bad gaps:" bad; exit 1 } }' "$work/notify.log" ||
  fail "WATCHDOG=1 not every 0.5 s with WATCHDOG_USEC=1000000: $(cat "$work/notify.log")"

# ---------------------------------------------------------------- run it as the unit would
unit_value() { sed -n "s/^$1=//p" "$unit" | tail -1; }
exec_start="$(unit_value ExecStart)"
user="$(unit_value User)"
group="$(unit_value Group)"
umask_value="$(unit_value UMask)"
[[ -n "$exec_start" && -n "$user" && -n "$group" ]] || fail "$unit lacks ExecStart, User or Group"
# The default config listens on 127.0.0.1:1883 and gRPC on [::1]:10000: other
# brokers or tests on this machine may hold those, so the test overrides both
# (the command line wins over the file's top-level addr; docs/config.md).
port="$(free_port)"
grpc_port="$(free_port)"
read -r -a cmd <<<"$exec_start"
cmd+=(--addr "127.0.0.1:$port" --grpc-addr "127.0.0.1:$grpc_port")

start_server() {  # $1: log file
  # As systemd would: the unit's user and group, its umask, no notify socket,
  # the root folder as working directory.
  (cd / && umask "${umask_value:-0022}" &&
    exec env -u NOTIFY_SOCKET -u WATCHDOG_USEC -u WATCHDOG_PID \
      $sudo setpriv --reuid "$user" --regid "$group" --init-groups -- "${cmd[@]}") >"$1" 2>&1 &
  server_pid=$!
  for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$server_pid" 2>/dev/null || fail "the server exited at start: $(cat "$1")"
    sleep 0.2
  done
  fail "the server does not listen on 127.0.0.1:$port after 10 s: $(cat "$1")"
}

stop_server() {  # SIGTERM, as systemctl stop does; it must exit 0
  local rc=0
  $sudo kill -TERM "$server_pid"
  wait "$server_pid" || rc=$?
  server_pid=""
  ((rc == 0)) || fail "the server exited $rc after SIGTERM"
}

step "start: ${cmd[*]} as $user:$group"
start_server "$work/server.log"
real_pid="$server_pid"  # under sudo, the server is sudo's child (setpriv execs it)
if [[ -n "$sudo" ]]; then real_pid="$(pgrep -n -P "$server_pid")"; fi
[[ "$(ps -o user= -p "$real_pid")" == "$user" ]] || fail "the server runs as $(ps -o user= -p "$real_pid")"
message="package-test-$$-$RANDOM"
mosquitto_pub -h 127.0.0.1 -p "$port" -t package/test -m "$message" -r -q 1 ||
  fail "mosquitto_pub to 127.0.0.1:$port"
got="$(mosquitto_sub -h 127.0.0.1 -p "$port" -t package/test -C 1 -W 5)" ||
  fail "mosquitto_sub got nothing from 127.0.0.1:$port"
[[ "$got" == "$message" ]] || fail "read back '$got', published '$message'"

step "SIGHUP (the unit's ExecReload) keeps it running"
$sudo kill -HUP "$server_pid"
for _ in $(seq 25); do grep -q "received SIGHUP" "$work/server.log" && break; sleep 0.2; done
grep -q "received SIGHUP" "$work/server.log" || fail "no SIGHUP line in the log"
kill -0 "$server_pid" 2>/dev/null || fail "the server died on SIGHUP"

step "SIGTERM: exit 0, data in $state"
stop_server
# RocksDB's CURRENT file marks a store (the server keeps it in $state/store).
[[ -n "$($sudo find "$state" -name CURRENT)" ]] || fail "no embedded store in $state: $($sudo ls -laR "$state")"
if [[ -n "$($sudo find "$state" ! -user "$user")" ]]; then
  fail "files in $state not owned by $user: $($sudo find "$state" ! -user "$user")"
fi

step "restart: the retained message came back from $state"
start_server "$work/server2.log"
got="$(mosquitto_sub -h 127.0.0.1 -p "$port" -t package/test -C 1 -W 5)" ||
  fail "no retained message after a restart"
[[ "$got" == "$message" ]] || fail "after a restart read back '$got', published '$message'"
stop_server

# ---------------------------------------------------------------- remove, purge
step "dpkg -r: binaries gone; conffile, data and user kept"
$sudo dpkg -r "$pkg" >"$work/dpkg-r.log" 2>&1 || fail "dpkg -r: $(cat "$work/dpkg-r.log")"
[[ ! -e /usr/bin/mqtt-server && ! -e /usr/bin/mqtt-server-ctl ]] || fail "binaries left after dpkg -r"
[[ ! -e "$unit" ]] || fail "$unit left after dpkg -r"
[[ -f "$conffile" ]] || fail "dpkg -r removed the conffile $conffile"
[[ -d "$state" ]] || fail "dpkg -r removed $state"
getent passwd mqtt-server >/dev/null || fail "dpkg -r removed the user"
dpkg-query -W -f='${Status}' "$pkg" | grep -q "config-files" ||
  fail "after dpkg -r the state is $(dpkg-query -W -f='${Status}' "$pkg")"

step "dpkg -P: conffile, data, user and group gone"
$sudo dpkg -P "$pkg" >"$work/dpkg-p.log" 2>&1 || fail "dpkg -P: $(cat "$work/dpkg-p.log")"
[[ ! -e "$conffile" && ! -e /etc/mqtt-server ]] || fail "/etc/mqtt-server left after dpkg -P"
[[ ! -e "$state" ]] || fail "$state left after dpkg -P"
! getent passwd mqtt-server >/dev/null || fail "user mqtt-server left after dpkg -P"
! getent group mqtt-server >/dev/null || fail "group mqtt-server left after dpkg -P"
for l in /etc/systemd/system/multi-user.target.wants/mqtt-server.service \
  /etc/systemd/system/mqtt-server.service; do
  [[ ! -e "$l" && ! -L "$l" ]] || fail "$l left after dpkg -P"
done
known && fail "dpkg still knows $pkg after dpkg -P"

echo "package test: OK ($deb: built, installed, served, removed, purged)"
