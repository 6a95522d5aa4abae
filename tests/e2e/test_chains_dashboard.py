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


AFM_PRESET = "AFM Mn dimer √3a/2 [1-11] with Rashba — Beck et al."
#: the screen distance (px) between the two plotted states at the current t_R — the fan's large diamonds, one
#: symbol group of two dots at one x (the fan's own points are small circles, two per t_R; each dot's position is
#: its own or its group's translate) — or −1 if not drawn
LEVEL_GAP = ("() => { const g = {}; for (const e of document.querySelectorAll('.gs-fan path.dot')) {"
             " const tr = e.getAttribute('transform') || (e.parentNode && e.parentNode.getAttribute('transform'))"
             " || '';"
             r" const m = /translate\(\s*([-\d.e]+)[ ,]+([-\d.e]+)/.exec(tr);"
             " if (!m) continue; const d = e.getAttribute('d') || ''; (g[d] = g[d] || []).push([+m[1], +m[2]]); }"
             " for (const p of Object.values(g)) { if (p.length === 2 && Math.abs(p[0][0] - p[1][0]) < 0.5)"
             " return Math.abs(p[0][1] - p[1][1]); } return -1; }")


def split_value(page):
    return float(page.inner_text(".gs-split-value").split()[0])


def test_chains_dashboard_t_r_splits_the_plotted_afm_levels(page, voila_url):
    page.goto(f"{voila_url}/voila/render/chains.ipynb")
    page.wait_for_selector(".gs-panel", timeout=90_000)
    page.wait_for_selector(".gs-chains-preset select", timeout=30_000)
    page.select_option(".gs-chains-preset select", label=AFM_PRESET)
    page.wait_for_function("() => { const e = document.querySelector('.gs-split-value');"
                           " return e && e.innerText.startsWith('2.02'); }", timeout=120_000)
    # t_R = 0: the AFM pair is Kramers-degenerate, the two plotted levels coincide
    box = page.wait_for_selector(".gs-value-t_r input", timeout=30_000)
    box.fill("0")
    box.press("Enter")
    page.wait_for_function("() => { const e = document.querySelector('.gs-split-value');"
                           " return e && e.innerText.startsWith('0.00'); }", timeout=120_000)
    page.wait_for_function(f"() => {{ const g = ({LEVEL_GAP})(); return g >= 0 && g < 0.5; }}", timeout=60_000)
    # move the t_R slider: 0 → 5 meV (50 steps of 0.1): the plotted pair splits
    handle = page.wait_for_selector(".gs-param-t_r .noUi-handle", timeout=30_000)
    handle.focus()
    for _ in range(50):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("() => { const i = document.querySelector('.gs-value-t_r input');"
                           " return i && Math.abs(parseFloat(i.value) - 5.0) < 1e-6; }", timeout=30_000)
    page.wait_for_function("() => { const e = document.querySelector('.gs-split-value');"
                           " return e && parseFloat(e.innerText) > 0.5; }", timeout=120_000)
    page.wait_for_function(f"() => ({LEVEL_GAP})() > 2.0", timeout=60_000)    # pixels apart on the fan
    assert 0.5 < split_value(page) < 3.0                                       # μeV (2.02 at 7.5 meV)
    assert page.query_selector(".gs-panel .gs-error") is None
    assert "Traceback" not in page.content()
    assert page.errors == []
