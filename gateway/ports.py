"""A TCP port on 127.0.0.1 for a test server to listen on.

Binding port 0 asks the kernel for a free port, but from the ephemeral range, which every
outgoing connection of the suite also draws from: between the check and the server's own bind,
a client socket can take the number ("Address already in use"). So the port is chosen outside
net.ipv4.ip_local_port_range, where the kernel never places client sockets, and checked
bindable. Run as a script, it prints one (for the shell helpers of scripts/lib.sh).
"""

import random
import socket

_HANDED_OUT = set()  # never hand the same port twice to one process


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999  # the Linux default


def free_port():
    lo, hi = _ephemeral_range()
    candidates = [p for p in list(range(10000, lo)) + list(range(hi + 1, 65536)) if p not in _HANDED_OUT]
    random.shuffle(candidates)
    for port in candidates[:200]:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no bindable port outside the ephemeral range %d-%d" % (lo, hi))


if __name__ == "__main__":
    print(free_port())
