"""A private RabbitMQ broker (Debian's rabbitmq-server) on free ports in a directory.

Used by the test fixtures, the benchmarks and the demo. The broker keeps its
data in its directory, so ``stop()`` then ``start()`` is a real broker restart
with durable queues and persistent messages surviving it.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time

import pika
import pika.exceptions

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateBroker:
    """With ``tls``, also an amqps listener (``tls_url``) whose certificate a private CA signed
    (``tls_files["ca"]``) and that takes only clients with a certificate from that CA
    (``tls_files["cert"]``, ``tls_files["key"]``)."""

    def __init__(self, directory, port=None, tls=False):
        self.directory = os.path.abspath(directory)
        self.port = port or free_port()
        self.dist_port = free_port()
        self.node = f"snft{self.port}@localhost"
        self.process = None
        self.tls_port = None
        self._epmd_was_running = _epmd_running()
        os.makedirs(self.directory, exist_ok=True)
        with open(os.path.join(self.directory, "rabbitmq.conf"), "w") as conf:
            conf.write(f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
                       "loopback_users = none\n"
                       "log.console = false\n")
            if tls:
                self.tls_port = free_port()
                self.tls_files = make_certificates(os.path.join(self.directory, "tls"))
                conf.write(f"listeners.ssl.default = 127.0.0.1:{self.tls_port}\n"
                           f"ssl_options.cacertfile = {self.tls_files['ca']}\n"
                           f"ssl_options.certfile = {self.tls_files['server_cert']}\n"
                           f"ssl_options.keyfile = {self.tls_files['server_key']}\n"
                           "ssl_options.verify = verify_peer\n"
                           "ssl_options.fail_if_no_peer_cert = true\n")
        with open(os.path.join(self.directory, "enabled_plugins"), "w") as plugins:
            plugins.write("[].\n")

    @property
    def url(self):
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    @property
    def tls_url(self):
        return f"amqps://guest:guest@127.0.0.1:{self.tls_port}/%2F"

    def environment(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        d = self.directory
        env.update(
            HOME=d, RABBITMQ_NODENAME=self.node, RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port), RABBITMQ_BASE=d,
            RABBITMQ_MNESIA_BASE=os.path.join(d, "mnesia"), RABBITMQ_LOG_BASE=os.path.join(d, "log"),
            RABBITMQ_CONFIG_FILE=os.path.join(d, "rabbitmq"),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(d, "enabled_plugins"),
            RABBITMQ_PID_FILE=os.path.join(d, "pid"))
        return env

    def start(self, timeout=60):
        if self.process is not None:
            return
        out = open(os.path.join(self.directory, "server.out"), "ab")
        self.process = subprocess.Popen([SERVER], env=self.environment(), stdout=out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited ({self.process.returncode}); "
                                   f"see {self.directory}/server.out")
            if self.reachable() and (self.tls_port is None or _listening(self.tls_port)):
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"rabbitmq-server did not come up in {timeout}s")

    def reachable(self):
        try:
            params = pika.URLParameters(self.url)
            params.connection_attempts, params.socket_timeout = 1, 1
            pika.BlockingConnection(params).close()
            return True
        except (pika.exceptions.AMQPError, OSError):
            return False

    def stop(self, hard=False):
        """Stop the broker (SIGTERM, or SIGKILL with ``hard``) and wait for it."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL if hard else signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None
        _wait_port_free(self.port)

    def restart(self, hard=False):
        self.stop(hard=hard)
        self.start()

    def ctl(self, *args):
        """Run ``rabbitmqctl`` against this broker; its output."""
        done = subprocess.run([CTL, "-n", self.node, *args], env=self.environment(),
                              capture_output=True, text=True, timeout=120, check=False)
        if done.returncode:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def alarms(self):
        return self.ctl("eval", "rabbit_alarm:get_alarms().").strip()

    @contextlib.contextmanager
    def memory_alarm(self):
        """A real memory alarm (a high watermark of 0): the broker blocks every publishing
        connection until the block ends, as on a node short of memory."""
        self.ctl("set_vm_memory_high_watermark", "0")
        try:
            _wait(lambda: "memory" in self.alarms(), "the memory alarm to be raised")
            yield
        finally:
            self.ctl("set_vm_memory_high_watermark", "0.4")
            _wait(lambda: self.alarms() == "[]", "the memory alarm to clear")

    def destroy(self):
        self.stop()
        if not self._epmd_was_running and shutil.which("epmd"):
            subprocess.run(["epmd", "-kill"], capture_output=True, check=False)
        shutil.rmtree(self.directory, ignore_errors=True)


def make_certificates(directory):
    """A private CA, a server certificate for 127.0.0.1 and localhost, and a client
    certificate, all signed by that CA (P-256 keys: quick to make). {name: path}."""
    os.makedirs(directory, exist_ok=True)
    files = {name: os.path.join(directory, f"{name}.pem") for name in
             ("ca", "ca_key", "server_cert", "server_key", "cert", "key")}

    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    # The extensions a strict verifier (Python 3.13's VERIFY_X509_STRICT) asks for.
    openssl("req", "-x509", *key, "-keyout", files["ca_key"], "-out", files["ca"], "-days", "2",
            "-subj", "/CN=snft private CA", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    leaf = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    for cert, key_file, name, extensions in (
            ("server_cert", "server_key", "localhost",
             "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
            ("cert", "key", "snft client", "extendedKeyUsage=clientAuth\n")):
        request = os.path.join(directory, f"{cert}.csr")
        ext = os.path.join(directory, f"{cert}.ext")
        with open(ext, "w") as stream:
            stream.write(leaf + extensions)
        openssl("req", *key, "-keyout", files[key_file], "-out", request, "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", request, "-CA", files["ca"], "-CAkey", files["ca_key"],
                "-CAcreateserial", "-out", files[cert], "-days", "2", "-extfile", ext)
    return files


def _epmd_running():
    return subprocess.run(["pgrep", "-x", "epmd"], capture_output=True).returncode == 0


def _listening(port):
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait(predicate, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _wait_port_free(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _listening(port):
            return
        time.sleep(0.1)
