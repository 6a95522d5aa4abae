# A Jupyter server that serves the dashboards through Voilà's server extension: what each student's own
# server runs under JupyterHub (serve/jupyterhub_config.py passes it as --config; docs/class-server.md shows
# the same settings for The Littlest JupyterHub and Zero to JupyterHub).  The Voilà settings are those of
# serve/voila.py (`make dashboards`); what differs is said where it does.
import importlib.util
import os
import sys

c = get_config()  # noqa: F821  (provided by traitlets when the server loads this file)


def _load(name: str, filename: str):
    """A module from this folder, by path (never putting serve/ on sys.path: its voila.py would shadow Voilà)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(__file__), filename))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# The kernel websocket guard (serve/wsguard.py): v1 protocol only, each incoming frame checked.
c.ServerApp.kernel_websocket_connection_class = _load("gapscope_wsguard", "wsguard.py").GuardedKernelConnection

c.VoilaExecutor.iopub_timeout = 120
c.VoilaConfiguration.template = "gapscope"          # JUPYTER_PATH must include serve/share (the hub sets it)
c.VoilaConfiguration.file_allowlist = [r".*\.(png|jpg|gif|svg)", r"gallery\.html"]
c.VoilaConfiguration.show_tracebacks = False
c.VoilaConfiguration.strip_sources = True
# Uploads up to the panels' 200 MiB limit.  The XSRF check stays on here: behind the hub there is a login,
# and the page gets its _xsrf cookie from the Jupyter server, so closing a tab shuts its kernel down.
c.ServerApp.tornado_settings = {"websocket_max_message_size": 256 * 2 ** 20}

# Kernels of closed pages go after 10 minutes idle (as with make dashboards); the hub's idle culler stops
# the whole server of a student who has gone (serve/jupyterhub_config.py: GAPSCOPE_HUB_CULL).
c.MappingKernelManager.cull_interval = 60
c.MappingKernelManager.cull_idle_timeout = 600
c.MappingKernelManager.cull_connected = False
