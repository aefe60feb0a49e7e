"""The dm-verity hash tree of a RAUC bundle, checked as the unit's kernel would read it.

RAUC (src/verity_hash.c, after cryptsetup's format 1) hashes every 4096-byte block of the squashfs as
sha256(salt + block); the digests, 128 to a block and the last block zero-padded, form level 0; each
next level hashes the blocks of the one below, until one block is left, whose hash is the root hash in
the signed manifest. The levels follow the squashfs top level first, so level 0 is last.

The check reads the file in slices (never the whole file), as RAUC's own ``check_bundle_payload``
does: each level's digests are computed and compared with the stored ones, the padding must be zero,
and the stored top block must hash to the root. One changed byte anywhere before the signature, or a
file cut short, fails it.
"""
from __future__ import annotations

import hashlib
import os

from central.updates.bundle_file import BLOCK, BundleRefused

DIGEST = 32
PER_BLOCK = BLOCK // DIGEST  # 128 digests in a hash block
SLICE_BLOCKS = 256           # read 1 MiB at a time


def level_blocks(data_blocks: int) -> list[int]:
    """Blocks in each level of the tree, level 0 (hashes of the data) first."""
    sizes, n = [], data_blocks
    while n > 1 or not sizes:
        n = -(-n // PER_BLOCK)
        sizes.append(n)
    return sizes


def check_tree(fd: int, data_end: int, tree_end: int, root: bytes, salt: bytes) -> None:
    """Check the squashfs ``[0, data_end)`` against the tree ``[data_end, tree_end)`` and ``root``.

    Raises BundleRefused(bundle_corrupt) at the first difference.
    """
    if data_end % BLOCK or tree_end % BLOCK or data_end <= BLOCK:
        raise BundleRefused("bundle_corrupt", "the bundle's payload is not made of whole 4096-byte blocks, as "
                            "a verity bundle's is; it was changed or cut short")
    data_blocks = data_end // BLOCK
    sizes = level_blocks(data_blocks)
    if sum(sizes) * BLOCK != tree_end - data_end:
        raise BundleRefused("bundle_corrupt", "the bundle's hash tree does not have the size its payload needs; "
                            "the file was changed or cut short")
    starts, pos = {}, data_blocks
    for level in reversed(range(len(sizes))):
        starts[level] = pos
        pos += sizes[level]
    seed = hashlib.sha256(salt)
    for level, blocks in enumerate(sizes):
        source_start, source_blocks = (0, data_blocks) if level == 0 else (starts[level - 1], sizes[level - 1])
        _check_level(fd, seed, source_start, source_blocks, starts[level], blocks, level)
    top = seed.copy()
    top.update(os.pread(fd, BLOCK, starts[len(sizes) - 1] * BLOCK))
    if top.digest() != root:
        raise BundleRefused("bundle_corrupt", "the bundle's hash tree does not match the root hash it was signed "
                            "with; the file was changed after signing")


def _check_level(fd: int, seed, source_start: int, source_blocks: int,  # noqa: ANN001 - a hashlib object
                 level_start: int, level_blocks_: int, level: int) -> None:
    stored_at = level_start * BLOCK
    for first in range(0, source_blocks, SLICE_BLOCKS):
        count = min(SLICE_BLOCKS, source_blocks - first)
        data = os.pread(fd, count * BLOCK, (source_start + first) * BLOCK)
        if len(data) != count * BLOCK:
            raise BundleRefused("bundle_corrupt", "the bundle ends early; copy or upload it again")
        view, digests = memoryview(data), []
        for off in range(0, len(data), BLOCK):
            h = seed.copy()
            h.update(view[off:off + BLOCK])
            digests.append(h.digest())
        computed = b"".join(digests)
        stored = os.pread(fd, len(computed), stored_at + first * DIGEST)
        if stored != computed:
            where = "squashfs" if level == 0 else f"hash tree level {level - 1}"
            bad = first + next(i for i in range(count) if stored[i * DIGEST:(i + 1) * DIGEST]
                               != computed[i * DIGEST:(i + 1) * DIGEST]) if len(stored) == len(computed) else first
            raise BundleRefused("bundle_corrupt", f"block {bad} of the bundle's {where} does not match its signed "
                                "hash; the file was changed after signing (or damaged in transfer)")
    padding_from = stored_at + source_blocks * DIGEST
    padding = os.pread(fd, (level_start + level_blocks_) * BLOCK - padding_from, padding_from)
    if padding.count(0) != len(padding):
        raise BundleRefused("bundle_corrupt", "the bundle's hash tree has data where it must be empty; the file was "
                            "changed after signing")
