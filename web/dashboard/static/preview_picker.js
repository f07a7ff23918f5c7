// Choosing a model's preview: upload a picture or video, paste a URL (the server fetches it through its guarded
// client), or pick one of Civitai's images of the model's version (within the NSFW setting); or remove it.
// Every open dashboard sees the new thumbnail through the index's live message.

import { api, confirmDialog, get, h, modelPath, showError } from "./api.js";

/** Resolves to the model as it is after the change, or null when nothing changed. */
export async function choosePreview(m) {
  const file = h("input", { type: "file", accept: "image/*,video/mp4,video/webm", "aria-label": "Picture file" });
  const url = h("input", { type: "text", inputmode: "url", placeholder: "https://…", "aria-label": "Picture URL" });
  let picked = null;
  const grid = h("div", { class: "civitai-pick" });
  const pickButton = h("button", { type: "button", class: "small secondary", onclick: async () => {
    grid.replaceChildren(h("p", { class: "muted" }, "Asking Civitai…"));
    try {
      const images = await get(`/models/${modelPath(m)}/civitai_images`);
      grid.replaceChildren(...(images.length ? images.map((img) => h("button", { type: "button", class: "pick",
        "aria-pressed": "false", title: `Civitai image ${img.id + 1}`, dataset: { id: img.id },
        onclick: (e) => {
          picked = img.id;
          for (const b of grid.querySelectorAll("button.pick")) b.setAttribute("aria-pressed", String(b === e.currentTarget));
        } }, img.type === "video" ? h("span", {}, "▶ video") : h("img", { src: img.url, alt: "", loading: "lazy", referrerpolicy: "no-referrer" })))
        : [h("p", { class: "muted" }, "Civitai has no picture of this version within the NSFW setting.")]));
    } catch (err) {
      grid.replaceChildren(h("p", { class: "task-error" }, err.message));
    }
  } }, "Show Civitai's pictures");
  const remove = h("input", { type: "checkbox", "aria-label": "Remove the preview" });
  const form = h("div", { class: "stack preview-form" },
    h("label", { class: "stack" }, "Upload a picture or video", file),
    h("label", { class: "stack" }, "…or a picture's URL", url),
    h("div", { class: "stack" }, h("span", {}, "…or one of Civitai's pictures of this version"), pickButton, grid),
    m.preview ? h("label", { class: "row" }, remove, "Remove the preview instead") : null);
  if (!(await confirmDialog(`Preview of ${m.name}`, form, "Save"))) return null;
  const path = `/models/${modelPath(m)}/preview`;
  try {
    if (remove.checked) return await api("DELETE", path);
    if (file.files.length) {
      const body = new FormData();
      body.append("file", file.files[0]);
      return await api("PUT", path, body);
    }
    if (url.value.trim()) return await api("PUT", path, { url: url.value.trim() });
    if (picked !== null) return await api("PUT", path, { civitai_image: picked });
  } catch (err) {
    showError(err, "The preview was not changed");
  }
  return null;
}
