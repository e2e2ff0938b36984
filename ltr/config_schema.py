"""One typed schema per configuration section: the checks and the reference come from it.

Every section a command reads is declared once, as a pydantic schema:

* the hand-read sections (``labels``, ``text``, ``data.features``, ``ltr label``,
  ``ltr benchmark``, ``ltr sweep``, ``ltr simulate``, XGBoost's ``params``) are pydantic
  dataclasses or models made with :func:`section` / :class:`Section`: a field's type, its
  :class:`~ltr.checks.Range` (``Annotated[int, Range(ge=1, integer=True)]``), its
  ``Literal`` choices, its default and its ``Field(description=...)``;
* the sections LightningCLI builds from signatures (``data``: ``LtrDataModule``,
  ``model``: ``LtrModule``) keep their signatures (jsonargparse types the command line
  from them) and their ``RANGES``; :func:`signature_schema` makes the schema from the
  signature, those ranges, the ``Args:`` docstring and a few narrower types (choices,
  nested sections).

:func:`validate` checks a mapping against a schema before any work starts: types,
ranges, choices, unknown keys (``extra="forbid"``), required keys, and the cross-field
rules a schema states as validators. The first problem becomes a
:class:`~ltr.errors.ConfigError` naming the dotted key
(``config key 'model.lr': must be > 0, got -0.1``; list items as ``models[0].params``).
:mod:`ltr.config_reference` prints the same schemas as the reference of every key.

A validator reports a cross-field problem by raising :class:`~ltr.checks.FieldProblem`
with the key relative to what it validates (the translator adds the section's path), or a
:class:`ConfigError` with an absolute key (passed through as it is).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import operator
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictStr,
    TypeAdapter,
    ValidationError,
    WrapValidator,
    create_model,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ltr.checks import FieldProblem, Range
from ltr.errors import ConfigError

__all__ = ["Section", "section", "validate", "config_error", "signature_schema",
           "schema_fields", "Number", "Integer", "Str", "Bool", "PathStr", "FieldProblem",
           "Range", "paths_or", "unique_list"]

SECTION_CONFIG = ConfigDict(extra="forbid")

# strict scalars: no "5" -> 5, 2.0 -> 2, 1 -> True or 5 -> "5" coercion
Str = StrictStr
Bool = StrictBool
Number = Annotated[float, Range()]
Integer = Annotated[int, Range(integer=True)]


def _path(value: Any) -> Any:
    import os

    if isinstance(value, str | os.PathLike) and str(value).strip():
        return value
    raise FieldProblem(None, f"must be a path, got {value!r}")


PathStr = Annotated[str, PlainValidator(_path)]  # a non-empty path (str or os.PathLike)


class Section(BaseModel):
    """Base of a section declared as a pydantic model: unknown keys refused. ``MOVED``
    maps a refused key to what to set instead (said in its error)."""

    model_config = SECTION_CONFIG
    MOVED: typing.ClassVar[dict[str, str]] = {}


def section(prefix: str, *, frozen: bool = False) -> Callable[[type], type]:
    """Class decorator: ``cls`` as a pydantic dataclass (stays a dataclass for
    ``dataclasses.replace`` / ``asdict``) that refuses unknown keys, and whose
    construction raises :class:`ConfigError` naming ``<prefix>.<key>`` instead of
    pydantic's ``ValidationError``. When it is nested in another schema, the outer path
    is used instead."""

    def wrap(cls: type) -> type:
        dc = pydantic_dataclass(cls, config=SECTION_CONFIG, frozen=frozen)
        init = dc.__init__

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            try:
                init(self, *args, **kwargs)
            except ValidationError as exc:
                raise config_error(exc, getattr(self, "prefix", None) or prefix,
                                   type(self)) from exc

        dc.__init__ = __init__  # type: ignore[method-assign]
        dc.SECTION = prefix  # type: ignore[attr-defined]
        if "MOVED" not in vars(dc):
            dc.MOVED = {}  # type: ignore[attr-defined]
        return dc

    return wrap


@functools.cache
def _adapter(schema: Any) -> TypeAdapter:
    return TypeAdapter(schema)


def validate(schema: Any, values: Any, prefix: str = "") -> Any:
    """``values`` checked against ``schema`` (a section class or any type pydantic
    validates); returns the validated value. Raises :class:`ConfigError` naming the
    dotted key of the first problem (``prefix`` is the section's path)."""
    try:
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            return schema.model_validate(values)
        return _adapter(schema).validate_python(values)
    except ValidationError as exc:
        raise config_error(exc, prefix, schema) from exc


# ------------------------------------------------------------------ errors
_TAG = re.compile(r"^[\w-]+\[.*\]$|^\[key\]$")  # validator and dict-key tags in a loc


def dotted(prefix: str, loc: Sequence[Any]) -> str:
    """``prefix`` + ``loc`` as a config path: ``models[0].params.lr``."""
    key = prefix
    for part in loc:
        if isinstance(part, int):
            key = f"{key}[{part}]"
        elif key:
            key = f"{key}.{part}"
        else:
            key = str(part)
    return key


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


KINDS = {"int": "an integer", "float": "a number", "bool": "true or false",
         "string": "a string", "list": "a list", "tuple": "a list", "dict": "a mapping",
         "model": "a mapping", "dataclass": "a mapping", "model_attributes": "a mapping",
         "set": "a list", "none": "null"}


def _problem(error: dict[str, Any], schema: Any, loc: list[Any]) -> str:
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        owners = [c for c in _candidates(_resolve(schema, loc[:-1])) if _fields(c) is not None]
        if owners:
            moved = getattr(owners[0], "MOVED", {}) or {}
            if loc and loc[-1] in moved:
                return moved[loc[-1]]
            return f"unknown key; known: {sorted(_fields(owners[0]))}"
        return "unknown key"
    if kind in ("missing", "missing_argument", "missing_keyword_argument"):
        return "is required"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {_shown(value)}"
    if kind == "enum":
        return f"must be one of {ctx.get('expected')}, got {_shown(value)}"
    bounds = {"greater_than": "> {gt}", "greater_than_equal": ">= {ge}",
              "less_than": "< {lt}", "less_than_equal": "<= {le}",
              "too_short": "at least {min_length} long", "too_long":
              "at most {max_length} long", "string_pattern_mismatch": "like {pattern}"}
    if kind in bounds:
        return f"must be {bounds[kind].format(**ctx)}, got {_shown(value)}"
    base = re.sub(r"_(type|parsing|from_float|fraction)$", "", kind)
    if base in KINDS:
        return f"must be {KINDS[base]}, got {_shown(value)}"
    message = str(error.get("msg", kind))
    message = re.sub(r"^(Value|Assertion) error, ", "", message)
    return message


def config_error(exc: ValidationError, prefix: str, schema: Any = None) -> ConfigError:
    """The :class:`ConfigError` of the first problem in ``exc``: the dotted key
    (``prefix`` + the error's location) and what is wrong with the value."""
    error = exc.errors(include_url=False)[0]
    loc = [p for p in error["loc"] if not (isinstance(p, str) and _TAG.match(p))]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigError):
        return cause
    key = dotted(prefix, loc)
    if isinstance(cause, FieldProblem):
        return ConfigError(dotted(key, cause.key.split(".")) if cause.key else key,
                           cause.problem)
    return ConfigError(key or "config", _problem(error, schema, loc))


# ------------------------------------------------------------------ schema walking
def _fields(tp: Any) -> dict[str, FieldInfo] | None:
    if isinstance(tp, type):
        if issubclass(tp, BaseModel):
            return dict(tp.model_fields)
        fields = getattr(tp, "__pydantic_fields__", None)
        if fields is not None and dataclasses.is_dataclass(tp):
            return dict(fields)
    return None


def _candidates(tp: Any) -> list[Any]:
    """The types a value of ``tp`` may have (``Annotated`` and unions unwrapped)."""
    if tp is None:
        return []
    origin = get_origin(tp)
    if origin is Annotated:
        return _candidates(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [c for a in get_args(tp) for c in _candidates(a)]
    return [tp]


def _resolve(tp: Any, path: Sequence[Any]) -> Any:
    """The type at ``path`` inside ``tp`` (None when it cannot tell)."""
    for part in path:
        nxt = None
        for cand in _candidates(tp):
            fields = _fields(cand)
            origin = get_origin(cand)
            if fields is not None and isinstance(part, str) and part in fields:
                nxt = _annotation(fields[part])
            elif origin in (dict, Mapping) and isinstance(part, str):
                nxt = get_args(cand)[1] if get_args(cand) else Any
            elif origin in (list, tuple, Sequence) and isinstance(part, int):
                nxt = get_args(cand)[0] if get_args(cand) else Any
            if nxt is not None:
                break
        if nxt is None:
            return None
        tp = nxt
    return tp


def _annotation(info: FieldInfo) -> Any:
    if info.metadata:
        return Annotated[(info.annotation, *info.metadata)]  # type: ignore[misc]
    return info.annotation


# ------------------------------------------------------------------ signature schemas
def strict(tp: Any) -> Any:
    """``tp`` with its scalars strict (``int`` -> an integer, never ``2.0`` or ``'2'``;
    ``bool`` -> true or false, never ``1``)."""
    if tp is int:
        return Integer
    if tp is float:
        return Number
    if tp is bool:
        return Bool
    if tp is str:
        return Str
    origin = get_origin(tp)
    args = get_args(tp)
    if origin in (Union, types.UnionType):
        return functools.reduce(operator.or_, [strict(a) for a in args])
    if origin is list and args:
        return list[strict(args[0])]  # type: ignore[misc]
    if origin is dict and args:
        return dict[strict(args[0]), strict(args[1])]  # type: ignore[misc]
    return tp


def docstring_params(obj: Any) -> dict[str, str]:
    """``name -> description`` of a Google-style ``Args:`` section (``a, b: ...`` lines
    describe both)."""
    import docstring_parser

    out: dict[str, str] = {}
    for p in docstring_parser.parse(inspect.getdoc(obj) or "").params:
        text = " ".join((p.description or "").split())
        for name in p.arg_name.split(","):
            out[name.strip()] = text
    return out


def signature_schema(name: str, func: Callable[..., Any], *,
                     ranges: Mapping[str, Range] | None = None,
                     types_: Mapping[str, Any] | None = None,
                     skip: Sequence[str] = (), doc: Any = None,
                     validators: Mapping[str, Callable[..., Any]] | None = None,
                     extra_fields: Mapping[str, tuple[Any, Any]] | None = None,
                     moved: Mapping[str, str] | None = None) -> type[Section]:
    """A :class:`Section` model of ``func``'s keyword arguments: the signature's types
    (strict), ``ranges`` as :class:`Range` metadata, ``types_`` for narrower types
    (choices, nested sections), defaults from the signature, descriptions from ``doc``'s
    (default ``func``'s) ``Args:`` section; ``validators`` are model validators
    (``{name: fn(model) -> model}``, run after the fields)."""
    from pydantic import model_validator

    hints = typing.get_type_hints(func)
    docs = docstring_params(doc if doc is not None else func)
    ranges = ranges or {}
    types_ = types_ or {}
    fields: dict[str, Any] = {}
    for pname, p in inspect.signature(func).parameters.items():
        if pname in ("self", "cls") or pname in skip or p.kind in (p.VAR_KEYWORD,
                                                                   p.VAR_POSITIONAL):
            continue
        if pname in types_:
            tp = types_[pname]
        elif pname in ranges:
            tp = Annotated[Any, ranges[pname]]
        else:
            tp = strict(hints.get(pname, Any))
        if pname in ranges and pname in types_:
            tp = Annotated[tp, ranges[pname]]
        default = PydanticUndefined if p.default is inspect.Parameter.empty else p.default
        fields[pname] = (tp, Field(default, description=docs.get(pname, "")))
    for fname, spec in (extra_fields or {}).items():
        fields[fname] = spec
    namespace: dict[str, Any] = {}
    for vname, fn in (validators or {}).items():
        namespace[vname] = model_validator(mode="after")(fn)
    model = create_model(name, __base__=Section, __validators__=namespace or None,
                         **fields)
    model.MOVED = dict(moved or {})
    return model


# ------------------------------------------------------------------ helpers for schemas
def paths_or(schema: Any) -> Any:
    """``schema`` that also takes a path (a string): ``data.labels`` is a label config
    or a label folder."""

    def check(value: Any, handler: Callable[[Any], Any]) -> Any:
        import os

        if isinstance(value, str | os.PathLike):
            return value
        return handler(value)

    return Annotated[schema | None, WrapValidator(check), OR_PATH]


class _OrPath:
    """Marks a field that also takes a path (shown as ``| path`` in the reference)."""


OR_PATH = _OrPath()


def unique_list(item: Any, *, min_length: int = 0, what: str = "item") -> Any:
    """A list of ``item`` without repeats (and at least ``min_length`` of them)."""
    from pydantic import AfterValidator

    def check(values: list[Any]) -> list[Any]:
        if len(values) < min_length:
            raise FieldProblem(None, f"needs at least {min_length} {what}"
                               f"{'s' if min_length > 1 else ''}, got {values!r}")
        if len(set(values)) != len(values):
            raise FieldProblem(None, f"repeats a {what}: {values!r}")
        return values

    return Annotated[list[item], AfterValidator(check)]


# ------------------------------------------------------------------ the reference
@dataclasses.dataclass
class KeyDoc:
    """One key of a schema, for the reference."""

    key: str
    type: str
    default: str
    meaning: str
    nested: Any = None  # the section class of a nested mapping
    join: str = ""  # between the key and a nested key: "" (a mapping), "[i]" (a list of
    # them), ".<name>" (a mapping of them)


def type_name(tp: Any) -> str:
    """A short, readable name of a schema type (``int``, ``list[str]``, ``'a' | 'b'``)."""
    if tp is None or tp is type(None):
        return "null"
    if tp is Any:
        return "any"
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Annotated:
        return type_name(args[0])
    if origin in (Union, types.UnionType):
        names = [type_name(a) for a in args]
        return " | ".join(dict.fromkeys(n for n in names if n != "null")) + \
            (" | null" if "null" in names else "")
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (list, tuple, Sequence, set, frozenset):
        return f"list[{type_name(args[0])}]" if args else "list"
    if origin in (dict, Mapping):
        return f"dict[{type_name(args[0])}, {type_name(args[1])}]" if args else "mapping"
    if _fields(tp) is not None:
        return "mapping"
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _render_default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, str):
        return f"`{value!r}`" if value else "`''`"
    return f"`{value!r}`"


def _rule(info: FieldInfo) -> str:
    rules = [m for m in info.metadata if isinstance(m, Range)]

    def walk(tp: Any) -> None:
        origin = get_origin(tp)
        if origin is Annotated:
            rules.extend(m for m in get_args(tp)[1:] if isinstance(m, Range))
            walk(get_args(tp)[0])
        elif origin in (Union, types.UnionType):
            for arg in get_args(tp):
                walk(arg)

    walk(info.annotation)
    bounded = [r for r in rules if (r.gt, r.ge, r.lt, r.le) != (None,) * 4]
    if not bounded:
        return ""  # no bounds: the type says it all
    return f" *Must be {bounded[0].describe()}.*"


def schema_fields(schema: Any, prefix: str = "", skip: Sequence[str] = ()) -> list[KeyDoc]:
    """The keys of a section schema for the reference: type, default, meaning (the
    field's description) and its range."""
    out = []
    for name, info in (_fields(schema) or {}).items():
        if name in skip:
            continue
        nested, join = _nested(info.annotation)
        shown = info.annotation
        if any(isinstance(m, Range) for m in info.metadata):
            shown = _range_type(info)
        typ = type_name(shown)
        if any(isinstance(m, _OrPath) for m in info.metadata):
            typ = typ.replace(" | null", " | path | null")
        meaning = (info.description or "").strip()
        if meaning and not meaning.endswith("."):
            meaning += "."
        out.append(KeyDoc(f"{prefix}{name}", typ, _render_default(info),
                          f"{meaning}{_rule(info)}".strip(), nested, join))
    return out


def _nested(tp: Any) -> tuple[Any, str]:
    """The section a field holds (directly, as list items or as mapping values)."""
    for cand in _candidates(tp):
        if _fields(cand) is not None:
            return cand, ""
        origin, args = get_origin(cand), get_args(cand)
        if origin is list and args:
            inner = [c for c in _candidates(args[0]) if _fields(c) is not None]
            if inner:
                return inner[0], "[i]"
        if origin is dict and args:
            inner = [c for c in _candidates(args[1]) if _fields(c) is not None]
            if inner:
                return inner[0], ".<name>"
    return None, ""


def _range_type(info: FieldInfo) -> Any:
    rule = next(m for m in info.metadata if isinstance(m, Range))
    if info.annotation not in (Any, None):
        return info.annotation
    base: Any = int if rule.integer else float
    return base | None if rule.optional else base
