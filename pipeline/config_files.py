"""The user-editable YAML files (feed list, topic rules, gazetteer): each is described by a
pydantic model, and `load` reads one, validates it and turns any problem into one ConfigError
that names the file, the entry, the field and the setting that selects the file.

The models live next to the records they become (feeds.py, topics.py, nlp.py); they convert
into those frozen dataclasses, and only the records leave the loaders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainValidator,
    StringConstraints,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from pipeline.config import read_yaml
from pipeline.errors import ConfigError


class Model(BaseModel):
    # Unknown fields are typos; a bool is not a number nor a number a string; NaN and inf
    # would reach scores and their JSON evidence.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


@dataclass(frozen=True, slots=True)
class FileKind:
    """How messages speak of one kind of file."""

    what: str  # "topic rules"
    setting: str  # "NEWSROOM_TOPICS", the setting that selects the file
    shape: str  # what the whole file must be, for a file of another shape
    entries: str  # the list whose items messages name


class ConfigFile(Model):
    """The top level of a file."""

    kind: ClassVar[FileKind]

    @classmethod
    def document(cls, data: Any) -> Any:
        """The parsed YAML in the shape the model reads (short forms expanded)."""
        return data

    @classmethod
    def entry_name(cls, n: int, raw: Any) -> str:
        """How messages name the n-th entry (from 1), given as written: by its `name` if it has one."""
        name = raw.get("name") if isinstance(raw, dict) else None
        return f"entry {n} ({short(name.strip())})" if isinstance(name, str) and name.strip() else f"entry {n}"


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def problem(message: str, *loc: str | int) -> PydanticCustomError:
    """An error for a validator to raise; `loc` (field names, list indexes from 0) extends the
    error's location, so a check on a whole entry can still name the field at fault."""
    return PydanticCustomError("config", "{message}", {"message": message, "loc": loc})


def matching(pattern: str, like: str) -> Any:
    """A string type that must match `pattern` whole; `like` says what it looks like."""
    rx = re.compile(pattern)

    def check(value: Any) -> str:
        if isinstance(value, str) and rx.fullmatch(value):
            return value
        raise problem(f"must be {like}, got {short(value)}")

    return Annotated[str, PlainValidator(check)]


F = TypeVar("F", bound=ConfigFile)


def load(path: Path, model: type[F], *, setting: str | None = None) -> tuple[bytes, F]:
    """(raw bytes, validated model) of a config file; a ConfigError for any problem. Messages say
    which setting selects the file (`setting`, e.g. a command's argument, or the model's own)."""
    setting = setting or model.kind.setting
    raw, data = read_yaml(path, what=model.kind.what, setting=setting)
    data = model.document(data)
    try:
        return raw, model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    first = errors[0]
    # A typo of a required field is both unknown and missing: the unknown one says more.
    first = next((e for e in errors if e["type"] == "extra_forbidden" and e["loc"][:-1] == first["loc"][:-1]),
                 first)
    raise ConfigError(_message(Path(path), model, data, first, setting)) from None


# Pydantic's wording for the common errors, in the words of the files' headers.
_EXPECTED = {
    "dict_type": "a mapping", "list_type": "a list", "string_type": "a string",
    "string_too_short": "a non-empty string", "float_type": "a number", "int_type": "a whole number",
    "bool_type": "true or false",
}
_TEXT = {"too_short": "must not be empty", "greater_than_equal": "must be at least {ge:g}",
         "finite_number": "must be a finite number"}


def _message(path: Path, model: type[ConfigFile], data: Any, err: Any, setting: str) -> str:
    ctx = err.get("ctx") or {}
    loc = (*err["loc"], *ctx.get("loc", ()))
    where, field = [str(path)], ""
    # Follow the location through the document, so the field reads as written ("required[1].terms",
    # "supporting.terms.y"); union tags and "[key]" are not places in the file and are skipped.
    entries = data.get(model.kind.entries) if isinstance(data, dict) else None
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            field += f".{part}" if field else str(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            if node is entries:  # named by the entry instead
                where.append(model.entry_name(part + 1, node[part]))
                field = ""
            elif isinstance(node[part], dict | list):
                field += f"[{part + 1}]"  # an item of a list of strings is named by its value
        else:
            continue
        node = node[part]
    if err["type"] == "missing":
        field = ".".join(filter(None, [field, str(loc[-1])]))
    if field:
        where.append(f"field {short(field)}")
    return f"{': '.join(where)}: {_text(model, err, loc)} ({model.kind.what}; {setting} selects the file)"


def _text(model: type[ConfigFile], err: Any, loc: tuple) -> str:
    kind, ctx, got = err["type"], err.get("ctx") or {}, short(err["input"])
    if kind == "missing":
        info = _model_at(model, loc[:-1]).model_fields.get(loc[-1])
        return f"is required ({info.description})" if info is not None and info.description else "is required"
    if kind == "extra_forbidden":
        return f"unknown field; allowed: {', '.join(sorted(_model_at(model, loc[:-1]).model_fields))}"
    if kind == "config":
        return ctx["message"]
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "model_type":
        if not loc:
            return f"the file must be {model.kind.shape}, got {got}"
        return f"expected a mapping with the fields {', '.join(sorted(_model_at(model, loc).model_fields))}, got {got}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {got}"
    text = _TEXT[kind].format(**ctx) if kind in _TEXT else err["msg"][:1].lower() + err["msg"][1:]
    return text if isinstance(err["input"], dict | list) else f"{text}, got {got}"


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel]:
    """The model that `loc` ends in, for its field names and descriptions."""
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        model = (_model_in(field.annotation) if field is not None else None) or model
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next(filter(None, map(_model_in, get_args(annotation))), None)


def short(value: Any) -> str:
    """A value for a message: a scalar as written (cut short), a list or mapping by its kind."""
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
