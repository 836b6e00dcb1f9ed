#!/usr/bin/env bash
# Renders a grpo report in headless Chromium and checks that the charts are
# drawn: the screenshot must hold coloured chart lines, not an empty page.
# Skipped (exit 77) when Chromium is not installed (Debian package chromium).
set -u
grpo=${GRPO_BUILD_DIR:-build}/cli/grpo
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  echo "chromium not installed: skipped"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for s in $(seq 1 30); do
  printf '{"step": %d, "data": {"reward": %s, "rewards/math/mean": %s, "grad_norm": %s, "eval/arithmetic/accuracy": %s}}\n' \
    "$s" "0.$((s * 3))" "0.$((s * 3))" "1.$s" "0.$((20 + s))"
done >"$tmp/metrics.jsonl"
"$grpo" report "$tmp" >/dev/null || { echo "grpo report failed"; exit 1; }
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,1800 \
  --screenshot="$tmp/shot.png" "file://$tmp/report.html" >/dev/null 2>&1
if [ ! -s "$tmp/shot.png" ]; then echo "no screenshot"; echo "0 passed, 1 failed"; exit 1; fi
# count pixels of the first chart colour (#1f77b4) in the raw RGB dump
python3 - "$tmp/shot.png" <<'PY' 2>/dev/null && { echo "1 passed, 0 failed"; exit 0; }
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
w, h, depth, ctype = struct.unpack(">IIBB", data[16:26])
chunks, i = [], 8
while i < len(data):
    n = struct.unpack(">I", data[i:i + 4])[0]
    if data[i + 4:i + 8] == b"IDAT":
        chunks.append(data[i + 8:i + 8 + n])
    i += 12 + n
raw = zlib.decompress(b"".join(chunks))
bpp = {2: 3, 6: 4}[ctype]
stride, prev, hits, pos = w * bpp, bytearray(w * bpp), 0, 0
for _ in range(h):
    f, line = raw[pos], bytearray(raw[pos + 1:pos + 1 + stride])
    pos += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        r, g, bl = line[x], line[x + 1], line[x + 2]
        hits += abs(r - 0x1f) < 40 and abs(g - 0x77) < 40 and abs(bl - 0xb4) < 40
    prev = line
print(f"{w}x{h} screenshot, {hits} chart-blue pixels")
sys.exit(0 if hits > 200 else 1)
PY
# without python, a non-trivial PNG is the best evidence available
size=$(stat -c %s "$tmp/shot.png")
if [ "$size" -gt 20000 ]; then echo "screenshot $size bytes"; echo "1 passed, 0 failed"; exit 0; fi
echo "screenshot too small ($size bytes): charts not drawn?"
echo "0 passed, 1 failed"
exit 1
