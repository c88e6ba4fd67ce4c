#!/usr/bin/env python3
"""Writes a JPEG 2000 lossless copy of a folder of uncompressed grey-scale
DICOM files, as a modality or PACS that stores JPEG 2000 would send them:
each frame through OpenJPEG's own `opj_compress` (reversible 5/3 wavelet,
its defaults), encapsulated by pydicom (DICOM PS3.5 A.4), transfer syntax
1.2.840.10008.1.2.4.90. Same UIDs, same attributes.

Usage: bench/j2k_study.py IN_FOLDER OUT_FOLDER [CODESTREAM_FOLDER]
(the third keeps each frame's code stream as NAME.j2k, for opj_decompress)
"""

import os
import subprocess
import sys
import tempfile

import pydicom
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless


def convert(src, dst, scratch, keep=None):
    ds = pydicom.dcmread(src)
    if ds.SamplesPerPixel != 1 or ds.BitsAllocated != 16:
        raise SystemExit(f"{src}: only 16-bit grey-scale images are handled")
    raw = os.path.join(scratch, "frame.rawl")
    j2k = os.path.join(scratch, "frame.j2k")
    with open(raw, "wb") as f:
        f.write(ds.PixelData)
    sign = "s" if ds.PixelRepresentation == 1 else "u"
    spec = f"{ds.Columns},{ds.Rows},1,{ds.BitsStored},{sign}@1x1"
    subprocess.run(
        ["opj_compress", "-i", raw, "-o", j2k, "-F", spec],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with open(j2k, "rb") as f:
        code_stream = f.read()
    if keep:
        name = os.path.splitext(os.path.basename(dst))[0] + ".j2k"
        with open(os.path.join(keep, name), "wb") as f:
            f.write(code_stream)
    ds.PixelData = encapsulate([code_stream])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.save_as(dst, enforce_file_format=True)


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    src_dir, dst_dir = sys.argv[1], sys.argv[2]
    keep = sys.argv[3] if len(sys.argv) == 4 else None
    os.makedirs(dst_dir, exist_ok=True)
    if keep:
        os.makedirs(keep, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for name in sorted(os.listdir(src_dir)):
            convert(os.path.join(src_dir, name), os.path.join(dst_dir, name), scratch, keep)


if __name__ == "__main__":
    main()
