"""Command-line options generated from a config dataclass (torch-free).

A field becomes an option when its metadata comes from :func:`option`; the option's name is
the field's (``batch_size`` -> ``--batch-size``) unless ``flag`` (a flag or a tuple of
them) says otherwise, its type,
default and ``nargs`` follow the field, and argparse keywords (``choices``, ``metavar``,
``required``, ...) pass through. Booleans: a ``False`` default gives a switch, a ``True``
default a ``--no-...`` switch (``flag``), ``bool | None`` a ``--x`` / ``--no-x`` pair.
:func:`config_from_args` builds the dataclass back from the parsed arguments.
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Callable

_SCALARS = {"int": int, "float": float, "str": None}


def option(help: str | None = None, *, flag: str | None = None, convert: Callable[[Any], Any] | None = None,
           aliases: tuple[tuple[str, dict], ...] = (), **argparse_kwargs) -> dict:
    """Field metadata that makes the field an option: ``field(default=..., metadata=option(...))``.
    ``convert`` maps the parsed value to the field's (e.g. KEY=VALUE pairs to a dict);
    ``aliases`` are extra ``(flag, argparse keywords)`` options writing the same field."""
    return {"option": {"help": help, "flag": flag, "convert": convert, "aliases": aliases,
                       "kwargs": argparse_kwargs}}


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _argparse_kwargs(f: dataclasses.Field, spec: dict) -> tuple[tuple[str, ...], dict, list[tuple[str, dict]]]:
    """The flags, argparse keywords and extra options of field ``f``."""
    flag = spec["flag"] or "--" + f.name.replace("_", "-")
    flags = flag if isinstance(flag, tuple) else (flag,)
    kw: dict = {"dest": f.name, "help": spec["help"]}
    ann, default = str(f.type).replace(" ", ""), _default(f)
    extra: list[tuple[str, dict]] = []
    if ann == "bool":
        kw.update(action="store_false" if default else "store_true")
    elif ann == "bool|None":
        kw.update(action="store_true", default=None)
        extra.append(("--no-" + flags[-1][2:], {"dest": f.name, "action": "store_false"}))
    elif ann.startswith("list["):
        elem = _SCALARS[ann[5:-1]]
        kw.update(nargs="+", default=list(default))
        if elem is not None:
            kw["type"] = elem
    elif ann in _SCALARS:
        kw["default"] = default
        if _SCALARS[ann] is not None:
            kw["type"] = _SCALARS[ann]
    kw.update(spec["kwargs"])
    if kw.get("required"):
        kw.pop("default", None)
    return flags, kw, extra + [(a_flag, {"dest": kw["dest"], **a_kw}) for a_flag, a_kw in spec["aliases"]]


def option_fields(cls) -> list[dataclasses.Field]:
    """The fields of ``cls`` that have an option."""
    return [f for f in dataclasses.fields(cls) if "option" in f.metadata]


def add_options(parser: argparse.ArgumentParser, cls) -> None:
    """Add an option for every :func:`option` field of the dataclass ``cls``."""
    for f in option_fields(cls):
        flags, kw, extra = _argparse_kwargs(f, f.metadata["option"])
        parser.add_argument(*flags, **kw)
        for e_flag, e_kw in extra:
            parser.add_argument(e_flag, **e_kw)


def config_from_args(cls, args: argparse.Namespace, **values):
    """``cls`` from parsed arguments (``values`` fill or override fields); lists are copied."""
    for f in option_fields(cls):
        if f.name in values:
            continue
        spec = f.metadata["option"]
        value = getattr(args, spec["kwargs"].get("dest", f.name))
        if spec["convert"] is not None:
            value = spec["convert"](value)
        values[f.name] = list(value) if isinstance(value, (list, tuple)) else value
    return cls(**values)
