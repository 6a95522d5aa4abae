"""Grid fits on dask (fitting.fit_grid(..., client=...)) against the process-pool path.

dask[distributed] is in the "fit" and "test" extras: these tests never skip.
"""

import subprocess
import sys
import threading

import numpy as np
import pytest
from distributed import Client, LocalCluster

from gapscope.kernels import fitting

NX, NY = 3, 3
VG = np.linspace(-3, 3, 100)
DELTAS = np.linspace(1.0, 1.4, NX)[:, None] + 0.05 * np.arange(NY)[None, :]
DATA = np.array([[fitting.synthetic("dynes", VG, noise=0.005, seed=i * 10 + j, temperature=0.5, delta=DELTAS[i, j],
                                    gamma=0.04) for j in range(NY)] for i in range(NX)])
KW = dict(model="dynes", initial=dict(temperature=0.5), chunk=2)


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def pool_result():
    return fitting.fit_grid(VG, DATA, n_jobs=2, **KW)


def test_dask_equals_the_process_pool(client, pool_result):
    seen = []
    res = fitting.fit_grid(VG, DATA, client=client, progress=lambda d, t: seen.append((d, t)), **KW)
    assert res.done.all() and not res.cancelled
    for k in pool_result.values:
        np.testing.assert_allclose(res.values[k], pool_result.values[k], rtol=1e-12, atol=0)
        np.testing.assert_allclose(res.errors[k], pool_result.errors[k], rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(res.redchi, pool_result.redchi, rtol=1e-12)
    np.testing.assert_allclose(res.values["delta"], DELTAS, atol=0.01)     # and both are right
    assert seen[-1] == (NX * NY, NX * NY) and len(seen) == 5               # 9 pixels in chunks of 2


def test_dask_cancel_then_resume(client, pool_result, tmp_path):
    stop = threading.Event()
    path = tmp_path / "grid.npz"
    part = fitting.fit_grid(VG, DATA, client=client, progress=lambda d, t: stop.set(), cancel=stop, resume=path,
                            **KW)
    assert part.cancelled and 0 < part.done.sum() < NX * NY
    rest = fitting.fit_grid(VG, DATA, client=client, resume=path, **KW)
    assert rest.done.all()
    np.testing.assert_allclose(rest.values["delta"], pool_result.values["delta"], rtol=1e-12)


def test_local_cluster_by_name(pool_result):
    res = fitting.fit_grid(VG, DATA[:1], client="local", n_jobs=2, **KW)    # a LocalCluster of 2 processes
    np.testing.assert_allclose(res.values["delta"], pool_result.values["delta"][:1], rtol=1e-12)


def test_bad_client():
    with pytest.raises(ValueError, match="client must be"):
        fitting.fit_grid(VG, DATA[:1], client=42, **KW)


def test_dask_is_imported_only_when_asked_for():
    code = "import sys, gapscope.kernels.fitting; print('distributed' in sys.modules, 'dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
