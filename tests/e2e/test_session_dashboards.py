"""End-to-end: a session saved in the browser restores the fit on a new page; a global fit over three files.

Real headless Chromium against a served Voilà; waits on elements, never sleeps.
"""

import base64

import numpy as np
import pytest

from gapscope.kernels import fitting, gap, readers

pytestmark = pytest.mark.browser

KB = 8.617333262e-2
WC = np.pi * np.exp(-np.euler_gamma)
NUMBER = "sel => { const e = document.querySelector(sel); return e && /^[0-9.eE+-]+/.test(e.innerText.trim()); }"


def upload(page, selector, paths):
    with page.expect_file_chooser(timeout=30_000) as chooser:     # the widget creates its <input> on click
        page.click(selector)
    chooser.value.set_files([str(p) for p in paths])


def new_page(context):
    pg = context.new_page()
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    return pg


def open_fit(page, voila_url):
    page.goto(f"{voila_url}/voila/render/fit.ipynb")
    page.wait_for_selector(".gs-upload", timeout=90_000)


def test_a_session_saved_after_a_fit_restores_it_on_a_new_page(browser_context, voila_url, tmp_path):
    V = np.linspace(-4, 4, 400)
    y = fitting.synthetic("dynes", V, noise=0.01, seed=7, temperature=0.5, delta=1.25, gamma=0.03, scale=2.0)
    f = tmp_path / "spectrum.csv"
    f.write_text("bias (mV),dIdV (nS)\n" + "\n".join(f"{a:.5f},{b:.6f}" for a, b in zip(V, y, strict=True)))
    page = new_page(browser_context)
    open_fit(page, voila_url)
    upload(page, ".gs-upload", [f])
    page.wait_for_function("() => /spectrum\\.csv/.test(document.querySelector('.gs-fitfig').textContent)",
                           timeout=60_000)
    page.click(".gs-fit")
    page.wait_for_function(NUMBER, arg=".gs-err-delta", timeout=60_000)
    page.wait_for_function("() => /χ²_red/.test(document.querySelector('.gs-stats').innerText)", timeout=60_000)
    delta, err = page.input_value(".gs-val-delta input"), page.inner_text(".gs-err-delta")
    stats = page.inner_text(".gs-stats")
    assert abs(float(delta) - 1.25) < 0.02
    page.click(".gs-save-session")
    link = page.wait_for_selector("a.gs-session-link", timeout=30_000)
    with page.expect_download(timeout=30_000) as dl:
        link.click()
    saved = tmp_path / "session.json"
    dl.value.save_as(saved)
    href = link.get_attribute("href")
    assert base64.b64decode(href.split("base64,", 1)[1]) == saved.read_bytes()
    assert page.errors == []
    page.close()

    fresh = new_page(browser_context)                  # a NEW page: its own kernel, nothing loaded
    open_fit(fresh, voila_url)
    assert fresh.inner_text(".gs-err-delta").strip() == "—"
    upload(fresh, ".gs-load-session", [saved])
    fresh.wait_for_function(NUMBER, arg=".gs-err-delta", timeout=60_000)
    fresh.wait_for_function("() => /spectrum\\.csv/.test(document.querySelector('.gs-fitfig').textContent)",
                            timeout=60_000)
    assert fresh.input_value(".gs-val-delta input") == delta
    assert fresh.inner_text(".gs-err-delta") == err
    assert fresh.inner_text(".gs-stats") == stats
    assert "loaded" in fresh.inner_text(".gs-message")
    assert fresh.query_selector(".gs-panel .gs-error") is None
    assert fresh.errors == []
    fresh.close()


def test_a_global_fit_over_three_uploaded_files(page, voila_url, tmp_path):
    T, delta0 = (0.5, 3.0, 5.5), 1.3
    tc = delta0 / (WC * KB)
    files = []
    for i, t in enumerate(T):
        V = np.linspace(-4, 4, 241)
        d = float(gap.bcs_gap(t, delta0=delta0, tc=tc))
        y = 2.0 * fitting.synthetic("dynes", V, noise=0.004, seed=20 + i, temperature=t, delta=d, gamma=0.03)
        path = tmp_path / f"T{i}.dat"
        readers.write_dat(path, readers.Spectrum(bias=V, channels={"LI Demod 1 X": y}, units={"LI Demod 1 X": "A"},
                                                 header={"Temperature 1>Temperature 1 (K)": f"{t:.4E}"}))
        files.append(path)
    open_fit(page, voila_url)
    page.click("text=Global fit of several spectra")
    page.wait_for_selector(".gs-global-upload", state="visible", timeout=30_000)
    upload(page, ".gs-global-upload", files)
    page.wait_for_selector(".gs-global-T-2 input", timeout=60_000)
    temps = [float(page.input_value(f".gs-global-T-{i} input")) for i in range(3)]
    assert temps == pytest.approx(list(T))                   # read from the files' metadata
    page.select_option(".gs-role-gamma select", label="shared")
    page.select_option(".gs-role-delta select", label="Δ(T) BCS")
    page.click(".gs-global-fit")
    page.wait_for_function(NUMBER, arg=".gs-shared-tc", timeout=120_000)
    assert abs(float(page.inner_text(".gs-shared-tc").split("±")[0]) - tc) < 0.1
    assert abs(float(page.inner_text(".gs-shared-delta0").split("±")[0]) - delta0) < 0.01
    n = page.eval_on_selector_all(".gs-global-fig path.line",
                                  "els => els.filter(e => (e.getAttribute('d') || '').length > 200).length")
    assert n == 3
    assert "delta (tied)" in page.inner_text(".gs-global-table")
    assert page.query_selector(".gs-panel .gs-error") is None
    assert page.errors == []
