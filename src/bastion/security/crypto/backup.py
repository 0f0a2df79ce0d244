"""The encrypted backup format: a compressed snapshot in authenticated AES-256-GCM chunks.

::

    "BASTION-BACKUP/1\\n"
    u32 header length ‖ header (JSON: id, time, source, key version, chunk size, zlib,
                                and, with Vault, the Transit-wrapped file key)
    header seal: nonce ‖ tag of AES-GCM over nothing, AAD = "header" ‖ header
    chunks:      u32 length ‖ nonce ‖ ciphertext ‖ tag,
                 AAD = SHA-256(header) ‖ u64 index ‖ final flag

The file key is HKDF(backup key, backup id): a backup key separate from every data key,
and a different key per file. With Vault the backup key is a fresh Transit data key per
file whose wrapped form is in the header, so only Vault can give it back.

Changing the header breaks its seal and every chunk's AAD; swapping or dropping chunks
breaks the index; cutting the file loses the chunk flagged final; any byte flipped fails
its tag. ``read`` yields plaintext only as it is
verified and raises ``BackupRefused`` at the first problem, so a restore writes to a
temporary place and moves it into position only after the whole stream verified.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from bastion.security.crypto import aead

MAGIC = b"BASTION-BACKUP/1\n"
_U32 = struct.Struct(">I")
_MAX_HEADER = 64 * 1024


class BackupRefused(Exception):
    """The backup is tampered with, truncated, reordered or sealed under another key."""


@dataclass(frozen=True, slots=True)
class BackupHeader:
    """What a backup says about itself (authenticated, not secret)."""

    backup_id: str
    created_at: str
    source: str
    key_version: int
    chunk_bytes: int
    wrapped_key: str | None = None

    def encode(self) -> bytes:
        """The canonical header bytes."""
        fields: dict[str, str | int] = {
            "id": self.backup_id,
            "created_at": self.created_at,
            "source": self.source,
            "key_version": self.key_version,
            "chunk_bytes": self.chunk_bytes,
            "compression": "zlib",
        }
        if self.wrapped_key is not None:
            fields["wrapped_key"] = self.wrapped_key
        return json.dumps(fields, sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> BackupHeader:
        """Parse header bytes (before their seal is checked)."""
        data = json.loads(raw)
        if data.get("compression") != "zlib":
            raise BackupRefused("unknown compression")
        return cls(
            str(data["id"]),
            str(data["created_at"]),
            str(data["source"]),
            int(data["key_version"]),
            int(data["chunk_bytes"]),
            str(data["wrapped_key"]) if "wrapped_key" in data else None,
        )


def file_key(backup_key: bytes, backup_id: str) -> bytes:
    """The key for one backup file."""
    return aead.derive_key(backup_key, b"bastion/backup|" + backup_id.encode())


def _chunk_aad(header_hash: bytes, index: int, final: bool) -> bytes:
    return header_hash + struct.pack(">QB", index, 1 if final else 0)


def write(
    out: BinaryIO,
    header: BackupHeader,
    backup_key: bytes,
    source: Iterable[bytes],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Compress, seal and write ``source``; return the bytes of plaintext read."""
    key = file_key(backup_key, header.backup_id)
    raw_header = header.encode()
    header_hash = hashlib.sha256(raw_header).digest()
    out.write(MAGIC + _U32.pack(len(raw_header)) + raw_header)
    out.write(aead.seal(key, b"", b"header" + raw_header))
    compressor = zlib.compressobj(6)
    pending = b""
    index = 0
    total = 0
    for piece in source:
        total += len(piece)
        pending += compressor.compress(piece)
        while len(pending) > header.chunk_bytes:
            chunk, pending = pending[: header.chunk_bytes], pending[header.chunk_bytes :]
            _write_chunk(out, key, header_hash, index, chunk, final=False)
            index += 1
        if progress is not None:
            progress(len(piece))
    pending += compressor.flush()
    while len(pending) > header.chunk_bytes:
        chunk, pending = pending[: header.chunk_bytes], pending[header.chunk_bytes :]
        _write_chunk(out, key, header_hash, index, chunk, final=False)
        index += 1
    _write_chunk(out, key, header_hash, index, pending, final=True)
    return total


def _write_chunk(
    out: BinaryIO, key: bytes, header_hash: bytes, index: int, chunk: bytes, *, final: bool
) -> None:
    sealed = aead.seal(key, chunk, _chunk_aad(header_hash, index, final))
    out.write(_U32.pack(len(sealed)) + sealed)


def read_header(stream: BinaryIO) -> tuple[BackupHeader, bytes]:
    """Read and parse the header (its seal is checked by ``read``)."""
    if stream.read(len(MAGIC)) != MAGIC:
        raise BackupRefused("not a Bastion backup")
    size_raw = stream.read(_U32.size)
    if len(size_raw) != _U32.size:
        raise BackupRefused("truncated header")
    (size,) = _U32.unpack(size_raw)
    if size > _MAX_HEADER:
        raise BackupRefused("header too large")
    raw = stream.read(size)
    if len(raw) != size:
        raise BackupRefused("truncated header")
    try:
        return BackupHeader.decode(raw), raw
    except (ValueError, KeyError, TypeError):
        raise BackupRefused("unreadable header") from None


def read(
    stream: BinaryIO,
    key_for: Callable[[BackupHeader], bytes],
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """Yield the verified, decompressed snapshot; raise ``BackupRefused`` on any problem."""
    header, raw_header = read_header(stream)
    key = file_key(key_for(header), header.backup_id)
    try:
        aead.unseal(key, stream.read(aead.OVERHEAD), b"header" + raw_header)
    except aead.InvalidCiphertext:
        raise BackupRefused("the header does not verify: wrong key or tampered") from None
    header_hash = hashlib.sha256(raw_header).digest()
    decompressor = zlib.decompressobj()
    index = 0
    limit = header.chunk_bytes + aead.OVERHEAD
    while True:
        size_raw = stream.read(_U32.size)
        if len(size_raw) != _U32.size:
            raise BackupRefused("truncated: the final chunk is missing")
        (size,) = _U32.unpack(size_raw)
        if size > limit:
            raise BackupRefused(f"chunk {index} is malformed")
        sealed = stream.read(size)
        if len(sealed) != size:
            raise BackupRefused(f"truncated inside chunk {index}")
        final = _open_chunk(key, header_hash, index, sealed)
        yield decompressor.decompress(final[1])
        if progress is not None:
            progress(_U32.size + size)
        if final[0]:
            break
        index += 1
    if stream.read(1):
        raise BackupRefused("data after the final chunk")
    tail = decompressor.flush()
    if not decompressor.eof:
        raise BackupRefused("the compressed stream is incomplete")
    if tail:
        yield tail


def _open_chunk(key: bytes, header_hash: bytes, index: int, sealed: bytes) -> tuple[bool, bytes]:
    for final in (False, True):
        try:
            return final, aead.unseal(key, sealed, _chunk_aad(header_hash, index, final))
        except aead.InvalidCiphertext:
            continue
    raise BackupRefused(f"chunk {index} does not verify: tampered, reordered or wrong key")
