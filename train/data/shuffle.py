"""grain's `index_shuffle` (a Simon block cipher with cycle walking), vectorised in numpy.

`grain.MapDataset.range(n).shuffle(seed)` calls the C++ `index_shuffle` once per example from
Python (tens of microseconds each with the dataset layers around it: as long as a small model's
training step). `epoch_permutation(n, seed)` computes the same permutation of a whole epoch at once,
bit for bit (tests/test_data.py compares it with grain), so a run's order does not change; but for
n = 4^k + 1 (k >= 8: 65,537, 262,145, ...), where grain's is no permutation (`half_width`).
"""
import numpy as np

_M32 = 0xFFFFFFFF


def _seed_seq_keys(seed: int, n: int = 4) -> list[int]:
  """`std::seed_seq{seed}.generate(n words)` (C++ [rand.util.seedseq]): grain's round keys."""
  out = [0x8B8B8B8B] * n
  t = 11 if n >= 623 else 7 if n >= 68 else 5 if n >= 39 else 3 if n >= 7 else (n - 1) // 2
  p, s = (n - t) // 2, 1
  q, m = p + t, max(s + 1, n)
  mix = lambda x: x ^ (x >> 27)
  for k in range(m):
    r1 = 1664525 * mix(out[k % n] ^ out[(k + p) % n] ^ out[(k - 1) % n]) & _M32
    r2 = (r1 + (s if k == 0 else (k % n + seed if k <= s else k % n))) & _M32
    out[(k + p) % n] = (out[(k + p) % n] + r1) & _M32
    out[(k + q) % n] = (out[(k + q) % n] + r2) & _M32
    out[k % n] = r2
  for k in range(m, m + n):
    r3 = 1566083941 * mix((out[k % n] + out[(k + p) % n] + out[(k - 1) % n]) & _M32) & _M32
    r4 = (r3 - k % n) & _M32
    out[(k + p) % n] ^= r3
    out[(k + q) % n] ^= r4
    out[k % n] = r4
  return out


def _simon_encrypt(x, keys, w: int):
  """Simon rounds on 2w-bit blocks, two rounds per pair of keys (grain's SIMON_Rx2):
  left ^= f(right) ^ k1; right ^= f(left) ^ k2, with f(x) = (x <<< 1 & x <<< 8) ^ x <<< 2."""
  # The halves in the narrowest integer that holds a w-bit word shifted left by up to 8 bits.
  dt = np.uint16 if w <= 8 else np.uint32 if w <= 24 else np.uint64
  mask = dt((1 << w) - 1)
  rotl = lambda v, r: ((v << dt(r)) | (v >> dt(w - r))) & mask
  f = lambda v: (rotl(v, 1) & rotl(v, 8)) ^ rotl(v, 2)
  left = ((x >> np.uint64(w)) & np.uint64((1 << w) - 1)).astype(dt)
  right = (x & np.uint64((1 << w) - 1)).astype(dt)
  for k1, k2 in zip(keys[::2], keys[1::2]):
    left ^= f(right) ^ (dt(k1 & ((1 << w) - 1)))
    right ^= f(left) ^ (dt(k2 & ((1 << w) - 1)))
  return (left.astype(np.uint64) << np.uint64(w)) | right.astype(np.uint64)


def half_width(max_index: int) -> int:
  """The cipher's half-word width w for indices up to max_index >= 1: the block holds the bits of
  max_index, rounded up to even, at least 16. grain takes ceil(log2(max_index)) bits, one too few
  for max_index = 4^k (k >= 8), whose domain [0, 4^k) then leaves max_index out: index 4^k is
  encrypted as 0 is, and one example comes twice an epoch, example n - 1 never. Elsewhere the two
  are equal."""
  block = int(max_index).bit_length()
  return max(block + block % 2, 16) // 2


def index_shuffle(index, max_index: int, seed: int, rounds: int = 4) -> np.ndarray:
  """Where each of `index` (an array in [0, max_index]) goes under grain's permutation."""
  index = np.asarray(index, np.uint64)
  if max_index == 0:
    return np.zeros_like(index)
  w = half_width(max_index)
  keys = _seed_seq_keys(seed % 2**32, rounds)
  out = _simon_encrypt(index, keys, w)
  while (walk := out > max_index).any():  # cycle walking back into [0, max_index]
    out[walk] = _simon_encrypt(out[walk], keys, w)
  return out


# `epoch_permutation` walks the cycles through tables of the cipher's domain when that is the
# smallest one, 2^16 (n <= 2^16: the walks are long when n is small); for larger n, where the
# domain is at most 4n and the walks short, the walk on the indices still out of range is faster.
TABLE_MAX_DOMAIN = 1 << 16


def epoch_permutation(n: int, seed: int) -> np.ndarray:
  """The order in which `grain.MapDataset.range(n).shuffle(seed)` yields its n indices.

  The cipher permutes a domain of 2^2w >= n indices (at least 2^16, on the low 2w bits of its
  input); cycle walking re-encrypts an index until it lands in [0, n): some indices walk a hundred
  steps when n is much smaller than the domain, each step a numpy pass. Instead the cipher is
  applied once to the whole domain (a table P), and with step(y) = y if y < n else P[y], the walk
  of x ends at step^k(P[x]) for any k at least its length: k doubles with step <- step[step]
  (an epoch of 4000 on this project's CPU: 8.9 ms before, 2.4-2.9 ms so)."""
  if n <= 1:
    return np.zeros(n, np.int64)
  w = half_width(n - 1)
  domain = 1 << (2 * w)
  if domain > TABLE_MAX_DOMAIN:
    return index_shuffle(np.arange(n), n - 1, seed).astype(np.int64)
  table = _simon_encrypt(np.arange(domain, dtype=np.uint64), _seed_seq_keys(seed % 2**32),
                         w).astype(np.int32)
  out = table[np.arange(n) & (domain - 1)]
  step = table.copy()
  step[:n] = np.arange(n, dtype=np.int32)
  while (out >= n).any():
    out, step = step[out], step[step]
  return out.astype(np.int64)
