"""Blocked year splitter: blocks of consecutive years held out, a buffer of years on either side left out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from products.methods.cv import year_blocks_held_out


def test_blocks_of_three_years_with_a_two_year_buffer():
    times = pd.date_range("2002-04-01", "2020-08-01", freq="MS")
    years = times.year.to_numpy()
    folds = list(year_blocks_held_out(times, block=3, buffer=2))
    assert [sorted(set(years[test])) for _, test in folds] == [
        [2002, 2003, 2004],
        [2005, 2006, 2007],
        [2008, 2009, 2010],
        [2011, 2012, 2013],
        [2014, 2015, 2016],
        [2017, 2018, 2019],
        [2020],
    ]
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(len(times)))  # every row tested once
    for train, test in folds:
        assert not np.intersect1d(train, test).size
        gap = np.abs(years[train][:, None] - years[test][None, :]).min()
        assert gap > 2  # no training year within the buffer
        month = (times.year * 12 + times.month).to_numpy()
        months = np.abs(month[train][:, None] - month[test][None, :])
        assert months.min() > 24  # more than the 24-month memory between any training and test month
    train, _ = folds[2]  # 2008-2010 out, 2006-2007 and 2011-2012 buffer
    assert sorted(set(years[train])) == [2002, 2003, 2004, 2005, *range(2013, 2021)]


def test_one_year_blocks_without_buffer_are_leave_one_year_out():
    times = pd.date_range("2000-01-01", periods=48, freq="MS")
    folds = list(year_blocks_held_out(times, block=1, buffer=0))
    assert len(folds) == 4 and all(len(test) == 12 and len(train) == 36 for train, test in folds)


def test_bad_block_or_buffer_is_refused():
    with pytest.raises(ValueError, match="block"):
        list(year_blocks_held_out(pd.date_range("2000-01-01", periods=3, freq="MS"), block=0))
    with pytest.raises(ValueError, match="buffer"):
        list(year_blocks_held_out(pd.date_range("2000-01-01", periods=3, freq="MS"), buffer=-1))
