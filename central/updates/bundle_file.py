"""The layout of a RAUC bundle in verity format, read without trusting any of it yet.

A bundle file is, from its start::

    squashfs (the images and the manifest)  |  dm-verity hash tree  |  CMS signature (DER)  |  size of the CMS (8 bytes, big-endian)

The CMS (SignedData) carries the manifest inside it; the manifest names the hash tree's root hash,
salt and size (``[bundle] verity-*``), so the signature covers every byte before it through the tree.
Nothing here checks a signature or a hash: see central/updates/checks.py.
"""
from __future__ import annotations

import configparser
import datetime as dt
import os
import re
from dataclasses import dataclass

from protocol.errors import AmtsklingelError
from protocol.updates import UpdateFault

SIZE_TRAILER = 8
MAX_SIGNATURE = 64 * 1024  # RAUC's own default limit (max-bundle-signature-size)
BLOCK = 4096               # squashfs and hash tree are padded to dm-verity's block size
VERSION_RE = re.compile(r"^[A-Za-z0-9._+~-]{1,64}$")  # protocol.fleet.Version
SIGNING_TIME_OID = bytes.fromhex("06092a864886f70d010905")  # pkcs9 signingTime (1.2.840.113549.1.9.5)


class BundleRefused(AmtsklingelError, ValueError):
    """The file is not a bundle central may offer; ``fault`` is the update fault a kiosk would report,
    the message says why, for the person who uploaded it."""

    def __init__(self, fault: UpdateFault, message: str):
        super().__init__(message)
        self.fault: UpdateFault = fault


class MalformedDer(AmtsklingelError, ValueError):
    """The signature's DER structure is not what a CMS from ``rauc bundle`` looks like."""


NOT_A_BUNDLE = ("not a RAUC bundle, or cut short: a bundle ends with its signature and the signature's size "
                "(make it with ./build.sh bundle; if it was copied, copy it again)")


@dataclass(frozen=True)
class Layout:
    size: int              # of the whole file
    signature_offset: int  # where the CMS starts: squashfs and hash tree lie before it
    signature: bytes       # the CMS, DER


def read_layout(fd: int) -> Layout:
    """Find the signature at the end of the open bundle ``fd``."""
    size = os.fstat(fd).st_size
    if size < SIZE_TRAILER + 2 * BLOCK:
        raise BundleRefused("bundle_corrupt", ("the file is empty; " if size == 0 else "the file is too small to be "
                                               "a bundle; ") + NOT_A_BUNDLE)
    signature_size = int.from_bytes(os.pread(fd, SIZE_TRAILER, size - SIZE_TRAILER), "big")
    if not 0 < signature_size <= min(MAX_SIGNATURE, size - SIZE_TRAILER - 2 * BLOCK):
        raise BundleRefused("bundle_corrupt", NOT_A_BUNDLE)
    offset = size - SIZE_TRAILER - signature_size
    signature = os.pread(fd, signature_size, offset)
    try:
        tag, start, end = _tlv(signature, 0)
    except ValueError:
        tag, end = None, -1
    if tag != 0x30 or end != len(signature):  # the CMS is one DER SEQUENCE filling exactly its space
        raise BundleRefused("bundle_corrupt", NOT_A_BUNDLE)
    return Layout(size, offset, signature)


# -- the signing time, from the CMS's signed attributes --------------------------------------
# RAUC on the unit (use-bundle-signing-time=true) checks the certificates as of this time, so a
# unit without a clock or a certificate expired since never locks a unit out; central does the same.

def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise MalformedDer("DER element cut short")
    tag, first = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise MalformedDer("DER high tag numbers are not used in a CMS")
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise MalformedDer("DER length not definite or out of range")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise MalformedDer("DER element longer than its container")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out, pos = [], start
    while pos < end:
        tag, vstart, vend = _tlv(data, pos)
        if vend > end:
            raise MalformedDer("DER element longer than its container")
        out.append((tag, vstart, vend))
        pos = vend
    return out


def _signed_data(cms: bytes) -> list[tuple[int, int, int]]:
    """The elements of the CMS's SignedData: ContentInfo { contentType, [0] SignedData { version,
    digestAlgorithms, encapContentInfo, [0] certificates?, [1] crls?, signerInfos } }."""
    _, start, end = _tlv(cms, 0)
    explicit = next(c for c in _children(cms, start, end) if c[0] == 0xA0)
    _, sd_start, sd_end = _tlv(cms, explicit[1])
    return _children(cms, sd_start, sd_end)


def is_detached(cms: bytes) -> bool:
    """Whether the CMS signs content outside itself (RAUC's plain format) instead of carrying the
    manifest (verity format). False also when the CMS cannot be read: OpenSSL then says why."""
    try:
        encapsulated = next(c for c in _signed_data(cms) if c[0] == 0x30)
        return not any(c[0] == 0xA0 for c in _children(cms, encapsulated[1], encapsulated[2]))
    except (ValueError, StopIteration):
        return False


def signing_time(cms: bytes) -> dt.datetime | None:
    """The signer's signingTime attribute (UTC), None if the CMS has none (or not exactly one signer):
    SignerInfo { version, sid, digestAlgorithm, [0] signedAttrs { Attribute { type, SET { value } } } }."""
    try:
        signer_infos = [c for c in _signed_data(cms) if c[0] == 0x31][-1]
        infos = _children(cms, signer_infos[1], signer_infos[2])
        if len(infos) != 1:
            return None  # RAUC refuses several signers with use-bundle-signing-time, too
        attrs = next((c for c in _children(cms, infos[0][1], infos[0][2]) if c[0] == 0xA0), None)
        if attrs is None:
            return None
        for _tag, a_start, a_end in _children(cms, attrs[1], attrs[2]):
            parts = _children(cms, a_start, a_end)
            if len(parts) == 2 and cms[a_start:parts[0][2]] == SIGNING_TIME_OID:
                values = _children(cms, parts[1][1], parts[1][2])
                return _time(values[0][0], cms[values[0][1]:values[0][2]]) if len(values) == 1 else None
    except (ValueError, StopIteration, IndexError):
        return None
    return None


def _time(tag: int, raw: bytes) -> dt.datetime:
    text = raw.decode("ascii")
    if tag == 0x17:  # UTCTime, YYMMDDHHMMSSZ; years 50-99 are 19xx (RFC 5280)
        at = dt.datetime.strptime(text, "%y%m%d%H%M%SZ")
        if at.year >= 2050:
            at = at.replace(year=at.year - 100)
    elif tag == 0x18:  # GeneralizedTime, YYYYMMDDHHMMSSZ
        at = dt.datetime.strptime(text, "%Y%m%d%H%M%SZ")
    else:
        raise MalformedDer("signingTime is neither UTCTime nor GeneralizedTime")
    return at.replace(tzinfo=dt.UTC)


# -- the manifest --------------------------------------------------------------------------

@dataclass(frozen=True)
class Manifest:
    compatible: str
    version: str
    verity_hash: bytes   # root hash of the hash tree
    verity_salt: bytes
    verity_size: int     # bytes of hash tree between squashfs and signature
    images: tuple[str, ...]  # slot classes, e.g. ("rootfs",)


def parse_manifest(text: bytes) -> Manifest:
    """The signed manifest (INI). Raises BundleRefused for a bundle central cannot offer."""
    ini = configparser.ConfigParser(interpolation=None, strict=True)
    try:
        ini.read_string(text.decode("utf-8"))
        compatible = ini.get("update", "compatible", fallback="")
        version = ini.get("update", "version", fallback="")
        bundle_format = ini.get("bundle", "format", fallback="plain")
        if bundle_format != "verity":
            raise BundleRefused("incompatible", f"the bundle's format is {bundle_format!r}; units install only "
                                "'verity' bundles (set format=verity in the manifest's [bundle] section)")
        verity_hash = bytes.fromhex(ini.get("bundle", "verity-hash"))
        verity_salt = bytes.fromhex(ini.get("bundle", "verity-salt"))
        verity_size = int(ini.get("bundle", "verity-size"))
    except (UnicodeDecodeError, configparser.Error, ValueError) as exc:
        if isinstance(exc, BundleRefused):
            raise
        raise BundleRefused("bundle_corrupt", f"the bundle's manifest cannot be read ({exc})") from None
    if len(verity_hash) != 32 or len(verity_salt) != 32 or verity_size <= 0 or verity_size % BLOCK:
        raise BundleRefused("bundle_corrupt", "the bundle's manifest names no usable dm-verity hash tree")
    if not VERSION_RE.match(version):
        raise BundleRefused("incompatible", f"the bundle's version {version[:80]!r} is not a software version "
                            "(letters, digits and . _ + ~ -, at most 64): the kiosks could not report it")
    images = tuple(s.removeprefix("image.").split("/", 1)[0] for s in ini.sections() if s.startswith("image."))
    return Manifest(compatible, version, verity_hash, verity_salt, verity_size, images)
