// Direct upload of a dataset file with a progress bar (SPEC §9.1). The page's form works without this
// script (it posts the file to the app); with it, the browser asks the API for upload instructions, sends
// the file straight to storage (S3 presigned POST or the app's signed local URL) and confirms.
(function () {
  "use strict";

  var form = document.getElementById("dataset-upload");
  if (!form || !window.fetch || !window.FormData || !window.XMLHttpRequest) { return; }

  var fileInput = form.querySelector('input[type="file"]');
  var progressBox = form.querySelector("[data-upload-progress]");
  var bar = progressBox.querySelector("progress");
  var statusLine = form.querySelector("[data-upload-status]");
  var errorBox = form.querySelector("[data-upload-error]");
  var submitButton = form.querySelector("[data-upload-submit]");
  var retryButton = form.querySelector("[data-upload-retry]");
  var maxBytes = parseInt(form.dataset.maxBytes, 10) || 0;
  // The dataset created for the chosen file, kept so that a retry re-uploads instead of creating another.
  var pending = null;

  function csrfToken() {
    var field = form.querySelector('input[name="csrfmiddlewaretoken"]');
    return field ? field.value : "";
  }

  function field(name) { return form.elements.namedItem(name); }

  function withId(template, id) { return template.replace("{id}", encodeURIComponent(id)); }

  function megabytes(bytes) { return (bytes / 1048576).toFixed(1) + " MB"; }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function setBusy(busy) {
    submitButton.disabled = busy;
    retryButton.disabled = busy;
    fileInput.disabled = busy;
  }

  function describe(body, fallback) {
    // The API's error shape: {"detail", "code", "errors"?}; field errors are listed after the detail.
    if (!body || typeof body !== "object") { return fallback; }
    var parts = [body.detail || fallback];
    if (body.errors && typeof body.errors === "object") {
      Object.keys(body.errors).forEach(function (field) {
        var value = body.errors[field];
        parts.push(field + ": " + (Array.isArray(value) ? value.join(" ") : String(value)));
      });
    }
    return parts.join(" ");
  }

  function api(url, payload) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(payload || {})
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        if (!response.ok) {
          var error = new Error(describe(body, "The server answered " + response.status + "."));
          error.status = response.status;
          throw error;
        }
        return body;
      });
    });
  }

  function upload(instructions, file) {
    return new Promise(function (resolve, reject) {
      var data = new FormData();
      var fields = instructions.fields || {};
      Object.keys(fields).forEach(function (name) { data.append(name, fields[name]); });
      data.append(instructions.file_field || "file", file); // S3 ignores every field after the file
      var xhr = new XMLHttpRequest();
      xhr.open(instructions.method || "POST", instructions.url);
      xhr.upload.addEventListener("progress", function (event) {
        if (!event.lengthComputable) { return; }
        var percent = Math.floor((100 * event.loaded) / event.total);
        bar.value = percent;
        statusLine.textContent = percent + "% · " + megabytes(event.loaded) + " of " + megabytes(event.total);
      });
      xhr.addEventListener("load", function () {
        if (xhr.status >= 200 && xhr.status < 300) { resolve(); return; }
        var detail = "";
        try { detail = JSON.parse(xhr.responseText).detail || ""; } catch (ignored) { detail = ""; }
        reject(new Error("The upload failed (" + xhr.status + ")" + (detail ? ": " + detail : ".")));
      });
      xhr.addEventListener("error", function () { reject(new Error("The upload was interrupted (network error).")); });
      xhr.addEventListener("abort", function () { reject(new Error("The upload was cancelled.")); });
      xhr.send(data);
    });
  }

  function sendAndConfirm(file) {
    progressBox.hidden = false;
    bar.value = 0;
    statusLine.textContent = "Uploading " + file.name + " (" + megabytes(file.size) + ")…";
    return upload(pending.upload, file).then(function () {
      statusLine.textContent = "Upload complete; starting validation…";
      return api(withId(form.dataset.confirmUrl, pending.id));
    }).then(function () {
      window.location.assign(withId(form.dataset.detailUrl, pending.id));
    });
  }

  function failed(error) {
    showError(error.message);
    setBusy(false);
    retryButton.hidden = !pending;
    if (pending) { statusLine.textContent = "Not uploaded. Retry, or choose another file and upload again."; }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = fileInput.files && fileInput.files[0];
    showError("");
    if (!file) { showError("Choose a file to upload."); return; }
    if (maxBytes && file.size > maxBytes) {
      showError("The file has " + megabytes(file.size) + "; the limit is " + megabytes(maxBytes) + ".");
      return;
    }
    var contextTokens = field("context_tokens").value.trim();
    setBusy(true);
    pending = null;
    retryButton.hidden = true;
    api(form.dataset.createUrl, {
      name: field("name").value,
      file_name: file.name,
      file_size: file.size,
      format: field("format").value,
      context_tokens: contextTokens ? parseInt(contextTokens, 10) : null
    }).then(function (dataset) {
      pending = dataset;
      return sendAndConfirm(file);
    }).catch(failed);
  });

  retryButton.addEventListener("click", function () {
    var file = fileInput.files && fileInput.files[0];
    if (!pending || !file) { return; }
    showError("");
    setBusy(true);
    // Fresh instructions: the previous ones may have expired while the user was away.
    api(withId(form.dataset.uploadUrl, pending.id)).then(function (dataset) {
      pending = dataset;
      return sendAndConfirm(file);
    }).catch(failed);
  });

  fileInput.addEventListener("change", function () {
    // Another file is another dataset: the next submit creates it.
    pending = null;
    retryButton.hidden = true;
  });
}());
