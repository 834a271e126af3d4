"""How a series is read while stepping (`float_reader`): a float64 array through a memoryview
of its own memory, anything else through a list of its Python numbers."""

from __future__ import annotations

import numpy as np

from sigma.strategies.series import Cursor, Series, float_reader


def test_a_float64_array_is_read_in_place() -> None:
    values = np.array([1.5, np.nan, -2.25, 1e300])
    reader = float_reader(values)
    assert isinstance(reader, memoryview)
    read = [reader[i] for i in range(len(values))]
    assert [type(v) for v in read] == [float] * 4
    np.testing.assert_array_equal(read, values.tolist())
    values[2] = 7.0  # written in place (a live bar): seen without a new reader
    assert reader[2] == 7.0
    strided = np.arange(10.0)[::3]
    assert [float_reader(strided)[i] for i in range(4)] == strided.tolist()
    frozen = np.arange(3.0)
    frozen.flags.writeable = False  # pandas' views are read-only
    assert float_reader(frozen)[2] == 2.0


def test_any_other_array_is_read_as_its_python_numbers() -> None:
    for values in (
        np.arange(4),
        np.array([True, False]),
        np.arange(3, dtype=np.float32) + 0.1,
        np.arange(3.0).astype(">f8"),
    ):
        reader = float_reader(values)
        assert isinstance(reader, list)
        assert reader == values.tolist()


def test_a_series_reads_the_same_values_either_way() -> None:
    cursor = Cursor()
    floats = Series(np.array([1.0, 2.0, 3.0]), cursor, "f")
    ints = Series(np.array([1, 2, 3]), cursor, "i")
    cursor.i = 2
    assert (floats[-1], floats[-3], floats[1]) == (3.0, 1.0, 2.0)
    assert (ints[-1], ints[0]) == (3, 1) and type(ints[-1]) is int
    floats.values = np.array([4.0, 5.0, 6.0])  # a recomputed indicator: a new reader
    assert floats[-1] == 6.0
