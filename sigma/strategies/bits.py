"""Bit-level helpers the compiled kernels share: the bits of +inf, above which no finite
double lies, the test of a price on its bits, and the index of a mask's lowest set bit (one
instruction)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import llvmlite.ir as llvm_ir
import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

from sigma.strategies.series import FloatArray

INF_BITS = 0x7FF0000000000000
"""+inf's bits as an int64. The finite doubles >= 0 are the int64s from 0 up to it, in the
same order: a comparison of bits checks a value without a floating-point compare."""


@numba.njit(cache=True, inline="always")
def not_a_price(bits: int) -> bool:  # pragma: no cover - numba-compiled
    """Whether a double's bits (read as an int64) are not a finite number above zero: zero
    and negatives (the sign bit) lie at or below 0, infinities and NaNs at or above
    INF_BITS. Two integer comparisons, which the compiler runs on vector registers."""
    return (bits <= 0) | (bits >= INF_BITS)


@numba.njit(cache=True, inline="always")
def all_prices(values: FloatArray, lo: int, hi: int) -> bool:  # pragma: no cover - numba
    """Whether every value of `values[lo:hi]` is a finite number above zero: one pass over
    their bits (`not_a_price`) with no branch, on vector registers."""
    bits = values[lo:hi].view(np.int64)
    bad = False
    for j in range(len(bits)):
        bad |= not_a_price(bits[j])
    return not bad


@intrinsic
def _cttz(typingctx: Any, mask: Any) -> Any:
    """The index of the lowest set bit of a uint64 `mask`, 64 when none is set (LLVM's
    `cttz`: `tzcnt` on x86, which gives 64 for nothing at no cost). numba offers no such
    function; a loop over the bits would cost one iteration per bit."""
    if mask != types.uint64:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        # The flag says a zero mask gives 64 (a caller may pass one: `running._crossings`).
        return builder.cttz(args[0], llvm_ir.Constant(llvm_ir.IntType(1), 0))

    return types.uint64(types.uint64), codegen


lowest_bit = cast(Callable[[np.uint64], np.uint64], _cttz)
"""`_cttz` as the kernels call it (`lowest_bit(mask)`); its own signature is numba's."""


__all__ = ["INF_BITS", "all_prices", "lowest_bit", "not_a_price"]
