"""Nb(110) geometry, spin textures, impurity construction and the t_R ↔ α_R mapping."""

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from gapscope.kernels import ysr
from gapscope.kernels.ysr import geometry as geo

A = 0.3294


def _inplane(v3):
    """Project a 3D cubic vector onto the (110) surface axes x ∥ [001], y ∥ [1-10] (independent basis)."""
    ex = np.array([0, 0, 1.0])
    ey = np.array([1, -1, 0.0]) / np.sqrt(2)
    normal = np.array([1, 1, 0.0]) / np.sqrt(2)
    assert abs(v3 @ normal) < 1e-15          # the bond lies in the (110) plane
    return np.array([v3 @ ex, v3 @ ey])


def test_lattice_constant_and_bond_table_from_lattice_vectors():
    assert geo.NB110_A == A
    expected = {"√2a [1-10]": A * np.array([1, -1, 0.0]),
                "√3a/2 [1-11]": A / 2 * np.array([1, -1, 1.0]),
                "2a [001]": 2 * A * np.array([0, 0, 1.0]),
                "a [001]": A * np.array([0, 0, 1.0])}
    assert set(geo.NB110_BONDS) == set(expected)
    for name, v3 in expected.items():
        xy = _inplane(v3)
        length, angle = geo.NB110_BONDS[name]
        assert length == pytest.approx(np.linalg.norm(v3), abs=1e-15)
        assert angle == pytest.approx(math.atan2(xy[1], xy[0]), abs=1e-15)
    # the numbers quoted for paper 002's dimers
    assert geo.NB110_BONDS["√2a [1-10]"][0] == pytest.approx(0.4658, abs=1e-4)
    assert geo.NB110_BONDS["√3a/2 [1-11]"][0] == pytest.approx(0.2853, abs=1e-4)
    assert geo.NB110_BONDS["2a [001]"][0] == pytest.approx(0.6588, abs=1e-4)
    assert geo.NB110_BONDS["√2a [1-10]"][1] == pytest.approx(np.pi / 2)
    assert geo.NB110_BONDS["√3a/2 [1-11]"][1] == pytest.approx(np.radians(54.7356), abs=1e-6)


def test_bcc_110_nearest_neighbours_are_the_sqrt3_bond():
    """Brute force: bcc sites in the (110) plane through the origin; the shortest in-plane vector is (√3/2)a."""
    rng = np.arange(-3, 4)
    pts = [np.array([i, j, k], float) * A for i in rng for j in rng for k in rng]
    pts += [(np.array([i, j, k], float) + 0.5) * A for i in rng for j in rng for k in rng]
    inplane = [p for p in pts if abs(p[0] + p[1]) < 1e-12 and np.linalg.norm(p) > 0]
    d = sorted({round(float(np.linalg.norm(p)), 12) for p in inplane})
    assert d[0] == pytest.approx(geo.NB110_BONDS["√3a/2 [1-11]"][0])
    assert d[1] == pytest.approx(geo.NB110_BONDS["a [001]"][0])
    assert d[2] == pytest.approx(geo.NB110_BONDS["√2a [1-10]"][0])


def test_line_chain_and_dimer():
    p = geo.line(5, spacing=0.3, angle=0.4)
    assert p.shape == (5, 2)
    np.testing.assert_allclose(p.mean(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(np.diff(p, axis=0), axis=1), 0.3, rtol=1e-14)
    np.testing.assert_allclose(np.arctan2(*(p[1] - p[0])[::-1]), 0.4, rtol=1e-14)
    np.testing.assert_allclose(geo.line(1, spacing=1.0), [[0.0, 0.0]])
    d = geo.nb110_dimer("√2a [1-10]")
    np.testing.assert_allclose(d, [[0, -np.sqrt(2) * A / 2], [0, np.sqrt(2) * A / 2]], atol=1e-15)
    c = geo.nb110_chain(4)
    np.testing.assert_allclose(c[1] - c[0], [A / 2, A / np.sqrt(2)], atol=1e-15)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n must"):
            geo.line(bad, spacing=0.3)
    with pytest.raises(ValueError, match="spacing"):
        geo.line(3, spacing=0.0)
    with pytest.raises(ValueError, match="unknown Nb\\(110\\) bond"):
        geo.nb110_dimer("sqrt2")


def test_spin_textures():
    p = geo.nb110_chain(6, bond="a [001]")
    fm = geo.spin_texture(p, axis=(0, 0, 2))
    np.testing.assert_allclose(fm, np.tile([0, 0, 1.0], (6, 1)))
    afm = geo.spin_texture(p, texture="afm", axis=(1, 0, 0))
    np.testing.assert_allclose(afm[:, 0], [1, -1, 1, -1, 1, -1])
    pitch = 4 * A                           # a quarter turn per bond
    sp = geo.spin_texture(p, texture="spiral", axis=(0, 0, 1), pitch=pitch, rotation_axis=(0, 1, 0))
    for k in range(6):                      # independent: scipy rotation about y by 2π s/p
        rot = Rotation.from_rotvec([0, 2 * np.pi * k * A / pitch, 0])
        np.testing.assert_allclose(sp[k], rot.apply([0, 0, 1.0]), atol=1e-14)
    np.testing.assert_allclose(sp[1], [1, 0, 0], atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(sp, axis=1), 1.0, rtol=1e-14)
    ex = geo.spin_texture(p[:2], texture=np.array([[0, 0, 3.0], [1, 1, 0]]))
    np.testing.assert_allclose(ex, [[0, 0, 1], [1 / np.sqrt(2), 1 / np.sqrt(2), 0]])
    with pytest.raises(ValueError, match="pitch"):
        geo.spin_texture(p, texture="spiral")
    with pytest.raises(ValueError, match="pitch"):
        geo.spin_texture(p, texture="spiral", pitch=-1.0)
    with pytest.raises(ValueError, match="unknown spin texture"):
        geo.spin_texture(p, texture="helix")
    with pytest.raises(ValueError, match="zero vector"):
        geo.spin_texture(p[:2], texture=np.array([[0, 0, 1.0], [0, 0, 0]]))
    with pytest.raises(ValueError, match=r"\(6, 3\)"):
        geo.spin_texture(p, texture=np.ones((5, 3)))
    with pytest.raises(ValueError, match="axis"):
        geo.spin_texture(p, axis=(0, 0, 0))


def test_impurities_and_overlap_error():
    p = geo.nb110_dimer("√3a/2 [1-11]")
    s = geo.spin_texture(p, texture="afm")
    ch = [ysr.Channel("s", 0.7, 0.3)]
    imps = geo.impurities(p, s, ch)
    assert [i.position for i in imps] == [tuple(p[0]), tuple(p[1])]
    assert imps[1].spin == (0.0, 0.0, -1.0) and list(imps[0].channels) == ch
    per = geo.impurities(p, s, [ch, [ysr.Channel("dxy", 0.1, 0.0)]])
    assert per[1].channels[0].shape == "dxy"
    with pytest.raises(ValueError, match=r"atoms 1 and 2 overlap: 0\.000 nm apart"):
        geo.impurities(np.zeros((2, 2)), s, ch)
    with pytest.raises(ValueError, match=r"atoms 2 and 3 overlap: 0\.030 nm apart"):
        geo.impurities([[0, 0], [1, 0], [1.03, 0]], np.tile([0, 0, 1.0], (3, 1)), ch)
    with pytest.raises(ValueError, match="spins"):
        geo.impurities(p, s[:1], ch)
    with pytest.raises(ValueError, match="2 lists"):
        geo.impurities(p, s, [ch, ch, ch])


def test_rashba_hopping_mapping():
    assert geo.alpha_r_from_t_r(7.5) == pytest.approx(2 * 7.5 * 0.3294, abs=1e-14)
    assert geo.alpha_r_from_t_r(7.5) == pytest.approx(4.941, abs=1e-12)
    assert geo.t_r_from_alpha_r(geo.alpha_r_from_t_r(3.2)) == pytest.approx(3.2, rel=1e-15)
    assert geo.alpha_r_from_t_r(1.0, a=0.5) == 1.0
    with pytest.raises(ValueError, match="t_r"):
        geo.alpha_r_from_t_r(-1.0)
    with pytest.raises(ValueError, match="a must"):
        geo.alpha_r_from_t_r(1.0, a=0.0)
    assert geo.T_R.name == "t_r" and geo.T_R.unit == "meV"
