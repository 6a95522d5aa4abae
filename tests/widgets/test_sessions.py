"""Saved sessions: every dashboard's plots come back exactly; tampered, malformed and huge files are refused.

What is compared: the reloaded panel's bqplot marks against the marks of the panel that was saved
(every x, y and image byte), the fit curve against ``fitting.evaluate`` with the saved fit values,
the embedded data against the original bytes and their sha256 computed here with ``hashlib``, and the
digest against an independent SHA-256 of the canonical JSON written out in this file.
"""

import base64
import datetime
import hashlib
import html
import json
import zlib

import bqplot as bq
import numpy as np
import pytest

from gapscope.kernels import fitting, readers
from gapscope.widgets import PANELS, FitPanel
from gapscope.widgets.panel import Panel
from gapscope.widgets.session import MAX_BYTES, SessionError

PB = "Pb(111), normal tip — Lin et al. (synthetic)"


# ----------------------------------------------------------------------------- helpers (independent of session.py)
def figures(widget):
    out, stack = [], [widget]
    while stack:
        x = stack.pop(0)
        if isinstance(x, bq.Figure):
            out.append(x)
        else:
            stack.extend(getattr(x, "children", ()) or ())
    return out


def marks_of(panel):
    out = []
    for f in figures(panel.widget):
        for m in f.marks:
            entry = {"type": type(m).__name__, "x": np.asarray(m.x, dtype=float), "y": np.asarray(m.y, dtype=float)}
            if isinstance(m, bq.Image):
                entry["image"] = bytes(m.image.value)
            out.append(entry)
    return out


def assert_same_plots(a, b):
    ma, mb = marks_of(a), marks_of(b)
    assert len(ma) == len(mb) and len(ma) > 0
    for x, y in zip(ma, mb, strict=True):
        assert x["type"] == y["type"]
        np.testing.assert_array_equal(x["x"], y["x"])
        np.testing.assert_array_equal(x["y"], y["y"])
        assert x.get("image") == y.get("image")


def message(panel):
    return html.unescape(panel.message.value)


def resign(doc):
    """The digest as the docstring defines it: SHA-256 of sorted-key, compact, UTF-8 JSON without 'sha256'."""
    body = {k: v for k, v in doc.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    doc["sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return doc


def write(path, doc):
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def csv_bytes(delta=1.2, seed=4):
    V = np.linspace(-4, 4, 400)
    y = fitting.synthetic("dynes", V, noise=0.01, seed=seed, temperature=0.5, delta=delta, gamma=0.03, scale=2.0)
    return ("bias (mV),dIdV (nS)\n" + "\n".join(f"{a:.5f},{b:.6f}" for a, b in zip(V, y, strict=True))).encode()


def non_default(panel):
    """Move a panel away from its start: the last preset, then one enabled slider to a new value."""
    preset = getattr(panel, "preset", None)
    if preset is not None and len(preset.options) > 1:
        preset.value = preset.options[-1]
    for name, c in panel.controls.items():
        if not c.disabled:
            lo, hi = c.param.slider
            v = c.value + 0.25 * (hi - c.value) if c.value < hi else c.value - 0.25 * (c.value - lo)
            panel.set(**{name: round(v) if c.param.integer else v})
            break
    panel.wait()


@pytest.fixture
def fitted(tmp_path):
    p = FitPanel(data_root=tmp_path)
    assert p.load_bytes("spectrum.csv", csv_bytes())
    p.window.value = (-3.5, 3.5)
    r = p.run_fit()
    assert r is not None and r.success
    return p


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("key", [k for k in PANELS if k != "fit"])
def test_every_dashboard_comes_back_with_the_same_plots(key, tmp_path):
    p = PANELS[key].factory()
    non_default(p)
    path = p.save(tmp_path / "s.json")
    q = Panel.load(path)
    assert type(q) is type(p)
    assert q.state() == p.state()
    assert_same_plots(p, q)


def test_shiba_tip_channels_and_map_state_come_back(tmp_path):
    from gapscope.widgets.shiba_panel import SHIBA_PRESETS, ShibaPanel
    p = ShibaPanel()
    p.preset.value = next(iter(SHIBA_PRESETS))         # several channels, a chosen map state
    p.channel.value = "dxy"
    p.set(alpha=0.45)
    p.move_tip(0.3, -0.2)
    p.wait()
    q = Panel.load(p.save(tmp_path / "shiba.json"))
    assert q.tip_position == (0.3, -0.2) and q.channel.value == "dxy" and q.controls["alpha"].value == 0.45
    assert q.channels == p.channels and q.map_at.value == p.map_at.value
    assert_same_plots(p, q)


def test_fit_session_reproduces_data_fit_and_table(fitted, tmp_path):
    p = fitted
    p.rows["gamma"].upper.value = 0.5                   # a bound edited after the fit
    path = p.save(tmp_path / "fit.json")
    other = tmp_path / "elsewhere"                      # a colleague's server: the file is not there
    other.mkdir()
    q = Panel.load(path, data_root=other)
    assert isinstance(q, FitPanel)
    assert_same_plots(p, q)
    r = q.result
    assert r is not None and r.values == p.result.values and r.errors == p.result.errors
    np.testing.assert_array_equal(r.mask, p.result.mask)
    # the fit curve is the model at the saved fit values, computed here
    np.testing.assert_array_equal(q.line_fit.y, fitting.evaluate("dynes", q.spectrum.bias, **p.result.values))
    assert abs(r.values["delta"] - 1.2) < 0.02
    assert {k: row.error.value for k, row in q.rows.items()} == {k: row.error.value for k, row in p.rows.items()}
    assert q.rows["gamma"].upper.value == 0.5 and q.window.value == (-3.5, 3.5)
    assert q.stats.value == p.stats.value and "χ²_red" in q.stats.value


def test_fit_session_embeds_the_data_with_their_sha256(fitted, tmp_path):
    raw = csv_bytes()
    doc = json.loads(fitted.save(tmp_path / "fit.json").read_text(encoding="utf-8"))
    d = doc["state"]["extra"]["data"]
    assert d["sha256"] == hashlib.sha256(raw).hexdigest() and d["size"] == len(raw)
    assert zlib.decompress(base64.b64decode(d["content"])) == raw
    assert "embedded" in fitted.session_note()


def test_a_demo_session_and_a_grid_fit_session(tmp_path):
    p = FitPanel()
    p.demo.value = PB
    p.run_fit()
    q = Panel.load(p.save(tmp_path / "demo.json"))
    assert q.data.demo is p.data.demo and q.result.values == p.result.values
    assert_same_plots(p, q)

    bias = np.linspace(-3, 3, 120)
    cube = np.array([[fitting.synthetic("dynes", bias, noise=0.003, seed=i + 2 * j, temperature=0.5,
                                        delta=1.0 + 0.1 * i + 0.05 * j, gamma=0.05) for j in range(2)]
                     for i in range(2)])
    g = readers.Grid(bias=bias, x=np.linspace(0, 1, 2), y=np.linspace(0, 1, 2), data={"LockinX": cube},
                     units={"LockinX": "V"}, header={})
    readers.write_grid(tmp_path / "g.3ds", g)
    p = FitPanel(data_root=tmp_path)
    assert p.load_path("g.3ds")
    p.rows["temperature"].value.value = 0.5
    p.start_grid_fit(wait=True)
    p.grid_view.param.value = "gamma"
    q = Panel.load(p.save(tmp_path / "grid.json"))
    for k in ("delta", "gamma"):
        np.testing.assert_array_equal(q.grid_result.values[k], p.grid_result.values[k])
    assert q.grid_view.param.value == "gamma" and q.grid_result.done.all()
    assert_same_plots(p, q)


def test_data_too_large_to_embed_are_named_by_sha256_and_read_from_the_data_folder(tmp_path, monkeypatch):
    from gapscope.widgets import session
    monkeypatch.setattr(session, "EMBED_LIMIT", 10)
    (tmp_path / "s.csv").write_bytes(csv_bytes())
    p = FitPanel(data_root=tmp_path)
    assert p.load_path("s.csv")
    path = p.save(tmp_path / "big.json")
    assert json.loads(path.read_text())["state"]["extra"]["data"]["content"] is None
    assert "WITHOUT the data" in p.session_note()
    q = Panel.load(path, data_root=tmp_path)
    assert_same_plots(p, q)
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(SessionError, match="not embedded and 's.csv' is not in the data folder"):
        Panel.load(path, data_root=other)
    (other / "s.csv").write_bytes(csv_bytes(delta=1.1))       # same name, other content
    with pytest.raises(SessionError, match="sha256 differs"):
        Panel.load(path, data_root=other)


# ----------------------------------------------------------------------------- refusals
@pytest.fixture
def gap_doc(tmp_path):
    from gapscope.widgets.gap_panel import GapPanel
    p = GapPanel()
    p.set(delta=1.234)
    return json.loads(p.save(tmp_path / "gap.json").read_text(encoding="utf-8"))


def test_flipping_one_character_is_refused_by_the_digest(tmp_path):
    from gapscope.widgets.gap_panel import GapPanel
    p = GapPanel()
    p.set(delta=1.234)
    text = p.save(tmp_path / "gap.json").read_text(encoding="utf-8")
    i = text.index('"delta": 1.234') + len('"delta": 1.23')
    tampered = text[:i] + "5" + text[i + 1:]                  # 1.234 → 1.235
    (tmp_path / "bad.json").write_text(tampered, encoding="utf-8")
    with pytest.raises(SessionError, match="changed after it was saved: its sha256 digest does not match"):
        Panel.load(tmp_path / "bad.json")
    # loaded into an open dashboard: refused with the reason shown, nothing changed
    before = p.state()
    assert not p.session_bar.load_bytes("bad.json", tampered.encode())
    assert "session refused" in message(p) and "sha256" in message(p)
    assert p.state() == before


@pytest.mark.parametrize("edit, words", [
    (lambda s: s["params"].__setitem__("colour", 1.0), "unknown field 'colour'"),
    (lambda s: s.__setitem__("macro", "import os"), "unknown field 'macro'"),
    (lambda s: s["params"].__setitem__("delta", "1.3"), "state.params.delta: expected a number, got text"),
    (lambda s: s["params"].__setitem__("delta", True), "expected a number, got true/false"),
    (lambda s: s["params"].__setitem__("delta", -1.0), "delta must lie in"),
    (lambda s: s["params"].__setitem__("temperature", 1e9), "temperature must lie in"),
    (lambda s: s["extras"].__setitem__("symmetry", "p-wave"), "'p-wave' is not one of the choices"),
    (lambda s: s["extras"].__setitem__("follow_bcs", 1), "expected true or false"),
    (lambda s: s.__setitem__("preset", "Atlantis"), "state.preset: 'Atlantis' is not one of the choices"),
    (lambda s: s["params"].pop("gamma"), "missing field 'gamma'"),
])
def test_invalid_fields_are_refused_even_with_a_valid_digest(gap_doc, tmp_path, edit, words):
    edit(gap_doc["state"])
    with pytest.raises(SessionError, match=words.replace("(", r"\(").replace(")", r"\)")):
        Panel.load(write(tmp_path / "edited.json", resign(gap_doc)))


def test_envelope_problems_are_refused(gap_doc, tmp_path):
    cases = [({**gap_doc, "schema": 2}, "session schema 2 is not the one this gapscope reads"),
             ({**gap_doc, "format": "pickle"}, "not a gapscope session"),
             ({**gap_doc, "panel": "mystery"}, "unknown dashboard 'mystery'"),
             ({**gap_doc, "extra": 1}, "unknown field 'extra'")]
    for doc, words in cases:
        with pytest.raises(SessionError, match=words):
            Panel.load(write(tmp_path / "e.json", resign(dict(doc))))
    for raw, words in [(b"\x80\x81 not text", "not UTF-8"), (b"{\"format\": ", "not valid JSON"),
                       (b'{"format": "gapscope-session", "format": "x"}', "appears twice"),
                       (json.dumps({**gap_doc, "x": float("nan")}).encode(), "NaN")]:
        (tmp_path / "r.json").write_bytes(raw)
        with pytest.raises(SessionError, match=words):
            Panel.load(tmp_path / "r.json")


def test_a_session_of_another_dashboard_is_refused_there(gap_doc, tmp_path):
    write(tmp_path / "gap.json", gap_doc)
    p = FitPanel()
    assert not p.session_bar.load_bytes("gap.json", (tmp_path / "gap.json").read_bytes())
    assert "session of the 'Gap spectroscopy' dashboard" in message(p)
    from gapscope.widgets.gap_panel import GapPanel
    with pytest.raises(SessionError, match="not of FitPanel"):
        FitPanel.load(tmp_path / "gap.json")
    assert isinstance(GapPanel.load(tmp_path / "gap.json"), GapPanel)


def test_a_huge_file_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "huge.json"
    with open(big, "wb") as fh:                               # sparse: nothing is written or read
        fh.truncate(MAX_BYTES + 1)
    with pytest.raises(SessionError, match="MiB a session may have"):
        Panel.load(big)
    p = FitPanel(data_root=tmp_path)
    assert not p.session_bar.open_path("huge.json")
    assert "MiB a session may have" in message(p)


def test_tampered_fit_fields_are_refused(fitted, tmp_path):
    doc = json.loads(fitted.save(tmp_path / "fit.json").read_text(encoding="utf-8"))
    cases = [
        (lambda e: e["data"].__setitem__("sha256", "0" * 64), "embedded data do not match their sha256"),
        (lambda e: e["data"].__setitem__("size", e["data"]["size"] + 1), "different amount of data"),
        (lambda e: e["data"].__setitem__("content", "!!!"), "not valid compressed base64"),
        (lambda e: e["data"].__setitem__("channel", "Z (m)"), "'Z (m)' is not one of the choices"),
        (lambda e: e["table"]["delta"].__setitem__("value", 99.0), "delta must lie in"),
        (lambda e: e["table"]["delta"].update(lower=10.0, upper=5.0), "lower must lie below upper"),
        (lambda e: e["fit"]["values"].__setitem__("gamma", -0.5), "gamma must lie in"),
        (lambda e: e["fit"].__setitem__("ndata", 3), "is not the"),
        (lambda e: e.__setitem__("model", "mystery"), "'mystery' is not one of the choices"),
        (lambda e: e["window"].reverse(), "above high"),
    ]
    for edit, words in cases:
        d = json.loads(json.dumps(doc))
        edit(d["state"]["extra"])
        with pytest.raises(SessionError) as err:
            Panel.load(write(tmp_path / "t.json", resign(d)), data_root=tmp_path)
        assert words in str(err.value)
    before = fitted.state()                                   # a refusal leaves the open dashboard as it was
    d = json.loads(json.dumps(doc))
    d["state"]["extra"]["table"]["delta"]["value"] = 99.0
    assert not fitted.session_bar.load_bytes("t.json", json.dumps(resign(d)).encode())
    assert fitted.state() == before


# ----------------------------------------------------------------------------- the dashboard's controls
def test_save_button_offers_a_download_and_upload_restores_it(fitted):
    bar = fitted.session_bar
    bar.save_button.click()
    link = bar.download.value
    assert 'download="gapscope-fit-session.json"' in link and "data:application/json;base64," in link
    content = base64.b64decode(link.split("base64,")[1].split('"')[0])
    q = FitPanel()
    q.session_bar.upload.value = ({"name": "gapscope-fit-session.json", "type": "application/json",
                                   "size": len(content), "content": memoryview(content),
                                   "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
    assert "Session gapscope-fit-session.json loaded" in message(q)
    assert q.result is not None and q.result.values == fitted.result.values
    assert_same_plots(fitted, q)


def test_server_side_session_paths_stay_in_the_data_folder(fitted, tmp_path):
    bar = fitted.session_bar
    assert bar.write_path("sessions-here")
    assert (tmp_path / "sessions-here.json").is_file()
    q = FitPanel(data_root=tmp_path)
    assert q.session_bar.open_path("sessions-here.json") and q.result.values == fitted.result.values
    for bad in ("../x.json", "/etc/passwd", "~/x.json"):
        assert not q.session_bar.open_path(bad)
        assert "inside the data folder" in message(q)
        assert not bar.write_path(bad)
