"""The report: its data (tested as data), its escaping, plugin sections, and what a browser shows."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from harness.cli.main import main
from harness.report.render import build_report_data, render_report
from harness.report.side_by_side import write_comparison

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"

pytestmark = pytest.mark.xdist_group("report")  # the module's finished run is made once, on one worker


def test_report_data_values(finished_run: Path) -> None:
    data = build_report_data(finished_run)
    results = pd.read_csv(finished_run / "results.csv")
    assert [a.name for a in data.arms] == ["resnet18", "se-resnet18"]
    for arm in data.arms:
        accuracy = results[results.arm == arm.name].accuracy
        summary = arm.metrics["accuracy"]
        assert summary.mean == pytest.approx(accuracy.mean())
        assert summary.sd == pytest.approx(accuracy.std(ddof=1))
        ratio = float((results.n_val / results.n_train).mean())  # corrected variance: folds share training data
        half = stats.t.ppf(0.975, 2) * math.sqrt((1 / 3 + ratio) * accuracy.var(ddof=1))
        assert (summary.low, summary.high) == (pytest.approx(max(0.0, accuracy.mean() - half)),
                                               pytest.approx(min(1.0, accuracy.mean() + half)))
        assert arm.folds == 3 and arm.params > 11_000_000 and arm.flops > 0 and arm.throughput > 0
    assert data.protocol == ("3-fold stratified CV grouped by patient, 1 repeat, model selection: none, the last epoch "
                             "is scored, augmentation: none, init: standard (every BatchNorm weight 1; timm's "
                             "zero_init_last off)")
    assert set(data.curves) == {"loss", "accuracy"}  # every arm on one plot per metric
    assert sum(sum(row) for row in data.confusion["resnet18"]) == 48  # every sample once, out of fold
    assert all(abs(sum(row) - 1) < 1e-2 for row in data.confusion_normalized["resnet18"])
    per_class = {r["class"]: r for r in data.per_class["resnet18"]}
    assert set(per_class) == {"abdomen", "femur", "head", "thorax"} and all(r["support"] == 12 for r in per_class.values())
    assert "excitation" in data.insight["se-resnet18"] and "excitation" not in data.insight["resnet18"]
    assert "gradcam" in data.insight["resnet18"]
    assert data.insight["resnet18"]["gradcam_note"].startswith("Grad-CAM on layer2 (8x8 feature map")  # not layer4's 2x2
    assert "sd across images" in data.insight["se-resnet18"]["activity"]
    # the answer box, the dataset section and per-group scores
    assert data.answer is not None and data.answer.question.startswith("Does se-resnet18 score differently from resnet18")
    assert len(data.answer.sentences) >= 1 and data.answer.plot
    assert data.dataset is not None and data.dataset["class_counts"] == [12, 12, 12, 12]
    assert sum(sum(f["val"]) for f in data.dataset["folds"]) == 48 and data.dataset["groups"] == 6
    assert data.majority_rate == pytest.approx(results.majority_rate.mean()) and data.chance_rate == 0.25
    assert [g["arm"] for g in data.group_scores] == ["resnet18", "se-resnet18"]
    assert all(0 < g["units"] <= 6 * 4 for g in data.group_scores)
    assert data.significance and data.significance["baseline"] == "resnet18"
    assert any("only 3 paired scores" in w for w in data.warnings)


def test_insight_without_captum_says_how_to_install_it(finished_run: Path, monkeypatch: pytest.MonkeyPatch,
                                                       builtin_registry) -> None:  # type: ignore[no-untyped-def]
    """captum is the optional ``gradcam`` extra: without it the insight keeps everything else and says how to get it."""
    import sys

    from harness.report.insight import compute_insight

    monkeypatch.setitem(sys.modules, "captum", None)
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    insight = compute_insight(finished_run, builtin_registry)["arms"]
    assert "gradcam" not in insight["resnet18"] and "excitation" in insight["se-resnet18"]
    assert "pip install 'ablation-harness[gradcam]'" in insight["resnet18"]["gradcam_note"]


def test_report_renders_from_stored_files_only(finished_run: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`harness report` with no registry, no model building and no image decoding: the insight the run stored."""
    import harness.data.images
    import harness.models.build
    import harness.registry

    def unavailable(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("not at report time")

    for module, name in ((harness.registry, "load_registry"), (harness.models.build, "build_model"),
                         (harness.data.images, "decode_images")):
        monkeypatch.setattr(module, name, unavailable)
    assert (finished_run / "insight.json").exists()
    assert main(["report", str(finished_run), "--out", str(tmp_path / "stored.html")]) == 0
    html = (tmp_path / "stored.html").read_text()
    assert html.count("data:image/png;base64,") == (finished_run / "report.html").read_text().count("data:image/png;base64,")
    assert "alt=\"Grad-CAM of resnet18\"" in html and "alt=\"SE excitations of se-resnet18\"" in html
    assert "misclassified examples of" in html and "insight and gallery skipped" not in html
    assert "plugin report sections skipped: the plugins could not be loaded (RuntimeError: not at report time)" in html


def test_plugin_sections_and_filters_are_rendered_escaped(finished_run: Path, builtin_plugins) -> None:  # type: ignore[no-untyped-def]
    from harness import hookimpl
    from harness.contracts import ReportSection
    from harness.registry import build_registry

    class Extra:
        @hookimpl
        def report_sections(self, context):  # type: ignore[no-untyped-def]
            return [ReportSection("Lab notes", "<p>{{ note | shout }}</p>", {"note": "<b>calibrated</b>"})]

        @hookimpl
        def report_filters(self):  # type: ignore[no-untyped-def]
            return {"shout": lambda text: text.upper()}

    pm, records = builtin_plugins
    pm.register(Extra(), name="extra")
    registry = build_registry(pm, records)
    html = render_report(build_report_data(finished_run, registry, insight=False), registry, finished_run)
    assert "<h2>Lab notes</h2>" in html and "&lt;B&gt;CALIBRATED&lt;/B&gt;" in html


def test_rerender_and_compare_two_runs(finished_run: Path, tmp_path: Path) -> None:
    assert main(["report", str(finished_run), "--out", str(tmp_path / "again.html")]) == 0
    assert (tmp_path / "again.html").read_text().count("data:image/png;base64,") >= 4
    other = tmp_path / "other"
    shutil.copytree(finished_run, other)
    html = write_comparison(finished_run, other, tmp_path / "cmp.html").read_text()
    assert "identical splits" in html and html.count("se-resnet18") >= 2
    splits = pd.read_csv(other / "splits.csv")
    splits.loc[0, "fold"] = 1 - splits.loc[0, "fold"]
    splits.to_csv(other / "splits.csv", index=False)
    assert "different splits" in write_comparison(finished_run, other, tmp_path / "cmp2.html").read_text()


def test_report_in_a_real_browser(finished_run: Path) -> None:
    """Headless Chromium: no console errors, every image decodes, the answer box is on the first screen;
    printed on A4 nothing is wider than the page. Screenshots kept in test-artifacts/ for review."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    errors: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((finished_run / "report.html").as_uri())
        images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])")
        answer = page.locator("#answer").bounding_box()
        desktop_width = page.evaluate("document.documentElement.scrollWidth")  # wide tables scroll inside .scroll
        first_screen = page.locator(".verdict").first.inner_text()
        page.screenshot(path=str(ARTIFACTS / "quickstart-report-first-screen.png"))
        page.screenshot(path=str(ARTIFACTS / "quickstart-report.png"), full_page=True)
        # A4 portrait at 96 dpi, less the 12 mm margins of the @page rule: 186 mm wide
        page.emulate_media(media="print")
        page.set_viewport_size({"width": 703, "height": 1047})
        overflow = page.evaluate("""() => {
            const width = document.documentElement.clientWidth;
            return Array.from(document.querySelectorAll('table, img, pre'))
                .filter(e => e.getBoundingClientRect().right > width + 1)
                .map(e => e.tagName + ' ' + (e.closest('section, div, body').previousElementSibling || {}).textContent);
        }""")
        page_width = page.evaluate("document.documentElement.scrollWidth")
        pdf = page.pdf(path=str(ARTIFACTS / "quickstart-report-a4.pdf"), format="A4")
        page.screenshot(path=str(ARTIFACTS / "quickstart-report-a4.png"), full_page=False)
        browser.close()
    assert errors == []
    assert len(images) >= 6 and all(ok for _, ok in images), images
    assert answer is not None and answer["y"] < 900, answer  # the answer starts on the first screen
    assert desktop_width <= 1200, desktop_width
    assert "se-resnet18" in first_screen and "resnet18" in first_screen
    assert overflow == [] and page_width <= 703, (overflow, page_width)
    assert len(pdf) > 10_000 and (ARTIFACTS / "quickstart-report.png").stat().st_size > 10_000


def test_report_of_a_folder_that_is_no_run_is_one_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder without a finished run (or a run's sub-folder) gets the one 'no results.csv' message, exit 2."""
    (tmp_path / "notes.txt").write_text("mine\n")
    assert main(["report", str(tmp_path)]) == 2
    assert "has no results.csv (no finished run there)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing written
