"""YAML data files read strictly: a key written twice in one mapping is an error (PyYAML's SafeLoader
keeps the last one silently), and every error is one line naming the file, the line and the column.
Sweep files, presets and the demo's sweep are read through :func:`load_yaml`."""
from __future__ import annotations

from theory._checks import ParameterError

__all__ = ["load_yaml"]

_LOADER = None


class _DuplicateKey(Exception):
    pass


def _loader():
    """A SafeLoader subclass that refuses duplicate keys (built once; yaml imported on first use)."""
    global _LOADER
    if _LOADER is None:
        import yaml

        class StrictLoader(yaml.SafeLoader):
            """SafeLoader that refuses a key written twice in one mapping."""

        def construct_mapping(loader, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                seen: dict = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue  # '<<' merges: explicit keys may override merged ones
                    key, line = loader.construct_object(key_node, deep=True), key_node.start_mark.line + 1
                    try:
                        if key in seen:
                            raise _DuplicateKey(f"duplicate key {key!r} at line {line} (first at line {seen[key]})")
                        seen[key] = line
                    except TypeError:  # an unhashable key: SafeLoader's own error follows
                        continue
            return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

        StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
        _LOADER = StrictLoader
    return _LOADER


def _one_line(text) -> str:
    return " ".join(str(text).split())


def load_yaml(text: str, what: str):
    """The YAML document ``text`` (of ``what``, e.g. ``"sweep file X"``); a duplicate key or a syntax
    error raises a one-line :class:`ParameterError`: ``"<what>: duplicate key 'k' at line L (first at
    line M)"`` / ``"<what> is not valid YAML: <problem> at line L, column C"``."""
    import yaml

    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ParameterError(f"{what}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        where = exc.problem_mark or exc.context_mark
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        raise ParameterError(f"{what} is not valid YAML: {_one_line(exc.problem or exc.context)}{at}") from None
    except yaml.YAMLError as exc:
        raise ParameterError(f"{what} is not valid YAML: {_one_line(exc)}") from None
