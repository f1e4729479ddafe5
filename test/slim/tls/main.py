# A TLS client that trusts only the system CA store: it starts a small HTTPS
# server on 127.0.0.1 (its certificate is signed by a test CA that the image
# added to /etc/ssl/certs/ca-certificates.crt), fetches a page with urllib and
# the default SSL context (no cafile), and prints what it got.
import http.server
import ssl
import threading
import urllib.request


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello over TLS\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server_ctx.load_cert_chain("/app/tls/server.crt", "/app/tls/server.key")
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
threading.Thread(target=server.serve_forever, daemon=True).start()

client_ctx = ssl.create_default_context()
url = "https://127.0.0.1:%d/" % server.server_address[1]
with urllib.request.urlopen(url, context=client_ctx, timeout=30) as resp:
    print(resp.status, resp.read().decode().strip())
    print("verified:", client_ctx.verify_mode == ssl.CERT_REQUIRED)
server.shutdown()
