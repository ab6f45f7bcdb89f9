# probe-engine's shell prober: for places without Python, and for tools run as a user would.
# Usage: sh -c "$(cat this)" probe TOOL CONCURRENCY   (TOOL: curl, wget, bash, nc or auto);
# where a command must stay short (a pod exec), on stdin behind a loader (see prober.py).
# Reads one cell per line on stdin, tab-separated, "-" for an empty field, up to "@@END":
#   id  mode(tcp|http|dns)  host  port  url  timeout_s  method  headers(\037-separated)  verify(1|0)
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

pick() {
  case "$TOOL:$1" in
    auto:tcp) for t in nc bash curl wget; do if has "$t"; then echo "$t"; return; fi; done ;;
    auto:http) for t in curl wget nc bash; do if has "$t"; then echo "$t"; return; fi; done ;;
    *:dns) for t in getent nslookup; do if has "$t"; then echo "$t"; return; fi; done ;;
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
  target=$url
  [ "$mode" = tcp ] && target="http://$host:$port/"
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
  target=$url
  [ "$mode" = tcp ] && target="http://$host:$port/"
  # Debian's busybox wget crashes (SIGSEGV) when given -T: there `timeout` keeps the deadline.
  wt=1
  if has timeout && wget --help 2>&1 | grep -q BusyBox; then wt=""; fi
  out=$(limit "$t" wget -S -O /dev/null ${wt:+-T "$t"} "$@" "$target" 2>&1)
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
    out=$(limit "$t" nc -z -v -w "$t" "$host" "$port" 2>&1)
    rc=$?
    extra=""
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
    out=$(limit "$t" bash -c 'exec 3<>"/dev/tcp/$1/$2"' probe "$host" "$port" 2>&1)
    rc=$?
    extra=""
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

one() {
  id=$1 mode=$2 host=$3 port=$4 url=$5 t=$6 method=$7 headers=$8 verify=$9
  start=$(now_ms)
  tool=$(pick "$mode")
  rc=127 extra="" msg=""
  case "$tool" in
    "") msg="no tool for a $mode probe here" ; tool="-" ;;
    curl) run_curl ;;
    wget) run_wget ;;
    nc) run_nc ;;
    bash) run_bash ;;
    getent) run_getent ;;
    nslookup) run_nslookup ;;
  esac
  end=$(now_ms)
  ms=""
  if [ -n "$start" ] && [ -n "$end" ]; then ms=$((end - start)); fi
  printf '@@R\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$tool" "$rc" "${ms:--}" "${extra:--}" "${msg:--}"
}

n=0
# "@@END" closes the batch: over a WebSocket exec, stdin may never see EOF.
while IFS=$TAB read -r id mode host port url t method headers verify; do
  [ "$id" = "@@END" ] && break
  [ -n "$id" ] || continue
  one "$id" "$mode" "$host" "$port" "$url" "$t" "$method" "$headers" "$verify" &
  n=$((n + 1))
  if [ "$n" -ge "$CONC" ]; then wait; n=0; fi
done
wait
printf '@@D\n'
