"""The models a ComfyUI graph names: loader widgets by the node table (and by the node's own widget inputs),
subgraphs (nested, bypassed), legacy group nodes, LoRA stacks, prompt syntax, unknown nodes, the ``models``
lists ComfyUI writes (and the 3D nodes' Scene Config that is not one), and the API format."""
from __future__ import annotations

from shared.workflows.check import wanted_in
from shared.workflows.formats import read_json_value
from shared.workflows.graph import api_references, ui_references
from shared.workflows.refs import merge
from tests.workflow_support import node, ui_graph


def refs(graph) -> dict[tuple, object]:  # type: ignore[no-untyped-def]
    return {(w.folder, w.name): w for w in merge(ui_references(graph))}


def test_core_loaders_map_widgets_to_folders():
    graph = ui_graph([
        node(1, "CheckpointLoaderSimple", ["sdxl/base.safetensors"]),
        node(2, "CheckpointLoader", ["v1-inference.yaml", "old.ckpt"]),
        node(3, "LoraLoader", ["detail.safetensors", 1.0, 0.5]),
        node(4, "VAELoader", ["taesd"]),  # an approximate VAE, not a file
        node(5, "VAELoader", ["ae.safetensors"]),
        node(6, "DualCLIPLoader", ["clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default"]),
        node(7, "TripleCLIPLoader", ["a.safetensors", "b.safetensors", "c.safetensors"]),
        node(8, "QuadrupleCLIPLoader", ["q1.safetensors", "q2.safetensors", "q3.safetensors", "q4.safetensors"]),
        node(9, "UNETLoader", ["flux1-dev.safetensors", "fp8_e4m3fn"]),
        node(10, "ControlNetLoader", ["canny.pth"]),
        node(11, "UpscaleModelLoader", ["4x-UltraSharp.pth"]),
        node(12, "CLIPVisionLoader", ["sigclip.safetensors"]),
        node(13, "StyleModelLoader", ["redux.safetensors"]),
        node(14, "GLIGENLoader", ["gligen.safetensors"]),
        node(15, "HypernetworkLoader", ["hn.pt", 1.0]),
        node(16, "PhotoMakerLoader", ["photomaker-v1.bin"]),
        node(17, "DiffusersLoader", ["stable-diffusion-v1-5"]),
        node(18, "UnetLoaderGGUF", ["flux1-dev-Q4_K_S.gguf"]),
    ])
    assert set(refs(graph)) == {
        ("checkpoints", "sdxl/base.safetensors"), ("checkpoints", "old.ckpt"), ("loras", "detail.safetensors"),
        ("vae", "ae.safetensors"), ("text_encoders", "clip_l.safetensors"),
        ("text_encoders", "t5xxl_fp16.safetensors"), ("text_encoders", "a.safetensors"),
        ("text_encoders", "b.safetensors"), ("text_encoders", "c.safetensors"), ("text_encoders", "q1.safetensors"),
        ("text_encoders", "q2.safetensors"), ("text_encoders", "q3.safetensors"), ("text_encoders", "q4.safetensors"),
        ("diffusion_models", "flux1-dev.safetensors"), ("controlnet", "canny.pth"),
        ("upscale_models", "4x-UltraSharp.pth"), ("clip_vision", "sigclip.safetensors"),
        ("style_models", "redux.safetensors"), ("gligen", "gligen.safetensors"), ("hypernetworks", "hn.pt"),
        ("photomaker", "photomaker-v1.bin"), ("diffusers", "stable-diffusion-v1-5"),
        ("diffusion_models", "flux1-dev-Q4_K_S.gguf")}


def test_widget_names_come_from_the_nodes_inputs_when_they_cover_every_value():
    # A loader whose widgets are in another order than the table's: the node's own inputs say which is which.
    inputs = [{"name": "text_encoder", "type": "COMBO", "widget": {"name": "text_encoder"}, "link": None},
              {"name": "ckpt_name", "type": "COMBO", "widget": {"name": "ckpt_name"}, "link": None},
              {"name": "device", "type": "COMBO", "widget": {"name": "device"}, "link": None}]
    swapped = list(reversed(inputs))
    graph = ui_graph([node(1, "LTXAVTextEncoderLoader", ["default", "ltx.safetensors", "gemma.safetensors"],
                           inputs=swapped)])
    assert set(refs(graph)) == {("text_encoders", "gemma.safetensors"), ("checkpoints", "ltx.safetensors")}
    # Only some widgets listed (older frontends): the table's order is used.
    graph = ui_graph([node(1, "UNETLoader", ["wan.safetensors", "default"],
                           inputs=[{"name": "weight_dtype", "widget": {"name": "weight_dtype"}}])])
    assert set(refs(graph)) == {("diffusion_models", "wan.safetensors")}


def test_subgraphs_nested_and_bypassed_nodes_make_optional_models():
    inner = {"id": "aaaa-inner", "nodes": [node(1, "LoraLoaderModelOnly", ["inner.safetensors", 1.0])]}
    outer = {"id": "bbbb-outer", "nodes": [node(1, "UNETLoader", ["wan.safetensors", "default"]),
                                           node(2, "aaaa-inner", []),
                                           node(3, "LoraLoaderModelOnly", ["speed.safetensors", 1.0], mode=4)],
             "definitions": {"subgraphs": [inner]}}
    unused = {"id": "cccc-unused", "nodes": [node(1, "VAELoader", ["unused.safetensors"])]}
    graph = ui_graph([node(1, "bbbb-outer", ["wan.safetensors"]), node(2, "VAELoader", ["muted.safetensors"], mode=2)],
                     definitions={"subgraphs": [outer, unused]})
    found = refs(graph)
    assert {k: w.optional for k, w in found.items()} == {
        ("diffusion_models", "wan.safetensors"): False, ("loras", "inner.safetensors"): False,
        ("loras", "speed.safetensors"): True, ("vae", "muted.safetensors"): True,
        ("vae", "unused.safetensors"): True}
    # the instance node repeats its inner loader's value with no folder: one reference, with the folder
    assert (None, "wan.safetensors") not in found
    # And a bypassed instance makes everything inside optional
    graph["nodes"][0]["mode"] = 4
    assert refs(graph)[("loras", "inner.safetensors")].optional


def test_legacy_group_nodes_split_the_instance_values_back():
    group = {"nodes": [{"type": "CheckpointLoaderSimple", "index": 0, "widgets_values": ["default.safetensors"]},
                       {"type": "LoraLoader", "index": 1, "widgets_values": ["a.safetensors", 1, 1]}],
             "links": [], "external": []}
    graph = ui_graph([node(1, "workflow>Loaders", ["chosen.safetensors", "b.safetensors", 0.5, 0.5])],
                     extra={"groupNodes": {"Loaders": group}})
    assert set(refs(graph)) == {("checkpoints", "chosen.safetensors"), ("loras", "b.safetensors")}


def test_lora_stacks_prompt_syntax_and_unknown_nodes():
    graph = ui_graph([
        node(1, "Power Lora Loader (rgthree)", [{}, {"type": "PowerLoraLoaderHeaderWidget"},
                                                {"on": True, "lora": "style/ink.safetensors", "strength": 0.8},
                                                {"on": False, "lora": "off.safetensors", "strength": 1}, {}, ""]),
        node(2, "CR LoRA Stack", ["On", "one.safetensors", 1, 1, "Off", "None", 1, 1, "On", "two.pt", 0.5, 0.5]),
        node(3, "CLIPTextEncode", ["a castle, embedding:EasyNegative, (embedding:sub/neg.pt:1.2), <lora:tag:0.7>"]),
        node(4, "SomeCustomLoader", ["custom/model.safetensors", "https://x.test/y.safetensors", 7]),
        node(5, "Note", ["see model.safetensors for details\nand more"]),
    ])
    assert set(refs(graph)) == {
        ("loras", "style/ink.safetensors"), ("loras", "off.safetensors"), ("loras", "one.safetensors"),
        ("loras", "two.pt"), ("embeddings", "EasyNegative"), ("embeddings", "sub/neg.pt"), ("loras", "tag"),
        (None, "custom/model.safetensors")}


def test_models_lists_bring_url_hash_and_folder_and_scene_config_is_not_one():
    sha = "ab" * 32
    entry = {"name": "flux1-dev.safetensors", "url": "https://huggingface.co/x/resolve/main/flux1-dev.safetensors",
             "directory": "diffusion_models", "hash": sha, "hash_type": "SHA256"}
    stale = {"name": "old.safetensors", "url": "https://x.test/old.safetensors", "directory": "diffusion_models"}
    graph = ui_graph([
        node(1, "UNETLoader", ["flux1-dev.safetensors", "default"], models=[entry, stale]),
        node(2, "Load3D", ["mesh.glb"]),
        node(3, "VAELoader", ["ae.safetensors"], models=[{"name": "ae.safetensors", "directory": "vae",
                                                         "url": "https://x.test/ae.safetensors"}]),
    ], models=[{"name": "clip_l.safetensors", "directory": "clip", "url": "https://x.test/clip_l.safetensors"}])
    graph["nodes"][1]["properties"]["Scene Config"] = {"models": [{"name": "scene.safetensors", "directory": "x"}]}
    found = refs(graph)
    assert set(found) == {("diffusion_models", "flux1-dev.safetensors"), ("vae", "ae.safetensors"),
                          ("text_encoders", "clip_l.safetensors")}  # legacy "clip" is text_encoders
    flux = found[("diffusion_models", "flux1-dev.safetensors")]
    assert (flux.url, flux.hashes) == (entry["url"], (("SHA256", sha.upper()),))


def test_api_format_skips_links_and_reads_every_input():
    prompt = {
        "3": {"class_type": "KSampler", "inputs": {"seed": 1, "model": ["4", 0], "positive": ["6", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a dog, embedding:good", "clip": ["4", 1]}},
        "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "x.safetensors", "model": ["4", 0],
                                                      "clip": ["4", 1], "strength_model": 1, "strength_clip": 1}},
        "11": {"class_type": "DualCLIPLoader", "inputs": {"clip_name1": "l.safetensors", "clip_name2": ["12", 0],
                                                          "type": "flux"}},
    }
    assert {(w.folder, w.name) for w in merge(api_references(prompt))} == {
        ("checkpoints", "v1-5-pruned-emaonly.safetensors"), ("embeddings", "good"), ("loras", "x.safetensors"),
        ("text_encoders", "l.safetensors")}


def test_a_png_carrying_both_graphs_gives_one_reference_per_model():
    graph = ui_graph([node(4, "CheckpointLoaderSimple", ["a.safetensors"],
                           models=[{"name": "a.safetensors", "directory": "checkpoints", "url": "https://x.test/a"}])])
    prompt = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}}}
    found = wanted_in(read_json_value({"prompt": prompt, "extra_data": {"extra_pnginfo": {"workflow": graph}}}))
    assert [(w.folder, w.name, w.url) for w in found] == [("checkpoints", "a.safetensors", "https://x.test/a")]


def test_junk_inside_a_graph_is_skipped_not_fatal():
    graph = ui_graph([5, "x", None, {"type": ["list"]}, {"type": "LoraLoader", "widgets_values": "notalist"},
                      {"type": "LoraLoader", "widgets_values": [["deep"] * 3, {"a": {"b": {"c": "z.safetensors"}}}],
                       "properties": {"models": [1, {"name": 5}, {"name": "ok.safetensors", "hash": "zz"}]}}],
                     definitions={"subgraphs": [1, {"id": 5}, {"id": "s", "nodes": "x"}]}, models="nope")
    assert {(w.folder, w.name) for w in merge(ui_references(graph))} == {(None, "z.safetensors")}


def test_a_loaders_folder_wins_over_a_models_entry_that_names_another():
    graph = ui_graph([node(1, "VAELoader", ["ae.safetensors"], models=[
        {"name": "ae.safetensors", "directory": "checkpoints", "url": "https://x.test/ae.safetensors"}])])
    assert [(w.folder, w.url) for w in merge(ui_references(graph))] == [("vae", "https://x.test/ae.safetensors")]
