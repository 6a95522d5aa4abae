"""End-to-end: the YSR chains dashboard in headless Chromium — it loads, and moving k₁ changes the fan diagram."""

import pytest

pytestmark = pytest.mark.browser

FAN = ".gs-fan path.line"
SPEC = ".gs-spectrum path.line"
ALL = "els => els.map(e => e.getAttribute('d') || '').filter(d => d.length > 0)"
CURVES = "els => els.map(e => e.getAttribute('d') || '').filter(d => d.length > 200)"


def wait_changed(page, sel, before, timeout=60_000):
    page.wait_for_function(
        "([sel, old]) => { const d = [...document.querySelectorAll(sel)].map(e => e.getAttribute('d') || '')"
        ".filter(x => x.length > 0); return d.length === old.length && d.some((x, i) => x !== old[i]); }",
        arg=[sel, before], timeout=timeout)


def test_chains_dashboard_k1_changes_the_fan_diagram(page, voila_url):
    page.goto(f"{voila_url}/voila/render/chains.ipynb")
    page.wait_for_selector(".gs-panel", timeout=90_000)
    # the fan's two sector curves (even, odd) and the spectrum's two curves are drawn with real data
    for sel in (FAN, SPEC):
        page.wait_for_function("sel => [...document.querySelectorAll(sel)].filter(e => (e.getAttribute('d') || '')"
                               ".length > 200).length >= 2", arg=sel, timeout=90_000)
    page.wait_for_selector(".gs-profile image", timeout=30_000)
    assert page.query_selector(".gs-colorbar") is not None
    fan_before = page.eval_on_selector_all(FAN, ALL)
    curves_before = page.eval_on_selector_all(FAN, CURVES)
    handle = page.wait_for_selector(".gs-param-k1 .noUi-handle", timeout=30_000)
    handle.focus()
    for _ in range(50):
        page.keyboard.press("ArrowRight")      # k₁ 0.40 → 0.90 meV: the fan's k₁ range widens
    page.wait_for_function("() => { const i = document.querySelector('.gs-value-k1 input');"
                           " return i && Math.abs(parseFloat(i.value) - 0.9) < 1e-6; }", timeout=30_000)
    wait_changed(page, FAN, fan_before)
    page.wait_for_function(
        "([sel, old]) => { const d = [...document.querySelectorAll(sel)].map(e => e.getAttribute('d') || '')"
        ".filter(x => x.length > 200); return d.length === old.length && d.some((x, i) => x !== old[i]); }",
        arg=[FAN, curves_before], timeout=60_000)
    assert "odd" in page.inner_text(".gs-readout") and "even" in page.inner_text(".gs-readout")
    assert page.query_selector(".gs-panel .gs-error") is None
    assert "Traceback" not in page.content()
    assert page.errors == []
