"""A1111 generation parameters exactly as the webui writes them, and Civitai AIR URNs in the forms the spec
allows."""
from __future__ import annotations

import pytest

from shared.workflows.a1111 import a1111_references, parse_parameters
from shared.workflows.air import air_references, parse_air
from shared.workflows.check import wanted_in
from shared.workflows.formats import read_bytes, read_text
from shared.workflows.refs import merge
from tests.workflow_support import A1111_PARAMETERS, a1111_png

TEXT = A1111_PARAMETERS.format(model_hash="879db523c3", vae_hash="735e4c3a44", lora_hash="7c6bad76eb54",
                               ti_hash="c74b4e810b03")


def test_parameters_split_like_the_webui():
    prompt, negative, params = parse_parameters(TEXT)
    assert prompt == "masterpiece, best quality, <lora:add_detail:0.6>, a castle"
    assert negative == "lowres, bad hands"
    assert params["Lora hashes"] == "add_detail: 7c6bad76eb54" and params["CFG scale"] == "7"


def test_a1111_models_carry_their_short_hashes():
    found = {(w.folder, w.name): w.hashes for w in merge(a1111_references(TEXT))}
    assert found == {
        ("checkpoints", "dreamshaper_8"): (("AutoV2", "879DB523C3"),),
        ("vae", "vae-ft-mse.safetensors"): (("AutoV2", "735E4C3A44"),),
        ("loras", "add_detail"): (("AutoV3", "7C6BAD76EB54"),),  # the <lora:> tag and its hash are one
        ("embeddings", "easynegative"): (("SHA256", "C74B4E810B03"),),
    }


def test_civitai_additions_and_old_model_hashes():
    text = ("portrait\nSteps: 30, Sampler: Euler, Seed: 5, Model hash: 6ce01616, Model: v1-5-pruned, "
            "Refiner: sd_xl_refiner_1.0 [7440042bbd], ControlNet 0: \"Module: canny, Model: control_v11p_sd15_canny "
            "[d14c016b], Weight: 1.0\", Hashes: {\"model\": \"6ce0161689\", \"lora:ink\": \"0123456789ab\"}, "
            "Civitai resources: [{\"type\":\"lora\",\"weight\":0.8,\"modelVersionId\":368189,"
            "\"modelName\":\"Ink\",\"modelVersionName\":\"v2\"}]")
    found = {(w.folder, w.name): w for w in merge(a1111_references(text))}
    assert found[("checkpoints", "v1-5-pruned")].hashes == (("AutoV1", "6CE01616"),)
    assert found[("checkpoints", "sd_xl_refiner_1.0")].hashes == (("AutoV2", "7440042BBD"),)
    assert ("controlnet", "control_v11p_sd15_canny") in found
    assert found[("loras", "ink")].hashes == (("AutoV3", "0123456789AB"),)
    resource = found[("loras", "Ink v2")]
    assert (resource.civitai_version, resource.named) == (368189, False)


def test_a1111_png_is_read_through_the_whole_pipeline():
    names = {w.name for w in wanted_in(read_bytes(a1111_png(TEXT)))}
    assert names == {"dreamshaper_8", "vae-ft-mse.safetensors", "add_detail", "easynegative"}


@pytest.mark.parametrize("urn,folder,model,version,fmt", [
    ("urn:air:sdxl:lora:civitai:328553@368189", "loras", 328553, 368189, None),
    ("urn:air:sd1:checkpoint:civitai:4201@130072.safetensors", "checkpoints", 4201, 130072, "SafeTensor"),
    ("urn:air:flux1:model:civitai:618692@691639.gguf", "checkpoints", 618692, 691639, "GGUF"),
    ("urn:air:sdxl:embedding:civitai:12@34", "embeddings", 12, 34, None),
    ("air:sdxl:vae:civitai:5@6", "vae", 5, 6, None),
    ("urn:air:sdxl:lora:civitai:328553", "loras", 328553, None, None),
    ("sdxl:lora:civitai:1@2", "loras", 1, 2, None),
])
def test_air_forms(urn, folder, model, version, fmt):
    w = parse_air(urn)
    got = (w.folder, w.civitai_model, w.civitai_version, w.file_format, w.named)
    assert got == (folder, model, version, fmt, False)


def test_air_in_free_text_and_what_is_not_an_air():
    text = "Models: urn:air:sdxl:lora:civitai:1@2, and (urn:air:sd1:checkpoint:civitai:3@4.safetensors)."
    assert [w.name for w in air_references(text)] == ["urn:air:sdxl:lora:civitai:1@2",
                                                       "urn:air:sd1:checkpoint:civitai:3@4.safetensors"]
    assert parse_air("hello") is None and parse_air("http://x.test/a") is None
    assert [w.name for w in wanted_in(read_text(text))] == [w.name for w in air_references(text)]


@pytest.mark.timeout(60)  # a guard, not a measurement: the webui's own pattern needs hours for these
@pytest.mark.parametrize("line", ["a" * 200_000, " " * 200_000 + "x", 'k: "' * 50_000, "Model: " * 30_000])
def test_hostile_parameter_lines_are_parsed_in_linear_time(line):
    assert a1111_references("prompt\n" + line) == []
