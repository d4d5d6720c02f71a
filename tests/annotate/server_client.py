"""A served annotation database on an ephemeral loopback port, and a tiny HTTP client for it."""

import http.client
import re
import threading
import urllib.parse

from xy_jax.annotate.server import COOKIE, make_server


class Served:
  def __init__(self, db_path):
    self.server = make_server(db_path, "127.0.0.1", 0, quiet=True)
    self.port = self.server.server_address[1]
    self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
    self.thread.start()

  def close(self):
    self.server.shutdown()
    self.server.server_close()
    self.thread.join(10)

  def request(self, method, path, form=None, cookie=None, headers=None):
    """(status, headers, body text); redirects are not followed."""
    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
    try:
      h = dict(headers or {})
      body = None
      if form is not None:
        body = urllib.parse.urlencode(form)
        h["Content-Type"] = "application/x-www-form-urlencoded"
      if cookie:
        h["Cookie"] = f"{COOKIE}={cookie}"
      conn.request(method, path, body=body, headers=h)
      resp = conn.getresponse()
      return resp.status, resp.headers, resp.read().decode("utf-8")
    finally:
      conn.close()

  def login(self, token):
    status, headers, _ = self.request("POST", "/login", {"token": token})
    assert status == 303, status
    return re.search(f"{COOKIE}=([^;]+)", headers["Set-Cookie"]).group(1)

  def next_item(self, cookie):
    """(opaque id, csrf token, page) of the rater's next item."""
    status, headers, _ = self.request("GET", "/", cookie=cookie)
    assert status == 303 and headers["Location"].startswith("/item/"), (status, headers.get("Location"))
    path = headers["Location"]
    status, _, page = self.request("GET", path, cookie=cookie)
    assert status == 200
    return path.removeprefix("/item/"), re.search(r'name="csrf" value="([^"]+)"', page).group(1), page

  def vote(self, cookie, opaque, csrf, vote, **extra):
    return self.request("POST", "/vote", {"csrf": csrf, "item": opaque, "vote": vote, **extra}, cookie=cookie)
