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
    """The index of the lowest set bit of a nonzero uint64 `mask` (LLVM's `cttz`: `tzcnt`
    on x86). numba offers no such function; a loop over the bits would cost one iteration
    per bit."""
    if mask != types.uint64:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        # The flag says a zero mask need not give 64: callers never pass one.
        return builder.cttz(args[0], llvm_ir.Constant(llvm_ir.IntType(1), 1))

    return types.uint64(types.uint64), codegen


@intrinsic
def _order_masks(typingctx: Any, orders: Any, lo: Any) -> Any:
    """(crossings, zeros): bit j of the first is set when `orders[lo + 1 + j]` xor
    `orders[lo + j]` is -2, of the second when `orders[lo + 1 + j]` is 0, for j < 64. The
    caller keeps `orders[lo : lo + 65]` inside the array: nothing is checked here.

    Written as LLVM vector operations on 64 values, whose 64 comparisons LLVM packs into the
    mask's bits with a few instructions (a comparison into a mask register, on x86); the same
    loop written in numba shifted each comparison into place one at a time."""
    if not (
        isinstance(orders, types.Array)
        and orders.dtype == types.int64
        and orders.ndim == 1
        and orders.layout == "C"
        and isinstance(lo, types.Integer)
    ):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array = context.make_array(signature.args[0])(context, builder, args[0])
        start = context.cast(builder, args[1], signature.args[1], types.intp)
        word = llvm_ir.IntType(64)
        run = llvm_ir.VectorType(word, 64)

        def load(at: Any) -> Any:
            pointer = builder.bitcast(builder.gep(array.data, [at]), run.as_pointer())
            return builder.load(pointer, align=8)

        before = load(start)
        now = load(builder.add(start, llvm_ir.Constant(start.type, 1)))
        crossed = llvm_ir.Constant(run, [-2] * 64)
        flips = builder.icmp_signed("==", builder.xor(before, now), crossed)
        zeros = builder.icmp_signed("==", now, llvm_ir.Constant(run, [0] * 64))
        masks = [builder.bitcast(flips, word), builder.bitcast(zeros, word)]
        return context.make_tuple(builder, signature.return_type, masks)

    return types.UniTuple(types.uint64, 2)(orders, lo), codegen  # type: ignore[no-untyped-call]


order_masks = cast(Callable[[Any, int], tuple[np.uint64, np.uint64]], _order_masks)
"""`_order_masks` as the kernels call it (`order_masks(orders, lo)`)."""

lowest_bit = cast(Callable[[np.uint64], np.uint64], _cttz)
"""`_cttz` as the kernels call it (`lowest_bit(mask)`); its own signature is numba's."""


__all__ = ["INF_BITS", "all_prices", "lowest_bit", "not_a_price", "order_masks"]
