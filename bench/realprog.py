"""Pressure benchmark: a real program as the interactive stand-in. A Python interpreter runs, every
PERIOD, one "round" of work of the kind an interactive program does on each action: Unicode
look-ups and case mapping (unicodedata and the str type's tables are static const arrays in the
interpreter's read-only data), text codecs (the CJK codec modules are mostly mapping tables in
.rodata), regular expressions, JSON, compression and hashing (C extension modules and the
libraries they load). Its working set is code and read-only data of the interpreter and its
libraries, as for any real program, not code alone.

    python3 realprog.py [-p PERIOD_MS] [-d DURATION_S] [-w WARM_ROUNDS] [--probe]

Prints the same lines as bench/standin.c: one per round,

    r START_NS LATENCY_NS MAJFLT MINFLT      (CLOCK_MONOTONIC; faults during the round)

and "ready" after WARM_ROUNDS rounds. --probe runs one round and prints the files the process
maps, one per line ("map PATH"), for the bench to copy and evict. It must not write any file:
page cache it dirtied would be charged to the cgroup under test.
"""
import argparse
import binascii
import bz2
import codecs
import datetime
import decimal
import hashlib
import json
import lzma
import re
import resource
import signal
import struct
import sys
import time
import unicodedata
import zlib

# Code points spread over the planes that have assigned characters: each round looks up names,
# categories and decompositions across the whole of unicodedata's tables, not one hot page.
CODE_POINTS = [chr(c) for c in range(0x20, 0x30000, 97)
               if not 0xD800 <= c < 0xE000 and unicodedata.category(chr(c)) != "Cn"]

TEXT = ("Grüße aus Köln — Ελληνικά, русский текст, 日本語のテキスト, 中文文本, 한국어 텍스트, "
        "עברית, العربية, हिन्दी, ﬁ ligatures, Ⅻ numerals, ½ fractions, ｆｕｌｌｗｉｄｔｈ. ") * 4
JA = "日本語の文章を符号化します。カタカナとひらがな、漢字。" * 8
ZH = "中文文本编码测试，简体字与繁體字。" * 8
KO = "한국어 텍스트 인코딩 시험입니다." * 8
RECORD = {"name": "prelockd", "values": list(range(40)), "nested": {"text": TEXT[:200],
          "flags": [True, False, None], "ratio": 0.125}}
WORDS = re.compile(r"\b\w+\b", re.UNICODE)
NUMBERS = re.compile(r"(\d+)[.,](\d+)|[Ⅰ-ↂ]+")
BLOB = (TEXT * 8).encode()


def one_round():
    acc = 0
    for ch in CODE_POINTS:
        acc += len(unicodedata.name(ch, "")) + len(unicodedata.decomposition(ch))
        acc += unicodedata.category(ch) == "Lu"
        acc += unicodedata.east_asian_width(ch) == "W"
    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        acc += len(unicodedata.normalize(form, TEXT))
    acc += len(TEXT.upper()) + len(TEXT.casefold()) + sum(c.isalnum() for c in TEXT)
    for text, enc in ((JA, "shift_jis"), (JA, "euc_jp"), (JA, "iso2022_jp"), (ZH, "gb18030"),
                      (ZH, "big5"), (KO, "euc_kr"), (TEXT, "cp1252"), (TEXT, "utf-16")):
        acc += len(codecs.decode(codecs.encode(text, enc, "replace"), enc, "replace"))
    acc += len(WORDS.findall(TEXT)) + len(NUMBERS.findall(TEXT + "3.14 2,71 Ⅻ"))
    acc += len(json.loads(json.dumps(RECORD, ensure_ascii=False))["values"])
    acc += len(zlib.decompress(zlib.compress(BLOB, 6))) + zlib.crc32(BLOB)
    # Small settings: an interactive program does not allocate tens of MiB per action.
    acc += len(bz2.compress(BLOB[:4096], 1)) + len(lzma.compress(BLOB[:4096], preset=0))
    acc += binascii.crc_hqx(BLOB[:4096], 0)
    for algo in ("sha256", "sha512", "sha3_256", "blake2b", "md5"):
        acc += hashlib.new(algo, BLOB).digest()[0]
    with decimal.localcontext() as ctx:
        ctx.prec = 50
        acc += int(decimal.Decimal(2).sqrt() * 10 ** 40) % 1000
    acc += len(struct.pack("<40q", *range(40)))
    acc += datetime.datetime(2026, 11, 30).isocalendar()[1]
    return acc


def mapped_files():
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].startswith("/"):
                path = parts[5].rstrip("\n")
                if path not in out:
                    out.append(path)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-p", type=int, default=20, dest="period_ms")
    ap.add_argument("-d", type=int, default=60, dest="duration_s")
    ap.add_argument("-w", type=int, default=5, dest="warm")
    ap.add_argument("--probe", action="store_true")
    a = ap.parse_args()
    if a.probe:
        one_round()
        for path in mapped_files():
            print("map", path)
        return 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    out = sys.stdout
    period_ns = a.period_ms * 1000000
    max_rounds = a.duration_s * 1000 // a.period_ms + 1
    ru = resource.getrusage(resource.RUSAGE_SELF)
    maj0, min0 = ru.ru_majflt, ru.ru_minflt
    nxt = time.monotonic_ns()
    n = 0
    while not stop and n < max_rounds:
        t0 = time.monotonic_ns()
        one_round()
        t1 = time.monotonic_ns()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        out.write(f"r {t0} {t1 - t0} {ru.ru_majflt - maj0} {ru.ru_minflt - min0}\n")
        maj0, min0 = ru.ru_majflt, ru.ru_minflt
        n += 1
        if n == a.warm:
            out.write("ready\n")
        out.flush()
        # Like the synthetic stand-in: no burst of catch-up rounds after a late one.
        nxt = max(nxt + period_ns, t1)
        time.sleep(max(0, nxt - time.monotonic_ns()) / 1e9)
    return 0


if __name__ == "__main__":
    sys.exit(main())
