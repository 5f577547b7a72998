"""The class day's pure parts (benchmarks/classday_model.py): the seeded people and the figures computed from a
list of events, checked without a cluster (benchmarks/class_day.py replays the day on one)."""

from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import replace

import pytest
from support import ROOT


def _load():
    spec = importlib.util.spec_from_file_location("classday_model", ROOT / "benchmarks" / "classday_model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("classday_model", module)
    spec.loader.exec_module(module)
    return module


m = _load()
DAY = m.Day()


def test_the_same_seed_gives_the_same_people_and_another_seed_others():
    assert m.people(DAY) == m.people(m.Day())
    assert m.people(DAY) != m.people(replace(DAY, seed=DAY.seed + 1))


def test_people_arrive_within_the_day_peaking_before_the_deadline():
    people = m.people(DAY)
    assert len(people) == DAY.students
    assert len({p.name for p in people}) == DAY.students
    assert [p.arrive for p in people] == sorted(p.arrive for p in people)
    assert all(0 <= p.arrive < DAY.minutes - 10 + 1e-9 for p in people)
    assert all(10 <= p.work <= 150 for p in people)
    # the hour around the peak sees more than twice as many arrivals as the day's first hour
    peak = DAY.minutes - DAY.peak_before_deadline
    assert sum(peak - 30 <= p.arrive < peak + 30 for p in people) > 2 * sum(p.arrive < 60 for p in people)
    idle = [p for p in people if p.idle_after]
    assert 0.2 * DAY.students <= len(idle) <= 0.6 * DAY.students
    assert all(DAY.idle_minutes[0] <= p.idle_after <= DAY.idle_minutes[1] for p in idle)


def _day(gpus=2, minutes=120.0):
    return m.Day(students=3, gpus=gpus, minutes=minutes)


def E(person, kind, at, reason=""):
    return m.Event(person, kind, at, reason)


def test_figures_split_held_gpu_time_into_busy_and_idle_and_cut_it_at_the_deadline():
    events = [
        # a: waits 10 min, computes 30, idles 20, stops
        E("a", m.ARRIVE, 0), E("a", m.READY, 10), E("a", m.IDLE, 40), E("a", m.END, 60, m.STOPPED),
        # b: refused twice, runs from 30 and still computes at the deadline (120): 90 busy minutes
        E("b", m.ARRIVE, 20), E("b", m.REFUSED, 20), E("b", m.REFUSED, 25), E("b", m.READY, 30),
        E("b", m.END, 150, m.DAY_END),
        # c: never served
        E("c", m.ARRIVE, 50), E("c", m.REFUSED, 50), E("c", m.END, 120, m.GAVE_UP),
    ]
    f = m.figures(events, _day())
    assert (f.turned_away, f.served, f.unserved) == (3, 2, 1)
    assert sorted(f.waits) == [10, 10]
    assert f.busy_gpu_hours == pytest.approx((30 + 90) / 60)
    assert f.idle_gpu_hours == pytest.approx(20 / 60)
    assert f.capacity_gpu_hours == pytest.approx(2 * 120 / 60)
    assert f.used_share == pytest.approx(120 / 240)
    assert f.held_share == pytest.approx(140 / 240)
    assert (f.culled, f.culled_busy) == (0, 0)


def test_a_server_culled_after_it_went_idle_counts_as_culled_and_one_culled_while_busy_is_flagged():
    events = [E("a", m.ARRIVE, 0), E("a", m.READY, 0), E("a", m.IDLE, 30), E("a", m.END, 60, m.CULLED),
              E("b", m.ARRIVE, 0), E("b", m.READY, 5), E("b", m.END, 20, m.CULLED)]
    f = m.figures(events, _day())
    assert (f.culled, f.culled_busy) == (2, 1)
    assert f.idle_gpu_hours == pytest.approx(30 / 60)
    assert f.busy_gpu_hours == pytest.approx((30 + 15) / 60)


def test_percentiles_are_nearest_rank_and_empty_days_give_nan():
    assert m.percentile([5, 1, 3, 2, 4], 95) == 5
    assert m.percentile(list(range(1, 101)), 95) == 95
    assert m.percentile([7], 50) == 7
    assert math.isnan(m.percentile([], 95))
    f = m.figures([E("a", m.ARRIVE, 0), E("a", m.END, 90, m.GAVE_UP)], _day())
    assert math.isnan(f.wait_median) and math.isnan(f.wait_p95)
    assert f.unserved == 1


def test_events_of_someone_who_never_arrived_are_an_error():
    with pytest.raises(ValueError, match="without an arrival"):
        m.figures([E("a", m.READY, 3)], _day())


def test_the_oracle_never_holds_an_idle_gpu_and_serves_first_come_first_served():
    day = m.Day(students=4, gpus=1, minutes=600.0, patience=1000.0, peaked_share=0.0)
    people = m.people(day)
    f = m.ideal(day)
    assert f.idle_gpu_hours == 0 and f.turned_away == 0
    assert f.served == 4
    assert f.busy_gpu_hours == pytest.approx(sum(min(p.work, 600) for p in people) / 60, rel=0.2)
    assert f.waits[0] == 0  # the first to arrive finds the GPU free


def test_the_table_has_a_column_per_figure():
    f = m.figures([E("a", m.ARRIVE, 0), E("a", m.READY, 4), E("a", m.END, 64, m.STOPPED)], _day())
    out = m.table([m.row("today", f)]).splitlines()
    assert len(out) == 3
    assert out[2].split(" | ")[1:5] == ["0", "0/1", "4 min", "4 min"]
    assert out[0].count("|") == out[2].count("|") == len(m.HEADER) + 1
