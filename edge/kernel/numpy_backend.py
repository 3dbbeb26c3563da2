"""The NumPy fallback of fedzo's kernel, bit-identical to the C kernel.

It uses `numpy.random.Philox` for the stream (DESIGN.md §4) and streams over the
packed words in fixed-size chunks, so its extra memory does not grow with the
slice: it never builds a +/-1 vector of the slice's length.

Functions take already validated arguments (see `fedzo.edge.kernel`).
"""
import numpy as np

# Words generated and unpacked at a time: 1024 words = 65 536 signs.
CHUNK_WORDS = 1024


def _generator(seed: int, stream: int, round_: int, first_word: int):
    """A Philox positioned so that its next raw word is `first_word`."""
    block, skip = divmod(first_word, 4)
    gen = np.random.Philox(
        key=np.array([seed, stream], dtype=np.uint64),
        counter=np.array([block, round_, 0, 0], dtype=np.uint64),
    )
    if skip:
        gen.random_raw(skip)
    return gen


def stream_words(seed, stream, round_, first_word, n_words):
    """uint64 words [first_word, first_word + n_words) of the stream."""
    if n_words == 0:
        return np.empty(0, dtype=np.uint64)
    return _generator(seed, stream, round_, first_word).random_raw(n_words).astype(np.uint64)


def _sign_bits(words):
    """0/1 bits of `words`, element 64*w + b = bit b of word w (any byte order)."""
    return np.unpackbits(words.astype("<u8").view(np.uint8), bitorder="little")


def _signed_add(theta, seed, stream, round_, bit_offset, delta):
    """theta += sign * delta, saturating; returns the saturation count."""
    info = np.iinfo(theta.dtype)
    wide = np.int64  # wide enough for int16 and int32 stores
    n = theta.size
    first_word, skip_bits = divmod(bit_offset, 64)
    gen = _generator(seed, stream, round_, first_word)
    saturated = 0
    done = 0
    while done < n:
        need_bits = skip_bits + (n - done)
        words = gen.random_raw(min(CHUNK_WORDS, -(-need_bits // 64)))
        bits = _sign_bits(words)[skip_bits:]
        skip_bits = 0
        take = min(bits.size, n - done)
        # bit 1 -> +delta, bit 0 -> -delta
        step = bits[:take].astype(wide) * (2 * delta) - delta
        values = theta[done:done + take].astype(wide) + step
        saturated += int(np.count_nonzero(values > info.max))
        saturated += int(np.count_nonzero(values < info.min))
        np.clip(values, info.min, info.max, out=values)
        theta[done:done + take] = values
        done += take
    return saturated


def perturb(theta, seed, stream, round_, bit_offset, delta, saved):
    """Copy theta into `saved` (if given), then add +/-delta per sign bit."""
    if saved is not None:
        saved[...] = theta
    return _signed_add(theta, seed, stream, round_, bit_offset, delta)


def restore(theta, saved):
    """Put back the values `perturb` saved."""
    theta[...] = saved


def update(theta, seed, stream, round_, bit_offset, delta):
    """Add +/-delta per sign bit, saturating (the policy update)."""
    return _signed_add(theta, seed, stream, round_, bit_offset, delta)


def quantize(x, frac_bits, out):
    """out = saturate(rint(x * 2^frac_bits)); returns the saturation count."""
    info = np.iinfo(out.dtype)
    saturated = 0
    for start in range(0, x.size, CHUNK_WORDS * 64):
        chunk = np.rint(x[start:start + CHUNK_WORDS * 64].astype(np.float64) * (2.0 ** frac_bits))
        saturated += int(np.count_nonzero(chunk > info.max) + np.count_nonzero(chunk < info.min))
        np.clip(chunk, info.min, info.max, out=chunk)
        out[start:start + chunk.size] = chunk
    return saturated


def dequantize(q, frac_bits, out):
    """out = float32(q) * 2^-frac_bits."""
    np.multiply(q, np.float32(2.0 ** -frac_bits), out=out, dtype=np.float32, casting="unsafe")
