# probe-engine's shell prober: for places without Python, and for tools run as a user would.
# Usage: sh -c "$(cat this)" probe TOOL CONCURRENCY   (TOOL: curl, wget, bash, nc or auto);
# where a command must stay short (a pod exec), on stdin behind a loader (see prober.py).
# Reads one cell per line on stdin, tab-separated, "-" for an empty field, up to "@@END":
#   id  mode(tcp|http|dns|icmp|udp)  host  port  url  timeout_s  method  headers(\037-separated)  verify(1|0)  bind
# (icmp: port is the echo count, method the family (ipv4, ipv6, any); bind: the address or
# interface to send from, as curl --interface and ping -I take it.)
# Prints one line per finished cell:  @@R id tool rc ms extra message   (tab-separated)
# and @@D at the end. Values from the matrix are only ever quoted arguments, never code.
TOOL=${1:-auto}
CONC=${2:-16}
TAB=$(printf '\t')
US=$(printf '\037')

has() { command -v "$1" >/dev/null 2>&1; }
now_ms() {
  t=$(date +%s%N 2>/dev/null)
  case "$t" in
    # busybox date has no %N: the uptime clock counts hundredths (fraction kept decimal)
    *N*|"") if read -r up _ </proc/uptime 2>/dev/null; then
        echo $(( ${up%.*} * 1000 + (1${up#*.} - 100) * 10 ))
      else echo ""; fi ;;
    *) echo $((t / 1000000)) ;;
  esac
}
squash() { tr '\t\r\n' '  \037' | cut -c1-6000; }
# GNU timeout puts the tool in a process group of its own (and kills all of it at the
# deadline); the engine stops such stragglers by session when the run ends.
limit() { if has timeout; then timeout "$@"; else shift; "$@"; fi; }

# curl's version, once: a cell's proxy record names the curl that decided.
CURLV=""
if has curl; then CURLV=$(curl --version 2>/dev/null | head -n 1 | cut -d' ' -f2); fi

# A tcp cell ends when the connection is established or refused, as the local row's does:
# what the server does next (stay silent, send a banner, close) is not the network's answer.
# watch runs a tool in the background and stops it at the first line saying it connected;
# out: its words so far, rc: 0 once connected (else the tool's status), self: 1 when that
# connection was its own peer. Without mkfifo the tool runs to its end.
connected_line() {
  case "$1" in
    "* Connected to "*|*" connected."|"Connection to "*" succeeded!"*) return 0 ;;
  esac
  return 1
}
watch() {
  out="" rc="" self=""
  dir=$(mktemp -d 2>/dev/null) && mkfifo "$dir/f" 2>/dev/null || {
    out=$(limit "$t" "$@" 2>&1); rc=$?; [ -n "$dir" ] && rm -rf "$dir"; return
  }
  # exec: $! is the tool itself (under timeout), so that stopping it stops the tool. The
  # tools are given a second more than the cell: our deadline always ends them, the same way
  # (their own timers would report it in words that read like the kernel's ETIMEDOUT).
  ( if has timeout; then exec timeout "$t" "$@"; fi; exec "$@" ) >"$dir/f" 2>&1 </dev/null &
  pid=$!
  while IFS= read -r line; do
    out="$out$line
"
    if connected_line "$line"; then
      rc=0
      if self_connected "$port"; then self=1; fi
      kill "$pid" 2>/dev/null
      break
    fi
  done <"$dir/f"
  wait "$pid" 2>/dev/null
  r=$?
  [ -z "$rc" ] && rc=$r
  rm -rf "$dir"
}
# TCP simultaneous open: a connect to a closed port in the ephemeral range can be answered by
# itself when the kernel picks that very port as the source. Such a connection's local end
# equals its peer (in /proc/net/tcp, while it is open): nothing listens on that port.
self_connected() {
  p=$(printf ':%04X' "$1" 2>/dev/null) || return 1
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null \
    | awk -v p="$p" '$4 == "01" && $2 == $3 && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }'
}
bracket() { case "$1" in *:*) echo "[$1]" ;; *) echo "$1" ;; esac; }

pick() {
  case "$TOOL:$1" in
    auto:tcp) for t in nc bash curl wget; do if has "$t"; then echo "$t"; return; fi; done ;;
    auto:http) for t in curl wget nc bash; do if has "$t"; then echo "$t"; return; fi; done ;;
    *:dns) for t in getent nslookup; do if has "$t"; then echo "$t"; return; fi; done ;;
    *:icmp) if has ping; then echo ping; fi ;;
    *:udp) ;;
    *) if has "$TOOL"; then echo "$TOOL"; fi ;;
  esac
}

run_curl() {
  set --
  if [ "$headers" != "-" ]; then
    old=$IFS; IFS=$US
    for h in $headers; do set -- "$@" -H "$h"; done
    IFS=$old
  fi
  [ "$verify" = 0 ] && set -- "$@" -k
  [ "$bind" != - ] && set -- "$@" --interface "$bind"
  if [ "$mode" = tcp ]; then
    # A raw connect, through no proxy (as the agent's tcp cells): telnet:// sends nothing.
    watch curl -sS -v --noproxy '*' --connect-timeout $((t + 1)) --max-time $((t + 1)) \
      "$@" "telnet://$(bracket "$host"):$port"
    extra="${self:+self-connect}"
    msg=$(printf '%s\n' "$out" | grep -E '^(\* |curl: )' | squash)
    return
  fi
  target=$url
  out=$(curl -sS -v -o /dev/null -X "$method" --connect-timeout "$t" --max-time "$t" \
    -w '\n@@W %{http_code}|%{remote_ip}|%{remote_port}|%{local_ip}|%{local_port}\n' \
    "$@" "$target" 2>&1)
  rc=$?
  extra="$(printf '%s\n' "$out" | sed -n 's/^@@W //p' | head -n 1) ${CURLV:--}"
  # Only curl's own lines: never the request headers (-v prints them; they may hold tokens).
  msg=$(printf '%s\n' "$out" | grep -E '^(\* |curl: )' | squash)
}

run_wget() {
  set --
  if [ "$headers" != "-" ]; then
    old=$IFS; IFS=$US
    for h in $headers; do set -- "$@" --header "$h"; done
    IFS=$old
  fi
  [ "$verify" = 0 ] && set -- "$@" --no-check-certificate
  # Debian's busybox wget crashes (SIGSEGV) when given -T: there `timeout` keeps the deadline.
  # GNU wget retries 20 times by default (a port that closes at once would take minutes).
  wt=1 gnu=1
  if wget --help 2>&1 | grep -q BusyBox; then gnu=""; has timeout && wt=""; fi
  if [ "$mode" = tcp ] && [ -n "$gnu" ]; then
    watch wget --tries=1 --no-proxy -T $((t + 1)) -O /dev/null \
      "http://$(bracket "$host"):$port/"
    extra="${self:+self-connect}"
    msg=$(printf '%s\n' "$out" | squash)
    return
  fi
  target=$url
  [ "$mode" = tcp ] && target="http://$(bracket "$host"):$port/"
  out=$(limit "$t" wget -S -O /dev/null ${gnu:+--tries=1} ${wt:+-T $((t + 1))} "$@" "$target" 2>&1)
  rc=$?
  extra=$(printf '%s\n' "$out" | sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' | tail -n 1)
  msg=$(printf '%s\n' "$out" | grep -viE '^ *(authorization|cookie|set-cookie|proxy-authorization):' | squash)
}

run_nc() {
  # OpenBSD nc needs -z to connect and leave, -N to send EOF; busybox nc has neither, but
  # runs a program once connected: `-e true` connects and leaves (else it waits for the peer).
  bsd="" bbe=""
  case "$(nc -h 2>&1)" in *-z*) bsd=1 ;; *"-e PROG"*) bbe=1 ;; esac
  if [ "$mode" = http ]; then
    path=/${url#*://*/}
    [ "$path" = "/$url" ] && path=/
    out=$(printf '%s %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$method" "$path" "$host" \
      | limit "$t" nc ${bsd:+-N -v} -w "$t" "$host" "$port" 2>&1 | head -c 65536)
    rc=$?
    extra=$(printf '%s\n' "$out" | sed -n 's/^HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' | head -n 1)
    out=$(printf '%s\n' "$out" | grep -E '^(nc:|Connection to)')
  elif [ -n "$bsd" ]; then
    # -v says "succeeded!" once connected; the connection stays open while it is checked.
    watch nc -v -w $((t + 1)) "$host" "$port"
    extra="${self:+self-connect}"
  elif [ -n "$bbe" ]; then
    out=$(limit "$t" nc -w "$t" "$host" "$port" -e true 2>&1)
    rc=$?
    extra=""
  else
    out=$(limit "$t" nc -w "$t" "$host" "$port" </dev/null 2>&1)
    rc=$?
    extra=""
  fi
  msg=$(printf '%s\n' "$out" | squash)
}

run_bash() {
  if [ "$mode" = http ]; then
    path=/${url#*://*/}
    [ "$path" = "/$url" ] && path=/
    out=$(limit "$t" bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
      printf "%s %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n" "$3" "$4" "$1" >&3
      head -n 1 <&3' probe "$host" "$port" "$method" "$path" 2>&1)
    rc=$?
    extra=$(printf '%s\n' "$out" | sed -n 's/^HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p')
  else
    out=$(limit "$t" bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
      p=$(printf ":%04X" "$2")
      cat /proc/net/tcp /proc/net/tcp6 2>/dev/null \
        | awk -v p="$p" '"'"'$4 == "01" && $2 == $3 && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }'"'"' \
        && echo "@@SELF"
      exit 0' probe "$host" "$port" 2>&1)
    rc=$?
    extra=""
    case "$out" in *@@SELF*) extra=self-connect; out=$(printf '%s\n' "$out" | grep -v '^@@SELF') ;; esac
  fi
  msg=$(printf '%s\n' "$out" | squash)
}

run_getent() {
  out=$(getent ahosts "$host" 2>&1)
  rc=$?
  extra=$(printf '%s\n' "$out" | awk '{print $1}' | uniq | tr '\n' ' ')
  msg=""
}

run_nslookup() {
  out=$(limit "$t" nslookup "$host" 2>&1)
  rc=$?
  extra=$(printf '%s\n' "$out" | sed -n '/^Name:/,$ s/^Address[^:]*: *\([0-9a-fA-F:.]*\).*/\1/p' | tr '\n' ' ')
  msg=$(printf '%s\n' "$out" | grep -iE "can't|NXDOMAIN|SERVFAIL|timed out|refused" | squash)
}

run_ping() {
  # iputils stops at its first ICMP error when given a deadline (-w): it gets a wait per reply
  # (-W) instead; busybox's -W counts only after the last echo, so it gets the deadline.
  set -- -c "$port"
  case "$method" in ipv4) set -- "$@" -4 ;; ipv6) set -- "$@" -6 ;; esac
  [ "$bind" != - ] && set -- "$@" -I "$bind"
  if ping -V 2>&1 | grep -q iputils; then
    w=$((t - (port - 1) / 5))
    [ "$w" -lt 1 ] && w=1
    set -- "$@" -n -i 0.2 -W "$w"
    extra=iputils
  else
    set -- "$@" -w "$t"
    extra=busybox
    case "$(readlink -f "$(command -v ping)" 2>/dev/null)" in *busybox*) ;; *) extra=ping ;; esac
  fi
  out=$(LC_ALL=C limit "$t" ping "$@" "$host" 2>&1)
  rc=$?
  msg=$(printf '%s\n' "$out" | squash)
}

one() {
  id=$1 mode=$2 host=$3 port=$4 url=$5 t=$6 method=$7 headers=$8 verify=$9 bind=${10:--}
  start=$(now_ms)
  tool=$(pick "$mode")
  rc=127 extra="" msg=""
  case "$bind:$tool" in
    -:*|*:curl|*:ping|*:) ;;
    *) msg="$tool cannot send from a chosen source (bind: $bind); curl, ping and the agent can"
       tool="-" ;;
  esac
  case "$tool" in
    "") tool="-"
      case "$mode" in
        icmp) msg="no way to ping here: no ping binary (and no Python for the agent)" ;;
        udp) msg="no udp probe without Python here: no tool tells a closed UDP port (ICMP port unreachable) from silence" ;;
        *) msg="no tool for a $mode probe here" ;;
      esac ;;
    curl) run_curl ;;
    wget) run_wget ;;
    nc) run_nc ;;
    bash) run_bash ;;
    getent) run_getent ;;
    nslookup) run_nslookup ;;
    ping) run_ping ;;
  esac
  end=$(now_ms)
  ms=""
  if [ -n "$start" ] && [ -n "$end" ]; then ms=$((end - start)); fi
  printf '@@R\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$tool" "$rc" "${ms:--}" "${extra:--}" "${msg:--}"
}

n=0
# "@@END" closes the batch: over a WebSocket exec, stdin may never see EOF.
while IFS=$TAB read -r id mode host port url t method headers verify bind; do
  [ "$id" = "@@END" ] && break
  [ -n "$id" ] || continue
  one "$id" "$mode" "$host" "$port" "$url" "$t" "$method" "$headers" "$verify" "$bind" &
  n=$((n + 1))
  if [ "$n" -ge "$CONC" ]; then wait; n=0; fi
done
wait
printf '@@D\n'
