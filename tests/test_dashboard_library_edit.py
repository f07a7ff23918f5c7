"""A person's library work in Chromium: edit a model (name, trigger words, base model, tags, favorite) and see it
from another browser; the description rendered with nothing from the sidecar able to run; the tag and favorite
chips filter; delete → Undo; delete → restore from the trash in Maintenance. Screenshots of the detail."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support import wait_for
from tests.test_dashboard import Site, _tiny_safetensors, browser, open_view, page, site  # noqa: F401 - fixtures
from tests.test_scan import scan

HOSTILE = ("---\nbaseModel: SDXL 1.0\n---\n\n# Trigger Words\n\ninkline\n\n# Ink Lines\n\nA **bold** style. "
           "<script>window.pwned = 1</script> <img src=x onerror=\"window.pwned = 2\"> "
           "[click](javascript:window.pwned=3) [page](https://civitai.com/models/3)\n")


@pytest.fixture
def library(settings: Any) -> Path:
    loras = Path(settings.store) / "loras"
    (loras / "styles").mkdir(parents=True, exist_ok=True)
    (loras / "styles" / "ink.safetensors").write_bytes(_tiny_safetensors(300))
    (loras / "styles" / "ink.md").write_text(HOSTILE)
    (loras / "plain.safetensors").write_bytes(_tiny_safetensors(100))
    scan(settings, folder="loras")
    return loras


def _names(pg: Any) -> list[str]:
    return sorted(pg.locator("#models .model .name").all_inner_texts())


def _open(pg: Any, name: str) -> None:
    pg.locator("#models .model", has_text=name).first.click()
    pg.locator("#detail h2", has_text=name).wait_for()


def test_edit_then_see_it_from_another_browser(page: Any, site: Site, library: Path, browser: Any,
                                               tmp_path: Path) -> None:
    out = Path(os.environ.get("DEPOT_SCREENSHOTS", str(tmp_path)))
    open_view(page, site, "library")
    page.click(".folder-tab[data-folder=loras]")
    wait_for(lambda: _names(page) == ["Ink Lines", "plain"], timeout=10, what="two models")
    _open(page, "Ink Lines")
    # The description is rendered, and nothing the sidecar holds runs or links to script
    desc = page.locator("#detail .description-html")
    assert desc.locator("strong").inner_text() == "bold"
    assert "<script>" in desc.inner_text()  # shown as the text it is
    assert desc.locator("script, img, iframe").count() == 0
    assert [a.get_attribute("href") for a in desc.locator("a").all()] == ["https://civitai.com/models/3"]
    assert page.evaluate("() => window.pwned === undefined")
    # Each trigger word is a copy button
    assert page.locator("#detail .words button.word").all_inner_texts() == ["inkline"]

    # When the user edits the model
    page.locator("#detail .tags button", has_text="Edit").click()
    dialog = page.locator("#confirm")
    dialog.get_by_label("Name").fill("Ink Lines Pro")
    dialog.get_by_label("Trigger words").fill("inkline, bold lines")
    dialog.get_by_label("Base model").fill("Pony")
    dialog.get_by_label("Tags").fill("style ink")
    dialog.get_by_label("Favorite").check()
    page.click("#confirm-ok")
    # Then the panel and the card show it
    page.locator("#detail h2", has_text="Ink Lines Pro").wait_for()
    assert page.locator("#detail .tags .chip.tag").all_inner_texts() == ["#style", "#ink"]
    assert page.locator("#detail .words button.word").all_inner_texts() == ["inkline", "bold lines"]
    assert page.locator("#detail button.favorite").get_attribute("aria-pressed") == "true"
    wait_for(lambda: page.locator("#models .model", has_text="Ink Lines Pro").locator(".star").count() == 1,
             timeout=10, what="the star on the card")
    page.screenshot(path=str(out / "library-detail-edit-1280.png"))

    # And another browser (a new context: nothing cached) sees it after loading the page
    other = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    try:
        open_view(other, site, "library")
        other.click(".folder-tab[data-folder=loras]")
        wait_for(lambda: "Ink Lines Pro" in _names(other), timeout=10, what="the new name elsewhere")
        # The favorites toggle and the tag chips filter
        other.locator(".facet[data-facet=favorite] button").click()
        wait_for(lambda: _names(other) == ["Ink Lines Pro"], timeout=10, what="favorites only")
        other.locator(".facet[data-facet=favorite] button").click()
        wait_for(lambda: len(_names(other)) == 2, timeout=10, what="all again")
        other.locator(".facet[data-facet=tag] button[data-value=ink]").click()
        wait_for(lambda: _names(other) == ["Ink Lines Pro"], timeout=10, what="tagged ink")
        _open(other, "Ink Lines Pro")
        assert "Pony" in other.locator("#detail dl").inner_text()
    finally:
        other.context.close()

    # A tag in the detail narrows the library to it
    page.locator("#detail .tags .chip.tag", has_text="#style").click()
    wait_for(lambda: _names(page) == ["Ink Lines Pro"], timeout=10, what="tagged style")
    wait_for(lambda: page.locator(".facet[data-facet=tag] button[data-value=style]").get_attribute("aria-pressed")
             == "true", timeout=10, what="the tag chip pressed")


def test_delete_then_undo_and_restore_from_the_trash(page: Any, site: Site, library: Path) -> None:
    open_view(page, site, "library")
    page.click(".folder-tab[data-folder=loras]")
    wait_for(lambda: _names(page) == ["Ink Lines", "plain"], timeout=10, what="two models")
    # When a model is deleted, Then it leaves the library and the toast offers an undo
    _open(page, "plain")
    page.locator("#detail button.danger", has_text="Delete").click()
    page.click("#confirm-ok")
    wait_for(lambda: _names(page) == ["Ink Lines"], timeout=10, what="the model gone")
    assert not (library / "plain.safetensors").exists()
    page.locator(".toast button.toast-action", has_text="Undo").click()
    # And Undo brings it back where it was
    wait_for(lambda: _names(page) == ["Ink Lines", "plain"], timeout=10, what="the model back")
    assert (library / "plain.safetensors").is_file()
    # When it is deleted again and the toast is left alone, the trash in Maintenance lists it
    _open(page, "plain")
    page.locator("#detail button.danger", has_text="Delete").click()
    page.click("#confirm-ok")
    wait_for(lambda: _names(page) == ["Ink Lines"], timeout=10, what="the model gone again")
    page.click(".tabs a[data-view=maintenance]")
    row = page.locator("#trash li", has_text="loras/plain.safetensors")
    row.wait_for()
    assert "gone for good in 7 days" in row.inner_text()
    # A file now under its name: the restore is refused and says why; the entry stays
    (library / "plain.safetensors").write_bytes(b"someone else's")
    row.locator("button", has_text="Restore").click()
    page.locator(".toast.error", has_text="is taken by another file").wait_for()
    assert page.locator("#trash li").count() == 1
    (library / "plain.safetensors").unlink()
    row.locator("button", has_text="Restore").click()
    page.locator("#trash", has_text="The trash is empty").wait_for()
    assert (library / "plain.safetensors").is_file()


def test_a_new_preview_reaches_every_open_page(page: Any, site: Site, library: Path, browser: Any,
                                               tmp_path: Path) -> None:
    from tests.download_support import jpeg_bytes
    picture = tmp_path / "red.jpg"
    picture.write_bytes(jpeg_bytes("red"))
    other = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    try:
        for pg in (page, other):
            open_view(pg, site, "library")
            pg.click(".folder-tab[data-folder=loras]")
            wait_for(lambda pg=pg: len(_names(pg)) == 2, timeout=10, what="two models")
        card = other.locator("#models .model", has_text="plain").locator("img")
        before = card.get_attribute("src")
        # When one page uploads a picture as the preview
        _open(page, "plain")
        page.locator("#detail button", has_text="Change preview").click()
        page.locator("#confirm input[type=file]").set_input_files(str(picture))
        page.click("#confirm-ok")
        page.locator(".toast", has_text="Preview saved").wait_for()
        # Then the file is the model's NAME.webp, and the other page's card shows it without a reload
        assert (library / "plain.webp").is_file()
        wait_for(lambda: card.get_attribute("src") != before, timeout=10, what="the other page's new thumbnail")
        wait_for(lambda: other.evaluate("""(sel) => {
            const img = [...document.querySelectorAll('#models .model')].find((c) => c.innerText.includes('plain'))
              .querySelector('img');
            if (!img.complete || !img.naturalWidth) return false;
            const c = document.createElement('canvas'); c.width = c.height = 1;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0, 1, 1);
            const [r, gr, b] = g.getImageData(0, 0, 1, 1).data; return r > 180 && gr < 80 && b < 80;
          }""", None), timeout=10, what="a red thumbnail in the other page")
    finally:
        other.context.close()


def test_verdict_preview_and_duplicate_filters(page: Any, site: Site, library: Path, settings: Any) -> None:
    from shared.redis_client import connect
    from shared.store.index import StoreIndex
    (library / "copy.safetensors").write_bytes((library / "plain.safetensors").read_bytes())
    (library / "plain.webp").write_bytes(b"RIFF")
    scan(settings, folder="loras", mode="full")
    StoreIndex(connect(settings), settings).set_verify_status("loras", 0, "plain.safetensors", "ok")
    open_view(page, site, "library")
    page.click(".folder-tab[data-folder=loras]")
    wait_for(lambda: len(_names(page)) == 3, timeout=10, what="three models")
    page.locator(".facet[data-facet=verify] button[data-value=ok]").click()
    wait_for(lambda: _names(page) == ["plain"], timeout=10, what="the verified one")
    page.locator(".facet[data-facet=verify] button[data-value=ok]").click()
    page.locator(".facet[data-facet=more] button", has_text="Duplicates").click()
    wait_for(lambda: _names(page) == ["copy", "plain"], timeout=10, what="the two copies")
    page.locator(".facet[data-facet=more] button", has_text="Duplicates").click()
    page.locator(".facet[data-facet=more] button", has_text="No preview").click()
    wait_for(lambda: _names(page) == ["Ink Lines", "copy"], timeout=10, what="the models without a picture")
