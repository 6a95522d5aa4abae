"""Saved sessions: the whole state of a dashboard in one JSON file, and its strict reloading.

``panel.save(path)`` writes, and ``Panel.load(path)`` (a classmethod: it returns a new panel of
the class the file names) reads, one JSON document::

    {"format": "gapscope-session", "schema": 1, "panel": "<registry key>",
     "gapscope_version": "…", "saved_utc": "…",
     "state": {"params": {…}, "preset": …, "extras": {…}, "widgets": {…}, "extra": {…}},
     "sha256": "<hex digest of the canonical JSON of everything above>"}

* ``params`` — every slider's value (checked against its spec's hard bounds on load);
* ``preset`` — the preset dropdown's choice, if the panel has one (applied first, then overridden);
* ``extras`` — the values of the panel's ``make_extras`` controls (checked against their options);
* ``widgets`` — other input widgets of the panel found on it (``Panel.session_widgets``);
* ``extra`` — ``Panel.state_extra()``: values that are not widgets (a tip position, YSR channels; for the
  fit panel: the data source with its sha256 and — compressed and base64-encoded — the data
  themselves, the model, the parameter table, the fit result, the fit window …).

Nothing in a file is executed or unpickled: it is JSON, parsed strictly (duplicate keys and
NaN/Infinity are refused), every field is checked (known keys only, types, values inside the
specs' bounds, choices among the widget's options) *before* anything in the panel changes, and
files above :data:`MAX_BYTES` are refused before they are read.

**Integrity.**  ``sha256`` is a plain SHA-256 digest over the canonical JSON body
(:func:`canonical`: sorted keys, no spaces, UTF-8).  It detects corruption and careless edits
(a truncated download, a hand-edited number); it does *not* stop a deliberate forger, who can
recompute it.  No HMAC with a server key was chosen on purpose: sessions are meant to travel
between colleagues and servers, and a forged file can in any case do no more than set values a
user could set with the controls, because the validation, not the digest, is what protects the
server.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import logging
import math
import os
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .dataroot import uploaded_files

if TYPE_CHECKING:
    from .panel import Panel

__all__ = ["SessionError", "FORMAT", "SCHEMA", "MAX_BYTES", "canonical", "digest", "document", "dumps", "parse",
           "save", "load", "panel_key", "jsonable", "pack_bytes", "unpack_bytes", "pack_array", "unpack_array",
           "SessionBar", "Check"]

log = logging.getLogger("gapscope.widgets")

FORMAT = "gapscope-session"
#: version of the layout of a session file (a change of layout raises it; older files are refused by name)
SCHEMA = 1
#: largest session file read (bytes); a file above it is refused before it is read
MAX_BYTES = 64 * 2 ** 20
#: longest string accepted in a session (text boxes, file names, messages)
MAX_TEXT = 100_000
#: most entries of one list or mapping of a generic panel state
MAX_ITEMS = 10_000
TOP_KEYS = ("format", "schema", "panel", "gapscope_version", "saved_utc", "state", "sha256")
STATE_KEYS = ("params", "preset", "extras", "widgets", "extra")


class SessionError(ValueError):
    """A session file that cannot be saved or is refused on load; the message says why, in words."""


# ----------------------------------------------------------------------------- JSON forms
def jsonable(value: Any, where: str = "value") -> Any:
    """``value`` as JSON data: tuples become lists, numpy scalars Python numbers, NaN/inf ``None``.

    Raises
    ------
    TypeError
        For anything else (a panel with such state gives its own ``state_extra``).
    """
    import numpy as np

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        x = float(value)
        return x if math.isfinite(x) else None
    if isinstance(value, (list, tuple)):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: key {k!r} is not text")
            out[k] = jsonable(v, f"{where}.{k}")
        return out
    raise TypeError(f"{where}: a {type(value).__name__} cannot be saved in a session")


def canonical(body: Mapping[str, Any]) -> bytes:
    """The bytes the digest covers: JSON with sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def digest(body: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of :func:`canonical` of ``body`` without its ``sha256`` field."""
    return hashlib.sha256(canonical({k: v for k, v in body.items() if k != "sha256"})).hexdigest()


def pack_bytes(data: bytes) -> str:
    """Bytes → zlib-compressed, base64 text (for data embedded in a session)."""
    return base64.b64encode(zlib.compress(data, 6)).decode("ascii")


def unpack_bytes(text: Any, size: int, where: str) -> bytes:
    """Inverse of :func:`pack_bytes`, refusing anything that does not decompress to exactly ``size`` bytes
    (a decompression bomb stops at ``size + 1``)."""
    if not isinstance(text, str):
        raise SessionError(f"{where}: expected base64 text, got {_kind(text)}")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
        z = zlib.decompressobj()
        out = z.decompress(raw, size + 1)
    except (ValueError, UnicodeEncodeError, zlib.error):
        raise SessionError(f"{where}: not valid compressed base64 data") from None
    if len(out) != size or not z.eof:
        raise SessionError(f"{where}: holds a different amount of data than the {size} bytes it declares")
    return out


def pack_array(a: Any) -> dict[str, Any]:
    """A float array as ``{"shape": [...], "data": <zlib+base64 of little-endian float64>}``."""
    import numpy as np

    arr = np.ascontiguousarray(np.asarray(a, dtype="<f8"))
    return {"shape": list(arr.shape), "data": pack_bytes(arr.tobytes())}


def unpack_array(obj: Any, shape: tuple[int, ...], where: str) -> Any:
    """Inverse of :func:`pack_array` for an array that must have ``shape``."""
    import numpy as np

    c = Check(where)
    c.keys(obj, ("shape", "data"))
    if obj["shape"] != list(shape):
        raise SessionError(f"{where}: shape {obj['shape']} does not match the data's {list(shape)}")
    n = int(np.prod(shape)) if shape else 1
    raw = unpack_bytes(obj["data"], 8 * n, f"{where}.data")
    return np.frombuffer(raw, dtype="<f8").reshape(shape).copy()


def _kind(v: Any) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "text", list: "a list",
            dict: "a mapping", type(None): "null"}.get(type(v), type(v).__name__)


class Check:
    """Field checks that raise :class:`SessionError` naming the field (``where``)."""

    def __init__(self, where: str) -> None:
        self.where = where

    def at(self, name: str | int) -> Check:
        return Check(f"{self.where}[{name}]" if isinstance(name, int) else f"{self.where}.{name}")

    def fail(self, text: str) -> SessionError:
        return SessionError(f"{self.where}: {text}")

    def keys(self, obj: Any, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise self.fail(f"expected a mapping, got {_kind(obj)}")
        unknown = sorted(set(obj) - set(required) - set(optional))
        if unknown:
            raise self.fail(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}")
        missing = [k for k in required if k not in obj]
        if missing:
            raise self.fail(f"missing field{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
        return obj

    def mapping(self, obj: Any, limit: int = MAX_ITEMS) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise self.fail(f"expected a mapping, got {_kind(obj)}")
        if len(obj) > limit:
            raise self.fail(f"{len(obj)} entries (at most {limit})")
        return obj

    def items(self, v: Any, limit: int = MAX_ITEMS) -> list[Any]:
        if not isinstance(v, list):
            raise self.fail(f"expected a list, got {_kind(v)}")
        if len(v) > limit:
            raise self.fail(f"{len(v)} entries (at most {limit})")
        return v

    def boolean(self, v: Any) -> bool:
        if not isinstance(v, bool):
            raise self.fail(f"expected true or false, got {_kind(v)}")
        return v

    def integer(self, v: Any, lo: int = 0, hi: int = 2 ** 53) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(f"expected an integer, got {_kind(v)}")
        if not lo <= v <= hi:
            raise self.fail(f"{v} lies outside [{lo}, {hi}]")
        return v

    def number(self, v: Any, lo: float = -math.inf, hi: float = math.inf, *, none: bool = False) -> float | None:
        if v is None and none:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.fail(f"expected a number, got {_kind(v)}")
        x = float(v)
        if not math.isfinite(x):
            raise self.fail("not a finite number")
        if not lo <= x <= hi:
            raise self.fail(f"{x:g} lies outside [{lo:g}, {hi:g}]")
        return x

    def text(self, v: Any, limit: int = MAX_TEXT, *, none: bool = False) -> str | None:
        if v is None and none:
            return None
        if not isinstance(v, str):
            raise self.fail(f"expected text, got {_kind(v)}")
        if len(v) > limit:
            raise self.fail(f"text of {len(v)} characters (at most {limit})")
        return v

    def choice(self, v: Any, options: Any) -> Any:
        opts = list(options)
        if v not in opts or type(v) is not type(opts[opts.index(v)]):
            shown = ", ".join(map(repr, opts[:8])) + (" …" if len(opts) > 8 else "")
            raise self.fail(f"{v!r} is not one of the choices ({shown})")
        return v

    def pair(self, v: Any, lo: float = -math.inf, hi: float = math.inf) -> tuple[float, float]:
        if not isinstance(v, list) or len(v) != 2:
            raise self.fail(f"expected a pair [low, high], got {_kind(v)}")
        a, b = (self.at(i).number(x, lo, hi) for i, x in enumerate(v))
        assert a is not None and b is not None
        if a > b:
            raise self.fail(f"low {a:g} above high {b:g}")
        return a, b

    def like(self, template: Any, v: Any) -> Any:
        """``v`` must have the JSON shape of ``template`` (the panel's own current value)."""
        if isinstance(template, bool):
            return self.boolean(v)
        if isinstance(template, int):
            return self.integer(v, -2 ** 53, 2 ** 53)
        if isinstance(template, float):
            return self.number(v)
        if isinstance(template, str):
            return self.text(v)
        if template is None:
            if v is None or isinstance(v, (str, bool, int, float)):
                return self.number(v) if isinstance(v, float) else v
            raise self.fail(f"expected a single value, got {_kind(v)}")
        if isinstance(template, list):
            if not isinstance(v, list):
                raise self.fail(f"expected a list, got {_kind(v)}")
            if template:
                if len(v) != len(template):
                    raise self.fail(f"expected {len(template)} entries, got {len(v)}")
                return [self.at(i).like(t, x) for i, (t, x) in enumerate(zip(template, v, strict=True))]
            if len(v) > MAX_ITEMS:
                raise self.fail(f"{len(v)} entries (at most {MAX_ITEMS})")
            return [self.at(i).like(None, x) for i, x in enumerate(v)]
        if isinstance(template, dict):
            self.mapping(v)
            first = next(iter(template.values())) if template else None
            out = {}
            for k, x in v.items():
                self.at("key").text(k, 200)
                out[k] = self.at(k).like(template.get(k, first), x)
            return out
        raise self.fail("cannot be checked")


# ----------------------------------------------------------------------------- panel state (generic)
INPUTS = (w.Dropdown, w.ToggleButtons, w.RadioButtons, w.Select, w.SelectionSlider, w.Checkbox, w.ToggleButton,
          w.Text, w.Textarea, w.FloatText, w.IntText, w.BoundedFloatText, w.BoundedIntText, w.FloatSlider,
          w.IntSlider, w.FloatRangeSlider, w.IntRangeSlider, w.FloatLogSlider)


def discover_widgets(panel: Panel) -> dict[str, w.Widget]:
    """Input widgets held as attributes of ``panel`` that are neither parameters, extras, the preset, nor
    the base's own controls (e.g. a "Map at" dropdown, a tip-position box, a text of measured points)."""
    taken = {id(c) for c in panel.controls.values()} | {id(c) for c in panel.extras.values()}
    taken |= {id(getattr(panel, n, None)) for n in ("preset", "manual")}
    out = {}
    for name, v in vars(panel).items():
        if not name.startswith("_") and isinstance(v, INPUTS) and id(v) not in taken:
            out[name] = v
    return out


def widget_value(widget: w.Widget) -> Any:
    return jsonable(widget.value)


def check_widget(widget: w.Widget, v: Any, c: Check) -> Any:
    """The value to give ``widget`` for the saved ``v``, or :class:`SessionError`."""
    if hasattr(widget, "_options_values"):
        for opt in widget._options_values:
            if json.dumps(jsonable(opt)) == json.dumps(v):
                return opt
        labels = [jsonable(o) for o in widget._options_values]
        c.choice(v, labels)          # raises, naming the choices
    if isinstance(widget, (w.Checkbox, w.ToggleButton)):
        return c.boolean(v)
    if isinstance(widget, (w.FloatRangeSlider, w.IntRangeSlider)):
        lo, hi = c.pair(v, widget.min, widget.max)
        return (int(lo), int(hi)) if isinstance(widget, w.IntRangeSlider) else (lo, hi)
    if isinstance(widget, (w.IntText, w.IntSlider, w.BoundedIntText)):
        return c.integer(v, int(getattr(widget, "min", -2 ** 53)), int(getattr(widget, "max", 2 ** 53)))
    if isinstance(widget, (w.FloatText, w.FloatSlider, w.BoundedFloatText, w.FloatLogSlider)):
        lo, hi = getattr(widget, "min", -math.inf), getattr(widget, "max", math.inf)
        if isinstance(widget, w.FloatLogSlider):
            lo, hi = widget.base ** widget.min, widget.base ** widget.max
        return c.number(v, lo, hi)
    if isinstance(widget, (w.Text, w.Textarea)):
        return c.text(v)
    return c.like(widget_value(widget), v)


def panel_state(panel: Panel) -> dict[str, Any]:
    """The JSON-able state of ``panel`` (see the module docstring)."""
    preset = getattr(panel, "preset", None)
    return {
        "params": {n: float(c.value) for n, c in panel.controls.items()},
        "preset": jsonable(preset.value) if isinstance(preset, w.Dropdown) else None,
        "extras": {n: widget_value(c) for n, c in panel.extras.items() if hasattr(c, "value")},
        "widgets": {n: widget_value(c) for n, c in panel.session_widgets().items()},
        "extra": panel.state_extra(),
    }


def generic_extra(panel: Panel) -> dict[str, Any]:
    """``extra_values()`` as JSON; values that cannot be saved are left out (and logged)."""
    out = {}
    for k, v in panel.extra_values().items():
        try:
            out[k] = jsonable(v, k)
        except TypeError as exc:
            log.warning("session: %s", exc)
    return out


def check_state(panel: Panel, state: Any) -> dict[str, Any]:
    """Every field of ``state`` checked against ``panel``; returns what :func:`apply_state` applies."""
    c = Check("state")
    c.keys(state, STATE_KEYS)
    params = c.at("params").keys(state["params"], tuple(panel.controls))
    out_params = {}
    for name, v in params.items():
        f = c.at("params").at(name)
        spec = panel.controls[name].param.spec
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise f.fail(f"expected a number, got {_kind(v)}")
        try:
            out_params[name] = spec.check(v)
        except ValueError as exc:
            raise f.fail(str(exc)) from None
    preset = getattr(panel, "preset", None)
    if isinstance(preset, w.Dropdown):
        out_preset = check_widget(preset, state["preset"], c.at("preset"))
    elif state["preset"] is not None:
        raise c.at("preset").fail("this panel has no presets")
    else:
        out_preset = None
    extras = {n: x for n, x in panel.extras.items() if hasattr(x, "value")}
    c.at("extras").keys(state["extras"], tuple(extras))
    out_extras = {n: check_widget(extras[n], v, c.at("extras").at(n)) for n, v in state["extras"].items()}
    widgets = panel.session_widgets()
    c.at("widgets").keys(state["widgets"], (), tuple(widgets))
    out_widgets = {n: check_widget(widgets[n], v, c.at("widgets").at(n)) for n, v in state["widgets"].items()}
    out_extra = panel.check_extra(state["extra"], c.at("extra"))
    return {"params": out_params, "preset": out_preset, "extras": out_extras, "widgets": out_widgets,
            "extra": out_extra}


def check_generic_extra(panel: Panel, extra: Any, c: Check) -> dict[str, Any]:
    """Known keys only, each shaped like the panel's own current value."""
    template = generic_extra(panel)
    c.keys(extra, (), tuple(template))
    return {k: c.at(k).like(template[k], v) for k, v in extra.items()}


def apply_generic_extra(panel: Panel, extra: Mapping[str, Any]) -> None:
    """``set`` the non-widget values, collections first (e.g. all channels before the selected one)."""
    ordered = sorted(extra.items(), key=lambda kv: not isinstance(kv[1], (dict, list)))
    for k, v in ordered:
        panel.set(**{k: v})


def apply_state(panel: Panel, checked: Mapping[str, Any]) -> None:
    """Apply a checked state in one update: preset, other widgets, extra values, extras, then parameters
    (so what a preset or a widget's callback sets is overridden by the saved values)."""
    with panel.batch():
        preset = getattr(panel, "preset", None)
        if checked["preset"] is not None and isinstance(preset, w.Dropdown):
            preset.value = checked["preset"]
        widgets = panel.session_widgets()
        for n, v in checked["widgets"].items():
            widgets[n].value = v
        panel.restore_extra(checked["extra"])
        panel.set(**checked["extras"])
        panel.set(**checked["params"])


# ----------------------------------------------------------------------------- the file
def panel_key(cls: type) -> str:
    """The registry key of a panel class (sessions exist for registered panels only)."""
    from .registry import PANELS

    module = cls.__module__.rsplit(".", 1)[-1]
    for key, e in PANELS.items():
        if e.target == f"{module}:{cls.__name__}":
            return key
    raise SessionError(f"{cls.__name__} is not a registered panel: sessions are for the dashboards in the registry")


def document(panel: Panel) -> dict[str, Any]:
    """The session document of ``panel``, with its digest."""
    from gapscope import __version__

    body = {"format": FORMAT, "schema": SCHEMA, "panel": panel_key(type(panel)), "gapscope_version": __version__,
            "saved_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "state": panel.state()}
    try:
        canonical(body)
    except ValueError as exc:           # NaN left in a panel's state: a bug, said plainly
        raise SessionError(f"the panel's state is not finite JSON: {exc}") from None
    body["sha256"] = digest(body)
    return body


def dumps(panel: Panel) -> bytes:
    """The session file's bytes (indented JSON: diffable and readable)."""
    return (json.dumps(document(panel), indent=1, ensure_ascii=False, allow_nan=False) + "\n").encode()


def save(panel: Panel, path: str | os.PathLike) -> Path:
    """Write ``panel``'s session to ``path`` (a script's path; the dashboards go through the data folder)."""
    target = Path(path)
    target.write_bytes(dumps(panel))
    return target


def _refuse_constant(name: str) -> Any:
    raise SessionError(f"the file holds {name}, which is not a number a session can hold")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise SessionError(f"the field {k!r} appears twice")
        out[k] = v
    return out


def parse(data: bytes, *, max_bytes: int | None = None) -> dict[str, Any]:
    """A session file's bytes → its checked envelope (format, schema, digest, panel); the state is checked
    by the panel it is loaded into.  Raises :class:`SessionError` saying why a file is refused."""
    from .registry import PANELS

    limit = MAX_BYTES if max_bytes is None else max_bytes
    if len(data) > limit:
        raise SessionError(f"the file is {len(data) / 2 ** 20:.1f} MiB, more than the {limit / 2 ** 20:.0f} MiB "
                           "a session may have")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SessionError("this is not a gapscope session (not UTF-8 text)") from None
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise SessionError(f"this is not a gapscope session: not valid JSON ({exc.msg} at line {exc.lineno}, "
                           f"column {exc.colno})") from None
    except RecursionError:
        raise SessionError("this is not a gapscope session: nested too deeply") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SessionError("this is not a gapscope session (its 'format' is not 'gapscope-session')")
    c = Check("session")
    schema = doc.get("schema")
    if schema != SCHEMA or isinstance(schema, bool):
        raise SessionError(f"session schema {schema!r} is not the one this gapscope reads ({SCHEMA}); "
                           "save the session again with this version")
    c.keys(doc, TOP_KEYS)
    sha = c.at("sha256").text(doc["sha256"], 64)
    if sha != digest(doc):
        raise SessionError("the file was changed after it was saved: its sha256 digest does not match its content "
                           "(a damaged download or an edit). Refused; nothing was changed.")
    key = c.at("panel").text(doc["panel"], 64)
    if key not in PANELS:
        raise SessionError(f"session of an unknown dashboard {key!r} (known: {', '.join(PANELS)})")
    c.at("gapscope_version").text(doc["gapscope_version"], 64)
    c.at("saved_utc").text(doc["saved_utc"], 64)
    c.at("state").mapping(doc["state"])
    return doc


def read_file(path: str | os.PathLike, max_bytes: int | None = None) -> bytes:
    limit = MAX_BYTES if max_bytes is None else max_bytes
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError:
        raise SessionError(f"{p.name}: no such file") from None
    if size > limit:
        raise SessionError(f"{p.name}: {size / 2 ** 20:.1f} MiB is more than the {limit / 2 ** 20:.0f} MiB a "
                           "session may have")
    with open(p, "rb") as fh:
        return fh.read(limit + 1)


def load(path: str | os.PathLike | bytes, *, cls: type | None = None, **kwargs: Any) -> Panel:
    """A new panel (of the class the file names) in the saved state; waits until it is drawn.

    ``cls`` (when it is not the :class:`Panel` base) must be the file's panel class; ``kwargs`` go to its
    constructor (e.g. ``data_root`` of the fit panel).
    """
    from .panel import Panel
    from .registry import PANELS

    data = path if isinstance(path, bytes) else read_file(path)
    doc = parse(data)
    target = PANELS[doc["panel"]].factory
    if cls is not None and cls is not Panel and not issubclass(target, cls):
        raise SessionError(f"this is a session of the {PANELS[doc['panel']].title!r} dashboard, not of "
                           f"{cls.__name__}")
    panel = target(**kwargs)
    panel.restore(doc["state"])
    panel.wait()
    return panel


def restore_document(panel: Panel, doc: Mapping[str, Any]) -> list[str]:
    """Check then apply a parsed document to an existing panel; returns notes (version, inexact fields)."""
    from gapscope import __version__

    from .registry import PANELS

    key = panel_key(type(panel))
    if doc["panel"] != key:
        raise SessionError(f"this is a session of the {PANELS[doc['panel']].title!r} dashboard; open it there")
    panel.restore(doc["state"])
    notes = []
    if doc["gapscope_version"] != __version__:
        notes.append(f"saved with gapscope {doc['gapscope_version']}, loaded into {__version__}")
    return notes


# ----------------------------------------------------------------------------- the dashboard's controls
#: a session larger than this is written to the data folder's sessions/ instead of offered as a link
DOWNLOAD_LIMIT = 20 * 2 ** 20


class SessionBar:
    """"Save session" (a download link), "Load session" (an upload), and a session file in the data folder.

    Parameters
    ----------
    panel : Panel
        The panel whose state is saved and restored.
    data_root : callable
        Returns the :class:`~.dataroot.DataRoot` server-side paths are confined to (asked only when used).
    """

    def __init__(self, panel: Panel, data_root: Callable[[], Any]) -> None:
        self.panel, self._data_root = panel, data_root
        self.save_button = w.Button(description="Save session", icon="download", layout=w.Layout(width="auto"),
                                    tooltip="the whole dashboard (data, model, parameters, fit, view) as one JSON file")
        self.save_button.add_class("gs-save-session")
        self.upload = w.FileUpload(accept=".json", multiple=False, description="Load session",
                                   layout=w.Layout(width="auto"), tooltip="a gapscope session file (.json)")
        self.upload.add_class("gs-load-session")
        self.path = w.Text(placeholder="or a session file in the data folder", layout=w.Layout(width="15em"))
        self.path.add_class("gs-session-path")
        self.open_button = w.Button(description="Open", icon="folder-open", layout=w.Layout(width="auto"))
        self.write_button = w.Button(description="Write", icon="save", layout=w.Layout(width="auto"),
                                     tooltip="write the session to this name in the data folder")
        self.download = w.HTML()
        self.download.add_class("gs-session-download")
        self.widget = w.VBox([w.HBox([self.save_button, self.upload], layout=w.Layout(flex_flow="row wrap")),
                              w.HBox([self.path, self.open_button, self.write_button],
                                     layout=w.Layout(flex_flow="row wrap")), self.download])

    def observers(self) -> list[tuple[w.Widget, str | None, Callable]]:
        return [(self.save_button, None, lambda _: self.offer()),
                (self.upload, "value", self._uploaded),
                (self.open_button, None, lambda _: self.open_path(self.path.value)),
                (self.write_button, None, lambda _: self.write_path(self.path.value))]

    def _say(self, text: str, level: str) -> None:
        self.panel.show_message(text, level=level)

    def file_name(self) -> str:
        return f"gapscope-{panel_key(type(self.panel))}-session.json"

    def offer(self) -> None:
        """A download link of the session (past :data:`DOWNLOAD_LIMIT`: a file in the data folder)."""
        try:
            content = dumps(self.panel)
        except (SessionError, TypeError, ValueError) as exc:
            self._say(f"The session cannot be saved: {exc}", "error")
            return
        name = self.file_name()
        if len(content) > DOWNLOAD_LIMIT:
            folder = self._data_root().root / "sessions"
            folder.mkdir(exist_ok=True)
            (folder / name).write_bytes(content)
            self._say(f"The session is {len(content) / 2 ** 20:.0f} MB: written to sessions/{name} in the data "
                      "folder.", "info")
            return
        payload = base64.b64encode(content).decode()
        self.download.value = (f'<a download="{name}" href="data:application/json;base64,{payload}" '
                               f'class="gs-download gs-session-link">⬇ {name}</a>')
        self._say(self.panel.session_note(), "info")

    def load_bytes(self, name: str, content: bytes) -> bool:
        """Check and apply a session's bytes; on refusal say why and change nothing."""
        try:
            doc = parse(content)
            notes = restore_document(self.panel, doc)
        except SessionError as exc:
            self._say(f"{name}: session refused: {exc}", "error")
            return False
        except Exception as exc:  # never a traceback in the dashboard
            log.exception("session restore failed")
            self._say(f"{name}: the session was checked but could not be applied in full "
                      f"({type(exc).__name__}: {exc}); the dashboard may show part of it.", "error")
            return False
        self._say(f"Session {name} loaded" + (f" ({'; '.join(notes)})" if notes else "") + ".", "info")
        return True

    def _uploaded(self, change: dict[str, Any]) -> None:
        files = uploaded_files(change["new"])
        if not files:
            return
        name, content = files[0]
        if len(content) > MAX_BYTES:
            self._say(f"{name}: session refused: {len(content) / 2 ** 20:.1f} MiB is more than the "
                      f"{MAX_BYTES / 2 ** 20:.0f} MiB a session may have.", "error")
            return
        self.load_bytes(name, bytes(content))

    def open_path(self, text: str) -> bool:
        """Load a session file from the data folder (nothing outside it)."""
        from .dataroot import PathRefused

        root = self._data_root()
        try:
            target = root.resolve_read(text)
            if target.stat().st_size > MAX_BYTES:
                raise PathRefused(f"{text.strip()}: more than the {MAX_BYTES / 2 ** 20:.0f} MiB a session may have.")
            name, content = root.read_bytes(text)
        except PathRefused as exc:
            self._say(f"Session: {exc}", "error")
            return False
        return self.load_bytes(name, content)

    def write_path(self, text: str) -> bool:
        """Write the session into the data folder under ``text`` (``.json`` added)."""
        from .dataroot import PathRefused

        try:
            target = self._data_root().resolve_write(text, suffix=".json")
            target.write_bytes(dumps(self.panel))
        except (PathRefused, SessionError, OSError) as exc:
            self._say(f"Session: {exc}", "error")
            return False
        self._say(f"Session written to {target.relative_to(self._data_root().root).as_posix()} in the data folder.",
                  "info")
        return True


# ----------------------------------------------------------------------------- the fit panel's state
#: largest data file embedded in a fit session (bytes, before compression); larger ones are named by sha256 only
EMBED_LIMIT = 40 * 2 ** 20
FIT_KEYS = ("data", "model", "table", "window", "intervals", "fit", "grid")
RESULT_KEYS = ("model", "values", "errors", "fixed", "bounds", "redchi", "chisqr", "aic", "bic", "ndata", "nvarys",
               "success", "message", "nfev", "elapsed", "correlations", "intervals", "mask")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pack_mask(mask: Any) -> dict[str, Any]:
    import numpy as np

    m = np.asarray(mask, bool).ravel()
    return {"n": int(m.size), "bits": pack_bytes(np.packbits(m).tobytes())}


def _unpack_mask(obj: Any, n: int, c: Check) -> Any:
    import numpy as np

    c.keys(obj, ("n", "bits"))
    if c.at("n").integer(obj["n"]) != n:
        raise c.fail(f"covers {obj['n']} points, the data have {n}")
    raw = unpack_bytes(obj["bits"], (n + 7) // 8, f"{c.where}.bits")
    return np.unpackbits(np.frombuffer(raw, np.uint8))[:n].astype(bool)


def fit_result_state(r: Any) -> dict[str, Any]:
    """A :class:`~gapscope.kernels.fitting.FitResult` as JSON (its curves are recomputed from the data on load)."""
    return {"model": r.model, "values": jsonable(r.values), "errors": jsonable(r.errors), "fixed": jsonable(r.fixed),
            "bounds": jsonable(r.bounds), "redchi": jsonable(r.redchi), "chisqr": jsonable(r.chisqr),
            "aic": jsonable(r.aic), "bic": jsonable(r.bic), "ndata": int(r.ndata), "nvarys": int(r.nvarys),
            "success": bool(r.success), "message": str(r.message)[:MAX_TEXT], "nfev": int(r.nfev),
            "elapsed": jsonable(r.elapsed),
            "correlations": [[a, b, jsonable(v)] for (a, b), v in r.correlations.items()],
            "intervals": jsonable(r.intervals), "mask": _pack_mask(r.mask)}


def check_fit_result(obj: Any, model: str, data: Any, c: Check) -> Any:
    """A saved fit result, checked against its model's specs and the data; returns the FitResult."""
    import numpy as np

    from gapscope.kernels import fitting

    c.keys(obj, RESULT_KEYS)
    if obj["model"] != model:
        raise c.at("model").fail(f"{obj['model']!r} is not the session's model {model!r}")
    specs = {p.name: p.spec for p in fitting.MODELS[model].all_params}
    names = tuple(specs)
    values = {}
    for k, v in c.at("values").keys(obj["values"], names).items():
        try:
            values[k] = specs[k].check(c.at("values").at(k).number(v))
        except ValueError as exc:
            raise c.at("values").at(k).fail(str(exc)) from None
    errors = {k: c.at("errors").at(k).number(v, 0.0, none=True)
              for k, v in c.at("errors").keys(obj["errors"], names).items()}
    fixed = {k: c.at("fixed").at(k).boolean(v) for k, v in c.at("fixed").keys(obj["fixed"], names).items()}
    bounds = {}
    for k, v in c.at("bounds").keys(obj["bounds"], names).items():
        f = c.at("bounds").at(k)
        if not isinstance(v, list) or len(v) != 2:
            raise f.fail("expected a pair [low, high]")
        lo = f.at(0).number(v[0], none=True)
        hi = f.at(1).number(v[1], none=True)
        bounds[k] = (-math.inf if lo is None else lo, math.inf if hi is None else hi)
        if not bounds[k][0] < bounds[k][1]:
            raise f.fail("low must lie below high")
    stats = {k: c.at(k).number(obj[k], none=True) for k in ("redchi", "chisqr", "aic", "bic")}
    n = int(np.size(data.bias))
    mask = _unpack_mask(obj["mask"], n, c.at("mask"))
    ndata = c.at("ndata").integer(obj["ndata"], 0, n)
    if ndata != int(mask.sum()):
        raise c.at("ndata").fail(f"{ndata} is not the {int(mask.sum())} points of the saved fit window")
    correlations = {}
    cc = c.at("correlations")
    if not isinstance(obj["correlations"], list) or len(obj["correlations"]) > len(names) ** 2:
        raise cc.fail("expected a list of [name, name, correlation]")
    for i, item in enumerate(obj["correlations"]):
        if not isinstance(item, list) or len(item) != 3:
            raise cc.at(i).fail("expected [name, name, correlation]")
        a, b = (cc.at(i).at(j).choice(item[j], names) for j in (0, 1))
        correlations[(a, b)] = cc.at(i).at(2).number(item[2], -1.0 - 1e-9, 1.0 + 1e-9)
    intervals = {}
    for k, levels in c.at("intervals").keys(obj["intervals"], (), names).items():
        lv = c.at("intervals").at(k).mapping(levels, 8)
        intervals[k] = {c.at("intervals").at(k).text(lvl, 8): c.at("intervals").at(k).at(lvl).pair(v)
                        for lvl, v in lv.items()}
    best = fitting.evaluate(model, data.bias, **values)
    nan = math.nan
    return fitting.FitResult(
        model=model, values=values, errors={k: nan if e is None else e for k, e in errors.items()}, fixed=fixed,
        bounds=bounds, redchi=nan if stats["redchi"] is None else stats["redchi"],
        chisqr=nan if stats["chisqr"] is None else stats["chisqr"], aic=nan if stats["aic"] is None else stats["aic"],
        bic=nan if stats["bic"] is None else stats["bic"], ndata=ndata,
        nvarys=c.at("nvarys").integer(obj["nvarys"], 0, len(names)), best_fit=best, residual=data.didv - best,
        bias=data.bias, data=data.didv, mask=mask, success=c.at("success").boolean(obj["success"]),
        message=c.at("message").text(obj["message"]) or "", nfev=c.at("nfev").integer(obj["nfev"]),
        elapsed=c.at("elapsed").number(obj["elapsed"], 0.0, none=True) or 0.0, correlations=correlations,
        intervals=intervals)


def grid_result_state(r: Any) -> dict[str, Any]:
    return {"model": r.model, "values": {k: pack_array(v) for k, v in r.values.items()},
            "errors": {k: pack_array(v) for k, v in r.errors.items()}, "redchi": pack_array(r.redchi),
            "done": pack_array(r.done.astype(float)), "elapsed": jsonable(r.elapsed), "cancelled": bool(r.cancelled)}


def check_grid_result(obj: Any, grid: Any, c: Check) -> Any:
    from gapscope.kernels import fitting

    c.keys(obj, ("model", "values", "errors", "redchi", "done", "elapsed", "cancelled"))
    model = c.at("model").choice(obj["model"], list(fitting.MODELS))
    names = tuple(p.name for p in fitting.MODELS[model].all_params)
    shape = (int(grid.x.size), int(grid.y.size))
    values = {k: unpack_array(v, shape, f"{c.where}.values.{k}")
              for k, v in c.at("values").keys(obj["values"], names).items()}
    errors = {k: unpack_array(v, shape, f"{c.where}.errors.{k}")
              for k, v in c.at("errors").keys(obj["errors"], names).items()}
    done = unpack_array(obj["done"], shape, f"{c.where}.done")
    return fitting.GridFitResult(model, values, errors, unpack_array(obj["redchi"], shape, f"{c.where}.redchi"),
                                 done != 0, elapsed=c.at("elapsed").number(obj["elapsed"], 0.0, none=True) or 0.0,
                                 cancelled=c.at("cancelled").boolean(obj["cancelled"]))


def fit_state(p: Any) -> dict[str, Any]:
    """The fit panel's own state: data source (embedded), model, table, window, errors, fit and grid results."""
    src = p.loader._source
    data: dict[str, Any] | None = None
    if src is not None:
        data = {"kind": "demo", "demo": src["demo"].label} if src["kind"] == "demo" else {"kind": "file"}
        if src["kind"] != "demo":
            name, raw = p._raw if p._raw is not None and p._raw[0] == src["file"] else (src["file"], None)
            if raw is None:
                raise SessionError("the loaded file's content is not at hand; load it again, then save")
            packed = pack_bytes(raw) if len(raw) <= EMBED_LIMIT else None
            data.update(name=name, sha256=_sha(raw), size=len(raw), content=packed)
        data.update(channel=p.loader.channel.value, normalised_above_mV=float(p.loader.norm.value))
    rows = {k: {"value": float(r.value.value), "fixed": bool(r.fix.value), "lower": float(r.lower.value),
                "upper": float(r.upper.value)} for k, r in p.table.rows.items()}
    grid = {"map": p.grid_view.param.value,
            "result": grid_result_state(p.grid_view.result) if p.grid_view.result is not None else None}
    out = {"data": data, "model": p.model.value, "table": rows, "window": [float(x) for x in p.window.value],
           "intervals": p.intervals.value, "fit": fit_result_state(p._fit) if p._fit is not None else None,
           "grid": grid}
    if getattr(p, "global_view", None) is not None:
        out["global"] = p.global_view.state()
    if getattr(p, "deconv_view", None) is not None:
        out["deconvolution"] = p.deconv_view.state()
    return jsonable(out)


def check_fit_state(p: Any, extra: Any, c: Check) -> dict[str, Any]:
    """Check a saved fit-panel state against the panel (and the data it carries) before anything changes."""
    from gapscope.kernels import fitting, readers

    from .data_loader import DEMOS, DataLoader

    c.keys(extra, FIT_KEYS, ("global", "deconvolution"))
    out: dict[str, Any] = {"data": None}
    d = extra["data"]
    loaded = None
    if d is not None:
        cd = c.at("data")
        cd.mapping(d, 8)
        kind = cd.at("kind").choice(d.get("kind"), ["demo", "file"])
        if kind == "demo":
            cd.keys(d, ("kind", "demo", "channel", "normalised_above_mV"))
            label = cd.at("demo").choice(d["demo"], list(p.demo.options)[1:])
            source = {"kind": "demo", "file": f"synthetic:{label}", "demo": DEMOS[label], "bias": None, "didv": None}
            out["data"] = {"kind": "demo", "demo": label}
        else:
            cd.keys(d, ("kind", "name", "sha256", "size", "content", "channel", "normalised_above_mV"))
            name = cd.at("name").text(d["name"], 255)
            sha = cd.at("sha256").text(d["sha256"], 64)
            size = cd.at("size").integer(d["size"], 0, p.data_root.max_bytes)
            if d["content"] is not None:
                content = unpack_bytes(d["content"], size, f"{cd.where}.content")
                if _sha(content) != sha:
                    raise cd.at("content").fail("the embedded data do not match their sha256")
            else:
                from .dataroot import PathRefused
                try:
                    _, content = p.data_root.read_bytes(name)
                except PathRefused:
                    raise cd.fail(f"the data are not embedded and {name!r} is not in the data folder") from None
                if _sha(content) != sha:
                    raise cd.fail(f"{name!r} in the data folder is not the file the session was saved with "
                                  "(its sha256 differs)")
            try:
                obj = readers.read_any(name, data=content)
            except (readers.FileFormatError, ValueError) as exc:
                raise cd.fail(f"the data cannot be read: {exc}") from None
            if isinstance(obj, readers.Grid):
                source, channels = {"kind": "grid", "file": name, "grid": obj}, list(obj.data)
            elif isinstance(obj, readers.Spectrum):
                source = {"kind": "spectrum", "file": name, "spectrum": obj}
                channels = [k for k in obj.channels if k != obj.bias_channel]
            else:
                raise cd.fail("the data are an image, not a spectrum or a grid")
            cd.at("channel").choice(d["channel"], channels)
            out["data"] = {"kind": "file", "name": name, "content": content}
        norm = cd.at("normalised_above_mV").number(d["normalised_above_mV"], 0.0, 1e4)
        channel = d["channel"] if kind == "file" else None
        if kind == "demo":
            if d["channel"] is not None:
                raise cd.at("channel").fail("a demo has no channels")
            import numpy as np
            dm = DEMOS[label]
            source["bias"] = np.linspace(-dm.window, dm.window, 1000)
            source["didv"] = fitting.synthetic(dm.model, source["bias"], noise=dm.noise, seed=1, **dm.params)
        try:
            loaded = DataLoader._build(source, channel, norm)
        except (KeyError, ValueError) as exc:
            raise cd.fail(f"the data cannot be shown this way: {exc}") from None
        out["data"].update(channel=channel, norm=norm)
    model = c.at("model").choice(extra["model"], list(fitting.MODELS))
    out["model"] = model
    ct = c.at("table")
    params = fitting.MODELS[model].all_params
    table = {}
    for k, row in ct.keys(extra["table"], tuple(pp.name for pp in params)).items():
        cr = ct.at(k)
        cr.keys(row, ("value", "fixed", "lower", "upper"))
        spec = next(pp.spec for pp in params if pp.name == k)
        vals = {}
        for f in ("value", "lower", "upper"):
            try:
                vals[f] = spec.check(cr.at(f).number(row[f]))
            except ValueError as exc:
                raise cr.at(f).fail(str(exc)) from None
        if not vals["lower"] < vals["upper"]:
            raise cr.fail("lower must lie below upper")
        table[k] = dict(vals, fixed=cr.at("fixed").boolean(row["fixed"]))
    out["table"] = table
    out["window"] = c.at("window").pair(extra["window"], -1e4, 1e4)
    out["intervals"] = check_widget(p.intervals, extra["intervals"], c.at("intervals"))
    if extra["fit"] is not None:
        if loaded is None:
            raise c.at("fit").fail("a fit without data")
        out["fit"] = check_fit_result(extra["fit"], model, loaded, c.at("fit"))
    else:
        out["fit"] = None
    cg = c.at("grid")
    cg.keys(extra["grid"], ("map", "result"))
    out["grid_map"] = check_widget(p.grid_view.param, extra["grid"]["map"], cg.at("map"))
    out["grid"] = None
    if extra["grid"]["result"] is not None:
        if loaded is None or loaded.grid is None:
            raise cg.at("result").fail("a grid fit without a grid")
        out["grid"] = check_grid_result(extra["grid"]["result"], loaded.grid, cg.at("result"))
    if "global" in extra:
        if getattr(p, "global_view", None) is None:
            raise c.at("global").fail("this fit panel has no global fit")
        out["global"] = p.global_view.check_state(extra["global"], c.at("global"), loaded, model)
    if "deconvolution" in extra:
        if getattr(p, "deconv_view", None) is None:
            raise c.at("deconvolution").fail("this fit panel has no deconvolution")
        out["deconvolution"] = p.deconv_view.check_state(extra["deconvolution"], c.at("deconvolution"), loaded)
    return out


def apply_fit_state(p: Any, s: Mapping[str, Any]) -> None:
    """Apply a checked fit-panel state (inside the panel's batch: one redraw)."""
    from gapscope.kernels import fitting

    from .fit_table import stats_html

    d = s["data"]
    if d is not None:
        p.loader.norm.value = 0.0
        if d["kind"] == "demo":
            p.loader.load_demo(d["demo"])
        elif not p.loader.load_bytes(d["name"], d["content"]):
            raise SessionError(f"the data {d['name']!r} could not be loaded")
        if d["channel"] is not None and p.loader.channel.value != d["channel"]:
            p.loader.channel.value = d["channel"]
        p.loader.norm.value = d["norm"]
    p.model.value = s["model"]
    if p.table.model.name != s["model"]:
        p.table.set_model(fitting.MODELS[s["model"]])

    def fill_table() -> None:
        for k, row in s["table"].items():
            r = p.table.rows[k]
            r.value.value, r.fix.value, r.lower.value, r.upper.value = (row["value"], row["fixed"], row["lower"],
                                                                        row["upper"])
    fill_table()
    lo, hi = s["window"]
    with p.window.hold_trait_notifications():
        p.window.min, p.window.max = min(lo, p.window.min), max(hi, p.window.max)
        p.window.value = (lo, hi)
    p.intervals.value = s["intervals"]
    p._clear_results()
    if s["fit"] is not None:
        p.table.show_result(s["fit"])
        fill_table()                              # values edited after the fit stay as they were
        p._fit = s["fit"]
        p.stats.value = stats_html(s["fit"])
    p.grid_view.param.value = s["grid_map"]
    if s["grid"] is not None:
        r = s["grid"]
        p.grid_view.result = r
        p.grid_view.info.value = (f"{int(r.done.sum())} of {r.done.size} pixels in {r.elapsed:.1f} s"
                                  + (" (cancelled)" if r.cancelled else "") + " — from the session")
        p.grid_view.draw_map()
    if "global" in s:
        p.global_view.restore_state(s["global"])
    if "deconvolution" in s:
        p.deconv_view.restore_state(s["deconvolution"])
