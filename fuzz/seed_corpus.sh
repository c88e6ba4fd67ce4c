#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the sample files in fixtures/samples and
# from PDUs and command sets crafted as peers send them. The corpora grow
# while fuzzing and are not committed.
#
#   fuzz/seed_corpus.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
samples="$here/../fixtures/samples"
corpus="$here/corpus"
mkdir -p "$corpus/pdu" "$corpus/command" "$corpus/inspect"

# A sample deflated by DCMTK (PS3.5 A.5): none of the samples is.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
if command -v dcmconv >/dev/null; then
    dcmconv +td "$samples/CT_small.dcm" "$scratch/CT_small_deflated.dcm"
fi

python3 - "$samples" "$scratch" "$corpus" <<'PY'
import os, struct, sys

samples, scratch, corpus = sys.argv[1:4]
# The inspect target's first byte picks the transfer syntax, in the order of
# TRANSFER_SYNTAXES in fuzz_targets/inspect.rs.
selectors = {
    "1.2.840.10008.1.2": 0,
    "1.2.840.10008.1.2.1": 1,
    "1.2.840.10008.1.2.2": 2,
    "1.2.840.10008.1.2.1.99": 3,
    "1.2.840.10008.1.2.5": 5,
}

def write(target, name, data):
    with open(os.path.join(corpus, target, name), "wb") as f:
        f.write(data)

def data_set(path):
    """The transfer syntax and data set of a Part 10 file (PS3.10 7.1)."""
    raw = open(path, "rb").read()
    assert raw[128:132] == b"DICM", path
    # (0002,0000) UL, explicit VR LE: tag 4, VR 2, length 2, value 4.
    group_length = struct.unpack_from("<I", raw, 140)[0]
    start = 144 + group_length
    at, ts = 144, None
    while at < start:
        group, element = struct.unpack_from("<HH", raw, at)
        vr = raw[at + 4:at + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC", b"UR"):
            length = struct.unpack_from("<I", raw, at + 8)[0]
            value = at + 12
        else:
            length = struct.unpack_from("<H", raw, at + 6)[0]
            value = at + 8
        if (group, element) == (2, 0x10):
            ts = raw[value:value + length].rstrip(b"\0 ").decode()
        at = value + length
    return ts, raw[start:]

files = [os.path.join(samples, f) for f in sorted(os.listdir(samples)) if f.endswith(".dcm")]
files += [os.path.join(scratch, f) for f in os.listdir(scratch)]
for path in files:
    ts, body = data_set(path)
    # Encapsulated syntaxes other than RLE are walked as JPEG baseline is.
    selector = selectors.get(ts, 4)
    write("inspect", os.path.basename(path), bytes([selector]) + body)

def element(tag_element, value):
    """An implicit VR LE command element (PS3.7 6.3.1)."""
    return struct.pack("<HHI", 0, tag_element, len(value)) + value

def command(*elements):
    rest = b"".join(elements)
    return element(0x0000, struct.pack("<I", len(rest))) + rest

def uid(text):
    raw = text.encode()
    return raw + b"\0" * (len(raw) % 2)

us = lambda n: struct.pack("<H", n)
echo_rq = command(element(0x0002, uid("1.2.840.10008.1.1")), element(0x0100, us(0x0030)),
                  element(0x0110, us(1)), element(0x0800, us(0x0101)))
store_rq = command(element(0x0002, uid("1.2.840.10008.5.1.4.1.1.2")), element(0x0100, us(0x0001)),
                   element(0x0110, us(7)), element(0x0700, us(0)), element(0x0800, us(0)),
                   element(0x1000, uid("1.2.826.0.1.3680043.8.498.1")))
store_rsp = command(element(0x0002, uid("1.2.840.10008.5.1.4.1.1.2")), element(0x0100, us(0x8001)),
                    element(0x0120, us(7)), element(0x0800, us(0x0101)), element(0x0900, us(0xA700)),
                    element(0x0902, b"data set over the limit "),
                    element(0x1000, uid("1.2.826.0.1.3680043.8.498.1")))
for name, data in [("echo_rq", echo_rq), ("store_rq", store_rq), ("store_rsp", store_rsp)]:
    write("command", name, data)

def pdu(pdu_type, body):
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body

def item(item_type, body):
    return struct.pack(">BBH", item_type, 0, len(body)) + body

def associate(pdu_type, contexts):
    body = struct.pack(">HH", 1, 0) + b"TELERAD".ljust(16) + b"SITE_A".ljust(16) + bytes(32)
    body += item(0x10, b"1.2.840.10008.3.1.1.1")
    body += contexts
    body += item(0x50, item(0x51, struct.pack(">I", 16384))
                 + item(0x52, b"1.2.826.0.1.3680043.8.498")
                 + item(0x55, b"TELERAD_FUZZ")
                 + item(0x54, struct.pack(">H", 25) + b"1.2.840.10008.5.1.4.1.1.2" + b"\1\0")
                 + item(0x56, struct.pack(">H", 25) + b"1.2.840.10008.5.1.4.1.1.2" + b"\1")
                 + item(0x58, b"\1\0" + struct.pack(">H", 4) + b"user" + struct.pack(">H", 0)))
    return pdu(pdu_type, body)

proposed = item(0x20, bytes([1, 0, 0, 0]) + item(0x30, b"1.2.840.10008.5.1.4.1.1.2")
                + item(0x40, b"1.2.840.10008.1.2.1") + item(0x40, b"1.2.840.10008.1.2"))
accepted = item(0x21, bytes([1, 0, 0, 0]) + item(0x40, b"1.2.840.10008.1.2.1"))

def pdv(context, control, data):
    return struct.pack(">IBB", len(data) + 2, context, control) + data

seeds = {
    "associate_rq": associate(0x01, proposed),
    "associate_ac": associate(0x02, accepted),
    "associate_rj": pdu(0x03, bytes([0, 2, 3, 2])),
    "pdata_command": pdu(0x04, pdv(1, 3, store_rq)),
    "pdata_fragments": pdu(0x04, pdv(1, 1, echo_rq[:10]) + pdv(1, 3, echo_rq[10:])
                           + pdv(1, 0, bytes(64)) + pdv(1, 2, b"")),
    "release_rq": pdu(0x05, bytes(4)),
    "release_rp": pdu(0x06, bytes(4)),
    "abort": pdu(0x07, bytes([0, 0, 2, 1])),
}
for name, data in seeds.items():
    write("pdu", name, data)
PY
for target in pdu command inspect; do
    echo "$target: $(ls "$corpus/$target" | wc -l) seeds"
done
