"""Decoding functions the resolver runs at check time: ``base64``, ``binascii``,
``bytes.fromhex`` and the text-to-text ``codecs`` (rot13, hex...).

A name decoded from a constant is a constant (``getattr(os, b64decode("c3lzdGVt")
.decode())`` is ``os.system``); decoded from anything else it is a
:class:`~proctor.checks.values.Computed` string, which checks treat as a name written to
be unreadable. Decompressors are never run on input at check time.

Standard library only; the decoding modules are imported on first use.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any, Final

from proctor.checks.values import ABSENT, CallArgs, Computed, Const, Sentinel, const_value

__all__ = ["DECODERS", "decoder"]

_MISSING: Final = Sentinel("MISSING")
_MAX_FOLD = 10_000

# Functions that decode a string into another: folded when the input is a constant (so
# `getattr(os, b64decode("c3lzdGVt").decode())` is `os.system`), a Computed otherwise.
DECODERS: dict[str, str] = {
    "base64.b64decode": "b64decode",
    "base64.standard_b64decode": "standard_b64decode",
    "base64.urlsafe_b64decode": "urlsafe_b64decode",
    "base64.b32decode": "b32decode",
    "base64.b32hexdecode": "b32hexdecode",
    "base64.b16decode": "b16decode",
    "base64.a85decode": "a85decode",
    "base64.b85decode": "b85decode",
    "base64.decodebytes": "decodebytes",
    "binascii.unhexlify": "unhexlify",
    "binascii.a2b_hex": "a2b_hex",
    "binascii.a2b_base64": "a2b_base64",
    "codecs.decode": "decode",
    "codecs.encode": "encode",
    "builtins.bytes.fromhex": "fromhex",
    "zlib.decompress": "decompress",
    "bz2.decompress": "decompress",
    "lzma.decompress": "decompress",
    "gzip.decompress": "decompress",
}
# codecs that only rearrange text or bytes: safe to run on a constant at check time.
_PURE_CODECS = frozenset(
    {
        "rot13",
        "rot_13",
        "hex",
        "hex_codec",
        "base64",
        "base64_codec",
        "base_64",
        "utf-8",
        "utf8",
        "ascii",
        "latin-1",
        "latin1",
        "utf-16",
        "utf-32",
        "unicode_escape",
        "raw_unicode_escape",
        "uu",
        "uu_codec",
        "quopri",
        "quopri_codec",
    }
)


def decoder(name: str) -> Callable[[Any, ast.Call, CallArgs], Any]:
    """The special for decoder ``name``: folds a constant input, else Computed."""

    def decode(resolver: Any, node: ast.Call, args: CallArgs) -> Any:
        inner = const_value(args.get(0, None), _MISSING)
        if inner is not _MISSING and not args.star:
            extra = args.get(1, "encoding")
            out = _decode_const(name, inner, extra if extra is ABSENT else const_value(extra))
            if out is not _MISSING:
                return Const(out)
        return Computed("decoded")

    return decode


def _decode_const(name: str, value: object, extra: object) -> object:
    """Run a decoder of :data:`DECODERS` on a constant; ``_MISSING`` when it cannot be."""
    if type(value) not in (str, bytes) or len(value) > _MAX_FOLD:  # type: ignore[arg-type]
        return _MISSING
    try:
        if name.startswith("base64."):
            import base64

            out: object = getattr(base64, DECODERS[name])(value)
        elif name.startswith("binascii."):
            import binascii

            out = getattr(binascii, DECODERS[name])(value)
        elif name == "builtins.bytes.fromhex":
            out = bytes.fromhex(value) if type(value) is str else _MISSING
        elif name in ("codecs.decode", "codecs.encode"):
            encoding = "utf-8" if extra is ABSENT else extra
            if type(encoding) is not str or encoding.lower() not in _PURE_CODECS:
                return _MISSING
            import codecs

            convert: Callable[[Any, str], object] = (
                codecs.decode if name == "codecs.decode" else codecs.encode
            )
            out = convert(value, encoding)
        else:
            return _MISSING  # decompressors: never run on input at check time
    except (ValueError, TypeError, LookupError):
        return _MISSING
    if type(out) in (str, bytes) and len(out) <= _MAX_FOLD:  # type: ignore[arg-type]
        return out
    return _MISSING
