# JupyterHub for a class on one machine: a login, one Jupyter server per student (its own kernels, limits
# and culling), opening the gapscope gallery in Voilà.   jupyterhub -f serve/jupyterhub_config.py
# (pip install -e '.[hub]'; `make hub-proxy` installs configurable-http-proxy into .venv/node).
# Settings through the environment (defaults in brackets):
#   GAPSCOPE_HUB_IP [127.0.0.1; 0.0.0.0 for a network, behind TLS], GAPSCOPE_HUB_PORT [8000],
#   GAPSCOPE_HUB_API_PORT [8081], GAPSCOPE_HUB_PROXY_API_PORT [8001],
#   GAPSCOPE_HUB_STATE [.venv/hub: database, cookie secret],  GAPSCOPE_HUB_NOTEBOOKS [notebooks/],
#   GAPSCOPE_HUB_AUTH [pam: the machine's accounts; "dummy" with GAPSCOPE_HUB_PASSWORD for tests only],
#   GAPSCOPE_HUB_SPAWNER [localprocess: each student's server runs as their Unix account; "simple" runs all
#   as the hub's user, for tests only], GAPSCOPE_HUB_MEM [1G], GAPSCOPE_HUB_CPU [1],
#   GAPSCOPE_HUB_CULL [3600: stop a student's server after this many idle seconds], GAPSCOPE_DATA_ROOT.
# docs/class-server.md gives the same for The Littlest JupyterHub and Zero to JupyterHub on Kubernetes.
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner, SimpleLocalProcessSpawner

c = get_config()  # noqa: F821  (provided by traitlets when JupyterHub loads this file)
env = os.environ.get
here = Path(__file__).resolve().parent
root = here.parent
bin_dir = Path(sys.executable).parent

c.JupyterHub.ip = env("GAPSCOPE_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(env("GAPSCOPE_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env("GAPSCOPE_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env('GAPSCOPE_HUB_PROXY_API_PORT', '8001')}"
chp = root / ".venv" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
c.ConfigurableHTTPProxy.command = [str(chp) if chp.exists() else (shutil.which("configurable-http-proxy")
                                                                  or "configurable-http-proxy")]
state = Path(env("GAPSCOPE_HUB_STATE", str(root / ".venv" / "hub")))
state.mkdir(parents=True, exist_ok=True)
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True          # stopping the hub stops the students' servers

# Login
if env("GAPSCOPE_HUB_AUTH", "pam") == "dummy":
    password = env("GAPSCOPE_HUB_PASSWORD")
    if not password:
        raise SystemExit("GAPSCOPE_HUB_AUTH=dummy needs GAPSCOPE_HUB_PASSWORD (a shared password; tests only)")
    c.JupyterHub.authenticator_class = "dummy"
    c.DummyAuthenticator.password = password
else:
    c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allow_all = True             # every account that can log in; list c.Authenticator.allowed_users instead

# One server per student: Jupyter server + Voilà's extension with serve/jupyter_server_config.py, opening
# the static gallery; its cards open the dashboards in Voilà (/user/<name>/voila/render/<notebook>).
notebooks = Path(env("GAPSCOPE_HUB_NOTEBOOKS", str(root / "notebooks")))
subprocess.run([sys.executable, "-m", "gapscope.widgets.registry", str(notebooks / "gallery.html")], check=True)
# Each student's server runs in a control group of its own with the limits below enforced (serve/hublimits.py;
# needs root and a writable cgroupfs, as The Littlest JupyterHub's systemdspawner does; otherwise the hub
# logs "limits for <name> NOT enforced" and the spawner only passes MEM_LIMIT and CPU_LIMIT on).
_spec = importlib.util.spec_from_file_location("gapscope_hublimits", here / "hublimits.py")
hublimits = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hublimits)
simple = env("GAPSCOPE_HUB_SPAWNER", "localprocess") == "simple"
c.JupyterHub.spawner_class = hublimits.limited(SimpleLocalProcessSpawner if simple else LocalProcessSpawner)
c.Spawner.cmd = [str(bin_dir / "jupyterhub-singleuser")]
c.Spawner.args = [f"--config={here / 'jupyter_server_config.py'}", f"--ServerApp.root_dir={notebooks}"]
if os.geteuid() == 0 and simple:
    if env("GAPSCOPE_ALLOW_ROOT") != "1":     # the "simple" spawner runs every server as the hub's own user
        raise SystemExit("the 'simple' spawner would run the students' servers as root; set GAPSCOPE_ALLOW_ROOT=1 "
                         "to accept that (throw-away container, loopback), or use the default spawner")
    c.Spawner.args.append("--ServerApp.allow_root=True")
c.Spawner.default_url = "/voila/files/gallery.html"
c.Spawner.environment = {"JUPYTER_PATH": str(here / "share"),
                         "GAPSCOPE_DATA_ROOT": env("GAPSCOPE_DATA_ROOT", str(root / "data"))}
# Per-student limits: enforced by the control groups above on this machine, by systemdspawner (The Littlest
# JupyterHub) and KubeSpawner (Zero to JupyterHub) elsewhere: see docs/class-server.md.
c.Spawner.mem_limit = env("GAPSCOPE_HUB_MEM", "1G")
c.Spawner.cpu_limit = float(env("GAPSCOPE_HUB_CPU", "1"))
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120

# The hub's idle culler: a student's server with no activity for GAPSCOPE_HUB_CULL seconds is stopped
# (an open but untouched tab counts as idle once its kernels report no activity).
cull = env("GAPSCOPE_HUB_CULL", "3600")
c.JupyterHub.services = [{"name": "idle-culler",
                          "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={cull}",
                                      f"--cull-every={max(1, min(300, int(cull) // 4))}"]}]
c.JupyterHub.load_roles = [{"name": "idle-culler", "services": ["idle-culler"],
                            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]}]
