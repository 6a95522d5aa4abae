"""End-to-end: the Ising dashboard in headless Chromium — β_so moves the H_c2 line, B changes the spectrum."""

import pytest

pytestmark = pytest.mark.browser

HC2 = ".gs-hc2 path.line"
SPEC = ".gs-spectrum path.line"
CURVES = "els => els.map(e => e.getAttribute('d') || '').filter(d => d.length > 200)"


def paths(page, sel):
    return page.eval_on_selector_all(sel, CURVES)


def wait_changed(page, sel, before, timeout=60_000):
    page.wait_for_function(
        "([sel, old]) => { const d = [...document.querySelectorAll(sel)].map(e => e.getAttribute('d') || '')"
        ".filter(x => x.length > 200); return d.length === old.length && d.some((x, i) => x !== old[i]); }",
        arg=[sel, before], timeout=timeout)


def test_ising_dashboard_beta_moves_hc2_and_b_changes_the_spectrum(page, voila_url):
    page.goto(f"{voila_url}/voila/render/ising.ipynb")
    page.wait_for_selector(".gs-panel", timeout=90_000)
    page.wait_for_function("sel => [...document.querySelectorAll(sel)].filter(e => (e.getAttribute('d') || '')"
                           ".length > 200).length === 2", arg=HC2, timeout=90_000)
    assert "hundreds of tesla" in page.inner_text(".gs-dft-note")
    hc2_before, spec_before = paths(page, HC2), paths(page, SPEC)
    handle = page.wait_for_selector(".gs-param-beta_so .noUi-handle", timeout=30_000)
    handle.focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")      # β_so 1.00 → 1.20 meV
    wait_changed(page, HC2, hc2_before)
    page.wait_for_function("() => { const i = document.querySelector('.gs-value-beta_so input');"
                           " return i && Math.abs(parseFloat(i.value) - 1.2) < 1e-6; }", timeout=30_000)
    spec_mid = paths(page, SPEC)
    handle = page.wait_for_selector(".gs-param-b .noUi-handle", timeout=30_000)
    handle.focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")      # B 10 → 12 T
    wait_changed(page, SPEC, spec_mid)
    assert paths(page, SPEC) != spec_before
    assert page.query_selector(".gs-panel .gs-error") is None
    assert "Traceback" not in page.content()
    assert page.errors == []
