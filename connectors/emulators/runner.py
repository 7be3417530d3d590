"""Build a tool from the plant configuration and run its server until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from connectors.emulators import KINDS
from connectors.emulators.furnace import FurnaceTool
from connectors.emulators.security import SecuritySettings
from connectors.emulators.server import EmulatorServer
from connectors.emulators.sputter import SputterTool
from connectors.emulators.tool import ToolCore
from twin.config import CONFIG_DIR, DEFAULT_PLANT, load_plant
from twin.config.schema import PlantConfig
from twin.errors import UsageError
from twin.hidden.config import TruthConfig, load_truth, truth_path
from twin.hidden.world import HiddenPlant
from twin.physics.melting import solidify

#: Plant file used when ``--config`` is not given: the shipped line that has the tool.
DEFAULT_CONFIG = {"furnace": DEFAULT_PLANT, "sputter": CONFIG_DIR / "thin_film_line.toml"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def make_tool(kind: str, plant: PlantConfig, seed: int | None, *, source: str = "",
              truth: TruthConfig | None = None) -> ToolCore:
    """The emulated tool of ``kind`` for ``plant`` running ``truth`` (default: the shipped
    nominal truth), its streams seeded from ``seed``."""
    rng = np.random.default_rng(seed)
    where = source or plant.plant.name
    truth = truth if truth is not None else load_truth(None)
    if kind == "furnace":
        cfg, recipe = plant.stations.oxidizer, plant.recipes.oxidation
        if cfg is None or recipe is None:
            raise UsageError(f"{where}: a furnace needs [stations.oxidizer] and "
                             "[recipes.oxidation]")
        phases = solidify(plant.alloy.composition_wt, 1.0)
        # The free phase's share of the charge (as the plant model takes it for its surface).
        frac = max(phases.phases_kg.get(phases.free_phase, 1.0), 1e-3)
        return FurnaceTool(cfg, recipe, plant.alloy.base, plant.stations.lab, rng,
                           truth=truth, phase_fraction=frac)
    if kind == "sputter":
        scfg, srecipe = plant.stations.sputter, plant.recipes.sputter
        if scfg is None or srecipe is None:
            raise UsageError(f"{where}: a sputter tool needs [stations.sputter] and "
                             "[recipes.sputter]")
        return SputterTool(scfg, srecipe, plant.alloy.base, plant.stations.lab, rng,
                           truth=truth.sputter)
    raise UsageError(f"unknown tool {kind!r} (expected {' or '.join(KINDS)})")


def build_server(kind: str, *, name: str | None = None, port: int | None = None,
                 time_factor: float = 1.0, seed: int | None = 0, config: str | Path | None = None,
                 host: str = "127.0.0.1", tick_s: float = 0.1,
                 security: SecuritySettings | None = None,
                 overrides: Sequence[str] = (), truth: str | Path | None = None,
                 truth_log: str | Path | None = None) -> EmulatorServer:
    """Load the plant file (with ``--set`` overrides) and the truth file (a shipped name or
    a path; default ``nominal``), and make the server of one tool."""
    if kind not in KINDS:
        raise UsageError(f"unknown tool {kind!r} (expected {' or '.join(KINDS)})")
    name = name or f"{kind}1"
    if not _NAME.match(name):
        raise UsageError(f"--name {name!r}: letters, digits and _ only, not starting with a digit")
    if time_factor <= 0 or not np.isfinite(time_factor):
        raise UsageError(f"--time-factor must be > 0, got {time_factor}")
    path = Path(config) if config is not None else DEFAULT_CONFIG[kind]
    plant = load_plant(path, overrides)
    tpath = truth_path(truth)
    hidden = load_truth(tpath)
    HiddenPlant(hidden, plant, 0, source=str(tpath)).check(plant)
    tool = make_tool(kind, plant, seed, source=str(path), truth=hidden)
    if truth_log is not None:
        tool.truth_log = Path(truth_log)
    plc = tool.plc
    chosen = plc.port if port is None else port
    if not 0 <= chosen <= 65535:
        raise UsageError(f"--port must be 0..65535, got {chosen}")
    return EmulatorServer(tool, name, host=host, port=chosen, time_factor=time_factor,
                          tick_s=tick_s, heartbeat_timeout_s=plc.heartbeat_timeout_s,
                          security=security)


@dataclass(frozen=True)
class ParentWatch:
    """How a PLC started by the twin notices the twin's death (``anode-twin plc`` flags).

    ``parent_pid``: stop when the parent process is no longer this pid (it died and the PLC
    was re-parented); ``stdin``: stop at end of file on standard input (a pipe whose write end
    only the parent holds); ``pdeathsig``: also ask Linux for SIGTERM when the parent dies.
    All three end the PLC through its normal SIGTERM path.
    """

    parent_pid: int | None = None
    stdin: bool = False
    pdeathsig: bool = False
    poll_s: float = 0.25

    @property
    def active(self) -> bool:
        return self.parent_pid is not None or self.stdin or self.pdeathsig


async def serve(server: EmulatorServer, ready: Callable[[str], None],
                watch: ParentWatch | None = None) -> None:
    """Start ``server``, report its URL, and run until SIGINT or SIGTERM (or, with ``watch``,
    until the parent process that started it is gone)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watcher: asyncio.Task[None] | None = None
    try:
        if watch is not None and watch.active:
            # Before the server starts: a twin that died while this PLC was starting up
            # must not leave it listening.
            watcher = loop.create_task(_watch_parent(watch, stop))
        try:
            url = await server.start()
        except OSError as exc:
            raise UsageError(f"cannot listen on {server.host}:{server.port}: {exc.strerror}"
                             ) from None
        if not stop.is_set():
            ready(url)
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await server.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _watch_parent(watch: ParentWatch, stop: asyncio.Event) -> None:
    """Set ``stop`` when the parent is gone: stdin EOF, re-parenting, or PDEATHSIG."""
    loop = asyncio.get_running_loop()

    def gone(why: str) -> None:
        if not stop.is_set():
            # stderr may be a pipe to the dead parent: never fail on telling it.
            with contextlib.suppress(OSError, ValueError):
                print(f"anode-twin plc: {why}: stopping", file=sys.stderr, flush=True)
            stop.set()

    fd = -1
    if watch.stdin:
        fd = sys.stdin.fileno()

        def readable() -> None:
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(fd)
                gone("standard input closed (the twin that started this PLC is gone)")

        loop.add_reader(fd, readable)
    if watch.pdeathsig and watch.parent_pid is not None:
        # SIGTERM when the parent dies: the handler installed by serve() sets ``stop``.
        set_parent_death_signal(signal.SIGTERM)
    try:
        while not stop.is_set():
            if watch.parent_pid is not None and os.getppid() != watch.parent_pid:
                gone(f"parent process {watch.parent_pid} is gone")
                return
            await asyncio.sleep(watch.poll_s)
    finally:
        if fd >= 0:
            loop.remove_reader(fd)


def set_parent_death_signal(sig: int) -> bool:
    """Linux ``prctl(PR_SET_PDEATHSIG, sig)`` for this process; False where unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        return int(libc.prctl(pr_set_pdeathsig, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def quiet_asyncua() -> None:
    """asyncua logs every session at INFO and some harmless notices at WARNING."""
    logging.getLogger("asyncua").setLevel(logging.ERROR)
