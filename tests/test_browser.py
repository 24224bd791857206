"""The course in a real browser: JupyterLab 4 + Debian's Chromium driven by Playwright.

Notebook 01: run all, move the 'learning rate' slider, the plot redraws.
Notebook 03 (ci track): run up to the first experiment; a live loss curve appears while swift trains and
the diagnosis card renders; then a second experiment is interrupted from the browser and no swift
process survives. Ask your model: a small notebook (embedded model + a stand-in adapter) shows the widget;
a question typed into it gets two answers, each marked right or wrong.
Screenshots go to tests/artifacts/ (also on failure).
"""

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from conftest import ROOT

pytestmark = pytest.mark.timeout(900)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def _can_install() -> bool:
    if os.geteuid() == 0:
        return True
    return shutil.which("sudo") is not None and subprocess.run(["sudo", "-n", "true"], capture_output=True,
                                                               check=False).returncode == 0


def _ensure_chromium():
    if CHROMIUM.exists():
        return
    if not _can_install():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium and this user cannot install it "
                    "(not root, no password-less sudo); run `sudo bash tools/install_browser.sh`.")
    r = subprocess.run(["bash", str(ROOT / "tools" / "install_browser.sh")], capture_output=True, text=True,
                       timeout=900, check=False)
    if not CHROMIUM.exists():
        pytest.fail("tools/install_browser.sh could not install chromium at /usr/bin/chromium:\n" + r.stderr[-2000:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _swift_procs(course: Path) -> list[psutil.Process]:
    """Live ms-swift processes started from this course copy."""
    found = []
    for p in psutil.process_iter(["cmdline", "cwd"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if "swift" in cmd and (p.info["cwd"] == str(course) or str(course) in cmd) and p.status() != "zombie":
                found.append(p)
        except psutil.Error:
            continue
    return found


def _copy_course(base: Path) -> Path:
    """A copy of the course as a learner has it after `make setup` (its .venv: a link to this checkout's)."""
    course = base / "course copy"
    for name in ("helpers", "notebooks", "resources", "tools"):  # notebook 03 imports the data generator from tools/
        shutil.copytree(ROOT / name, course / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    shutil.copy(ROOT / "requirements.txt", course / "requirements.txt")
    (course / ".venv").symlink_to(Path(sys.prefix))
    return course


@contextlib.contextmanager
def _jupyterlab(base: Path, course: Path, python: str, **env_extra):
    """JupyterLab started as `make lab` starts it (tools/lab.sh: root notebooks/, 01 first) by `python`; yields
    (base_url, token, server process); always stopped by PID, and no swift process of the copy is left behind."""
    token, port = secrets.token_hex(16), _free_port()
    env = {**os.environ, "FTLAB_TRACK": "ci", "FTLAB_CACHE": str(ROOT / ".cache"),
           "JUPYTERLAB_SETTINGS_DIR": str(base / "lab-settings"), "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
           "FTLAB_PYTHON": python, "JUPYTER_RUNTIME_DIR": str(base / "runtime"), "PYTHONUNBUFFERED": "1", **env_extra}
    env.pop("MPLBACKEND", None)  # the kernel picks the inline backend itself
    with open(base / "jupyter.log", "wb") as log:  # the server keeps its own descriptor
        proc = subprocess.Popen(
            ["bash", str(course / "tools" / "lab.sh"), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True", "--ServerApp.port_retries=0"],
            cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("JupyterLab did not start:\n" + (base / "jupyter.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url, token, proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)
        for p in _swift_procs(course):  # swift runs in a session of its own: never leave one behind
            p.kill()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(base / "jupyter.log", ARTIFACTS / f"jupyter-{base.name}.log")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab of the course's .venv on a copy of the course; yields (base_url, token, course_dir)."""
    _ensure_chromium()
    base = tmp_path_factory.mktemp("browser")
    course = _copy_course(base)
    with _jupyterlab(base, course, sys.executable) as (url, token, _):
        yield url, token, course


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, request):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    failures = request.session.testsfailed
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    failed = request.session.testsfailed > failures  # the call report is logged before this teardown
    try:
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}{'-FAILED' if failed else '-end'}.png"), full_page=False)
    except Exception:  # noqa: BLE001 - a screenshot must never hide the real failure
        pass
    if errors:
        (ARTIFACTS / f"{request.node.name}-page-errors.txt").write_text("\n".join(errors))
    ctx.close()


def _open(page, url, token, notebook) -> str:
    """Open a notebook in a workspace of its own; return a CSS selector for its panel."""
    workspace = notebook.split("_")[0]
    page.goto(f"{url}/lab/workspaces/nb{workspace}/tree/{notebook}?token={token}", wait_until="domcontentloaded")
    page.wait_for_function("""(name) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                                          return w && w.sessionContext && w.context && w.context.path.endsWith(name)
                                                 && w.content.widgets.length > 0; }""",
                           arg=notebook, timeout=120_000)
    # the kernel is up when the debugger button is enabled (JupyterLab 4); fall back to the kernel status
    page.wait_for_function(
        """() => { const w = window.jupyterapp.shell.currentWidget;
                   const k = w.sessionContext.session && w.sessionContext.session.kernel;
                   const bug = w.node.querySelector(".jp-DebuggerBugButton[aria-disabled='false']");
                   return (bug !== null || (k && k.connectionStatus === 'connected')) && k && k.status === 'idle'; }""",
        timeout=120_000)
    panel = f"[id='{page.evaluate('window.jupyterapp.shell.currentWidget.id')}']"
    page.wait_for_selector(f"{panel} .jp-Notebook .jp-Cell", state="attached")
    return panel


IDLE_JS = """() => { const w = window.jupyterapp.shell.currentWidget;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  const busy = [...w.content.node.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'));
  return k && k.status === 'idle' && !busy; }"""


def _cell_index(page, needle: str) -> int:
    idx = page.evaluate("""(needle) => window.jupyterapp.shell.currentWidget.content.widgets
                              .findIndex(c => c.model.sharedModel.getSource().includes(needle))""", needle)
    assert idx >= 0, f"no cell containing {needle!r}"
    return idx


def _tracebacks(page, panel):
    """The error outputs (a Python traceback on stderr) in a notebook panel."""
    return page.locator(f"{panel} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                        has_text="Traceback")


def _run_all(page, url, token, notebook) -> str:
    """Open a notebook, run all its cells, wait until the kernel is idle and no cell failed; return its panel."""
    panel = _open(page, url, token, notebook)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_timeout(1000)
    page.wait_for_function(IDLE_JS, timeout=300_000, polling=500)
    errors = _tracebacks(page, panel)
    assert errors.count() == 0, errors.first.text_content()[:2000]
    return panel


def _run_cells(page, indices):
    """Queue cells (like pressing Ctrl-Enter on each); the kernel runs them in order."""
    page.evaluate("""(indices) => { const app = window.jupyterapp, nb = app.shell.currentWidget.content;
        for (const i of indices) { nb.activeCellIndex = i; nb.deselectAll(); app.commands.execute('notebook:run-cell'); } }""",
                  indices)


def _settled_src(page, img, quiet_s: float = 2.0, timeout_s: float = 90) -> str:
    """The image's src once the kernel is idle and the image has not changed for `quiet_s` (each arrow
    press is one redraw; the last one must have arrived)."""
    deadline = time.time() + timeout_s
    last, since = None, time.time()
    while time.time() < deadline:
        src = img.get_attribute("src")
        idle = page.evaluate(IDLE_JS)
        if src != last or not idle:
            last, since = src, time.time()
        elif time.time() - since >= quiet_s:
            return src
        time.sleep(0.25)
    raise AssertionError("the plot never settled")


def _write_notebook(course: Path, name: str, cells: list[str]) -> str:
    """A small notebook of these code cells in the course's notebooks/ folder; returns its name."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src.strip()) for src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, course / "notebooks" / name)
    return name


def _shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def test_the_first_screen_is_where_a_learner_starts(lab, page):
    """What `make lab` opens: notebook 01, no news or update prompt, a file browser of the three notebooks
    (the maintainers' src/ hidden) with their whole names readable."""
    url, token, _ = lab
    page.goto(f"{url}/?token={token}", wait_until="domcontentloaded")  # the address the server prints leads here
    page.wait_for_function("""() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                                      return w && w.context && w.context.path === '01_how_models_learn.ipynb'; }""",
                           timeout=120_000)
    names = page.locator(".jp-DirListing-item .jp-DirListing-itemText")
    page.wait_for_function("() => document.querySelectorAll('.jp-DirListing-item').length > 0")
    page.wait_for_timeout(3000)  # a news question, had there been one, pops up after start
    _shot(page, "first-screen.png")
    listed = sorted(n.strip() for n in names.all_inner_texts())
    assert listed == ["01_how_models_learn.ipynb", "02_lora.ipynb", "03_fine_tuning_lab.ipynb"], listed
    cut = page.evaluate("""() => [...document.querySelectorAll('.jp-DirListing-itemText span')]
                              .filter(s => s.scrollWidth > s.clientWidth + 1).map(s => s.textContent)""")
    assert cut == [], f"names cut off in the file browser: {cut}"
    body = page.locator("body").inner_text()
    assert "news" not in body.lower() and "Launcher" not in page.locator(".lm-TabBar-tabLabel").all_inner_texts()


def test_notebook01_learning_rate_slider_redraws(lab, page):
    url, token, _ = lab
    panel = _run_all(page, url, token, "01_how_models_learn.ipynb")

    label = page.locator(f"{panel} label.widget-label").filter(has_text="learning rate")
    # text_content, not inner_text: cells outside the viewport are content-visibility:auto (innerText "")
    labels = [i for i in range(label.count()) if label.nth(i).text_content().strip() == "learning rate"]
    assert labels, "no slider described exactly 'learning rate'"
    slider = label.nth(labels[0]).locator("xpath=ancestor::div[contains(@class,'widget-slider')][1]")
    cell = slider.locator("xpath=ancestor::div[contains(@class,'jp-CodeCell')][1]")
    img = cell.locator(".jp-OutputArea-output img").last
    slider.scroll_into_view_if_needed()
    img.wait_for(state="visible")
    before = img.get_attribute("src")
    readout = slider.locator(".widget-readout").text_content().strip()
    _shot(page, "nb01-slider-before.png")

    handle = slider.locator(".noUi-handle")
    handle.focus()
    for _ in range(20):  # 0.01 per arrow; each key press is a change event (continuous_update=False)
        page.keyboard.press("ArrowRight")
    page.wait_for_function("([el, old]) => el.querySelector('.jp-OutputArea-output img:last-of-type') && "
                           "[...el.querySelectorAll('.jp-OutputArea-output img')].pop().src !== old",
                           arg=[cell.element_handle(), before], timeout=60_000)
    after = _settled_src(page, img)
    _shot(page, "nb01-slider-after.png")
    assert slider.locator(".widget-readout").text_content().strip() != readout
    assert after and after != before


def test_notebook03_first_experiment_live_curve_diagnosis_and_interrupt(lab, page):
    url, token, course = lab
    panel = _open(page, url, token, "03_fine_tuning_lab.ipynb")
    first = _cell_index(page, "run1 = sft(")
    cell = page.locator(f"{panel} .jp-Notebook .jp-Cell").nth(first)
    t0 = time.time()
    _run_cells(page, list(range(first + 1)))

    # the live curve: an image in the experiment cell's output while swift is still training;
    # a traceback in any cell above stops the queue, so fail on it at once instead of waiting it out
    curve = cell.locator(".jp-OutputArea-output img").first
    errors = _tracebacks(page, panel)
    deadline = time.time() + 600
    while curve.count() == 0:
        assert errors.count() == 0, errors.first.text_content()[:2000]
        assert time.time() < deadline, "no loss curve in the first experiment's cell after 10 minutes"
        time.sleep(0.25)
    saw_live = cell.locator(".ftlab-diagnosis").count() == 0
    cell.scroll_into_view_if_needed()
    _shot(page, "nb03-exp1-live.png")
    card = cell.locator(".ftlab-diagnosis").first  # the run's own card (on the ci track the replay's follows it)
    card.wait_for(state="attached", timeout=300_000)
    page.wait_for_function(IDLE_JS, timeout=120_000)
    card.scroll_into_view_if_needed()
    _shot(page, "nb03-exp1-diagnosis.png")
    elapsed = time.time() - t0
    assert saw_live, "the loss curve appeared only together with the diagnosis"
    assert curve.get_attribute("src").startswith("data:image/png")
    state = card.locator("span").first.inner_text().strip()
    assert state in ("failed", "underfitting", "overfitting", "converged", "unknown"), state
    assert "Adjustment" in card.inner_text()  # the card names the next move "Adjustment", as the lesson does
    prompt = cell.locator(".jp-InputPrompt").inner_text()
    assert "*" not in prompt, prompt
    assert errors.count() == 0, errors.first.text_content()[:2000]
    print(f"notebook 03 up to the first experiment: {elapsed:.0f} s")

    # interrupt safety from the browser: start experiment 2, interrupt the kernel while swift runs
    second = _cell_index(page, "run2 = sft(")
    _run_cells(page, [second])
    deadline = time.time() + 120
    while not _swift_procs(course):
        assert time.time() < deadline, "swift never started for experiment 2"
        time.sleep(0.3)

    def swift_writes():  # swift itself has begun (its log has a line), not only the launch
        logs = [p / "swift.log" for p in (course / "output" / "ci").glob("*") if p.is_dir()]
        return len([p for p in logs if p.is_file() and p.stat().st_size]) >= 2

    while not swift_writes():
        assert time.time() < deadline, "swift wrote nothing for experiment 2"
        time.sleep(0.3)
    page.evaluate("window.jupyterapp.commands.execute('notebook:interrupt-kernel')")
    page.wait_for_function(IDLE_JS, timeout=60_000)
    deadline = time.time() + 15
    while _swift_procs(course) and time.time() < deadline:
        time.sleep(0.3)
    left = [(p.pid, p.info["cmdline"]) for p in _swift_procs(course)]
    cell2 = page.locator(f"{panel} .jp-Notebook .jp-Cell").nth(second)
    cell2.scroll_into_view_if_needed()
    _shot(page, "nb03-exp2-interrupted.png")
    assert not left, f"swift processes survived the kernel interrupt: {left}"
    assert "Interrupted" in cell2.locator(".jp-OutputArea").inner_text()
    runs = [json.loads(p.read_text()) for p in (course / "output" / "ci").glob("*/ftlab_run.json")]
    assert sorted(r["status"] for r in runs) == ["finished", "interrupted"], runs


ASK_CELLS = [
    """
import json, sys, tempfile
from pathlib import Path

ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "helpers" / "__init__.py").is_file())
sys.path.insert(0, str(ROOT))
""",
    """
# a stand-in for a trained checkpoint: a LoRA adapter with random (non-zero) B, so its answers differ
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from helpers import get_model

model = get_model()
adapter = Path(tempfile.mkdtemp()) / "checkpoint-1"
torch.manual_seed(0)
lm = AutoModelForCausalLM.from_pretrained(model.path, dtype=torch.float32)
get_peft_model(lm, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).save_pretrained(adapter)
_ = (adapter / "args.json").write_text(json.dumps({"model": str(model.path), "model_type": model.model_type,
                                                   "template": model.template}))
""",
    """
from helpers.ask import ask_your_model

asker = ask_your_model(model, adapter, max_new_tokens=8)
""",
]


def test_ask_your_model_widget_answers_a_typed_question_twice(lab, page):
    url, token, course = lab
    panel = _run_all(page, url, token, _write_notebook(course, "ask_check.ipynb", ASK_CELLS))

    widget = page.locator(f"{panel} .jp-OutputArea-output").filter(has=page.locator("textarea")).last
    widget.scroll_into_view_if_needed()
    answers = widget.locator(".ftlab-ask")
    answers.wait_for(state="visible")
    assert "radish" in answers.inner_text()  # the pre-filled example was answered when the cell ran
    _shot(page, "ask-before.png")

    question = "Tom has 3 apples and buys 5 more. How many apples does he have now?"
    widget.locator("textarea").fill(question)
    widget.locator("input[type='text']").fill("8")
    widget.locator("input[type='text']").press("Tab")  # leave the box: the value reaches the kernel
    widget.locator("button", has_text="Ask both models").click()
    page.wait_for_function("([el, q]) => { const a = el.querySelector('.ftlab-ask');"
                           " return a && a.textContent.includes(q) && a.querySelectorAll('.ftlab-verdict').length === 2; }",
                           arg=[widget.element_handle(), question], timeout=180_000)
    _shot(page, "ask-after.png")
    text = answers.inner_text()
    assert "base (" in text and "fine-tuned (" in text
    verdicts = [v.strip() for v in answers.locator(".ftlab-verdict").all_inner_texts()]
    assert len(verdicts) == 2 and all(v in ("✅ right", "❌ wrong") for v in verdicts), verdicts
    assert "expected: 8" in " ".join(text.split())


PLAYGROUND_CELLS = [
    ASK_CELLS[0],
    """
from helpers import get_model, load_recording, playground

pg = playground(get_model(), [load_recording(f"cpu/exp{i}") for i in (1, 2)])
""",
]


def test_playground_trains_a_run_with_the_knob_set_and_overlays_it(lab, page):
    """The lab's playground on the ci track: pick a learning rate, press Train, and the new run's curve joins
    the chart (a real swift run of the course copy), with its card under it."""
    url, token, course = lab
    panel = _run_all(page, url, token, _write_notebook(course, "playground_check.ipynb", PLAYGROUND_CELLS))
    widget = page.locator(f"{panel} .ftlab-playground").last
    widget.scroll_into_view_if_needed()
    caption = widget.locator(".ftlab-overlay-runs")
    caption.wait_for(state="visible")
    assert "exp1, exp2" in caption.inner_text() and "play1" not in caption.inner_text()
    assert "about" in widget.locator(".ftlab-estimate").inner_text()  # the time it will take, before it starts
    img = widget.locator("img").first
    before = img.get_attribute("src")
    lr = widget.locator(".widget-dropdown").filter(has_text="learning rate").locator("select")
    lr.select_option(label="1e-4")
    page.wait_for_timeout(500)  # the change reaches the kernel; the estimate is redrawn
    _shot(page, "playground-before.png")
    widget.locator("button", has_text="Train").click()
    # an HTML widget draws a new node for each value: wait on the text, not on an element handle
    widget.locator(".ftlab-overlay-runs", has_text="play1 lr1e-4").wait_for(state="attached", timeout=300_000)
    widget.locator(".ftlab-diagnosis").wait_for(state="attached", timeout=30_000)
    widget.scroll_into_view_if_needed()
    _shot(page, "playground-after.png")
    after = img.get_attribute("src")  # an Image widget's picture is a blob: URL, a new one for each picture
    assert after and after != before
    runs = [json.loads(p.read_text()) for p in (course / "output" / "ci").glob("*play1*/ftlab_run.json")]
    assert [(r["status"], r["params"]["learning_rate"]) for r in runs] == [("finished", 1e-4)], runs


# ---- a JupyterLab the course did not start (PAI DSW's own) -------------------------------------------------
# DSW runs JupyterLab from its image's Python (3.10 on the lesson's image), which has none of the course's
# packages. Here: a throw-away venv of another Python holding only JupyterLab and ipykernel, kept under .cache/
# (built once, about a minute), and a private Jupyter data folder where the course registers its kernel exactly
# as `make setup` does (`python -m helpers kernel`), so the user's own kernels are never touched.
FOREIGN_PINS = ["jupyterlab==4.6.6", "ipykernel==7.3.0"]


def _foreign_python() -> str:
    folder = ROOT / ".cache" / "foreign-jupyter"
    python = folder / "bin" / "python"
    stamp = folder / "ftlab-foreign.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == FOREIGN_PINS and python.exists():
        return str(python)
    pyenv = shutil.which("pyenv")
    base = sys._base_executable
    if pyenv:  # the lesson image's Python where this machine has it
        prefix = subprocess.run([pyenv, "prefix", "3.10.13"], capture_output=True, text=True).stdout.strip()
        if prefix and Path(prefix, "bin", "python").exists():
            base = str(Path(prefix, "bin", "python"))
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([base, "-m", "venv", str(folder)], check=True, timeout=120)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *FOREIGN_PINS], check=True, timeout=900,
                   env={**os.environ, "PIP_NO_INPUT": "1"})
    stamp.write_text(json.dumps(FOREIGN_PINS))
    return str(python)


@pytest.fixture(scope="module")
def foreign_lab(tmp_path_factory):
    """JupyterLab of a foreign Python on a set-up copy of the course; yields (url, token, course, data_dir, server)."""
    _ensure_chromium()
    python = _foreign_python()
    base = tmp_path_factory.mktemp("foreign")
    course = _copy_course(base)
    data_dir = base / "jupyter data"
    env = {**os.environ, "JUPYTER_DATA_DIR": str(data_dir)}
    said = subprocess.run([str(course / ".venv" / "bin" / "python"), "-m", "helpers", "kernel"], cwd=course, env=env,
                          capture_output=True, text=True, timeout=60, check=True).stdout
    assert said.startswith('Jupyter kernel "Fine-Tuning Lab (.venv)" (ftlab) registered in'), said
    with _jupyterlab(base, course, python, JUPYTER_DATA_DIR=str(data_dir)) as (url, token, server):
        yield url, token, course, data_dir, server


def _kernel_processes(server) -> list[list[str]]:
    found = []
    for p in psutil.Process(server.pid).children(recursive=True):
        try:
            if "ipykernel_launcher" in " ".join(p.cmdline()):
                found.append(p.cmdline())
        except psutil.Error:
            continue
    return found


def test_a_foreign_jupyterlab_opens_notebook03_on_the_course_kernel(foreign_lab, page):
    url, token, course, _, server = foreign_lab
    panel = _open(page, url, token, "03_fine_tuning_lab.ipynb")
    assert page.evaluate("window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.name") == "ftlab"
    assert page.locator(f"{panel} .jp-KernelName").first.inner_text().strip() == "Fine-Tuning Lab (.venv)"
    kernels = _kernel_processes(server)
    assert [k[0] for k in kernels] == [str(course / ".venv" / "bin" / "python")], kernels
    first = _cell_index(page, "check_kernel()")
    _run_cells(page, [first])
    page.wait_for_function(IDLE_JS, timeout=120_000)
    cell = page.locator(f"{panel} .jp-Notebook .jp-Cell").nth(first)
    _shot(page, "foreign-lab-course-kernel.png")
    assert cell.locator(".jp-InputPrompt").inner_text().strip() not in ("[ ]:", "[*]:")
    assert cell.locator(".jp-OutputArea-output").count() == 0, cell.locator(".jp-OutputArea").inner_text()


def test_without_the_kernel_the_first_cell_stops_with_one_sentence(foreign_lab, page):
    url, token, course, data_dir, _ = foreign_lab
    subprocess.run([str(course / ".venv" / "bin" / "python"), "-m", "helpers", "kernel", "--remove"], cwd=course,
                   env={**os.environ, "JUPYTER_DATA_DIR": str(data_dir)}, check=True, timeout=60)
    for s in json.loads(urllib.request.urlopen(f"{url}/api/sessions?token={token}").read()):  # as after a restart
        urllib.request.urlopen(urllib.request.Request(f"{url}/api/sessions/{s['id']}?token={token}", method="DELETE"))
    page.goto(f"{url}/lab/workspaces/nb03b/tree/03_fine_tuning_lab.ipynb?token={token}", wait_until="domcontentloaded")
    page.wait_for_function("""() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                                      return w && w.sessionContext && w.content && w.content.widgets.length > 0; }""",
                           timeout=120_000)
    dialog = page.locator(".jp-Dialog")
    page.wait_for_function("""() => document.querySelector('.jp-Dialog') || (() => {
        const k = window.jupyterapp.shell.currentWidget.sessionContext.session;
        return k && k.kernel && k.kernel.status === 'idle'; })()""", timeout=120_000)
    if dialog.count():  # JupyterLab asks which kernel: a learner takes the one it offers (the image's Python)
        _shot(page, "foreign-lab-kernel-dialog.png")
        dialog.locator("button.jp-mod-accept").click()
    page.wait_for_function(IDLE_JS, timeout=120_000)
    name = page.evaluate("window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.name")
    assert name != "ftlab"
    panel = f"[id='{page.evaluate('window.jupyterapp.shell.currentWidget.id')}']"
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_timeout(1000)
    page.wait_for_function(IDLE_JS, timeout=120_000, polling=500)
    first = _cell_index(page, "check_kernel()")
    cells = page.locator(f"{panel} .jp-Notebook .jp-Cell")
    out = cells.nth(first).locator(".jp-OutputArea")
    out.scroll_into_view_if_needed()
    _shot(page, "foreign-lab-wrong-kernel.png")
    text = " ".join(out.inner_text().split())
    assert text.startswith("This notebook is running on Python 3.10 at "), text
    assert text.endswith(' not on the course\'s environment: pick Kernel → Change Kernel… → "Fine-Tuning Lab '
                         f'(.venv)", after registering it with `make setup` in a terminal in the course folder '
                         f'({course}).'), text
    assert "Traceback" not in text and "WrongKernel" not in text
    parameters = _cell_index(page, "record = False")
    assert cells.nth(parameters).locator(".jp-InputPrompt").inner_text().strip() == "[ ]:", "run-all went on"
