# tests/lib.sh — shared by the shell tests (source it).
#
# pick_ports N: print a base port P such that 127.0.0.1:P .. P+N-1 are free,
# chosen below Linux's ephemeral range (32768-60999), where the local ports
# of outgoing connections (ours and everyone's) would otherwise collide.
pick_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(500):
    base = random.randrange(10000, 32700 - n)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", p))
            socks.append(s)
        print(base)
        break
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
else:
    sys.exit("no free port range")
PY
}

# alive PID: running = signalable and not a zombie
alive() { kill -0 "$1" 2>/dev/null && [ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]; }

# poll SECONDS CONDITION: eval CONDITION every 0.1 s until it holds (0) or
# SECONDS have passed (1)
poll() {
  local i
  for i in $(seq 1 $(( $1 * 10 ))); do eval "$2" && return 0; sleep 0.1; done
  return 1
}
