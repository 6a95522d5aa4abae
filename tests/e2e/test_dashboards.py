"""End-to-end: real headless Chromium against a running Voilà; waits on elements, never sleeps."""

import sys
from pathlib import Path

import pytest

from gapscope.widgets import PANELS

pytestmark = pytest.mark.browser

LINE = ".gs-spectrum path.line"


CURVES = "els => els.map(e => e.getAttribute('d') || '').filter(d => d.length > 200)"   # not legend glyphs


def line_paths(page):
    return page.eval_on_selector_all(LINE, CURVES)


def wait_for_curves(page, timeout):
    """Both spectrum curves drawn with real data."""
    page.wait_for_selector(LINE, timeout=timeout)
    page.wait_for_function("sel => [...document.querySelectorAll(sel)].filter(e => (e.getAttribute('d') || '')"
                           ".length > 200).length === 2", arg=LINE, timeout=timeout)


def wait_for_new_curves(page, before, timeout=60_000):
    """Some curve's path differs from ``before``."""
    page.wait_for_function(
        "([sel, old]) => { const d = [...document.querySelectorAll(sel)].map(e => e.getAttribute('d') || '')"
        ".filter(x => x.length > 200); return d.length === old.length && d.some((x, i) => x !== old[i]); }",
        arg=[LINE, before], timeout=timeout)


def test_gallery_lists_dashboards(page, voila_url):
    page.goto(f"{voila_url}/voila/render/index.ipynb")
    page.wait_for_selector("a.gs-card", timeout=60_000)
    cards = page.eval_on_selector_all("a.gs-card", "els => els.map(e => [e.getAttribute('href'), e.innerText])")
    assert [c[0] for c in cards] == [e.notebook for e in PANELS.values()]
    for (_href, text), entry in zip(cards, PANELS.values(), strict=True):
        assert entry.title in text
    assert page.errors == []


@pytest.mark.parametrize("key", list(PANELS))
def test_every_registered_dashboard_renders(page, voila_url, key):
    """Smoke test over the registry: the panel appears with its controls, and no error reaches the page."""
    page.goto(f"{voila_url}/voila/render/{PANELS[key].notebook}")
    page.wait_for_selector(".gs-panel", timeout=90_000)
    page.wait_for_function("() => !document.querySelector('.gs-computing')", timeout=90_000)
    for p in PANELS[key].factory.PARAMS:
        assert page.query_selector(f".gs-param-{p.name}") is not None, f"no control for {p.name}"
    assert page.query_selector(".gs-panel .gs-error") is None
    assert "Traceback" not in page.content()
    assert page.errors == []


def test_gap_dashboard_slider_moves_curve(page, voila_url):
    page.goto(f"{voila_url}/voila/render/gap.ipynb")
    wait_for_curves(page, 60_000)
    before = line_paths(page)
    handle = page.wait_for_selector(".gs-param-delta .noUi-handle", timeout=30_000)
    handle.focus()
    for _ in range(10):
        page.keyboard.press("ArrowLeft")       # Δ₀ 1.30 → 1.20 meV, one step per press
    wait_for_new_curves(page, before, 30_000)
    after = line_paths(page)
    assert after != before
    # the number box follows the slider (kernel-side value)
    page.wait_for_function("() => { const i = document.querySelector('.gs-value-delta input');"
                           " return i && Math.abs(parseFloat(i.value) - 1.2) < 1e-6; }", timeout=30_000)
    assert "Traceback" not in page.content()
    assert page.errors == []


def test_shiba_dashboard_alpha_slider_and_map_click(page, voila_url):
    page.goto(f"{voila_url}/voila/render/shiba.ipynb")
    wait_for_curves(page, 90_000)
    image = page.wait_for_selector(".gs-map image", timeout=30_000)
    href0 = image.get_attribute("href")
    before = line_paths(page)
    handle = page.wait_for_selector(".gs-param-alpha .noUi-handle", timeout=30_000)
    handle.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")      # α 0.70 → 0.75: the YSR peak moves
    wait_for_new_curves(page, before)
    page.wait_for_function("old => { const i = document.querySelector('.gs-map image');"
                           " return i && i.getAttribute('href') !== old; }", arg=href0, timeout=60_000)
    # click on the map away from the tip: the spectrum is recomputed at the new position
    before = line_paths(page)
    box = page.locator(".gs-map image").bounding_box()
    page.mouse.click(box["x"] + 0.8 * box["width"], box["y"] + 0.3 * box["height"])
    wait_for_new_curves(page, before)
    assert "Traceback" not in page.content()
    assert page.errors == []


STATES = "() => document.querySelector('.gs-readout .gs-ro-3')"       # the readout's "YSR states" cell


def test_shiba_dashboard_on_a_lattice_mu_moves_the_spectrum_and_the_ysr_state(page, voila_url):
    """The Shiba dashboard's lattice substrate in the browser: choosing it draws the lattice spectrum and its YSR
    state; a μ change (the value box) redraws the spectrum and moves the state, with no error."""
    page.goto(f"{voila_url}/voila/render/shiba.ipynb")
    wait_for_curves(page, 90_000)
    page.wait_for_selector(".gs-substrate select", timeout=30_000)
    page.select_option(".gs-substrate select", label="lattice: square")
    page.wait_for_function("() => { const e = document.querySelector('.gs-readout .gs-ro-0');"
                           " return e && e.innerText.startsWith('square'); }", timeout=120_000)
    page.wait_for_function(f"() => {{ const e = ({STATES})(); return e && /^1: /.test(e.innerText); }}",
                           timeout=120_000)
    state = page.inner_text(".gs-readout .gs-ro-3")
    before = line_paths(page)
    box = page.wait_for_selector(".gs-value-mu input", timeout=30_000)
    box.fill("-2.5")
    box.press("Enter")
    wait_for_new_curves(page, before, timeout=120_000)
    page.wait_for_function(f"old => {{ const e = ({STATES})(); return e && /^1: /.test(e.innerText)"
                           " && e.innerText !== old; }", arg=state, timeout=120_000)
    assert page.query_selector(".gs-panel .gs-error") is None
    assert "Traceback" not in page.content()
    assert page.errors == []


def test_fit_dashboard_upload_and_fit(page, voila_url, tmp_path):
    import numpy as np

    from gapscope.kernels import fitting
    V = np.linspace(-4, 4, 400)
    y = fitting.synthetic("dynes", V, noise=0.01, seed=4, temperature=0.5, delta=1.2, gamma=0.03, scale=2.0)
    f = tmp_path / "spectrum.csv"
    f.write_text("bias (mV),dIdV (nS)\n" + "\n".join(f"{a:.5f},{b:.6f}" for a, b in zip(V, y, strict=True)))
    page.goto(f"{voila_url}/voila/render/fit.ipynb")
    page.wait_for_selector(".gs-upload", timeout=90_000)
    with page.expect_file_chooser(timeout=30_000) as chooser:     # the widget creates its <input> on click
        page.click(".gs-upload")
    chooser.value.set_files(str(f))
    page.wait_for_function("sel => [...document.querySelectorAll(sel)].some(e => (e.getAttribute('d') || '')"
                           ".length > 2000)", arg=".gs-fitfig path.line", timeout=60_000)
    assert "spectrum.csv" in page.inner_text(".gs-fitfig")
    page.click(".gs-fit")
    page.wait_for_function("() => { const e = document.querySelector('.gs-err-delta');"
                           " return e && /^[0-9.eE-]+/.test(e.innerText.trim()); }", timeout=60_000)
    page.wait_for_function("() => /χ²_red/.test(document.querySelector('.gs-stats').innerText)", timeout=60_000)
    value = float(page.input_value(".gs-val-delta input"))
    assert abs(value - 1.2) < 0.02
    assert page.errors == []


def test_a_30_mib_grid_upload_arrives(page, voila_url, tmp_path):
    """Uploads over ~10 MiB used to vanish silently (websocket message limit); the served config allows 200 MiB."""
    import numpy as np

    from gapscope.kernels import fitting, readers
    bias = np.linspace(-4, 4, 2500)
    one = fitting.synthetic("dynes", bias, noise=0.01, seed=5, temperature=0.5)
    cube = np.broadcast_to(one, (40, 40, bias.size))
    grid = readers.Grid(bias=bias, x=np.linspace(0, 3, 40), y=np.linspace(0, 3, 40),
                        data={"LockinX": cube, "Current": cube}, units={"LockinX": "V", "Current": "A"}, header={})
    f = tmp_path / "big-grid.3ds"
    readers.write_grid(f, grid)
    assert f.stat().st_size > 30 * 2 ** 20
    page.goto(f"{voila_url}/voila/render/fit.ipynb")
    page.wait_for_selector(".gs-upload", timeout=90_000)
    with page.expect_file_chooser(timeout=30_000) as chooser:
        page.click(".gs-upload")
    chooser.value.set_files(str(f))
    page.wait_for_function("() => /big-grid\\.3ds/.test(document.querySelector('.gs-fitfig').textContent)",
                           timeout=120_000)
    assert page.query_selector(".gs-panel .gs-error") is None
    assert page.errors == []


@pytest.mark.parametrize("key", list(PANELS))
def test_messages_are_in_view_at_1366x768(page, voila_url, key):
    """The panel's message line used to sit below the plots (y ≈ 900–960 px at 1366×768)."""
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{voila_url}/voila/render/{PANELS[key].notebook}")
    page.wait_for_selector(".gs-panel .gs-message", timeout=90_000)
    box = page.locator(".gs-panel .gs-message").first.bounding_box()
    assert box is not None and 0 <= box["y"] < 768 - 40, box


def test_closing_a_tab_frees_its_kernel_and_a_lost_kernel_is_shown(browser_context, tmp_path):
    """A closed tab used to keep its kernel until culled (the shutdown request was refused); a page whose kernel
    is gone used to show frozen plots with no word.  A server of our own: this test stops it."""
    import os
    import signal
    import socket
    import subprocess
    import threading

    root = Path(__file__).resolve().parents[2]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PORT=str(port), BIN=str(Path(sys.executable).parent), GAPSCOPE_DATA_ROOT=str(tmp_path))
    proc = subprocess.Popen([str(root / "serve" / "run")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True)
    started, freed = threading.Event(), threading.Event()
    lines = []

    def reader():
        for line in proc.stdout:
            lines.append(line)
            if "is running at" in line:
                started.set()
            if "Kernel shutdown" in line:
                freed.set()
    threading.Thread(target=reader, daemon=True).start()
    try:
        assert started.wait(60), "".join(lines[-20:])
        page = browser_context.new_page()
        page.goto(f"http://127.0.0.1:{port}/voila/render/gap.ipynb")
        page.wait_for_selector(".gs-panel", timeout=90_000)
        page.close(run_before_unload=True)                      # as a browser closing a tab does
        assert freed.wait(15), "closing the tab did not shut its kernel down:\n" + "".join(lines[-20:])
        page = browser_context.new_page()
        page.goto(f"http://127.0.0.1:{port}/voila/render/gap.ipynb")
        page.wait_for_selector(".gs-panel", timeout=90_000)
        assert not page.is_visible("#gs-lost")
        os.killpg(proc.pid, signal.SIGTERM)                     # the server goes away: the kernel is lost
        page.wait_for_selector("#gs-lost", state="visible", timeout=30_000)
        assert "Reload" in page.inner_text("#gs-lost")
        page.close()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_static_gallery_lists_the_registry_and_links_render(page, voila_url):
    """The served gallery is a static page (no kernel per visitor); its cards open the dashboards."""
    page.goto(f"{voila_url}/voila/files/gallery.html")
    page.wait_for_selector("a.gs-card", timeout=30_000)
    hrefs = page.eval_on_selector_all("a.gs-card", "els => els.map(e => e.getAttribute('href'))")
    assert hrefs == [f"../render/{e.notebook}" for e in PANELS.values()]
    page.click("a.gs-card >> nth=0")
    page.wait_for_selector(".gs-panel", timeout=90_000)
    assert page.url.endswith(f"/voila/render/{next(iter(PANELS.values())).notebook}")
    assert page.errors == []


def test_proximity_dashboard_xi_n_moves_profile_and_image(page, voila_url):
    page.goto(f"{voila_url}/voila/render/proximity.ipynb")
    page.wait_for_function("() => [...document.querySelectorAll('.gs-profile path.line')]"
                           ".some(e => (e.getAttribute('d') || '').length > 200)", timeout=90_000)
    page.wait_for_function("() => !document.querySelector('.gs-computing')", timeout=90_000)
    before = page.eval_on_selector_all(".gs-profile path.line", "els => els.map(e => e.getAttribute('d') || '')")
    href0 = page.wait_for_selector(".gs-map image").get_attribute("href")
    box = page.wait_for_selector(".gs-value-xi_n input")
    box.fill("4")
    box.press("Enter")
    page.wait_for_function("([s, o]) => [...document.querySelectorAll(s)].map(e => e.getAttribute('d') || '')"
                           ".some((x, i) => x !== o[i])", arg=[".gs-profile path.line", before], timeout=60_000)
    page.wait_for_function("o => document.querySelector('.gs-map image').getAttribute('href') !== o", arg=href0,
                           timeout=60_000)
    assert page.errors == []


@pytest.mark.parametrize("key", list(PANELS))
def test_no_control_label_is_truncated(page, voila_url, key):
    """Labels used to read "supercondu…", "V_mod (mV…", "ħv_F (meV·…"."""
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{voila_url}/voila/render/{PANELS[key].notebook}")
    page.wait_for_selector(".gs-panel", timeout=90_000)
    cut = page.eval_on_selector_all(
        ".gs-panel .widget-label, .gs-panel .widget-toggle-button, .gs-panel .widget-button, "
        ".gs-panel .widget-checkbox label",
        "els => els.filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)"
        ".map(e => e.innerText)")
    assert cut == [], f"truncated: {cut}"
