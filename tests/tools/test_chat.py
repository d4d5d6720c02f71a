"""tools/chat.py driven through a pseudo-terminal, as a person types into it."""

import os
import pty
import re
import select
import subprocess
import sys
import time

from tests.train.train_helpers import ROOT, env
from xy_jax.data.tokenizer import ChatTemplate, Message, load_tokenizer

STATS = re.compile(r"\[(\d+) prompt tokens, (\d+) new, [\d.]+ tok/s[^\]]*\]\r?\nHuman: ")


class Terminal:

  def __init__(self, argv):
    self.master, slave = pty.openpty()
    self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env(), cwd=ROOT,
                                 close_fds=True)
    os.close(slave)
    self.buffer = b""

  def read_until(self, pattern, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
      m = pattern.search(self.buffer.decode("utf-8", "replace"))
      if m:
        return m
      ready, _, _ = select.select([self.master], [], [], 1.0)
      if ready:
        try:
          self.buffer += os.read(self.master, 4096)
        except OSError:  # the child closed the terminal
          break
    raise AssertionError(f"no {pattern.pattern!r} in: {self.buffer.decode('utf-8', 'replace')[-2000:]}")

  def type(self, line):
    self.buffer = b""
    os.write(self.master, (line + "\n").encode())


def _chat(checkpoint, max_new_tokens):
  return Terminal([sys.executable, os.path.join(ROOT, "tools", "chat.py"), f"--checkpoint={checkpoint}",
                   "--greedy", f"--max_new_tokens={max_new_tokens}", "--dtype=float32"])


def test_two_turns_the_second_sees_the_first(lm_checkpoint):
  term = _chat(lm_checkpoint, 16)
  try:
    term.read_until(re.compile(r"Human: $"))
    turns, answers = ["什么是市盈率？", "它和市净率有什么不同？"], []
    counts = []
    for q in turns:
      term.type(q)
      stats = term.read_until(STATS)
      text = term.buffer.decode("utf-8", "replace")
      answer = text[text.index("XuanYuan: ") + len("XuanYuan: "):stats.start()]
      answers.append(answer.replace("\r\n", "\n").removesuffix("\n"))
      counts.append((int(stats.group(1)), int(stats.group(2))))
    term.type("/exit")
    assert term.proc.wait(timeout=60) == 0
  finally:
    if term.proc.poll() is None:
      term.proc.kill()
  tok = load_tokenizer(os.path.join(lm_checkpoint, "tokenizer.model"))
  template = ChatTemplate()
  first = template.encode_prompt(tok, [Message("user", turns[0])])
  second = template.encode_prompt(tok, [Message("user", turns[0]), Message("assistant", answers[0]),
                                        Message("user", turns[1])])
  assert counts[0][0] == len(first)
  assert counts[1][0] == len(second)  # the first question and answer are in the second prompt
  assert counts[1][0] > counts[0][0] + counts[0][1]
  assert all(0 < new <= 16 for _, new in counts)


def test_a_line_that_is_not_utf8_is_refused_and_the_chat_goes_on(lm_checkpoint):
  term = _chat(lm_checkpoint, 8)
  try:
    term.read_until(re.compile(r"Human: $"))
    term.buffer = b""
    os.write(term.master, "什么是市盈率".encode("gbk") + b"\n")  # typed on a GBK terminal
    term.read_until(re.compile(r"error: this line is not valid UTF-8.*the conversation is kept"),
                    timeout=60)
    term.read_until(re.compile(r"Human: $"))
    # (readline keeps the GBK line's last byte as the start of a character: a next line that
    # starts with a UTF-8 multibyte character would inherit it and be refused too.)
    term.type("What is a P/E ratio?")
    stats = term.read_until(STATS, timeout=60)
    term.type("/exit")
    assert term.proc.wait(timeout=60) == 0
  finally:
    if term.proc.poll() is None:
      term.proc.kill()
  assert "Traceback" not in term.buffer.decode("utf-8", "replace")
  tok = load_tokenizer(os.path.join(lm_checkpoint, "tokenizer.model"))
  first = ChatTemplate().encode_prompt(tok, [Message("user", "What is a P/E ratio?")])
  assert int(stats.group(1)) == len(first)  # the refused line never entered the conversation
