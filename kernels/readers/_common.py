"""What every reader shares: the error, the data classes, units, sweep recognition, limits.

Conventions (all readers):

* The sweep axis (``Spectrum.bias``, ``Grid.bias``) is in mV for a bias sweep, nm for a Z
  sweep, s for a time trace; ``sweep`` and ``sweep_unit`` say which.  Channels keep the units
  of the file (``units`` maps channel → unit); lateral coordinates are nm.
* Every failure is one :class:`FileFormatError` whose message starts with the file's name.
* Nothing a header claims is allocated before the file is seen to hold it: every array whose
  size comes from a header is at most :data:`ALLOC_FACTOR` × the file size plus
  :data:`ALLOC_SLACK` bytes (:func:`check_alloc`).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: a header longer than this many lines is not an instrument file
MAX_HEADER_LINES = 5000
#: nor is one longer than this many bytes
MAX_HEADER_BYTES = 4 * 1024 * 1024
#: arrays sized by header numbers are at most ALLOC_FACTOR × file size + ALLOC_SLACK bytes
ALLOC_FACTOR = 8
ALLOC_SLACK = 8 * 1024 * 1024
#: and never more than this many bytes, whatever the file size
ALLOC_MAX = 4 * 1024 ** 3

#: unit → factor to the reader's unit, per sweep kind (the sweep axis is given in the first unit)
SWEEP_UNITS: dict[str, tuple[str, dict[str, float]]] = {
    "bias": ("mV", {"V": 1e3, "mV": 1.0, "uV": 1e-3, "µV": 1e-3, "μV": 1e-3}),
    "z": ("nm", {"m": 1e9, "nm": 1.0, "pm": 1e-3, "Å": 0.1, "A": 0.1, "Angstrom": 0.1}),
    "time": ("s", {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "sec": 1.0}),
    "frequency": ("Hz", {"Hz": 1.0, "kHz": 1e3, "MHz": 1e6}),
}
_UNIT_TO_MV = SWEEP_UNITS["bias"][1]
_LABEL = re.compile(r"\(([^()]*)\)")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?$")


class FileFormatError(ValueError):
    """A file that is not a readable spectrum, grid or image; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike | None, problem: str) -> None:
        self.path = str(path) if path is not None else "<data>"
        self.problem = problem
        super().__init__(f"{Path(self.path).name}: {problem}")


# ----------------------------------------------------------------------------- frames
@dataclass(frozen=True)
class Frame:
    """A scan or grid frame: centre (nm, absolute), size (nm) and rotation angle (degrees).

    Frame coordinates ``(u, v)`` run from the frame's lower-left corner (0, 0) to
    (width, height); the frame's u axis points along ``(cos θ, −sin θ)`` in absolute
    coordinates, its v axis along ``(sin θ, cos θ)`` (Nanonis: a positive angle turns the
    frame clockwise — checked on a real 45° grid against its recorded tip positions).
    """

    center_x: float
    center_y: float
    width: float
    height: float
    angle: float = 0.0

    def _axes(self) -> tuple[np.ndarray, np.ndarray]:
        a = math.radians(self.angle)
        return np.array([math.cos(a), -math.sin(a)]), np.array([math.sin(a), math.cos(a)])

    def to_absolute(self, uv: np.ndarray) -> np.ndarray:
        """Frame coordinates (…, 2) in nm → absolute coordinates (…, 2) in nm."""
        uv = np.asarray(uv, dtype=float)
        eu, ev = self._axes()
        c = np.array([self.center_x, self.center_y])
        return c + (uv[..., :1] - self.width / 2) * eu + (uv[..., 1:2] - self.height / 2) * ev

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """Absolute coordinates (…, 2) in nm → frame coordinates (…, 2) in nm."""
        xy = np.asarray(xy, dtype=float)
        eu, ev = self._axes()
        d = xy - np.array([self.center_x, self.center_y])
        return np.stack([d @ eu + self.width / 2, d @ ev + self.height / 2], axis=-1)

    def corners(self) -> np.ndarray:
        """The frame's outline in absolute nm: (5, 2), closed (lower-left first, counter-clockwise in uv)."""
        w, h = self.width, self.height
        return self.to_absolute(np.array([[0, 0], [w, 0], [w, h], [0, h], [0, 0]], dtype=float))


# ----------------------------------------------------------------------------- data classes
def _bwd_name(name: str) -> str:
    if "[filt]" in name:
        return name.replace("[filt]", "[bwd] [filt]")
    return f"{name} [bwd]"


@dataclass
class Spectrum:
    """One spectrum (or sweep) and its channels.

    Attributes
    ----------
    bias : numpy.ndarray
        The sweep axis: mV when ``sweep == "bias"``; otherwise in ``sweep_unit`` (nm for a Z
        sweep, s for a time trace).  ``x`` is the same array under a neutral name.
    channels : dict
        Channel name → values (same length as ``bias``); includes the sweep column itself
        (``bias_channel``) in the file's unit.
    units : dict
        Channel name → unit as the file gives it.
    header : dict
        Header entries (first occurrence wins; repeats are listed in ``warnings``).
    path, bias_channel, warnings
        Source name, the column the sweep axis comes from, what the reader had to assume.
    sweep, sweep_unit : str
        What the x axis is ("bias", "z", "time", "frequency", or "other") and its unit.
    kind : str
        What the file measures ("tunnelling spectrum", "Z spectroscopy", "time trace",
        "Kelvin parabola", "constant-current sweep", …); see :meth:`tunnelling_problem`.
    not_tunnelling : str
        For a bias sweep that is no tunnelling spectrum (a Kelvin parabola, a constant-current
        sweep): why, in words the fit panel can show; empty otherwise.
    format : str
        The detected file format (``"nanonis_dat"``, ``"createc_vert"``, ``"rhk_sm4"``, ``"text"``).
    sha256 : str
        Digest of the bytes read (provenance for exports).
    """

    bias: np.ndarray
    channels: dict[str, np.ndarray]
    units: dict[str, str]
    header: dict[str, str]
    path: str = ""
    bias_channel: str = ""
    warnings: list[str] = field(default_factory=list)
    sweep: str = "bias"
    sweep_unit: str = "mV"
    kind: str = "tunnelling spectrum"
    format: str = ""
    sha256: str = ""
    not_tunnelling: str = ""

    @property
    def x(self) -> np.ndarray:
        """The sweep axis in ``sweep_unit`` (the same array as ``bias``)."""
        return self.bias

    @property
    def sweep_label(self) -> str:
        """Axis label, e.g. ``"Bias (mV)"``, ``"Z (nm)"``, ``"Time (s)"``."""
        names = {"bias": "Bias", "z": "Z", "time": "Time", "frequency": "Frequency"}
        name = names.get(self.sweep, self.bias_channel or self.sweep)
        return f"{name} ({self.sweep_unit})" if self.sweep_unit else name

    def channel(self, name: str) -> np.ndarray:
        try:
            return self.channels[name]
        except KeyError:
            raise KeyError(f"no channel {name!r}; channels are {list(self.channels)}") from None

    def forward_backward_mean(self, name: str) -> np.ndarray:
        """Mean of a channel and its ``[bwd]`` partner (NaN-aware), or the channel alone."""
        fwd = self.channel(name)
        bwd_name = _bwd_name(name)
        if bwd_name not in self.channels:
            return fwd
        both = np.vstack([fwd, self.channels[bwd_name]])
        out = np.full(fwd.shape, np.nan)
        ok = np.isfinite(both).any(axis=0)
        out[ok] = np.nanmean(both[:, ok], axis=0)
        return out

    def tunnelling_problem(self) -> str | None:
        """Why this is not a tunnelling (bias) spectrum, or None if it is one."""
        if self.sweep != "bias":
            what = {"z": "a Z sweep", "time": "a time trace", "frequency": "a frequency sweep"}.get(
                self.sweep, f"a sweep of {self.bias_channel or self.sweep!r}")
            return (f"{what} (x axis {self.bias_channel!r} in {self.sweep_unit or 'no unit'}), not a bias "
                    f"spectrum: it has no tunnelling conductance dI/dV to fit")
        return self.not_tunnelling or None

    def require_tunnelling(self) -> None:
        """Raise :class:`FileFormatError` (naming the sweep) unless this is a tunnelling bias spectrum."""
        problem = self.tunnelling_problem()
        if problem:
            raise FileFormatError(self.path, problem)

    def default_channel(self) -> str:
        """The channel :meth:`conductance` uses by default (see :func:`default_channel`)."""
        return default_channel(self)

    def conductance(self, *, channel: str | None = None, normalise_above: float | None = None) -> np.ndarray:
        """dI/dV from a lock-in channel, or numerically from a current channel.

        ``channel`` defaults to :meth:`default_channel`: the first first-harmonic lock-in
        channel (``LI Demod 1 X``, ``LockIn``, ``LIA``, ``dI/dV`` …), else the current
        I(V), differentiated by centred differences on the bias grid (:func:`differentiate`).
        ``normalise_above`` (mV) divides by the mean conductance at |V| ≥ that bias
        (:func:`normalise`).

        Raises
        ------
        FileFormatError
            If the sweep is not a bias sweep (the message names the sweep), or — without an
            explicit ``channel`` — if the file is no tunnelling spectrum (a Kelvin parabola, a
            constant-current sweep) or has neither a lock-in nor a current channel.
        """
        if self.sweep != "bias":
            self.require_tunnelling()
        name = channel or default_channel(self)
        y = self.forward_backward_mean(name)
        if is_current(name, self.units.get(name, "")):
            y = differentiate(self.bias, y)
        if normalise_above is not None:
            y = normalise(self.bias, y, above=normalise_above)
        return y

    def describe_conductance(self, channel: str | None = None) -> str:
        """One line saying where :meth:`conductance` takes dI/dV from (for the panel to show)."""
        name = channel or default_channel(self)
        unit = self.units.get(name, "")
        if is_current(name, unit):
            return f"dI/dV from {name!r} ({unit or 'no unit'}) by numerical differentiation"
        if is_lockin(name):
            return f"dI/dV: lock-in channel {name!r} ({unit or 'no unit'})"
        return f"channel {name!r} ({unit or 'no unit'}) taken as dI/dV as it is"


@dataclass
class Grid:
    """Grid spectroscopy: ``data[name]`` is (nx, ny, nbias); ``x``, ``y`` in nm (frame coordinates).

    ``bias`` is the sweep axis (mV for a bias sweep; see ``sweep``/``sweep_unit``).
    ``positions`` (nx, ny, 2) holds each pixel's absolute X, Y in nm when the file records
    them; ``frame`` is the grid frame (centre, size, angle) when the header gives it.
    """

    bias: np.ndarray
    x: np.ndarray
    y: np.ndarray
    data: dict[str, np.ndarray]
    units: dict[str, str]
    header: dict[str, str]
    params: dict[str, np.ndarray] = field(default_factory=dict)
    positions: np.ndarray | None = None
    path: str = ""
    warnings: list[str] = field(default_factory=list)
    sweep: str = "bias"
    sweep_unit: str = "mV"
    frame: Frame | None = None
    format: str = ""
    sha256: str = ""

    def tunnelling_problem(self) -> str | None:
        """Why this grid holds no tunnelling spectra (a non-bias sweep), or None."""
        if self.sweep != "bias":
            return (f"a grid of {self.sweep} sweeps (unit {self.sweep_unit or 'none'}), not bias spectra: "
                    "it has no tunnelling conductance dI/dV to fit")
        return None

    def require_tunnelling(self) -> None:
        """Raise :class:`FileFormatError` (naming the sweep) unless the grid holds bias spectra."""
        problem = self.tunnelling_problem()
        if problem:
            raise FileFormatError(self.path, problem)

    def default_channel(self) -> str:
        """The first first-harmonic lock-in channel, else the first current channel, else the first."""
        self.require_tunnelling()
        names = list(self.data)
        if not names:
            raise FileFormatError(self.path, "the grid has no channels")
        lock = sorted((n for n in names if is_lockin(n)), key=lambda n: _lockin_rank(n, self.header, names))
        if lock:
            return lock[0]
        cur = [n for n in names if is_current(n, self.units.get(n, ""))]
        return cur[0] if cur else names[0]


@dataclass
class Image:
    """A scan image: ``channels[name]`` is (nx, ny), pixel ``[i, j]`` at (``x[i]``, ``y[j]``).

    ``x``, ``y`` are the pixel centres in nm in the scan frame (0 … width, 0 … height; y up,
    whatever the slow-scan direction was); backward channels are mirrored to the forward
    orientation.  ``direction`` maps channel → ``"forward"``/``"backward"``; ``scan_direction``
    is the slow-scan direction (``"up"``/``"down"``); ``frame`` is the scan frame.
    """

    x: np.ndarray
    y: np.ndarray
    channels: dict[str, np.ndarray]
    units: dict[str, str]
    header: dict[str, str]
    direction: dict[str, str] = field(default_factory=dict)
    frame: Frame | None = None
    scan_direction: str = ""
    path: str = ""
    warnings: list[str] = field(default_factory=list)
    format: str = ""
    sha256: str = ""

    @property
    def topography(self) -> str | None:
        """Name of the forward topography (Z) channel, or None."""
        for n in self.channels:
            if self.direction.get(n, "forward") == "forward" and (
                    n.lower() in ("z", "topography", "height") or n.lower().startswith(("z ", "topo"))):
                return n
        return None

    def outline_of(self, other: Grid | Image | Frame) -> np.ndarray:
        """Another grid's or image's frame in this image's x, y (nm): a closed (5, 2) polygon.

        Raises
        ------
        FileFormatError
            If either has no frame (no position in the header).
        """
        frame = other if isinstance(other, Frame) else other.frame
        if self.frame is None:
            raise FileFormatError(self.path, "the image has no scan frame: cannot place another frame on it")
        if frame is None:
            name = getattr(other, "path", "")
            raise FileFormatError(name or self.path, "no frame (centre, size, angle) to overlay")
        return self.frame.to_frame(frame.corners())


# ----------------------------------------------------------------------------- helpers
def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_bytes(path: str | os.PathLike, data: bytes | None) -> bytes:
    if data is not None:
        return bytes(data)
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise FileFormatError(path, "file not found") from None
    except IsADirectoryError:
        raise FileFormatError(path, "is a directory, not a file") from None
    except OSError as exc:
        raise FileFormatError(path, f"cannot be read ({exc.strerror or exc})") from None


def check_alloc(name: str, nbytes: float, file_size: int, what: str) -> None:
    """Refuse an allocation of ``nbytes`` that the file's size cannot justify."""
    limit = min(ALLOC_FACTOR * file_size + ALLOC_SLACK, ALLOC_MAX)
    if not nbytes <= limit:
        raise FileFormatError(name, f"{what} would need {nbytes / 2**20:.0f} MiB, more than a "
                                    f"{file_size / 2**20:.1f} MiB file can hold (limit {limit / 2**20:.0f} MiB): "
                                    "the header and the data disagree")


def split_label(label: str) -> tuple[str, str]:
    """'Input 3 (A) [filt]' → ('Input 3 [filt]', 'A')."""
    m = _LABEL.search(label)
    if not m:
        return re.sub(r"\s+", " ", label.strip()), ""
    name = (label[:m.start()] + label[m.end():]).strip()
    return re.sub(r"\s+", " ", name), m.group(1).strip()


def unique_names(name: str, labels: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """Split labels into names and units; repeated names get " (2)", " (3)" … and a warning."""
    names, units, warnings = [], [], []
    seen: dict[str, int] = {}
    for k, lab in enumerate(labels):
        nm, unit = split_label(lab)
        if not nm:
            nm = f"column {k + 1}"
        if nm in seen:
            seen[nm] += 1
            new = f"{nm} ({seen[nm]})"
            while new in seen:
                seen[nm] += 1
                new = f"{nm} ({seen[nm]})"
            warnings.append(f"channel name {nm!r} occurs more than once: the repeat is {new!r}")
            nm = new
        seen.setdefault(nm, 1)
        names.append(nm)
        units.append(unit)
    return names, units, warnings


def to_float(name: str, key: str, text: str) -> float:
    """A header number (decimal point or decimal comma); FileFormatError naming the key otherwise."""
    t = text.strip().strip('"').strip()
    if _NUMBER.match(t):
        if "," in t:
            t = t.replace(",", ".")
        return float(t)
    low = t.lower()
    if low in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
        return float(low.replace("infinity", "inf"))
    raise FileFormatError(name, f"header entry {key!r} = {text.strip()!r} is not a number")


def to_floats(name: str, key: str, text: str, sep: str = ";") -> list[float]:
    return [to_float(name, key, t) for t in text.split(sep) if t.strip()]


def to_int(name: str, key: str, text: str, *, low: int = 0, high: int = 2**62) -> int:
    t = text.strip().strip('"').strip()
    if not re.fullmatch(r"[+-]?\d+", t):
        raise FileFormatError(name, f"header entry {key!r} = {text.strip()!r} is not a whole number")
    v = int(t)
    if not low <= v <= high:
        raise FileFormatError(name, f"header entry {key!r} = {v} is outside {low} … {high}")
    return v


def is_current(name: str, unit: str) -> bool:
    low = name.lower()
    return unit == "A" and not is_lockin(name) or low.startswith("current") or low == "i"


_LOCKIN = re.compile(r"(?:^|[\s_\[(])(?:li|lia|lix|liy|lock-?in|demod)(?:$|[\s_\d\])])|lock-?in|di/?dv|didv|"
                     r"conductance|li demod", re.I)


def is_lockin(name: str) -> bool:
    return bool(_LOCKIN.search(name))


def _harmonic(name: str, header: Mapping[str, str]) -> int:
    """The lock-in harmonic of a channel as the header gives it (1 when it does not say)."""
    m = re.search(r"demod\s*(\d+)", name, re.I)
    if m:
        v = header.get(f"Lock-in>Harmonic D{m.group(1)}", "").strip()
        return int(v) if v.isdigit() else 1
    if re.search(r"2nd|second|d2i|2\s*omega|2ω", name, re.I):
        return 2
    return 1


def _lockin_rank(name: str, header: Mapping[str, str], order: Sequence[str]) -> tuple:
    low = name.lower()
    quadrature = bool(re.search(r"(?:^|\s|lock-?in|li)(?:y|phase|theta|φ)(?:$|\s|\[)", low))
    magnitude = bool(re.search(r"(?:^|\s|lock-?in|li)r(?:$|\s|\[)", low))
    single_sweep = bool(re.search(r"\[\d{5}\]", name))
    return (_harmonic(name, header) != 1, quadrature, magnitude, single_sweep, order.index(name))


def default_channel(s: Spectrum) -> str:
    """The channel a tunnelling spectrum's dI/dV comes from by default.

    The first lock-in channel of the first harmonic (X before R before Y; an average before
    single sweeps), else the first current channel (to be differentiated).

    Raises
    ------
    FileFormatError
        If the file is no tunnelling spectrum (:meth:`Spectrum.tunnelling_problem`), or has
        neither a lock-in nor a current channel (no raw channel is passed off as dI/dV).
    """
    s.require_tunnelling()
    names = [n for n in s.channels if n != s.bias_channel and "[bwd]" not in n and "[filt]" not in n]
    lock = sorted((n for n in names if is_lockin(n)), key=lambda n: _lockin_rank(n, s.header, names))
    if lock:
        return lock[0]
    cur = sorted((n for n in names if is_current(n, s.units.get(n, ""))),
                 key=lambda n: (bool(re.search(r"\[\d{5}\]", n)), names.index(n)))
    if cur:
        return cur[0]
    others = [n for n in s.channels if n != s.bias_channel]
    if not others:
        raise FileFormatError(s.path, "the spectrum has no data channel besides its sweep")
    raise FileFormatError(s.path, f"no lock-in (dI/dV) and no current channel among {others}: choose the "
                                  "channel to use as dI/dV explicitly (conductance(channel=...))")


def differentiate(bias: np.ndarray, current: np.ndarray) -> np.ndarray:
    """dI/dV by centred differences on the (possibly non-uniform) bias grid; NaN-safe.

    Repeated bias values (a multi-segment sweep that repeats its joints) are averaged first,
    so no division by a zero step occurs.
    """
    b = np.asarray(bias, dtype=float)
    c = np.asarray(current, dtype=float)
    if b.size < 3:
        raise ValueError("differentiate needs at least three points")
    order = np.argsort(b, kind="stable")
    bs, cs = b[order], c[order]
    ub, inv = np.unique(bs, return_inverse=True)
    if ub.size < 3:
        raise ValueError("differentiate needs at least three distinct bias values")
    sums = np.bincount(inv, weights=np.nan_to_num(cs))
    counts = np.bincount(inv, weights=np.isfinite(cs).astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        uc = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    g = np.gradient(uc, ub)
    d = np.empty_like(c)
    d[order] = g[inv]
    return d


def normalise(bias: np.ndarray, g: np.ndarray, *, above: float) -> np.ndarray:
    """Divide by the mean of g over |V| ≥ ``above`` (the normal-state conductance)."""
    b = np.asarray(bias, dtype=float)
    g = np.asarray(g, dtype=float)
    sel = (np.abs(b) >= above) & np.isfinite(g)
    if not np.any(sel):
        raise ValueError(f"no finite points with |V| ≥ {above} mV to normalise by")
    ref = float(np.mean(g[sel]))
    if ref == 0.0:
        raise ValueError("the normal-state conductance is zero; cannot normalise")
    return g / ref


# ----------------------------------------------------------------------------- sweep recognition
_SWEEP_NAMES = {
    "bias": ("bias", "bias calc", "v", "voltage", "sample bias", "u", "energy", "bias voltage"),
    "z": ("z", "z rel", "z (rel)", "distance", "delta z", "z offset", "z piezo", "height"),
    "time": ("time", "t", "elapsed time"),
}


def classify_sweep(name: str, unit: str) -> tuple[str, str, float] | None:
    """(sweep, unit of the axis, factor) for a sweep column, from its unit (then its name), or None."""
    for sweep, (out, table) in SWEEP_UNITS.items():
        if unit in table:
            if sweep == "z" and unit == "A" and not name.lower().startswith(("z", "dist", "height")):
                continue                   # "A" is amperes unless the column is a length
            return sweep, out, table[unit]
    if not unit:
        low = name.lower()
        for sweep, names in _SWEEP_NAMES.items():
            if low in names or low.startswith(tuple(n + " " for n in names if len(n) > 1)):
                return sweep, "", 1.0
    return None


def experiment_sweep(header: Mapping[str, str]) -> str | None:
    """The sweep a Nanonis header's ``Experiment`` entry announces, if it says."""
    exp = header.get("Experiment", "").lower()
    if "bias spectroscopy" in exp or exp.startswith("bias"):
        return "bias"
    if exp.startswith("z spectroscopy") or exp.startswith("z-spectroscopy") or "z spectr" in exp:
        return "z"
    if "longterm" in exp.replace(" ", "") or "history" in exp or "time" in exp:
        return "time"
    return None


def recognise_measurement(s: Spectrum) -> None:
    """Set ``kind`` and ``not_tunnelling`` of a bias sweep from its channels and data.

    * a Kelvin parabola: an AFM frequency-shift channel (Hz) and no lock-in channel;
    * a constant-current sweep: the current stays within ±12 % of one value while the bias
      changes sign or by a factor ≥ 1.5 — the Z feedback was closed during the sweep.
    """
    if s.sweep != "bias":
        s.kind = {"z": "Z spectroscopy", "time": "time trace", "frequency": "frequency sweep"}.get(
            s.sweep, f"{s.sweep} sweep")
        return
    names = [n for n in s.channels if n != s.bias_channel]
    lockin = [n for n in names if is_lockin(n)]
    freq = [n for n in names if s.units.get(n) == "Hz" and re.search(r"freq|df|Δf", n, re.I)]
    if freq and not lockin:
        s.kind = "Kelvin parabola"
        cur = [n for n in names if is_current(n, s.units.get(n, "")) and "[bwd]" not in n]
        hint = (f" (a script can still differentiate its current: conductance(channel={cur[0]!r}))" if cur
                else "")
        s.not_tunnelling = (f"a Kelvin-probe sweep: it records the frequency shift {freq[0]!r} (Hz) against bias "
                            f"and no lock-in dI/dV, so it is not a tunnelling spectrum{hint}")
        return
    cur = [n for n in names if is_current(n, s.units.get(n, "")) and "[bwd]" not in n and "[filt]" not in n]
    v = np.asarray(s.bias, dtype=float)
    if cur and v.size >= 8:
        i = np.asarray(s.channels[cur[0]], dtype=float)
        ok = np.isfinite(i) & np.isfinite(v)
        if ok.sum() >= 8:
            ia, va = np.abs(i[ok]), np.abs(v[ok])
            same_sign = np.all(i[ok] > 0) or np.all(i[ok] < 0)
            crosses = va.min() == 0 or (v[ok].min() < 0 < v[ok].max())
            spread = va.max() >= 1.5 * va.min() or crosses
            if same_sign and spread and ia.max() <= 1.25 * ia.min():
                mid = float(np.median(i[ok]))
                s.kind = "constant-current sweep"
                s.not_tunnelling = (f"the current {cur[0]!r} stays at {mid:.3g} {s.units.get(cur[0], '')} (within "
                                    f"{100 * (ia.max() / ia.min() - 1):.0f} %) while the bias sweeps "
                                    f"{v[ok].min():.4g} … {v[ok].max():.4g} mV: the Z feedback was closed during "
                                    "the sweep (constant-current spectroscopy), so it is not a constant-height "
                                    "tunnelling spectrum")
                return
    s.kind = "tunnelling spectrum"


def finite_range(a: Iterable[float]) -> bool:
    return all(math.isfinite(float(t)) for t in a)


_BOM = b"\xef\xbb\xbf"


def decode_text(name: str, data: bytes, *, what: str = "a text spectrum") -> str:
    """The text of a file (UTF-8, else Latin-1), without a byte-order mark; refuses binary data."""
    if not data.strip():
        raise FileFormatError(name, "the file is empty")
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    sample = data[:65536]
    if b"\x00" in sample:
        raise FileFormatError(name, f"binary data where {what} was expected (NUL bytes)")
    bad = sum(1 for ch in sample if ch < 9 or 13 < ch < 32)
    if bad > 0.01 * len(sample):
        raise FileFormatError(name, f"not a text file (control characters where {what} was expected)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_rows(name: str, rows: Sequence[str], ncol: int, first_line: int, sep: str | None) -> np.ndarray:
    """A numeric table: one row per non-blank, non-comment line, ``ncol`` values each.

    Empty cells and ``N/A`` read as NaN; anything else that is not a number is an error naming
    the line.  Memory: the result plus one row at a time.
    """
    n = sum(1 for r in rows if r.strip() and not r.lstrip().startswith("#"))
    if n == 0:
        raise FileFormatError(name, "no data rows")
    chars = sum(len(r) + 1 for r in rows)
    if n * ncol > chars:                   # every value takes a character and a separator at least
        raise FileFormatError(name, f"{n} rows of {ncol} values cannot fit in {chars} characters: the column labels "
                                    "and the table disagree")
    out = np.empty((n, ncol))
    k = 0
    for i, raw in enumerate(rows):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(sep) if sep else line.split()
        if sep:
            parts = [p.strip() for p in parts]
            while parts and parts[-1] == "":
                parts.pop()
        if len(parts) != ncol:
            raise FileFormatError(name, f"line {first_line + i}: {len(parts)} values, expected {ncol} "
                                        "(truncated or malformed table)")
        try:
            out[k] = [float(p) if p not in ("", "N/A") else np.nan for p in parts]
        except ValueError:
            bad = next(p for p in parts if not is_number(p))
            raise FileFormatError(name, f"line {first_line + i}: {bad[:40]!r} is not a number") from None
        k += 1
    return out


def is_number(s: str) -> bool:
    if s in ("", "N/A"):
        return True
    try:
        float(s)
        return True
    except ValueError:
        return False


def drop_torn_last_row(text: str, rows: list[str], warnings: list[str]) -> list[str]:
    """Drop a last table row that the file cuts off (no line end after it), with a warning."""
    if text.endswith(("\n", "\r")):
        return rows
    last = len(rows) - 1
    while last >= 0 and not rows[last].strip():
        last -= 1
    if last < 0:
        return rows
    warnings.append(f"the last row is cut off (no line end: the file is truncated): dropped {rows[last][:60]!r}")
    return rows[:last]
