"""The compressed-file format of ``lml compress``: a small header and the latent frames.

One file holds one recording as the latents of overlapping clips. Version 1, all integers
little-endian::

    magic        4 bytes   b"LMLC"
    version      uint16    FORMAT_VERSION
    header size  uint32    bytes of the header that follows
    header       UTF-8 JSON (the fields of :class:`CompressedHeader`)
    header crc   uint32    CRC-32 of the header bytes
    frames       frame_count x latent_size numbers, float16
    frames crc   uint32    CRC-32 of the frame bytes

The header names the model that compressed the file (its fingerprint: a hash of its weights,
basis, shrinkage and representation), so decompressing with another model is refused rather
than decoded into noise; the checksums turn a truncated or corrupted file into a clear error.
float16 keeps a latent to about 3 significant digits, far below what the decoder resolves (the
round trip through float16 moves the log-mel distance by less than 0.01 dB, see the tests).
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from lib.core.errors import AudioInputError
from lib.core.fileio import atomic_write_bytes

MAGIC = b"LMLC"
FORMAT_VERSION = 1
SUFFIX = ".lml"
MAX_HEADER_BYTES = 65_536  # a real header is a few hundred bytes; more means a damaged size field
FLOAT16_LIMIT = 65_504.0  # largest finite float16
_PREFIX = struct.Struct("<4sHI")  # magic, version, header size
_CRC = struct.Struct("<I")


@dataclass(frozen=True)
class CompressedHeader:
    """What a compressed file says about itself.

    Lengths are in samples at ``sample_rate`` (the lab's rate, mono). Clip ``k`` starts at
    sample ``k * clip_hop_samples`` and holds ``clip_samples``; the last clip is padded with
    silence past ``samples``. ``gain`` is the factor the recording was scaled by before encoding
    (the training clips' level); decompressing divides by it.
    """

    model_name: str
    model_dataset: str
    model_fingerprint: str
    latent_size: int
    sample_rate: int
    samples: int
    clip_samples: int
    clip_hop_samples: int
    frame_count: int
    gain: float
    source_name: str = ""
    source_sample_rate: int = 0
    source_channels: int = 0
    format_version: int = FORMAT_VERSION

    @property
    def seconds(self) -> float:
        """Length of the recording in seconds."""
        return self.samples / self.sample_rate

    @property
    def numbers_per_second(self) -> float:
        """Latent numbers stored per second of audio."""
        return self.latent_size * self.sample_rate / self.clip_hop_samples

    def payload_bytes(self) -> int:
        """Bytes of the latent frames."""
        return self.frame_count * self.latent_size * 2


def encode_container(header: CompressedHeader, latents: np.ndarray) -> bytes:
    """The bytes of a compressed file: ``latents`` [shape=(frame_count, latent_size)] as float16.

    Raises
    ------
    ValueError
        If the latents' shape disagrees with the header or they are not finite.
    """
    latents = np.asarray(latents, dtype=np.float32)
    if latents.shape != (header.frame_count, header.latent_size):
        raise ValueError(
            f"latents of shape {latents.shape} disagree with the header's ({header.frame_count}, {header.latent_size})"
        )
    if not np.all(np.isfinite(latents)):
        raise ValueError("latents hold NaN or infinite values")
    frames = np.clip(latents, -FLOAT16_LIMIT, FLOAT16_LIMIT).astype("<f2").tobytes()
    header_bytes = json.dumps(asdict(header), sort_keys=True).encode("utf-8")
    return b"".join(
        [
            _PREFIX.pack(MAGIC, header.format_version, len(header_bytes)),
            header_bytes,
            _CRC.pack(zlib.crc32(header_bytes)),
            frames,
            _CRC.pack(zlib.crc32(frames)),
        ]
    )


def write_container(
    path: str | Path, header: CompressedHeader, latents: np.ndarray, *, overwrite: bool = False
) -> Path:
    """Write a compressed file atomically (never over an existing file unless ``overwrite``)."""
    return atomic_write_bytes(path, encode_container(header, latents), overwrite=overwrite)


def decode_container(payload: bytes, name: str | Path = "<bytes>") -> tuple[CompressedHeader, np.ndarray]:
    """Header and latents [shape=(frame_count, latent_size), float32] of a compressed file's bytes.

    Raises
    ------
    AudioInputError
        Naming ``name`` and the problem: not such a file, a newer format version, truncated,
        or corrupted (a checksum or a field that does not hold).
    """
    if len(payload) < _PREFIX.size or payload[:4] != MAGIC:
        raise AudioInputError(f"not a latent music lab compressed file (it does not start with {MAGIC!r})", name)
    _, version, header_size = _PREFIX.unpack_from(payload)
    if version > FORMAT_VERSION:
        raise AudioInputError(
            f"format version {version} is newer than this lab reads ({FORMAT_VERSION}); update the lab", name
        )
    if version < 1:
        raise AudioInputError(f"corrupted: format version {version} does not exist", name)
    if header_size > MAX_HEADER_BYTES:
        raise AudioInputError(f"corrupted: the header size field says {header_size} bytes", name)
    header_end = _PREFIX.size + header_size
    if len(payload) < header_end + _CRC.size:
        raise AudioInputError(f"truncated: the file ends inside its header ({len(payload)} bytes)", name)
    header_bytes = payload[_PREFIX.size : header_end]
    (header_crc,) = _CRC.unpack_from(payload, header_end)
    if zlib.crc32(header_bytes) != header_crc:
        raise AudioInputError("corrupted: the header's checksum does not match", name)
    header = _header_from_json(header_bytes, name)
    frames_start = header_end + _CRC.size
    expected = header.payload_bytes()
    present = len(payload) - frames_start - _CRC.size
    if present < expected:
        shown_present = max(present, 0)
        raise AudioInputError(
            f"truncated: {expected} bytes of latent frames expected, {shown_present} present "
            f"({100 * shown_present / max(expected, 1):.0f} % of the recording)",
            name,
        )
    if present > expected:
        raise AudioInputError(f"corrupted: {present - expected} bytes more than the header declares", name)
    frames = payload[frames_start : frames_start + expected]
    (frames_crc,) = _CRC.unpack_from(payload, frames_start + expected)
    if zlib.crc32(frames) != frames_crc:
        raise AudioInputError("corrupted: the latent frames' checksum does not match", name)
    latents = np.frombuffer(frames, dtype="<f2").astype(np.float32).reshape(header.frame_count, header.latent_size)
    if not np.all(np.isfinite(latents)):
        raise AudioInputError("corrupted: latent frames hold NaN or infinite values", name)
    return header, latents


def read_container(path: str | Path) -> tuple[CompressedHeader, np.ndarray]:
    """Read a compressed file written by :func:`write_container` (see :func:`decode_container`)."""
    path = Path(path)
    if not path.is_file():
        raise AudioInputError("no such file", path)
    return decode_container(path.read_bytes(), path)


def _header_from_json(header_bytes: bytes, name: str | Path) -> CompressedHeader:
    try:
        values = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AudioInputError(f"corrupted: the header is not JSON ({error})", name) from error
    if not isinstance(values, dict):
        raise AudioInputError("corrupted: the header is not a JSON object", name)
    known = {field.name for field in fields(CompressedHeader)}
    missing = sorted(key for key in known - set(values) if key not in _OPTIONAL_FIELDS)
    if missing:
        raise AudioInputError(f"corrupted: the header lacks {', '.join(missing)}", name)
    header = CompressedHeader(**{key: value for key, value in values.items() if key in known})
    counts = (
        header.latent_size,
        header.sample_rate,
        header.clip_samples,
        header.clip_hop_samples,
        header.samples,
        header.frame_count,
    )
    if not all(isinstance(count, int) and count >= 1 for count in counts) or not (
        isinstance(header.gain, int | float) and np.isfinite(header.gain) and header.gain > 0
    ):
        raise AudioInputError("corrupted: the header holds sizes that cannot be", name)
    return header


_OPTIONAL_FIELDS = ("source_name", "source_sample_rate", "source_channels", "format_version")
