"""Finding an algorithm by its spec, and typing its arguments.

`--algorithm SPEC` resolves, in this order:
  1. a built-in name (BUILTIN);
  2. `module:Class`: the module is imported and the class taken from it (the only code a spec runs);
  3. the name of an installed plug-in: an entry point of the group `fednlp_bench.algorithms`
     (`[project.entry-points."fednlp_bench.algorithms"] myalgo = "my_pkg.algo:MyAlgo"` in its pyproject.toml).
Built-in names always mean the built-in: a plug-in that registers one is ignored, so no plug-in can pass for a
built-in. Two installed plug-ins with one name are an error.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import math
import re
import types
import typing
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from typing import Any, Mapping

from ..errors import UserError

ENTRY_POINT_GROUP = "fednlp_bench.algorithms"
BUILTIN: dict[str, str] = {
    "fedavg": "fednlp_bench.algorithms.fedavg:FedAvg",
    "fedprox": "fednlp_bench.algorithms.fedprox:FedProx",
    "fedopt": "fednlp_bench.algorithms.fedopt:FedOpt",
    "scaffold": "fednlp_bench.algorithms.scaffold:Scaffold",
    "fednova": "fednlp_bench.algorithms.fednova:FedNova",
    "feddyn": "fednlp_bench.algorithms.feddyn:FedDyn",
    "qfedavg": "fednlp_bench.algorithms.qfedavg:QFedAvg",
    "median": "fednlp_bench.algorithms.median:FedMedian",
    "trimmed_mean": "fednlp_bench.algorithms.trimmed_mean:TrimmedMean",
    "krum": "fednlp_bench.algorithms.krum:Krum",
    "multikrum": "fednlp_bench.algorithms.krum:MultiKrum",
}
_MODULE_SPEC = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_SUPPORTED_TYPES = "int, float, bool, str, Literal[...] or one of these | None"


@dataclass(frozen=True)
class LoadedAlgorithm:
    """An algorithm class and where it came from."""

    spec: str  # as given: a built-in name, module:Class or a plug-in name
    cls: type
    kind: str  # builtin | module | entry point
    distribution: str | None = None  # the installed distribution that holds it, when known
    version: str | None = None  # that distribution's version (the package version for built-ins)
    source_sha256: str | None = None  # sha256 of the file that defines the class

    @property
    def builtin(self) -> bool:
        return self.kind == "builtin"

    @property
    def qualname(self) -> str:
        return f"{self.cls.__module__}.{self.cls.__qualname__}"

    def record(self, args: Any) -> dict[str, Any]:
        """What a result records of the algorithm: spec, class, provenance and every argument (resolved)."""
        return {"spec": self.spec, "name": self.cls.name, "class": self.qualname, "kind": self.kind,
                "builtin": self.builtin, "api_version": self.cls.api_version, "args": args_dict(args),
                "distribution": self.distribution, "version": self.version, "source_sha256": self.source_sha256,
                "upload_vectors": upload_vectors(self.cls)}


def upload_vectors(cls: type) -> int:
    """Model-sized vectors a client of an Algorithm class uploads per round: its declared vectors (SCAFFOLD: the
    delta and the control-variate change), or its delta when the server gathers the updates themselves."""
    return len(cls.vectors) + (1 if cls.gather_updates and "delta" not in cls.vectors else 0)


def builtin_names() -> tuple[str, ...]:
    return tuple(BUILTIN)


def is_builtin(spec: str) -> bool:
    return spec in BUILTIN


def _source_sha256(cls: type) -> str | None:
    try:
        path = inspect.getsourcefile(cls)
        with open(path, "rb") as fh:  # type: ignore[arg-type]
            return hashlib.sha256(fh.read()).hexdigest()
    except (TypeError, OSError):
        return None


def _distribution_of(module: str) -> tuple[str | None, str | None]:
    """(distribution name, version) of the installed distribution holding a module's top-level package, if any."""
    top = module.split(".")[0]
    names = metadata.packages_distributions().get(top, [])
    if len(names) != 1:
        return None, None
    try:
        return names[0], metadata.version(names[0])
    except metadata.PackageNotFoundError:
        return names[0], None


def _import_class(spec: str, target: str) -> type:
    """The class `target` ("module:Class") names; one UserError when it cannot be had."""
    module_name, _, class_path = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - a plug-in's own import error is the user's problem, in one line
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(f"cannot import module '{module_name}' for --algorithm {spec} ({type(exc).__name__}"
                        f"{': ' + detail if detail else ''})",
                        "make it importable: pip install your package, or add its folder to PYTHONPATH") from None
    for part in class_path.split("."):
        if not hasattr(obj, part):
            raise UserError(f"module '{module_name}' has no '{class_path}' (--algorithm {spec})",
                            "check the class name after the colon")
        obj = getattr(obj, part)
    return obj


def _check_class(spec: str, cls: Any) -> None:
    from .base import API_VERSION, Algorithm

    if not (isinstance(cls, type) and issubclass(cls, Algorithm)):
        raise UserError(f"--algorithm {spec} is not a subclass of fednlp_bench.algorithms.Algorithm",
                        "derive your class from fednlp_bench.algorithms.Algorithm (docs/algorithms.md)")
    if cls.api_version != API_VERSION:
        raise UserError(f"--algorithm {spec} was written for Algorithm API version {cls.api_version}; this "
                        f"fednlp-bench has version {API_VERSION}", "update the plug-in, or install the "
                        "fednlp-bench version it was written for")
    if cls.Args is not None:
        if not dataclasses.is_dataclass(cls.Args):
            raise UserError(f"{spec}: Args must be a dataclass (got {cls.Args!r})", "decorate Args with @dataclass")
        for name, hint in typing.get_type_hints(cls.Args).items():
            if _base_type(hint) is None:
                raise UserError(f"{spec}: argument '{name}' has type {hint}, which the command line cannot give",
                                f"use {_SUPPORTED_TYPES}")
    if cls.supports_client_dp and ("delta" not in cls.vectors or "weight" not in cls.scalars or cls.gather_updates):
        raise UserError(f"{spec} declares supports_client_dp but does not upload Contribution.weighted_delta "
                        "(vectors 'delta', scalars 'weight', no gather_updates)",
                        "set supports_client_dp = False, or upload weighted_delta(delta, ctx.weight)")
    bad = [v for v in (*cls.vectors, *cls.scalars) if not isinstance(v, str) or not _NAME.match(v)]
    if bad or len(set(cls.vectors)) != len(cls.vectors) or len(set(cls.scalars)) != len(cls.scalars):
        raise UserError(f"{spec}: `vectors` and `scalars` must be distinct plain names", "fix the class attributes")


def _entry_points(name: str) -> list[metadata.EntryPoint]:
    return [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]


def installed_plugins() -> list[str]:
    """Names of the installed plug-ins (entry points of the group), built-in names left out."""
    return sorted({ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)} - set(BUILTIN))


@lru_cache(maxsize=64)
def load_algorithm(spec: str) -> LoadedAlgorithm:
    """Resolve `spec` (see the module docstring); raises UserError naming the problem and the fix."""
    from .. import __version__

    spec = str(spec).strip()
    if spec in BUILTIN:
        cls = _import_class(spec, BUILTIN[spec])
        return LoadedAlgorithm(spec, cls, "builtin", "fednlp-bench", __version__, _source_sha256(cls))
    if ":" in spec:
        if not _MODULE_SPEC.match(spec):
            raise UserError(f"--algorithm '{spec}' is not of the form module:Class",
                            "write e.g. my_package.my_module:MyAlgorithm")
        cls = _import_class(spec, spec)
        _check_class(spec, cls)
        dist, version = _distribution_of(spec.split(":")[0])
        return LoadedAlgorithm(spec, cls, "module", dist, version, _source_sha256(cls))
    found = _entry_points(spec) if _NAME.match(spec) else []
    dists = sorted({(ep.dist.name if ep.dist else "?", ep.dist.version if ep.dist else "?") for ep in found})
    if len(dists) > 1:
        raise UserError(f"two installed plug-ins register the algorithm name '{spec}' "
                        f"({', '.join(f'{d} {v}' for d, v in dists)})",
                        "uninstall one, or name the class directly as module:Class")
    if not found:
        plugins = installed_plugins()
        raise UserError(f"unknown --algorithm '{spec}'",
                        f"choose a built-in ({', '.join(BUILTIN)}), an installed plug-in "
                        f"({', '.join(plugins) if plugins else 'none installed'}) or your own class as module:Class")
    ep = found[0]
    if not _MODULE_SPEC.match(ep.value):
        raise UserError(f"the plug-in '{spec}' points at '{ep.value}', not at a module:Class",
                        f"register it as {spec} = \"my_pkg.module:MyAlgorithm\"")
    cls = _import_class(spec, ep.value)
    _check_class(spec, cls)
    return LoadedAlgorithm(spec, cls, "entry point", ep.dist.name if ep.dist else None,
                           ep.dist.version if ep.dist else None, _source_sha256(cls))


def _base_type(hint: Any) -> Any:
    """int | float | bool | str | a Literal, with None allowed around it; None when unsupported."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        return _base_type(rest[0]) if len(rest) == 1 else None
    if origin is typing.Literal:
        return hint
    return hint if hint in (int, float, bool, str) else None


def _optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def _convert(value: Any, hint: Any) -> Any:
    """`value` (text from the command line, or a YAML value) as `hint`; raises ValueError with the reason."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
        if _optional(hint):
            return None
        raise ValueError("it cannot be none")
    base = _base_type(hint)
    text = value.strip() if isinstance(value, str) else None
    if typing.get_origin(base) is typing.Literal:
        choices = typing.get_args(base)
        for c in choices:
            if value == c or (text is not None and text == str(c)):
                return c
        raise ValueError(f"choose one of: {', '.join(str(c) for c in choices)}")
    if base is bool:
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in ("true", "yes", "1", "false", "no", "0"):
            return text.lower() in ("true", "yes", "1")
        raise ValueError("expected true or false")
    if base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if text is not None and re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        raise ValueError("expected an integer")
    if base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out = float(value)
        elif text is not None:
            try:
                out = float(text)
            except ValueError:
                raise ValueError("expected a number") from None
        else:
            raise ValueError("expected a number")
        if not math.isfinite(out):
            raise ValueError("expected a finite number")
        return out
    if isinstance(value, str):
        return value
    raise ValueError("expected text")


def parse_args(loaded: LoadedAlgorithm, given: Mapping[str, Any]) -> Any:
    """The algorithm's Args built from `given` (text from --algorithm-arg or YAML values), typed and validated;
    None for an algorithm without Args. Raises one UserError naming the argument."""
    cls, name = loaded.cls.Args, loaded.spec
    if cls is None:
        if given:
            raise UserError(f"--algorithm {name} takes no --algorithm-arg (got {', '.join(sorted(given))})",
                            "leave out --algorithm-arg")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    known = ", ".join(f"{k} ({_type_name(hints[k])})" for k in fields)
    values = {}
    for key, value in given.items():
        if key not in fields:
            raise UserError(f"--algorithm {name} has no argument '{key}'", f"its arguments: {known}")
        try:
            values[key] = _convert(value, hints[key])
        except ValueError as exc:
            raise UserError(f"--algorithm-arg {key}={value} for {name}: {exc}",
                            f"pass {key} as {_type_name(hints[key])}") from None
    missing = [k for k, f in fields.items() if k not in values and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise UserError(f"--algorithm {name} needs the argument '{missing[0]}'",
                        f"pass --algorithm-arg {missing[0]}=VALUE ({_type_name(hints[missing[0]])})")
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:
        raise UserError(f"invalid --algorithm-arg for {name}: {str(exc).splitlines()[0] if str(exc) else exc}",
                        f"its arguments: {known}") from None


def _type_name(hint: Any) -> str:
    base = _base_type(hint)
    if typing.get_origin(base) is typing.Literal:
        text = " | ".join(str(c) for c in typing.get_args(base))
    else:
        text = getattr(base, "__name__", str(base))
    return text + (" or none" if _optional(hint) else "")


def args_dict(args: Any) -> dict[str, Any]:
    """Every argument of an Args instance as plain values ({} for None)."""
    return {} if args is None else {f.name: getattr(args, f.name) for f in dataclasses.fields(args)}


def non_default_args(args: Any) -> dict[str, Any]:
    """The arguments that differ from their defaults: what names a run and enters its settings key."""
    if args is None:
        return {}
    out = {}
    for f in dataclasses.fields(args):
        value = getattr(args, f.name)
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
        if default is dataclasses.MISSING or value != default:
            out[f.name] = value
    return out


def forget_loaded() -> None:
    """Drop cached lookups (after installing or removing a plug-in in this process)."""
    load_algorithm.cache_clear()
    importlib.invalidate_caches()
