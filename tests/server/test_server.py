#!/usr/bin/env python3
"""tests/server/test_server.py: `gemmac serve` against the official openai client.

Starts a live server on loopback (port 0: any free one) over the tiny test
model (tests/graphs/tiny.yaml with `gemmac init` weights, or GRAPH/WEIGHTS
given) and checks streaming and not, stop strings, seeds, logprobs, errors,
concurrency (4 clients at once get what one at a time gets) and a bounded
load at twice the slot count with 10 % malformed requests (zero crashes,
every malformed one 4xx, every good one completed, RSS flat after
warm-up).  Then a second server over tests/graphs/tiny-slow.yaml with one
slot and a queue of one checks the limits: 413 with and without
Content-Length, 429 when the queue is full, clients that disconnect
freeing the slot or their place in the queue at once, and the prefix a
slot keeps for the next prompt (and, on two slots, which slot a prompt
takes).  Ends each server with SIGTERM and requires exit
status 0 (under ASan that includes the leak check).  docs/server.md#tests.

usage: test_server.py GEMMAC [GRAPH.yaml WEIGHTS]
"""
import concurrent.futures as cf
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import socket
import threading
import time

import openai

SLOTS = 4
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, flush=True)
    return cond


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, gemmac, graph, weights, slots=SLOTS, extra=()):
        cmd = [gemmac, "serve", graph, "--weights", weights, "--port", "0",
               "-P", str(slots), "-t", "2", *extra]
        self.p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        self.log = []
        deadline = time.time() + 300
        self.port = None
        while time.time() < deadline:
            line = self.p.stderr.readline()
            if not line:
                break
            self.log.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if not self.port:
            raise SystemExit("server did not start:\n" + "".join(self.log))
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.p.stderr:
            self.log.append(line)

    def raw(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        h = {"Content-Type": "application/json", **(headers or {})}
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = "hung"
        return rc


def chat(cl, text, **kw):
    return cl.chat.completions.create(model="m", messages=[{"role": "user", "content": text}],
                                      **kw)


def stream_text(cl, text, **kw):
    out, finish, usage = "", None, None
    for ch in chat(cl, text, stream=True, stream_options={"include_usage": True}, **kw):
        if ch.usage:
            usage = ch.usage
        for c in ch.choices:
            out += c.delta.content or ""
            finish = c.finish_reason or finish
    return out, finish, usage


def test_basic(s, cl):
    st, body = s.raw("GET", "/health")
    check(st == 200 and json.loads(body)["status"] == "ok", "health")
    ms = cl.models.list()
    check(len(ms.data) == 1 and ms.data[0].id, "models")
    r = chat(cl, "Hello there", max_tokens=12, temperature=0)
    u = r.usage
    check(r.choices[0].finish_reason in ("stop", "length"), "chat finish_reason")
    check(u.total_tokens == u.prompt_tokens + u.completion_tokens, "usage sums")
    check(r.choices[0].message.role == "assistant", "chat role")
    text, finish, usage = stream_text(cl, "Hello there", max_tokens=12, temperature=0)
    check(text == r.choices[0].message.content, f"stream == non-stream: {text!r} vs "
          f"{r.choices[0].message.content!r}")
    check(finish == r.choices[0].finish_reason, "stream finish_reason")
    check(usage and usage.completion_tokens == u.completion_tokens, "stream usage")
    c = cl.completions.create(model="m", prompt="Once upon a time", max_tokens=10,
                              temperature=0)
    check(c.choices[0].finish_reason in ("stop", "length") and c.usage.prompt_tokens > 0,
          "completions")
    sc = "".join(x.choices[0].text for x in cl.completions.create(
        model="m", prompt="Once upon a time", max_tokens=10, temperature=0, stream=True)
        if x.choices)
    check(sc == c.choices[0].text, "completions stream == non-stream")
    # parts, system message, max_completion_tokens
    r2 = cl.chat.completions.create(model="m", max_completion_tokens=3, temperature=0,
                                    messages=[{"role": "system", "content": "Be brief."},
                                              {"role": "user", "content": [
                                                  {"type": "text", "text": "Hi"}]}])
    check(r2.usage.completion_tokens <= 3, "max_completion_tokens")


def test_stop(s, cl):
    def comp(seed, stream=False, **kw):
        r = cl.completions.create(model="m", prompt="Once upon a time", max_tokens=40,
                                  temperature=1.0, seed=seed, stream=stream, **kw)
        if not stream:
            return r.choices[0].text, r.choices[0].finish_reason
        parts = [(x.choices[0].text, x.choices[0].finish_reason) for x in r if x.choices]
        return "".join(t for t, _ in parts), [f for _, f in parts if f][-1]
    # A seed whose text has a stop string of two printable ASCII characters
    # in its middle.
    for seed in range(1, 50):
        base, _ = comp(seed)
        cands = [i for i in range(2, len(base) - 2)
                 if base[i:i + 2].isascii() and base[i:i + 2].isprintable()]
        if cands:
            break
    if not check(cands, f"a printable stop candidate in {base!r}"):
        return
    stop = base[cands[len(cands) // 2]:cands[len(cands) // 2] + 2]
    want = base[:base.index(stop)]
    text, fin = comp(seed, stop=[stop, "\x01zz"])
    check(text == want and fin == "stop", f"stop {stop!r}: {text!r} vs {want!r}")
    text, fin = comp(seed, stream=True, stop=stop)
    check(text == want and fin == "stop", f"stream stop {stop!r}: {text!r} vs {want!r}")


def test_seed_logprobs(s, cl):
    a = chat(cl, "Pick a word", max_tokens=16, temperature=1.0, seed=42).choices[0]
    b = chat(cl, "Pick a word", max_tokens=16, temperature=1.0, seed=42).choices[0]
    check(a.message.content == b.message.content, "same seed, same text")
    r = chat(cl, "Hi", max_tokens=5, temperature=0, logprobs=True, top_logprobs=3)
    lp = r.choices[0].logprobs
    ok = lp and len(lp.content) == r.usage.completion_tokens and all(
        len(t.top_logprobs) == 3 and t.logprob <= 0 and
        abs(t.logprob - t.top_logprobs[0].logprob) < 1e-6 for t in lp.content)
    check(ok, "logprobs (greedy: the chosen token is the top one)")
    r = chat(cl, "Hi", max_tokens=4, temperature=0, presence_penalty=1.5,
             frequency_penalty=1.0)
    check(r.choices[0].finish_reason in ("stop", "length"), "penalties")


def expect_error(fn, status, what):
    try:
        fn()
        check(False, f"{what}: no error")
    except openai.APIStatusError as e:
        body = e.body if isinstance(e.body, dict) else {}
        check(e.status_code == status and "message" in body,
              f"{what}: {e.status_code} {body}")


def test_errors(s, cl):
    expect_error(lambda: chat(cl, "x", temperature=5), 400, "temperature 5")
    expect_error(lambda: chat(cl, "x", top_p=1.5), 400, "top_p 1.5")
    expect_error(lambda: chat(cl, "x", max_tokens=0), 400, "max_tokens 0")
    expect_error(lambda: chat(cl, "x", n=2), 400, "n 2")
    expect_error(lambda: chat(cl, "x", stop=["a", "b", "c", "d", "e"]), 400, "5 stops")
    expect_error(lambda: chat(cl, "word " * 400), 400, "prompt too long")
    try:
        chat(cl, "word " * 400)
    except openai.BadRequestError as e:
        check(re.search(r"\d+ tokens .* holds \d+", str(e)), f"both numbers: {e}")
    expect_error(lambda: cl.chat.completions.create(
        model="m", messages=[{"role": "robot", "content": "x"}]), 400, "bad role")
    for body, what in [(b"{", "bad JSON"), (b'{"messages": "x"}', "messages not array"),
                       (b'{"messages":[{"role":"user","content":"\xff"}]}', "bad UTF-8"),
                       (b"[]", "not an object"),
                       (b'{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}',
                        "temperature string"),
                       (b'{"messages":[{"role":"user","content":"x"}],"max_tokens":1e99}',
                        "max_tokens 1e99")]:
        st, data = s.raw("POST", "/v1/chat/completions", body)
        ok = st == 400
        try:
            ok = ok and "message" in json.loads(data)["error"]
        except ValueError:
            ok = False
        check(ok, f"{what}: {st} {data[:200]!r}")
    st, _ = s.raw("GET", "/v1/nothing")
    check(st == 404, f"unknown path: {st}")
    st, _ = s.raw("GET", "/v1/chat/completions")
    check(st == 405, f"wrong method: {st}")
    # A body over --max-body is refused from its Content-Length, before it is read.
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as sk:
        sk.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                   b"application/json\r\nContent-Length: 2097152\r\n\r\n" + b"x" * 1024)
        head = sk.recv(4096)
    check(head.startswith(b"HTTP/1.1 413"), f"body too large: {head[:40]!r}")
    st, data = s.raw("POST", "/tokenize", b'{"content": "hello"}')
    toks = json.loads(data)["tokens"] if st == 200 else []
    st2, data2 = s.raw("POST", "/detokenize", json.dumps({"tokens": toks}).encode())
    check(st2 == 200 and json.loads(data2)["content"] == "hello", "tokenize round trip")


def metric(s, name):
    _, data = s.raw("GET", "/metrics")
    m = re.search(rf"^{name} (\S+)$", data.decode(), re.M)
    return float(m.group(1)) if m else None


SLOW_TOKENS = 1000  # tiny-slow: seconds of decoding, more than any check waits


def error_body(data, status, code):
    """True when data is an OpenAI-style error body with code."""
    try:
        e = json.loads(data)["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return e.get("code") == code and e.get("message") and \
        e.get("type") == ("rate_limit_error" if status == 429 else "invalid_request_error")


def test_body_limit(s):
    """413 from Content-Length before the body is read, and from a chunked
    body (no length) once it passes --max-body; the server goes on."""
    for chunked in (False, True):
        with socket.create_connection(("127.0.0.1", s.port), timeout=30) as sk:
            head = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    b"application/json\r\n")
            if chunked:  # 4 chunks of 1 KiB against a limit of 1 KiB, then the end
                sk.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n" +
                           (b"400\r\n" + b"x" * 1024 + b"\r\n") * 4 + b"0\r\n\r\n")
            else:
                sk.sendall(head + b"Content-Length: 4096\r\n\r\n" + b"x" * 512)
            data = b""
            while b"}}" not in data:
                more = sk.recv(4096)
                if not more:
                    break
                data += more
        st, _, body = data.partition(b"\r\n\r\n")
        check(st.startswith(b"HTTP/1.1 413") and error_body(body, 413, "request_too_large"),
              f"413, chunked={chunked}: {data[:300]!r}")
    check(s.raw("GET", "/health")[0] == 200, "alive after 413")


def stream_open(s, max_tokens):
    """A streaming completion, returned once its first text chunk came."""
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
    c.request("POST", "/v1/completions", headers={"Content-Type": "application/json"},
              body=json.dumps({"prompt": "Once", "stream": True, "max_tokens": max_tokens,
                               "temperature": 1.0, "seed": 1}))
    r = c.getresponse()
    while not r.readline().startswith(b"data: {"):
        pass
    return c, r


def token_rate(s):
    """Completion tokens per second now, from /metrics over 0.3 s."""
    t0, n0 = time.time(), metric(s, "gemmac_completion_tokens_total")
    time.sleep(0.3)
    return (metric(s, "gemmac_completion_tokens_total") - n0) / (time.time() - t0)


def wait_metric(s, name, value, limit=10):
    deadline = time.time() + limit
    while time.time() < deadline and metric(s, name) != value:
        time.sleep(0.02)
    return metric(s, name) == value


def post_raw(s, body):
    """A completion request on a socket of its own, left unread."""
    sk = socket.create_connection(("127.0.0.1", s.port), timeout=30)
    body = json.dumps(body).encode()
    sk.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
               b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return sk


def test_queue_full(s, cl):
    """One slot and a queue of one: a long stream holds the slot, a second
    request waits, a third gets 429.  The waiting client goes away: its
    place is free at once and a fourth request takes it.  The stream's
    client goes away: the fourth is served at once, not after the stream's
    max_tokens."""
    n0 = metric(s, "gemmac_completion_tokens_total")
    a, ra = stream_open(s, SLOW_TOKENS)
    b = post_raw(s, {"prompt": "Hi", "max_tokens": 1})
    check(wait_metric(s, "gemmac_queue_depth", 1), "the second request waits in the queue")
    try:
        cl.with_options(timeout=10).completions.create(model="m", prompt="x", max_tokens=1)
        check(False, "queue full: no error")
    except openai.RateLimitError as e:
        check(isinstance(e.body, dict) and e.body.get("code") == "queue_full", f"429 body {e.body}")
    st, data = s.raw("POST", "/v1/chat/completions",
                     b'{"messages":[{"role":"user","content":"x"}]}')
    check(st == 429 and error_body(data, 429, "queue_full"), f"429: {st} {data!r}")
    b.close()
    check(wait_metric(s, "gemmac_queue_depth", 0, 5),
          "a waiting client that goes away leaves the queue at once")
    res = {}

    def queued():
        res["st"], res["body"] = s.raw("POST", "/v1/completions",
                                       json.dumps({"prompt": "Hi", "max_tokens": 1}).encode())
        res["t"] = time.time()
    th = threading.Thread(target=queued)
    th.start()
    check(wait_metric(s, "gemmac_queue_depth", 1), "the fourth request waits in its place")
    rate = token_rate(s)
    left = (SLOW_TOKENS - (metric(s, "gemmac_completion_tokens_total") - n0)) / rate
    t_close = time.time()
    ra.close()
    a.close()
    th.join(60)
    took = res.get("t", float("inf")) - t_close
    check(res.get("st") == 200, f"the queued request is served: {res}")
    check(took < left / 3, f"served {took:.2f} s after the stream closed (its {left:.1f} s "
          "of decoding left were not waited for)")
    n = metric(s, "gemmac_completion_tokens_total") - n0
    check(n < SLOW_TOKENS, f"the stream stopped early: {n} tokens of {SLOW_TOKENS}")
    print(f"queue: served {took * 1e3:.0f} ms after the disconnect ({left:.1f} s were left, "
          f"{rate:.0f} tok/s)")


def test_disconnect_waiting(s):
    """A non-streaming client that goes away frees its slot too."""
    n0 = metric(s, "gemmac_completion_tokens_total")
    sk = post_raw(s, {"prompt": "Once", "max_tokens": SLOW_TOKENS, "seed": 2})
    check(wait_metric(s, "gemmac_slots_busy", 1), "the request holds the slot")
    time.sleep(0.2)
    t = time.time()
    sk.close()
    st, _ = s.raw("POST", "/v1/completions", json.dumps({"prompt": "Hi", "max_tokens": 1}).encode())
    took = time.time() - t
    n = metric(s, "gemmac_completion_tokens_total") - n0
    check(st == 200 and n < SLOW_TOKENS, f"non-streaming disconnect: {st}, {n} tokens, "
          f"{took:.2f} s")


def ids_of(s, text):
    """The prompt ids of a completion of text (with BOS)."""
    _, data = s.raw("POST", "/tokenize", json.dumps({"content": text,
                                                      "add_special": True}).encode())
    return json.loads(data)["tokens"]


def greedy(s, prompt, n):
    """A greedy completion: its text and how many prompt ids were cached."""
    _, data = s.raw("POST", "/v1/completions", json.dumps(
        {"prompt": prompt, "max_tokens": n, "temperature": 0}).encode())
    r = json.loads(data)
    return r["choices"][0]["text"], r["usage"]["prompt_tokens_details"]["cached_tokens"]


def common(u, v):
    n = 0
    while n < min(len(u), len(v)) and u[n] == v[n]:
        n += 1
    return n


MAX_BATCH = 64  # tiny-slow's steps (gemmac's default): its ring of 8 + 64 rows


def test_prefix_cache(s):
    """The one slot keeps its last prompt's KV: a prompt sharing a prefix
    with it prefills only the rest and gets the text a fresh slot gives
    (greedy); one that forgets more than MAX_BATCH ids starts over."""
    x = " ".join(f"{w}{i}" for i, w in enumerate(["alpha", "beta", "gamma", "delta"] * 12))
    a, b = x + " but first another thing", x + " and then the question"
    c = x + " and a long detour" * 20
    ia, ib, ic = ids_of(s, a), ids_of(s, b), ids_of(s, c)
    shared = common(ia, ib)  # past the ring's 8 + MAX_BATCH rows: it has wrapped
    check(shared > 8 + MAX_BATCH and len(ic) - common(ic, ib) > MAX_BATCH,
          f"prompts: {len(ia)}, {len(ib)}, {len(ic)} ids, {shared} shared")
    greedy(s, "zz " * 100, 1)  # a KV sharing only BOS with b, too long to keep
    ref, cached = greedy(s, b, 8)
    check(cached == 0, f"b after an unrelated prompt: {cached} cached")
    greedy(s, a, 8)
    p0, c0 = metric(s, "gemmac_prompt_tokens_total"), metric(s, "gemmac_prompt_tokens_cached_total")
    text, cached = greedy(s, b, 8)
    prefilled = (metric(s, "gemmac_prompt_tokens_total") - p0) - \
        (metric(s, "gemmac_prompt_tokens_cached_total") - c0)
    check(cached == shared and prefilled == len(ib) - shared,
          f"b after a: {cached} cached, {prefilled} prefilled, want {shared}, {len(ib) - shared}")
    check(text == ref, f"b after a: {text!r}, fresh {ref!r}")
    greedy(s, c, 1)
    text, cached = greedy(s, b, 8)
    check(cached == 0 and text == ref, f"b after c: {cached} cached, {text!r} vs {ref!r}")
    print(f"prefix cache: {shared} of {len(ib)} ids reused")


def test_slot_choice(s):
    """Two slots: a prompt that can keep nothing of either goes to the empty
    one, so the other keeps its prompt for a follow-up."""
    z1 = " ".join(f"red{i}" for i in range(40))
    z2 = " ".join(f"blue{i}" for i in range(40))
    check(min(len(ids_of(s, z1)), len(ids_of(s, z2))) > MAX_BATCH + 1, "prompts too short")
    greedy(s, z1, 1)
    greedy(s, z2, 1)
    _, cached = greedy(s, z1 + " and more", 1)
    check(cached >= len(ids_of(s, z1)) - 1, f"z1 kept in its slot: {cached} cached")


PROMPTS = ["The sea", "A red fox", "Numbers:", "Hello, world"]


def test_concurrency(s, cl):
    def one(i):
        return chat(cl, PROMPTS[i], max_tokens=24, temperature=0.8, seed=100 + i) \
            .choices[0].message.content
    seq = [one(i) for i in range(4)]
    greedy = [chat(cl, p, max_tokens=24, temperature=0).choices[0].message.content
              for p in PROMPTS]
    with cf.ThreadPoolExecutor(8) as ex:
        par = list(ex.map(one, range(4)))
        pg = list(ex.map(lambda p: chat(cl, p, max_tokens=24, temperature=0)
                         .choices[0].message.content, PROMPTS))
    check(seq == par, f"concurrent == sequential (seeded): {seq} vs {par}")
    check(greedy == pg, f"concurrent == sequential (greedy): {greedy} vs {pg}")


BAD = [b"{", b'{"messages": 5}', b'{"messages":[{"role":"user","content":"\xc3"}]}',
       b'{"messages":[{"role":"user","content":"x"}],"top_p":-1}',
       b'{"messages":[{"role":"user","content":"x"}],"max_tokens":"9"}',
       b'{"prompt": ["a", "b"]}', b"\x00\x01\x02"]


def load(s, cl, n, rnd):
    """n requests from 2 x SLOTS workers, about 10 % malformed."""
    def work(i):
        if rnd[i] < 0.1:
            body = BAD[i % len(BAD)]
            path = "/v1/completions" if body.startswith(b'{"prompt"') else \
                "/v1/chat/completions"
            st, _ = s.raw("POST", path, body)
            return ("bad", st)
        if i % 3 == 0:
            t, fin, _ = stream_text(cl, PROMPTS[i % 4], max_tokens=16, temperature=0.7,
                                    seed=i)
            return ("good", fin)
        r = chat(cl, PROMPTS[i % 4] + f" #{i}", max_tokens=16, temperature=0.7, seed=i)
        return ("good", r.choices[0].finish_reason)
    with cf.ThreadPoolExecutor(2 * SLOTS) as ex:
        res = list(ex.map(work, range(n)))
    bad = [st for k, st in res if k == "bad"]
    good = [f for k, f in res if k == "good"]
    check(all(400 <= st < 500 for st in bad), f"malformed answered 4xx: {bad}")
    check(all(f in ("stop", "length") for f in good), f"good ones completed: {good}")
    return len(bad), len(good)


def test_load(s, cl):
    rnd = random.Random(7)
    load(s, cl, 48, [rnd.random() for _ in range(48)])  # warm-up
    before = rss_kb(s.p.pid)
    nb = ng = 0
    for _ in range(3):
        b, g = load(s, cl, 48, [rnd.random() for _ in range(48)])
        nb, ng = nb + b, ng + g
    after = rss_kb(s.p.pid)
    slack = int(os.environ.get("GMC_SERVER_RSS_SLACK_KB", "8192"))
    check(after - before <= slack, f"RSS flat after warm-up: {before} -> {after} kB")
    check(s.p.poll() is None, "server alive after load")
    print(f"load: {ng} good and {nb} malformed requests; RSS {before} -> {after} kB")


def client(s):
    return openai.OpenAI(base_url=f"http://127.0.0.1:{s.port}/v1", api_key="none",
                         max_retries=0, timeout=120)


def run_tests(s, tests):
    """Runs each test (an exception is a failure, not a crash of the test),
    then stops the server, which must exit with status 0."""
    try:
        for name, fn in tests:
            t = time.time()
            try:
                fn()
            except Exception as e:
                check(False, f"{name}: {type(e).__name__}: {e}")
            print(f"server test {name}: {time.time() - t:.1f} s", flush=True)
    finally:
        rc = s.stop()
    check(rc == 0, f"server exit status {rc}; its log:\n" + "".join(s.log[-30:]))


def main():
    if len(sys.argv) not in (2, 4):
        raise SystemExit(__doc__)
    gemmac = sys.argv[1]
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    tmp = tempfile.mkdtemp(prefix="gmc-serve-")
    if len(sys.argv) == 4:
        graph, weights = sys.argv[2], sys.argv[3]
    else:
        graph, weights = os.path.join(src, "tests/graphs/tiny.yaml"), os.path.join(tmp, "t.gguf")
        subprocess.run([gemmac, "init", graph, "-o", weights, "--seed", "3"], check=True,
                       stderr=subprocess.DEVNULL)
    t0 = time.time()
    s = Server(gemmac, graph, weights)
    cl = client(s)
    run_tests(s, [("basic", lambda: test_basic(s, cl)), ("stop", lambda: test_stop(s, cl)),
                  ("seed+logprobs", lambda: test_seed_logprobs(s, cl)),
                  ("errors", lambda: test_errors(s, cl)),
                  ("concurrency", lambda: test_concurrency(s, cl)),
                  ("load", lambda: test_load(s, cl))])
    # The limits: one slot, a queue of one, a body limit of 1 KiB, over a
    # model slow enough that a long request holds its slot for seconds.
    slow, slow_w = os.path.join(src, "tests/graphs/tiny-slow.yaml"), os.path.join(tmp, "s.gguf")
    subprocess.run([gemmac, "init", slow, "-o", slow_w, "--seed", "3"], check=True,
                   stderr=subprocess.DEVNULL)
    s = Server(gemmac, slow, slow_w, 1, ["--queue", "1", "--max-body", "1024"])
    cl = client(s)
    run_tests(s, [("body limit", lambda: test_body_limit(s)),
                  ("queue full", lambda: test_queue_full(s, cl)),
                  ("disconnect", lambda: test_disconnect_waiting(s)),
                  ("prefix cache", lambda: test_prefix_cache(s))])
    s = Server(gemmac, slow, slow_w, 2)
    run_tests(s, [("slot choice", lambda: test_slot_choice(s))])
    # A non-loopback host without --api-key is refused.
    p = subprocess.run([gemmac, "serve", graph, "--weights", weights, "--host", "0.0.0.0"],
                       capture_output=True, text=True)
    check(p.returncode == 2 and "--api-key" in p.stderr, "non-loopback needs --api-key")
    print(f"server tests: {len(FAILS)} failed, {time.time() - t0:.1f} s")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
