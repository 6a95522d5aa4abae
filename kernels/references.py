"""Full citations of the papers gapscope's physics comes from (pure Python, no UI).

Docstrings and panels cite a paper through a stable key instead of an internal file
name, e.g. ``cite("beck2021_mn_dimers").short()`` gives
``"Beck et al., Nat. Commun. 12, 2040 (2021)"``.

Every DOI stored here was found in a public source; where no DOI could be confirmed
the entry has ``doi=None`` and its ``note`` says what is and is not known, rather
than carrying a guessed identifier.  Entries whose journal version could not be
identified cite the manuscript as it was read (title, authors and date as printed).

Examples
--------
>>> from gapscope.kernels.references import cite
>>> cite("bardeen1957_bcs").url()
'https://doi.org/10.1103/PhysRev.108.1175'
"""

from __future__ import annotations

import html
from dataclasses import dataclass

__all__ = ["Reference", "REFERENCES", "cite"]

_DOI_RESOLVER = "https://doi.org/"


def _surname(name: str) -> str:
    """Family name of ``name`` written as "Given Names Surname"."""
    return name.split()[-1]


def _join_names(names: tuple[str, ...]) -> str:
    """``"A"``, ``"A and B"`` or ``"A, B, and C"``."""
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + ", and " + names[-1]


@dataclass(frozen=True)
class Reference:
    """One bibliographic reference.

    Parameters
    ----------
    key : str
        Stable lookup key: first author, year and topic, e.g. ``"beck2021_mn_dimers"``.
    authors : tuple of str
        Author names in publication order, each written "Given Names Surname".
    title : str
        Title as printed.
    journal : str
        Abbreviated journal name, or a description of the manuscript when no journal
        version could be identified.
    volume : str
        Volume; empty if unknown or not applicable.
    pages : str
        Article number or first page; empty if unknown.
    year : int
        Year of publication (or of the manuscript, see ``note``).
    doi : str or None
        DOI without resolver prefix (``"10.xxxx/..."``); ``None`` if none was found.
    note : str, optional
        Caveats on the entry (provenance, unverified fields).
    """

    key: str
    authors: tuple[str, ...]
    title: str
    journal: str
    volume: str
    pages: str
    year: int
    doi: str | None
    note: str = ""

    def _author_label(self) -> str:
        """"Beck", "Wickramaratne and Mazin" or "Beck et al."."""
        names = tuple(_surname(a) for a in self.authors)
        if len(names) <= 2:
            return " and ".join(names)
        return f"{names[0]} et al."

    def _source(self) -> str:
        """Journal, volume and pages, e.g. "Nat. Commun. 12, 2040"."""
        text = self.journal
        if self.volume:
            text += f" {self.volume}"
        if self.pages:
            text += f", {self.pages}"
        return text

    def short(self) -> str:
        """Compact in-text citation.

        Returns
        -------
        str
            E.g. ``"Beck et al., Nat. Commun. 12, 2040 (2021)"``.
        """
        return f"{self._author_label()}, {self._source()} ({self.year})"

    def full(self) -> str:
        """Complete citation with every author and the DOI.

        Returns
        -------
        str
            Authors, quoted title, journal volume, pages (year), then ``doi:...``
            or ``"DOI not found"``.
        """
        doi = f"doi:{self.doi}" if self.doi else "DOI not found"
        return (f'{_join_names(self.authors)}, "{self.title}", '
                f"{self._source()} ({self.year}), {doi}")

    def url(self) -> str | None:
        """Resolver link of the DOI.

        Returns
        -------
        str or None
            ``"https://doi.org/<doi>"``, or ``None`` when no DOI is known.
        """
        return _DOI_RESOLVER + self.doi if self.doi else None

    def html(self) -> str:
        """HTML fragment of :meth:`full`, all text escaped, the DOI as a link.

        Returns
        -------
        str
            A ``<span class="gapscope-reference">`` element.
        """
        esc = html.escape
        source = f"<i>{esc(self.journal)}</i>"
        if self.volume:
            source += f" <b>{esc(self.volume)}</b>"
        if self.pages:
            source += f", {esc(self.pages)}"
        link = self.url()
        if link is None:
            doi = "DOI not found"
        else:
            doi = f'<a href="{esc(link)}" target="_blank" rel="noopener">doi:{esc(self.doi or "")}</a>'
        return (f'<span class="gapscope-reference">{esc(_join_names(self.authors))}, '
                f"&ldquo;{esc(self.title)}&rdquo;, {source} ({self.year}), {doi}</span>")


_ENTRIES = (
    Reference(
        key="lin2021_nipb",
        authors=("Yen-Hui Lin", "Chia-Hsiu Hsu", "Iksu Jang", "Chia-Ju Chen", "Pok-Man Chiu",
                 "Deng-Sung Lin", "Chien-Te Wu", "Feng-Chuan Chuang", "Po-Yao Chang",
                 "Pin-Jui Hsu"),
        title="Proximity-Effect-Induced Anisotropic Superconductivity in Monolayer Ni-Pb "
              "Binary Alloy",
        journal="Manuscript (journal not identified)",
        volume="",
        pages="",
        year=2021,
        doi=None,
        note="Title and authors as printed in the manuscript. The manuscript is undated and "
             "names no journal; the year is inferred (grants MOST-110-*, i.e. 2021; newest "
             "cited work 2020) and unverified. No DOI or journal version found.",
    ),
    Reference(
        key="wickramaratne2023_ising",
        authors=("Darshana Wickramaratne", "I. I. Mazin"),
        title="Ising superconductivity: a first-principles perspective",
        journal="Manuscript (Perspective; journal not identified)",
        volume="",
        pages="",
        year=2023,
        doi=None,
        note="Title, authors and date (10 April 2023) as printed in the manuscript, which "
             "names no journal. No DOI or journal version found.",
    ),
    Reference(
        key="xi2016_ising_nbse2",
        authors=("X. Xi", "Z. Wang", "W. Zhao", "J.-H. Park", "K. T. Law", "H. Berger", "L. Forró",
                 "J. Shan", "K. F. Mak"),
        title="Evidence of Ising pairing in superconducting NbSe2 atomic layers",
        journal="Nat. Phys.",
        volume="12",
        pages="139",
        year=2016,
        doi="10.1038/nphys3538",
        note="Authors, journal, volume and first page as cited by Wickramaratne and Mazin "
             "(their ref. 4); DOI and title from the arXiv listing (arXiv:1507.08731; the "
             "title of the journal version was not checked and may differ). Reports an "
             "in-plane upper critical field of monolayer NbSe2 over six times the Pauli limit.",
    ),
    Reference(
        key="beck2021_mn_dimers",
        authors=("Philip Beck", "Lucas Schneider", "Levente Rózsa", "Krisztián Palotás",
                 "András Lászlóffy", "László Szunyogh", "Jens Wiebe", "Roland Wiesendanger"),
        title="Spin-orbit coupling induced splitting of Yu-Shiba-Rusinov states in "
              "antiferromagnetic dimers",
        journal="Nat. Commun.",
        volume="12",
        pages="2040",
        year=2021,
        doi="10.1038/s41467-021-22261-6",
        note="Authors, volume, article number and DOI as listed by PubMed Central "
             "(PMC8016932).",
    ),
    Reference(
        key="sink2025_cr_bi2pd",
        authors=("Joseph Sink", "Hari Paudyal", "Divya Jyoti", "Andreas J. Heinrich",
                 "Deung-Jang Choi", "Nicolás Lorente", "Michael E. Flatté"),
        title="Microscopic Scattering Approach to In-Gap States: Cr Adatoms on "
              "Superconducting β-Bi2Pd",
        journal="arXiv preprint",
        volume="",
        pages="arXiv:2507.08740",
        year=2025,
        doi=None,
        note="Preprint https://arxiv.org/abs/2507.08740 (v1, 11 July 2025); authors from "
             "the arXiv listing. No journal version or DOI found.",
    ),
    Reference(
        key="friedrich2023_fe_chains",
        authors=("Felix Friedrich", "Robin Boshuis", "Matthias Bode", "Artem Odobesko"),
        title="Coupling of Yu-Shiba-Rusinov states in 1D chains of Fe atoms on Nb(110)",
        journal="Manuscript (journal not identified)",
        volume="",
        pages="",
        year=2023,
        doi=None,
        note="Title, authors and date (3 February 2023) as printed in the manuscript, "
             "which names no journal; a journal version, if any, may carry another title "
             "and year. No DOI found.",
    ),
    Reference(
        key="bardeen1957_bcs",
        authors=("J. Bardeen", "L. N. Cooper", "J. R. Schrieffer"),
        title="Theory of Superconductivity",
        journal="Phys. Rev.",
        volume="108",
        pages="1175",
        year=1957,
        doi="10.1103/PhysRev.108.1175",
    ),
    Reference(
        key="dynes1978_broadening",
        authors=("R. C. Dynes", "V. Narayanamurti", "J. P. Garno"),
        title="Direct Measurement of Quasiparticle-Lifetime Broadening in a Strong-Coupled "
              "Superconductor",
        journal="Phys. Rev. Lett.",
        volume="41",
        pages="1509",
        year=1978,
        doi="10.1103/PhysRevLett.41.1509",
    ),
    Reference(
        key="usadel1970_diffusion",
        authors=("Klaus D. Usadel",),
        title="Generalized Diffusion Equation for Superconducting Alloys",
        journal="Phys. Rev. Lett.",
        volume="25",
        pages="507",
        year=1970,
        doi="10.1103/PhysRevLett.25.507",
        note="Title, volume, pages and DOI as listed in several public reference lists.",
    ),
    Reference(
        key="kupriyanov1988_boundary",
        authors=("M. Yu. Kupriyanov", "V. F. Lukichev"),
        title="Influence of boundary transparency on the critical current of “dirty” SS′S structures",
        journal="Sov. Phys. JETP",
        volume="67",
        pages="1163",
        year=1988,
        doi=None,
        note="The interface (KL) boundary conditions of the Usadel equation. Journal, volume and "
             "pages as listed in public reference lists; the translation journal has no DOI that "
             "could be found.",
    ),
)

#: Every known reference, by key.
REFERENCES: dict[str, Reference] = {ref.key: ref for ref in _ENTRIES}


def cite(key: str) -> Reference:
    """Look up a reference.

    Parameters
    ----------
    key : str
        A key of :data:`REFERENCES`.

    Returns
    -------
    Reference

    Raises
    ------
    KeyError
        If ``key`` is unknown; the message lists the known keys.
    """
    try:
        return REFERENCES[key]
    except KeyError:
        known = ", ".join(sorted(REFERENCES))
        raise KeyError(f"unknown reference key {key!r}; known keys: {known}") from None
