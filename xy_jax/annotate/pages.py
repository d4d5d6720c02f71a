"""The raters' HTML pages. Every text from the database passes through html.escape; the pages hold
no inline script or style, so the server's Content-Security-Policy can forbid both."""

from __future__ import annotations

import html

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")

# The buttons of each kind: (value posted, keys, label). Values are about the answer on the left:
# the server turns them into A's vote with the side it chose for this rater.
BUTTONS = {
    "gsb": (("G", "1 g", "G 左边更好 (left is better)"),
            ("S", "2 s", "S 一样 (same)"),
            ("B", "3 b", "B 左边更差 (left is worse)")),
    "preference": (("left", "1 a", "A 左边更好 (left is better)"),
                   ("right", "2 b", "B 右边更好 (right is better)"),
                   ("tie", "3 t", "T 一样好 (tie)")),
}

SCRIPT = """\
"use strict";
document.addEventListener("keydown", function (e) {
  var t = e.target && e.target.tagName;
  if (t === "TEXTAREA" || t === "INPUT" || e.ctrlKey || e.metaKey || e.altKey) return;
  var key = (e.key || "").toLowerCase();
  if (!/^[a-z0-9]$/.test(key)) return;
  var button = document.querySelector('button[data-keys~="' + key + '"]');
  if (button) { e.preventDefault(); button.click(); }
});
"""

STYLE = """\
body { font-family: system-ui, "Noto Sans CJK SC", "PingFang SC", sans-serif; margin: 2em auto; max-width: 72em; }
.answers { display: flex; gap: 1em; }
.answer { flex: 1; border: 1px solid #999; padding: 0.8em; white-space: pre-wrap; }
.prompt { white-space: pre-wrap; background: #f4f4f4; padding: 0.8em; }
button { font-size: 1.1em; margin: 0.3em; }
.legend, .progress { color: #444; }
.error { color: #b00; }
"""


def page(title: str, body: str) -> bytes:
  return (f'<!DOCTYPE html>\n<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
          f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
          f'<title>{html.escape(title)}</title>\n<link rel="stylesheet" href="/static/annotate.css">\n'
          f'<script src="/static/annotate.js" defer></script>\n</head>\n<body>\n{body}\n</body>\n</html>\n'
          ).encode("utf-8")


def login(error: str = "") -> bytes:
  note = f'<p class="error">{html.escape(error)}</p>' if error else ""
  return page("登录 / Log in", f"""<h1>标注 / Annotation</h1>{note}
<form method="post" action="/login">
<label>令牌 / Token <input type="password" name="token" autocomplete="off" autofocus required></label>
<button type="submit">登录 / Log in</button>
</form>""")


def item(*, rater: str, kind: str, opaque: str, csrf: str, prompt: str, left: str, right: str,
         done: int, total: int, current: str | None) -> bytes:
  e = html.escape
  pressed = ' aria-pressed="true"'
  buttons = "\n".join(
      f'<button type="submit" name="vote" value="{value}" data-keys="{keys}"'
      f'{pressed if value == current else ""}>{e(label)}</button>'
      for value, keys, label in BUTTONS[kind])
  legend = " · ".join(f"{keys.replace(' ', ' / ')}: {e(label)}" for _, keys, label in BUTTONS[kind])
  comment = ('<p><label>备注 / Comment (optional)<br><textarea name="comment" rows="2" cols="60">'
             '</textarea></label></p>') if kind == "preference" else ""
  mark = f'<p>已投 / your vote: <b id="current">{e(current)}</b></p>' if current else ""
  return page("标注 / Annotation", f"""<p class="progress">{e(rater)} · <span id="progress">{done}/{total}</span></p>
<h2>问题 / Prompt</h2>
<div class="prompt" id="prompt">{e(prompt)}</div>
<div class="answers">
<div class="answer" id="left"><h3>左 / Left</h3>{e(left)}</div>
<div class="answer" id="right"><h3>右 / Right</h3>{e(right)}</div>
</div>
{mark}
<form method="post" action="/vote" id="vote">
<input type="hidden" name="csrf" value="{e(csrf)}">
<input type="hidden" name="item" value="{e(opaque)}">
{comment}
{buttons}
</form>
<p class="legend">键盘 / Keys: {legend}</p>""")


def finished(rater: str, done: int, total: int) -> bytes:
  return page("完成 / Done", f'<p class="progress">{html.escape(rater)} · <span id="progress">{done}/{total}'
                             f'</span></p>\n<h1 id="done">全部完成 / All done</h1>')
