#!/usr/bin/env python3
"""tools/gen_ident.py - prints the identifier table that lfm2.h's tool-call parser
(lfm2_tool_calls_parse, the >>chat section) uses for the non-ASCII characters of names.

Usage: python3 tools/gen_ident.py > /tmp/ident.c   then paste the output over the table in
lfm2.h (between the `>>ident-table` markers). The build never runs this script. The table
follows the Unicode version of this Python's unicodedata (printed in the output): names are
accepted exactly as that Python accepts them, minus the ones it would rewrite (below).
python3 tools/gen_ident.py --check   also verifies the claim below by brute force (a minute).

Python reads a name as XID_Start (or '_') then XID_Continue characters (str.isidentifier: c
for a first character, 'a' + c for a later one), then NFKC-normalizes it (f(\\ufb01=1) is
f(fi=1)). lfm2.h compares and prints names as written, so it accepts a non-ASCII character only
when that makes the whole name NFKC-stable: the character is XID_Start (first) / XID_Continue
(later), NFKC(c) == c and its canonical combining class is 0, and it does not compose with the
character before it. With combining class 0 everywhere, a name of such characters is
NFKC-stable exactly when no two neighbours compose (NFKC(ab) != ab): composition attaches a
starter only to the starter just before it. The pairs that compose are Hangul (L + V,
LV + T, done by arithmetic in lfm2.h) and the few listed in lfm2__ident_pairs.

Output: lfm2__ident_ranges, a sorted array of non-overlapping ranges {first << 1 | start, last}
(start 1: XID_Start and accepted anywhere, 0: XID_Continue only, accepted after the first
character), merged; and lfm2__ident_pairs {first, second}: accepted neighbours that compose."""
import sys
import unicodedata as ud

from gen_unicode import MAXCP, c_rows, ranges_of  # (tools/, beside this script)

NFKC = lambda s: ud.normalize("NFKC", s)
NFC = lambda s: ud.normalize("NFC", s)


def classify():
    cls = bytearray(MAXCP)  # 0 refused, 1 start, 2 continue only
    for cp in range(0x80, MAXCP):
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp)
        if not ("a" + c).isidentifier() or NFKC(c) != c or ud.combining(c) != 0:
            continue
        cls[cp] = 1 if c.isidentifier() else 2
    return cls


def hangul_pair(a, b):
    if 0x1100 <= a <= 0x1112 and 0x1161 <= b <= 0x1175:
        return True
    return 0xAC00 <= a <= 0xD7A3 and (a - 0xAC00) % 28 == 0 and 0x11A8 <= b <= 0x11C2


def pairs_of(cls):
    """Canonical primary composites x = a b with b of combining class 0 (those are what can
    join two accepted characters), Hangul aside."""
    out = []
    for x in range(MAXCP):
        if 0xD800 <= x < 0xE000:
            continue
        d = ud.decomposition(chr(x))
        if not d or d.startswith("<"):
            continue
        p = d.split()
        if len(p) != 2:
            continue
        a, b = int(p[0], 16), int(p[1], 16)
        if ud.combining(chr(b)) != 0 or NFC(chr(a) + chr(b)) != chr(x):
            continue
        assert a >= 0x80 and cls[a] and cls[b], "pair %04X %04X: not two accepted characters" % (a, b)
        out.append((a, b))
    return sorted(out)


def check(cls, pairs):
    acc = [cp for cp in range(0x80, MAXCP) if cls[cp]] + [ord(c) for c in "_aZ09"]
    pset = set(pairs)
    seconds = sorted({b for _, b in pairs} | set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3)))
    # no accepted character other than a pair's second one decomposes to start with one
    for cp in acc:
        d = ud.normalize("NFD", chr(cp))
        assert not (ord(d[0]) in seconds and len(d) > 1), "%04X starts with a second" % cp
    bad = 0
    for b in seconds:
        for a in acc:
            s = chr(a) + chr(b)
            if (NFKC(s) != s) != ((a, b) in pset or hangul_pair(a, b)):
                bad += 1
    # pairs of accepted characters are stable unless listed (a sample of every pair with a
    # second character from the same blocks, and random others)
    import random
    rnd = random.Random(1)
    for _ in range(2000000):
        a, b = rnd.choice(acc), rnd.choice(acc)
        s = chr(a) + chr(b)
        if (NFKC(s) != s) != ((a, b) in pset or hangul_pair(a, b)):
            bad += 1
    near = [cp for cp in acc if 0x900 <= cp < 0x1200 or 0x1B00 <= cp < 0x1B80 or 0x11000 <= cp < 0x11A00 or 0xAC00 <= cp < 0xAD00]
    for _ in range(500000):  # runs of characters from the composing scripts: pairs decide
        s = "".join(chr(rnd.choice(near)) for _ in range(rnd.randint(2, 6)))
        want = all(not ((ord(x), ord(y)) in pset or hangul_pair(ord(x), ord(y))) for x, y in zip(s, s[1:]))
        if (NFKC(s) == s) != want:
            bad += 1
    print("check: %d mismatches (%d second characters x %d accepted, 2e6 random pairs, 5e5 runs)" % (bad, len(seconds), len(acc)),
          file=sys.stderr)
    return bad


def main():
    cls = classify()
    ranges = ranges_of(cls)
    pairs = pairs_of(cls)
    if "--check" in sys.argv[1:]:
        sys.exit(1 if check(cls, pairs) else 0)
    out = []
    out.append("/* >>ident-table: generated by tools/gen_ident.py from Python %d.%d's unicodedata, Unicode %s. */"
               % (sys.version_info[0], sys.version_info[1], ud.unidata_version))
    out.append("/* %d ranges {first << 1 | start, last} of the non-ASCII characters a name may hold (start 1:"
               % len(ranges))
    out.append("   anywhere, 0: not first): XID_Continue, NFKC-stable, combining class 0 */")
    out.append("static const uint32_t lfm2__ident_ranges[%d][2] = {" % len(ranges))
    out += c_rows(["{0x%X,0x%X}" % ((lo << 1) | (1 if c == 1 else 0), hi) for lo, hi, c in ranges])
    out.append("};")
    out.append("/* %d neighbours {first, second} that compose (NFKC), Hangul aside */" % len(pairs))
    out.append("static const uint32_t lfm2__ident_pairs[%d][2] = {" % len(pairs))
    out += c_rows(["{0x%X,0x%X}" % p for p in pairs])
    out.append("};")
    out.append("/* <<ident-table */")
    print("\n".join(out))


main()
