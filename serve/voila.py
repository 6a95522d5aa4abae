# Voilà configuration used by `make dashboards` (through serve/run). One place for how the
# dashboards are served; command-line flags in serve/run only name the folder, port and address.
import os

c = get_config()  # noqa: F821  (provided by traitlets when Voilà loads this file)

# Preheating: each dashboard keeps GAPSCOPE_POOL kernels that have already run it, so a student's page is
# ready at once instead of paying 2–3 s of server CPU on arrival; each idle one holds ~100–150 MB.
# Off by default (GAPSCOPE_POOL=0): on a 2-core machine the refills compete with the students' own
# updates. For a class, `make dashboards GAPSCOPE_POOL=2` (or more) on a machine with cores to spare.
pool = int(os.environ.get("GAPSCOPE_POOL", "0"))
c.VoilaConfiguration.preheat_kernel = pool > 0
c.VoilaConfiguration.default_pool_size = max(pool, 0)

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

# gapscope's template (serve/share/voila/templates/gapscope): no CDN stylesheet, and a banner with a
# Reload button when a page loses its kernel.
c.VoilaConfiguration.template = "gapscope"

# Static files Voilà may serve from notebooks/: images, and the gallery page serve/run writes there.
c.VoilaConfiguration.file_allowlist = [r".*\.(png|jpg|gif|svg)", r"gallery\.html"]

# Never send tracebacks or the notebooks' sources to the page.
c.VoilaConfiguration.show_tracebacks = False
c.VoilaConfiguration.strip_sources = True
