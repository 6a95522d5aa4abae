"""The citation registry: completeness of every entry, formatting, escaping, lookup errors."""

import dataclasses
import re

import pytest

from gapscope.kernels import references
from gapscope.kernels.references import REFERENCES, Reference, cite

DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")
ALL = sorted(REFERENCES.values(), key=lambda r: r.key)
IDS = [r.key for r in ALL]


def test_registry_has_the_sources_and_no_internal_names():
    assert len(REFERENCES) >= 7
    for key in ("beck2021_mn_dimers", "bardeen1957_bcs", "dynes1978_broadening"):
        assert key in REFERENCES
    for key in REFERENCES:
        assert re.fullmatch(r"[a-z]+\d{4}_[a-z0-9_]+", key), key
        assert "paper" not in key
    assert not hasattr(references, "SEED_FILES")


@pytest.mark.parametrize("ref", ALL, ids=IDS)
def test_entry_is_complete(ref):
    assert REFERENCES[ref.key] is ref
    assert isinstance(ref.authors, tuple) and ref.authors
    assert all(isinstance(a, str) and a.strip() for a in ref.authors)
    assert ref.title.strip() and ref.journal.strip()
    assert isinstance(ref.year, int) and 1900 < ref.year < 2100
    assert isinstance(ref.volume, str) and isinstance(ref.pages, str)
    assert ref.doi is None or DOI_RE.match(ref.doi), ref.doi
    if ref.doi is None:
        assert ref.note, "an entry without DOI must say why in its note"


@pytest.mark.parametrize("ref", ALL, ids=IDS)
def test_formats_contain_year_and_doi_state(ref):
    year = f"({ref.year})"
    assert year in ref.short() and year in ref.full()
    assert ref.title in ref.full()
    assert all(a in ref.full() for a in ref.authors)
    if ref.doi:
        assert ref.url() == "https://doi.org/" + ref.doi
        assert f"doi:{ref.doi}" in ref.full()
        assert f'href="https://doi.org/{ref.doi}"' in ref.html()
    else:
        assert ref.url() is None
        assert "DOI not found" in ref.full() and "DOI not found" in ref.html()
        assert "<a " not in ref.html()


def test_known_citations():
    beck = cite("beck2021_mn_dimers")
    assert beck.short() == "Beck et al., Nat. Commun. 12, 2040 (2021)"
    assert beck.doi == "10.1038/s41467-021-22261-6"
    assert len(beck.authors) == 8
    bcs = cite("bardeen1957_bcs")
    assert bcs.short() == "Bardeen et al., Phys. Rev. 108, 1175 (1957)"
    assert bcs.full() == ('J. Bardeen, L. N. Cooper, and J. R. Schrieffer, "Theory of '
                          'Superconductivity", Phys. Rev. 108, 1175 (1957), '
                          "doi:10.1103/PhysRev.108.1175")
    assert bcs.url() == "https://doi.org/10.1103/PhysRev.108.1175"
    dynes = cite("dynes1978_broadening")
    assert dynes.short() == "Dynes et al., Phys. Rev. Lett. 41, 1509 (1978)"
    assert dynes.doi == "10.1103/PhysRevLett.41.1509"
    assert cite("wickramaratne2023_ising").short().startswith("Wickramaratne and Mazin, ")


def test_reference_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        cite("bardeen1957_bcs").year = 2000


def test_html_escapes_text_and_link():
    ref = Reference(key="x2000_t", authors=("A <b>Bold</b> & Co",), title='<script>"x"</script>',
                    journal="J. <i>", volume="1<2", pages="3&4", year=2000,
                    doi='10.1234/a"b<c>&d')
    out = ref.html()
    assert "<script>" not in out and "<b>Bold</b>" not in out and "J. <i>" not in out
    assert "&lt;script&gt;" in out and "&quot;x&quot;" in out and "A &lt;b&gt;Bold&lt;/b&gt; &amp; Co" in out
    assert "1&lt;2" in out and "3&amp;4" in out
    assert 'href="https://doi.org/10.1234/a&quot;b&lt;c&gt;&amp;d"' in out
    assert out.startswith("<span") and out.endswith("</span>")
    assert "DOI not found" in dataclasses.replace(ref, doi=None).html()


def test_author_labels():
    one = Reference("a2000_x", ("Ann Smith",), "T", "J", "1", "2", 2000, None)
    two = dataclasses.replace(one, authors=("Ann Smith", "Bo Jones"))
    assert one.short() == "Smith, J 1, 2 (2000)"
    assert two.short() == "Smith and Jones, J 1, 2 (2000)"
    assert two.full() == 'Ann Smith and Bo Jones, "T", J 1, 2 (2000), DOI not found'
    bare = dataclasses.replace(one, volume="", pages="")
    assert bare.short() == "Smith, J (2000)"


def test_unknown_key_raises_with_known_keys():
    with pytest.raises(KeyError) as info:
        cite("paper000")
    message = str(info.value)
    assert "paper000" in message
    for key in REFERENCES:
        assert key in message
