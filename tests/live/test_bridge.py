"""The SimPy/asyncio bridge keeps simulation time in step with scaled wall time."""

from __future__ import annotations

import asyncio
import time

import pytest
import simpy

from twin.live.bridge import RealtimeBridge


def test_sim_time_tracks_scaled_wall_time() -> None:
    env = simpy.Environment()
    ticks: list[float] = []

    def ticker() -> simpy.events.ProcessGenerator:
        while True:
            yield env.timeout(10.0)
            ticks.append(env.now)

    env.process(ticker())
    bridge = RealtimeBridge(env, time_factor=1000.0, slice_s=0.005)
    t0 = time.monotonic()
    end = asyncio.run(bridge.run(until_s=300.0))
    wall = time.monotonic() - t0
    assert end == pytest.approx(300.0)
    # SimPy's run(until=t) stops before events scheduled exactly at t.
    assert ticks == pytest.approx([10.0 * i for i in range(1, 30)])
    # 300 simulated seconds at 1000x take about 0.3 s of wall time, not 0 and not seconds.
    assert 0.25 <= wall < 2.0


def test_external_event_from_asyncio_wakes_the_model() -> None:
    env = simpy.Environment()
    done = env.event()
    seen: list[tuple[float, str]] = []

    def station() -> simpy.events.ProcessGenerator:
        value = yield done
        seen.append((env.now, value))

    env.process(station())
    bridge = RealtimeBridge(env, time_factor=100.0, slice_s=0.005)

    async def plc() -> None:
        await asyncio.sleep(0.2)  # the "PLC" completes after 0.2 s of wall time
        done.succeed("complete")

    async def scenario() -> None:
        await asyncio.gather(bridge.run(until_s=60.0), plc())

    asyncio.run(scenario())
    assert len(seen) == 1
    when, value = seen[0]
    assert value == "complete"
    # 0.2 s wall at 100x is 20 s of simulated time; the event is seen within a slice or two.
    assert 19.0 <= when <= 25.0


def test_stop_returns_early() -> None:
    env = simpy.Environment()
    bridge = RealtimeBridge(env, time_factor=10.0, slice_s=0.005)

    async def scenario() -> float:
        async def stopper() -> None:
            await asyncio.sleep(0.1)
            bridge.stop()

        end, _ = await asyncio.gather(bridge.run(until_s=1e6), stopper())
        return end

    end = asyncio.run(scenario())
    assert 0.5 <= end <= 3.0


def test_bad_time_factor() -> None:
    with pytest.raises(ValueError, match="time_factor"):
        RealtimeBridge(simpy.Environment(), 0.0)
