"""Resolve the tag map against a live server and check every tag before it is used.

Resolution is batched (one TranslateBrowsePaths request for all browse paths, one Read per
attribute for all nodes) so a site with hundreds of tags connects in a few round trips. It
runs again after every reconnect: a PLC restart may renumber namespaces or change a program.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from asyncua import Client, Node, ua
from asyncua.common.ua_utils import get_base_data_type

from connectors.opcua.errors import TagError
from connectors.opcua.variants import (
    datatype_matches,
    dv_status,
    dv_value,
    type_name_of,
    variant_for_datatype,
    variant_type,
)
from twin.config.tags import Tag, browse_path_elements, is_node_id

_ACCEPTED_VALUE_RANKS = (-1, -2, -3)  # Scalar, Any, ScalarOrOneDimension


@dataclass(frozen=True)
class ResolvedTag:
    """A tag bound to a node of the connected server."""

    signal: str
    tag: Tag
    node: Node
    variant: ua.VariantType | None  # None for methods
    parent: Node | None = None  # the object a method is called on
    input_types: tuple[ua.VariantType | None, ...] = ()


def where(signal: str, endpoint: str, tag_node: str) -> str:
    """Common prefix of tag error messages: signal, endpoint and the configured node."""
    return f"tag {signal!r} (endpoint {endpoint!r}, node {tag_node!r})"


async def resolve_tags(client: Client, endpoint: str,
                       tags: Mapping[str, Tag]) -> dict[str, ResolvedTag]:
    """Bind every tag to a node and check class, data type, rank and access.

    Raises
    ------
    TagError
        For the first tag that does not fit; the message names signal, endpoint and node.
    """
    nodes = await _lookup_nodes(client, endpoint, {s: t.node for s, t in tags.items()})
    resolved: dict[str, ResolvedTag] = {}
    signals = list(tags)
    ids = [nodes[s].nodeid for s in signals]
    node_class = await client.uaclient.read_attributes(ids, ua.AttributeIds.NodeClass)
    for signal, dv in zip(signals, node_class, strict=True):
        tag = tags[signal]
        if not dv_status(dv).is_good():
            raise TagError(f"{where(signal, endpoint, tag.node)}: node does not exist on the "
                           f"server ({dv_status(dv).name})")
        want = ua.NodeClass.Method if tag.type == "Method" else ua.NodeClass.Variable
        got = ua.NodeClass(dv_value(dv))
        if got != want:
            raise TagError(f"{where(signal, endpoint, tag.node)}: node is a {got.name}, "
                           f"expected a {want.name} for type {tag.type}")
    variables = [s for s in signals if tags[s].type != "Method"]
    await _check_variables(client, endpoint, tags, nodes, variables)
    for signal in signals:
        tag = tags[signal]
        if tag.type == "Method":
            resolved[signal] = await _resolve_method(client, endpoint, signal, tag, nodes[signal])
        else:
            resolved[signal] = ResolvedTag(signal, tag, nodes[signal], variant_type(tag.type))
    return resolved


async def resolve_node(client: Client, endpoint: str, label: str, text: str) -> Node:
    """Resolve one NodeId or browse path (used for the heartbeat)."""
    return (await _lookup_nodes(client, endpoint, {label: text}))[label]


async def _lookup_nodes(client: Client, endpoint: str, texts: Mapping[str, str]) -> dict[str, Node]:
    out: dict[str, Node] = {}
    namespaces: list[str] | None = None
    paths: dict[str, ua.BrowsePath] = {}
    for signal, text in texts.items():
        if is_node_id(text):
            if text.startswith("nsu="):
                if namespaces is None:
                    namespaces = await client.get_namespace_array()
                uri, _, rest = text[4:].partition(";")
                if uri not in namespaces:
                    raise TagError(f"{where(signal, endpoint, text)}: namespace {uri!r} is not "
                                   "on the server")
                text = f"ns={namespaces.index(uri)};{rest}"
            try:
                out[signal] = client.get_node(ua.NodeId.from_string(text))
            except (ValueError, ua.UaError) as exc:
                raise TagError(f"{where(signal, endpoint, text)}: bad NodeId: {exc}") from None
        else:
            paths[signal] = _browse_path(text)
    if paths:
        results = await client.uaclient.translate_browsepaths_to_nodeids(list(paths.values()))
        for (signal, _), result in zip(paths.items(), results, strict=True):
            if not result.StatusCode.is_good() or not result.Targets:
                raise TagError(f"{where(signal, endpoint, texts[signal])}: browse path not found "
                               f"on the server ({result.StatusCode.name})")
            out[signal] = client.get_node(result.Targets[0].TargetId)
    return out


def _browse_path(text: str) -> ua.BrowsePath:
    elements = []
    for part in browse_path_elements(text):
        ns, sep, name = part.partition(":")
        qname = ua.QualifiedName(name, int(ns)) if sep else ua.QualifiedName(part, 0)
        element = ua.RelativePathElement(
            ReferenceTypeId=ua.NodeId(ua.Int32(ua.ObjectIds.HierarchicalReferences)),
            TargetName=qname)
        element.IsInverse = False  # type: ignore[assignment]  # the default is inverse
        elements.append(element)
    return ua.BrowsePath(StartingNode=ua.NodeId(ua.Int32(ua.ObjectIds.ObjectsFolder)),
                         RelativePath=ua.RelativePath(Elements=elements))


async def _check_variables(client: Client, endpoint: str, tags: Mapping[str, Tag],
                           nodes: Mapping[str, Node], signals: list[str]) -> None:
    if not signals:
        return
    ids = [nodes[s].nodeid for s in signals]
    read = client.uaclient.read_attributes
    datatypes = await read(ids, ua.AttributeIds.DataType)
    ranks = await read(ids, ua.AttributeIds.ValueRank)
    access = await read(ids, ua.AttributeIds.UserAccessLevel)
    base_cache: dict[ua.NodeId, int] = {}
    for i, signal in enumerate(signals):
        tag = tags[signal]
        head = where(signal, endpoint, tag.node)
        for dv, what in ((datatypes[i], "DataType"), (ranks[i], "ValueRank"),
                         (access[i], "UserAccessLevel")):
            if not dv_status(dv).is_good():
                raise TagError(f"{head}: cannot read {what} ({dv_status(dv).name})")
        dt: ua.NodeId = dv_value(datatypes[i])
        base = await _base_type(client, dt, base_cache)
        if not datatype_matches(tag.type, base):
            shown = type_name_of(base) if dt == ua.NodeId(ua.Int32(base)) else (
                f"{dt.to_string()} (based on {type_name_of(base)})")
            raise TagError(f"{head}: wrong type: the tag says {tag.type}, the node's DataType "
                           f"is {shown}")
        rank = int(dv_value(ranks[i]))
        if rank not in _ACCEPTED_VALUE_RANKS:
            raise TagError(f"{head}: node holds an array (ValueRank {rank}); tags are scalars")
        level = int(dv_value(access[i]))
        if tag.readable and not level & ua.AccessLevel.CurrentRead.mask:
            raise TagError(f"{head}: node is not readable for this user (tag access "
                           f"{tag.access!r})")
        if tag.writable and not level & ua.AccessLevel.CurrentWrite.mask:
            raise TagError(f"{head}: node is read-only for this user (tag access "
                           f"{tag.access!r})")


async def _base_type(client: Client, datatype: ua.NodeId, cache: dict[ua.NodeId, int]) -> int:
    """Built-in base data type id of ``datatype`` (Duration -> Double; enums -> Enumeration)."""
    if datatype.NamespaceIndex == 0 and isinstance(datatype.Identifier, int) \
            and datatype.Identifier < 30:
        return datatype.Identifier
    if datatype not in cache:
        try:
            base = await get_base_data_type(client.get_node(datatype))
            cache[datatype] = int(base.nodeid.Identifier)
        except ua.UaError:
            cache[datatype] = -1  # not derived from a built-in type: matches nothing
    return cache[datatype]


async def _resolve_method(client: Client, endpoint: str, signal: str, tag: Tag,
                          node: Node) -> ResolvedTag:
    head = where(signal, endpoint, tag.node)
    parent = await node.get_parent()
    if parent is None:
        raise TagError(f"{head}: method has no parent object to be called on")
    input_types: tuple[ua.VariantType | None, ...] = ()
    try:
        args_node = await node.get_child("0:InputArguments")
        arguments = await args_node.read_value()
        input_types = tuple(variant_for_datatype(a.DataType) for a in arguments or [])
    except ua.uaerrors.BadNoMatch:
        pass  # a method without input arguments has no InputArguments property
    return ResolvedTag(signal, tag, node, None, parent=parent, input_types=input_types)
