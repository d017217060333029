"""The peers' servers, each started as our own child on loopback with its data
in a temp dir, and stopped by PID (TERM, then KILL after a bounded wait).

Debian's packages may have registered services; we never use them.
"""

import glob
import os
import signal
import socket
import subprocess
import time

from common import free_port, wait_until


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            line = f.read()
    except OSError:
        return None
    return int(line[line.rfind(")") + 2:].split()[1])


def _children(pid):
    kids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        child = int(stat.split("/")[2])
        if _ppid(child) == pid:
            kids.append(child)
    return kids


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child still answers kill(0); it is as good as gone.
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def stop_pid(pid, popen=None, grace=15.0):
    """TERM, wait up to `grace` seconds, then KILL; reaps `popen` if given."""
    if pid is None or not _alive(pid):
        if popen:
            popen.poll()
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        if popen:
            popen.poll()
        time.sleep(0.05)
    if _alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if popen:
        try:
            popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _log(path):
    return open(path, "ab")


def _wait_port(port, timeout, what, popen):
    def ready():
        if popen.poll() is not None:
            raise RuntimeError("%s exited with %s before it listened" % (what, popen.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_until(ready, timeout, interval=0.05, what=what)


class Server:
    """A started server: the PID its CPU is read from, what to stop, how."""

    def __init__(self, name, pid, port, stop_order, info):
        self.name = name
        self.pid = pid            # the process whose CPU is the server's
        self.port = port
        self._stop_order = stop_order  # [(pid, popen or None)], first stopped first
        self.info = info          # version, flags, durability: for the report

    def stop(self):
        for pid, popen in self._stop_order:
            stop_pid(pid, popen)
        self._stop_order = []


def start_beanstalkd(tmp, fsync_ms):
    """beanstalkd with a binlog. fsync_ms=0: fsync every binlog write before
    the reply; None: its documented default for -b (fsync at most every
    50 ms, replies don't wait for it)."""
    port = free_port()
    binlog = os.path.join(tmp, "beanstalkd-binlog")
    os.makedirs(binlog)
    cmd = ["beanstalkd", "-l", "127.0.0.1", "-p", str(port), "-b", binlog]
    if fsync_ms is not None:
        cmd += ["-f", str(fsync_ms)]
    p = subprocess.Popen(cmd, stdout=_log(os.path.join(tmp, "beanstalkd.log")),
                         stderr=subprocess.STDOUT, start_new_session=True)
    _wait_port(port, 10, "beanstalkd", p)
    mode = ("-f 0: fsync on every binlog write, before the reply" if fsync_ms == 0
            else "default for -b (no -f): fsync at most every 50 ms, replies don't wait for it")
    return Server("beanstalkd", p.pid, port, [(p.pid, p)],
                  {"command": " ".join(cmd), "durability": "binlog (-b), " + mode})


def start_redis(tmp, fsync_always):
    """Redis as Celery's result store. fsync_always: append-only file with
    appendfsync always (the write is fsynced before Redis replies); else
    memory only (no RDB snapshots, no AOF)."""
    port = free_port()
    data = os.path.join(tmp, "redis")
    os.makedirs(data)
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
           "--dir", data, "--save", "", "--daemonize", "no",
           "--logfile", os.path.join(tmp, "redis.log")]
    if fsync_always:
        cmd += ["--appendonly", "yes", "--appendfsync", "always"]
    else:
        cmd += ["--appendonly", "no"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=_log(os.path.join(tmp, "redis.err")),
                         start_new_session=True)

    def pong():
        if p.poll() is not None:
            raise RuntimeError("redis-server exited with %s" % p.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False
    wait_until(pong, 10, interval=0.05, what="redis-server")
    mode = ("AOF, appendfsync always (fsynced before the reply)" if fsync_always
            else "memory only (--save '' --appendonly no)")
    return Server("redis", p.pid, port, [(p.pid, p)],
                  {"command": " ".join(cmd), "durability": mode})


def _amqp_ready(port):
    """True once RabbitMQ answers an AMQP 0-9-1 protocol header with a frame
    (its listener opens at the end of boot)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"AMQP\x00\x00\x09\x01")
            return s.recv(1)[:1] == b"\x01"  # a method frame: connection.start
    except OSError:
        return False


def start_rabbitmq(tmp, timeout=120):
    """RabbitMQ 3.x (Debian's) run directly (not through the service wrapper,
    which switches user and cd's to /var/lib/rabbitmq), as a unique node with
    its own epmd, everything on 127.0.0.1, all state under tmp."""
    base = os.path.join(tmp, "rabbitmq")
    os.makedirs(base)
    port, dist_port, epmd_port = free_port(), free_port(), free_port()
    conf = os.path.join(base, "rabbitmq.conf")
    with open(conf, "w") as f:
        f.write("listeners.tcp.1 = 127.0.0.1:%d\n" % port)
        f.write("loopback_users.guest = true\n")
    plugins = os.path.join(base, "enabled_plugins")
    with open(plugins, "w") as f:
        f.write("[].\n")  # no management UI or other plugins
    env_file = os.path.join(base, "rabbitmq-env.conf")
    open(env_file, "w").close()  # don't read /etc/rabbitmq/rabbitmq-env.conf
    node = "tqbench%d@localhost" % port
    env = dict(os.environ)
    env.update({
        "HOME": base,  # the Erlang cookie lands here
        "RABBITMQ_CONF_ENV_FILE": env_file,
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_CONFIG_FILE": conf,
        "RABBITMQ_ENABLED_PLUGINS_FILE": plugins,
        "RABBITMQ_MNESIA_BASE": os.path.join(base, "mnesia"),
        "RABBITMQ_LOG_BASE": os.path.join(base, "log"),
        # Erlang distribution on loopback only.
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "ERL_EPMD_PORT": str(epmd_port),
    })
    # Our own epmd in the foreground, so it is our child with a known PID
    # (the node would otherwise start a daemonised one that outlives us).
    epmd_bin = sorted(glob.glob("/usr/lib/erlang/erts-*/bin/epmd"))[-1]
    epmd = subprocess.Popen([epmd_bin, "-port", str(epmd_port), "-address", "127.0.0.1"],
                            env=env, stdout=_log(os.path.join(base, "epmd.log")),
                            stderr=subprocess.STDOUT, start_new_session=True)
    stop_order = [(epmd.pid, epmd)]
    server = Server("rabbitmq", None, port, stop_order, {})
    try:
        _wait_port(epmd_port, 10, "epmd", epmd)
        wrapper = subprocess.Popen(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=env, cwd=base,
                                   stdout=_log(os.path.join(base, "stdout.log")),
                                   stderr=subprocess.STDOUT, start_new_session=True)
        stop_order.insert(0, (wrapper.pid, wrapper))

        def beam():
            if wrapper.poll() is not None:
                raise RuntimeError("rabbitmq-server exited with %s; see %s" %
                                   (wrapper.returncode, os.path.join(base, "stdout.log")))
            return next((k for k in _children(wrapper.pid)), None)
        server.pid = wait_until(beam, 30, interval=0.05, what="beam.smp")
        stop_order.insert(0, (server.pid, None))

        def ready():
            beam()  # raises if it died
            return _amqp_ready(port)
        wait_until(ready, timeout, interval=0.2, what="RabbitMQ's AMQP listener")
    except BaseException:
        server.stop()
        raise
    server.info = {
        "command": "/usr/lib/rabbitmq/bin/rabbitmq-server (node %s, AMQP 127.0.0.1:%d)" % (node, port),
    }
    return server
