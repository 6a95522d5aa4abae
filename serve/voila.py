# Voilà configuration used by `make dashboards` (through serve/run). One place for how the
# dashboards are served; command-line flags in serve/run only name the folder, port and address.
import importlib.util
import os
import sys

c = get_config()  # noqa: F821  (provided by traitlets when Voilà loads this file)


def _load(name: str, filename: str):
    """A module from this folder, by path (never putting serve/ on sys.path: its voila.py would shadow Voilà)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(__file__), filename))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# Preheating: a dashboard keeps a pool of kernels that have already run it, so a student's page is served
# at once instead of paying 2–3 s of server CPU on arrival; each waiting kernel holds ~100–150 MB, and the
# pool refills (one full run each) a second after a kernel is taken.  GAPSCOPE_POOL sets the pool sizes:
# a number for every dashboard ("2"), or one per dashboard ("gap=30,shiba=4"; the others get none).
# Off by default (0): on a small machine the refills compete with the students' own updates.  For a class,
# size the pool of the lecture's dashboard to the class: `make dashboards GAPSCOPE_POOL=gap=30`.
# The gallery (index.ipynb) is never preheated: it is served as a static page (gallery.html).
_pool_spec = os.environ.get("GAPSCOPE_POOL", "0").strip() or "0"
if "=" in _pool_spec:
    _pools = {}
    for _item in _pool_spec.split(","):
        _name, _, _size = _item.partition("=")
        _name = _name.strip()
        _pools[_name if _name.endswith(".ipynb") else f"{_name}.ipynb"] = max(int(_size), 0)
    _default = 0
else:
    _pools, _default = {}, max(int(_pool_spec), 0)
c.VoilaConfiguration.preheat_kernel = _default > 0 or any(_pools.values())
c.VoilaConfiguration.default_pool_size = _default
c.VoilaKernelManager.kernel_pools_config = {"default": {"pool_size": _default},
                                            **{nb: {"pool_size": n} for nb, n in _pools.items()}}
c.VoilaKernelManager.preheat_denylist = [r"index\.ipynb"]
# A kernel taken from the pool is replaced GAPSCOPE_POOL_REFILL seconds later (Voilà's default is 1 s): with a
# pool sized to the class, the class is served from the pool first and the refills (one full notebook run
# each, ~2–3 s of CPU) come after the arrivals instead of competing with them.
c.VoilaKernelManager.fill_delay = float(os.environ.get("GAPSCOPE_POOL_REFILL", "60"))

# A class arriving at once: each page waits for its dashboard's widgets instead of giving up after
# Voilà's default 4 s (which left blank pages with 10 students arriving within ~10 s).
c.VoilaExecutor.iopub_timeout = 120

# Uploads travel over the kernel's websocket: allow messages up to the panels' stated 200 MiB limit
# (tornado's default of 10 MiB made larger files vanish silently).
# Closing or reloading a tab must free its kernel: the page asks Voilà to shut it down, and Voilà 0.5
# rejects that request (403) because the page never receives an _xsrf cookie (a known upstream bug), so
# kernels stayed until culled.  We switch the XSRF check off.  What that opens: a page on another site
# could send the same shutdown request to this server, but only for a kernel whose random 128-bit id it
# knows, and Voilà has no other state-changing endpoint and no login to protect; the dashboards listen on
# 127.0.0.1 unless the lecturer opts in.  On a shared network, put the hub or an authenticating proxy in
# front.
c.Voila.tornado_settings = {"websocket_max_message_size": 256 * 2 ** 20, "disable_check_xsrf": True}

# Idle kernels: a kernel whose page is closed is shut down after 10 minutes without activity.
# A kernel with an open page is kept (cull_connected = False): a student who pauses keeps the
# dashboard; closing the tab frees it at the next cull.
c.MappingKernelManager.cull_interval = 60
c.MappingKernelManager.cull_idle_timeout = 600
c.MappingKernelManager.cull_connected = False

# Kernel websockets: the v1 wire protocol only, each incoming frame checked before it is parsed
# (serve/wsguard.py).  Without it, one client that connects without the v1 subprotocol (or sends a v1 frame
# announcing 2^60 offsets) makes Voilà spin at 100 % CPU and grow until killed, for everyone.
c.Voila.kernel_websocket_connection_class = _load("gapscope_wsguard", "wsguard.py").GuardedKernelConnection

# gapscope's template (serve/share/voila/templates/gapscope): no CDN stylesheet, and a banner with a
# Reload button when a page loses its kernel.
c.VoilaConfiguration.template = "gapscope"

# Static files Voilà may serve from notebooks/: images, and the gallery page serve/run writes there.
c.VoilaConfiguration.file_allowlist = [r".*\.(png|jpg|gif|svg)", r"gallery\.html"]

# Never send tracebacks or the notebooks' sources to the page.
c.VoilaConfiguration.show_tracebacks = False
c.VoilaConfiguration.strip_sources = True
