"""Images for map marks: a perceptual colour map and PNG encoding (no physics)."""

from __future__ import annotations

import io

import numpy as np

# Viridis sampled at 9 points (matplotlib's table), interpolated linearly in between.
_ANCHORS = np.array([
    [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
    [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]], dtype=float)
_LUT = np.stack([np.interp(np.linspace(0, 8, 256), np.arange(9), _ANCHORS[:, k]) for k in range(3)],
                axis=1).astype(np.uint8)


def to_png(values: np.ndarray, vmin: float | None = None, vmax: float | None = None) -> bytes:
    """PNG bytes of a 2D array (row 0 drawn at the top), viridis between vmin and vmax."""
    from PIL import Image

    a = np.asarray(values, dtype=float)
    lo = float(np.nanmin(a)) if vmin is None else vmin
    hi = float(np.nanmax(a)) if vmax is None else vmax
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    idx = np.clip(np.nan_to_num((a - lo) * scale, nan=0.0), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(_LUT[idx], mode="RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """``n`` tick positions from lo to hi, exact at the ends and at 0 when symmetric (no −2.2e-16)."""
    t = np.linspace(lo, hi, n)
    t[np.abs(t) < 1e-12 * max(abs(lo), abs(hi), 1e-300)] = 0.0
    return [float(x) for x in t]


def colorbar_html(lo: float, hi: float, label: str) -> str:
    """A horizontal viridis colour bar with its end values and quantity (for PNG maps)."""
    stops = ", ".join(f"rgb({r},{g},{b}) {100 * k / 8:.1f}%" for k, (r, g, b) in enumerate(_ANCHORS.astype(int)))
    return (f"<div class='gs-colorbar' style='font-size:0.8em;width:300px;margin-left:50px'>"
            f"<div style='height:10px;background:linear-gradient(to right, {stops})'></div>"
            f"<div style='display:flex;justify-content:space-between'><span>{lo:.4g}</span>"
            f"<span>{label}</span><span>{hi:.4g}</span></div></div>")


def clicked_at(content: dict) -> tuple[float, float] | None:
    """The (x, y) data coordinates of a click on a bqplot ``Image`` (its ``on_element_click`` content),
    or None when the message carries none."""
    data = content.get("data", {})
    try:
        return float(data["click_x"]), float(data["click_y"])
    except (KeyError, TypeError, ValueError):
        return None
