"""Named components and seeded random streams.

Every part of the model is a :class:`Component` in a tree rooted at the plant's name, so each
has a dotted path (``line1.oxidizer1``). The path is the key in every result row and is the
OPC UA browse path of the live twin.

Random numbers come from one :class:`numpy.random.SeedSequence` per run. Each component gets
its own child stream, derived from the run seed and a stable hash of its path, so adding a
component or changing the order in which components are built never changes another
component's numbers (and there is no global RNG anywhere).
"""

from __future__ import annotations

import zlib

import numpy as np


class RngTree:
    """Named, independent random streams derived from one run seed.

    Parameters
    ----------
    seed : int
        The run seed (>= 0).
    """

    def __init__(self, seed: int) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed)
        self.root = np.random.SeedSequence(self.seed)
        self._made: dict[str, np.random.Generator] = {}

    def stream(self, name: str) -> np.random.Generator:
        """The generator of stream ``name`` (the same object on every call)."""
        gen = self._made.get(name)
        if gen is None:
            # spawn_key from a stable hash of the name: order-independent children of the
            # run's SeedSequence (what SeedSequence.spawn does, keyed by name not position).
            key = (zlib.crc32(name.encode("utf-8")), len(name))
            seq = np.random.SeedSequence(self.root.entropy, spawn_key=key)
            gen = self._made[name] = np.random.Generator(np.random.PCG64(seq))
        return gen


class Component:
    """A node of the plant tree.

    Parameters
    ----------
    name : str
        Local name (no dots), e.g. ``oxidizer1``.
    parent : Component or None
        Parent node; ``None`` for the plant root.
    """

    def __init__(self, name: str, parent: Component | None = None) -> None:
        if not name or "." in name:
            raise ValueError(f"component name must be non-empty without dots, got {name!r}")
        self.name = name
        self.parent = parent
        self.children: dict[str, Component] = {}
        self.path: str = f"{parent.path}.{name}" if parent is not None else name
        if parent is not None:
            if name in parent.children:
                raise ValueError(f"duplicate component {self.path!r}")
            parent.children[name] = self

    def walk(self) -> list[Component]:
        """This component and all below it, depth-first in insertion order."""
        out: list[Component] = [self]
        for child in self.children.values():
            out.extend(child.walk())
        return out

    def find(self, path: str) -> Component:
        """The component at dotted ``path`` (absolute, starting with the root's name)."""
        head, _, rest = path.partition(".")
        if head != self.name:
            raise KeyError(path)
        node: Component = self
        for part in rest.split(".") if rest else ():
            node = node.children[part]
        return node

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"
