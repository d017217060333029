#!/usr/bin/env python3
"""Fixture web server for the analyser tests.

Serves the same routes on 127.0.0.1, 127.0.0.2 and 127.0.0.3 (one port, taken
by the first bind) so that redirects can cross "hosts" on loopback, and over
TLS with a fresh self-signed certificate on 127.0.0.1 (a second port). Writes
"PORT TLS_PORT" to the file named by argv[1] once everything listens. Runs
until killed.
"""
import http.server
import os
import socketserver
import ssl
import subprocess
import sys
import threading
import time

HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
PORT = 0

LONG_ESCAPED = "%u9090" * 60
RANDOM_LITERAL = (
    "Zq8Xv3Lk0PwR7tYb2Nm5HsJd9Gc4Fa1Ue6Io3Kp8Ql7Wz0Ex2Rv5Tb9Yn4Um1Ic6Od3Pf8Ag7Sh"
    "2Dj5Fk0Gl9Hz4Jx1Kc6Lv3Mb8Nn7Qm2Wq5Ew0Er9Rt4Ty1Yu6Ui3Io8Op7Pa2As5Sd0Df9Fg4G"
    "h1Hj6Jk3Kl8Lz7Zx2Xc5Cv0Vb9Bn4Nm1Mq6Qw3We8Er7Rt2Ty5Yu0Ui9Io4Op1Pa6As3Sd8Df7"
)


def page(body, head=""):
    return ("<!doctype html><html><head>%s</head><body>%s</body></html>" %
            (head, body)).encode()


def routes(port):
    h2 = "http://127.0.0.2:%d" % port
    h3 = "http://127.0.0.3:%d" % port
    return {
        "/plain.html": (200, "text/html", page("<p>hello</p>")),
        "/hidden_iframe.html": (200, "text/html", page(
            '<iframe src="/frame.html" width="0" height="0"></iframe>'
            '<iframe src="/frame.html" style="display: none"></iframe>'
            '<iframe src="/frame.html" style="position:absolute; left:-1000px"'
            ' width="300" height="200"></iframe>'
            '<iframe src="/frame.html" width="300" height="200"></iframe>')),
        "/frame.html": (200, "text/html", page("<p>frame</p>")),
        "/with_script.html": (200, "text/html",
                              page('<script src="headers.js"></script>')),
        "/obfuscated.html": (200, "text/html", page(
            '<script>eval(unescape("%s"));</script>'
            '<script src="/evil.js"></script>'
            '<script>var k = "%s";</script>'
            '<script>window.location = "%s/landing.html";</script>'
            '<form action="%s/steal" method="post">'
            '<input type="text" name="u"><input type="password" name="p">'
            '</form>'
            '<embed src="/movie.swf" type="application/x-shockwave-flash">'
            '<a href="/payload.exe">update</a>' %
            (LONG_ESCAPED, RANDOM_LITERAL, h3, h2),
            '<meta http-equiv="refresh" content="5; url=%s/landing.html">' % h3)),
        "/evil.js": (200, "application/javascript", (
            "document.write(String.fromCharCode(%s));" %
            ",".join(str(60 + i % 30) for i in range(80))).encode()),
        "/landing.html": (200, "text/html", page("<p>landing</p>")),
        "/big": (200, "text/plain", b"x" * (2 * 1024 * 1024)),
        "/payload.exe": (200, "application/octet-stream",
                         b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 120 +
                         b"This program cannot be run in DOS mode."),
        "/redirect/start": (302, h2 + "/redirect/hop"),
        "/redirect/hop": (301, h3 + "/redirect/final"),
        "/redirect/final": (200, "text/html", page("<p>final</p>")),
        "/redirect/to-file": (302, "file:///etc/passwd"),
        "/redirect/to-ftp": (302, "ftp://127.0.0.1/x"),
    }


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.startswith("http://"):
            # Absolute form: the client took this server for a proxy.
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
            if path == "/plain.html":
                return self.reply(200, "text/html", page("<p>via proxy</p>"))
        if path == "/slow":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(600):  # at most a minute, a byte at a time
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
            return
        if path.startswith("/loop/"):
            n = int(path.rsplit("/", 1)[1])
            return self.redirect(302, "/loop/%d" % (n + 1))
        if path == "/headers.js":
            # Echoes what the analyser sent, as a script it records in `code`.
            body = ('var ua = "%s"; var referer = "%s";' % (
                self.headers.get("User-Agent", ""),
                self.headers.get("Referer", ""))).encode()
            return self.reply(200, "application/javascript", body)
        route = routes(PORT).get(path)
        if route is None:
            return self.reply(404, "text/html", page("not found"))
        if len(route) == 2:
            return self.redirect(*route)
        self.reply(*route)

    def redirect(self, status, location):
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def reply(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global PORT
    servers = [Server((HOSTS[0], 0), Handler)]
    PORT = servers[0].server_address[1]
    for h in HOSTS[1:]:
        servers.append(Server((h, PORT), Handler))
    here = os.path.dirname(os.path.abspath(sys.argv[1]))
    key, cert = os.path.join(here, "fixture.key"), os.path.join(here, "fixture.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "1",
                    "-subj", "/CN=127.0.0.1"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tls = Server((HOSTS[0], 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    tls.socket = context.wrap_socket(tls.socket, server_side=True)
    servers.append(tls)
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d" % (PORT, tls.server_address[1]))
    os.rename(tmp, sys.argv[1])
    threading.Event().wait()


if __name__ == "__main__":
    main()
