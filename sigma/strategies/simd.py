"""Fixed-width vector operations the kernels need and numba does not emit, written as LLVM
vector instructions (numba intrinsics): LLVM lowers each onto the machine's vector registers
whatever the width it prefers, where the same loops written in numba stayed one value at a
time (a comparison or-ed into a flag, or shifted into a mask, a bit at a time).

Neither checks its bounds: the caller keeps every value read or written inside its arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import llvmlite.ir as llvm_ir
import numpy as np
from numba import types
from numba.extending import intrinsic

from sigma.strategies.series import FloatArray
from sigma.strategies.vectorised import IntArray

MARK_RUN = 32
"""Bars whose equity `mark_run` writes at once."""

ORDER_RUN = 64
"""Orders `order_masks` compares at once: the bits of a uint64."""


def _contiguous(array: Any, dtype: Any) -> bool:
    return (
        isinstance(array, types.Array)
        and array.dtype == dtype
        and array.ndim == 1
        and array.layout == "C"
    )


def _splat(builder: Any, run: Any, value: Any) -> Any:
    # One value in every lane of a vector.
    lane0 = llvm_ir.Constant(llvm_ir.IntType(32), 0)
    first = builder.insert_element(llvm_ir.Constant(run, llvm_ir.Undefined), value, lane0)
    everywhere = llvm_ir.Constant(llvm_ir.VectorType(llvm_ir.IntType(32), run.count), None)
    return builder.shuffle_vector(first, llvm_ir.Constant(run, llvm_ir.Undefined), everywhere)


def _run_at(context: Any, builder: Any, kind: Any, array: Any, at: Any, run: Any) -> Any:
    # A pointer to the vector of `run` values of `array` (of numba type `kind`) from `at`.
    data = context.make_array(kind)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [at]), run.as_pointer())


@intrinsic
def _order_masks(typingctx: Any, orders: Any, lo: Any) -> Any:
    """(crossings, zeros): bit j of the first is set when `orders[lo + 1 + j]` xor
    `orders[lo + j]` is -2, of the second when `orders[lo + 1 + j]` is 0, for j < 64 (the
    caller keeps `orders[lo : lo + 65]` inside the array)."""
    if not (_contiguous(orders, types.int64) and isinstance(lo, types.Integer)):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        start = context.cast(builder, args[1], signature.args[1], types.intp)
        word = llvm_ir.IntType(64)
        run = llvm_ir.VectorType(word, ORDER_RUN)
        after = builder.add(start, llvm_ir.Constant(start.type, 1))
        before = builder.load(_run_at(context, builder, orders, args[0], start, run), align=8)
        now = builder.load(_run_at(context, builder, orders, args[0], after, run), align=8)
        crossed = llvm_ir.Constant(run, [-2] * ORDER_RUN)
        flips = builder.icmp_signed("==", builder.xor(before, now), crossed)
        zeros = builder.icmp_signed("==", now, llvm_ir.Constant(run, [0] * ORDER_RUN))
        masks = [builder.bitcast(flips, word), builder.bitcast(zeros, word)]
        return context.make_tuple(builder, signature.return_type, masks)

    return types.UniTuple(types.uint64, 2)(orders, lo), codegen  # type: ignore[no-untyped-call]


order_masks = cast(Callable[[IntArray, int], tuple[np.uint64, np.uint64]], _order_masks)
"""`_order_masks` as the kernels call it (`order_masks(orders, lo)`)."""


@intrinsic
def _mark_run(typingctx: Any, close: Any, equity: Any, at: Any, cash: Any, held: Any) -> Any:
    """`equity[at + j] = cash + held * close[at + j]` for j < 32 (MARK_RUN), the same floats
    as that expression one bar at a time; True when one of them is at or below zero (the
    caller keeps `at + 32` within both arrays)."""
    if not (
        _contiguous(close, types.float64)
        and _contiguous(equity, types.float64)
        and isinstance(at, types.Integer)
        and cash == types.float64
        and held == types.float64
    ):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        start = context.cast(builder, args[2], signature.args[2], types.intp)
        run = llvm_ir.VectorType(llvm_ir.DoubleType(), MARK_RUN)
        prices = builder.load(_run_at(context, builder, close, args[0], start, run), align=8)
        values = builder.fadd(
            _splat(builder, run, args[3]), builder.fmul(_splat(builder, run, args[4]), prices)
        )
        builder.store(values, _run_at(context, builder, equity, args[1], start, run), align=8)
        low = builder.fcmp_ordered("<=", values, llvm_ir.Constant(run, [0.0] * MARK_RUN))
        flags = builder.bitcast(low, llvm_ir.IntType(MARK_RUN))
        return builder.icmp_unsigned("!=", flags, llvm_ir.Constant(llvm_ir.IntType(MARK_RUN), 0))

    return types.boolean(close, equity, at, cash, held), codegen


mark_run = cast(Callable[[FloatArray, FloatArray, int, float, float], bool], _mark_run)
"""`_mark_run` as the kernels call it (`mark_run(close, equity, at, cash, held)`)."""


__all__ = ["MARK_RUN", "ORDER_RUN", "mark_run", "order_masks"]
