// File Analyzer: progressive enhancement only. Every page works without this script;
// it adds drag and drop with a progress bar per upload, "select all", and copy to clipboard.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function ready(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }

  function formatSize(bytes) {
    if (bytes < 1024) return bytes + " B";
    var units = ["KiB", "MiB", "GiB", "TiB"];
    var value = bytes / 1024, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
    var text = value < 10 ? value.toFixed(1) : value.toFixed(0);
    return text.replace(/\.0$/, "") + " " + units[unit];
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- Upload: a queue of files, each sent on its own request with its own progress bar.
  function setupUpload(form) {
    var input = form.querySelector("input[type=file]");
    var dropzone = form.querySelector("[data-dropzone]");
    var section = document.querySelector("[data-upload-queue]");
    var list = document.querySelector("[data-queue-list]");
    var done = document.querySelector("[data-queue-done]");
    var announcer = el("p", "visually-hidden");
    announcer.setAttribute("role", "status");
    section.appendChild(announcer);

    var url = form.getAttribute("data-upload-url");
    var maxBytes = Number(form.getAttribute("data-max-bytes")) || Infinity;
    var maxSize = form.getAttribute("data-max-size");
    var allowed = (form.getAttribute("data-allowed-types") || "").split(",").filter(Boolean);
    var queue = [], active = 0, finished = 0, failed = 0, total = 0;
    var PARALLEL = 3;

    function announce() {
      var text = finished + failed < total
        ? "Uploading " + (total - finished - failed) + " of " + total + " files"
        : finished + " uploaded" + (failed ? ", " + failed + " failed" : "");
      announcer.textContent = text;
      if (finished + failed === total && finished > 0) done.hidden = false;
    }

    function fail(item, message) {
      item.row.classList.add("failed");
      item.status.textContent = message;
      item.progress.value = 100;
      failed++;
      announce();
    }

    function problem(file) {
      if (file.size > maxBytes) return "Too large: " + formatSize(file.size) + ", the limit is " + maxSize + ".";
      if (file.size === 0) return "This file is empty.";
      if (file.type && allowed.length && allowed.indexOf(file.type) < 0)
        return "This type of file (" + file.type + ") is not accepted.";
      return null;
    }

    function add(files) {
      if (!files || !files.length) return;
      section.hidden = false;
      Array.prototype.forEach.call(files, function (file) {
        var row = el("li");
        var name = el("span", "q-name", file.name);
        var size = el("span", "q-size", formatSize(file.size));
        var progress = el("progress");
        progress.max = 100;
        progress.value = 0;
        progress.setAttribute("aria-label", "Upload progress of " + file.name);
        var status = el("span", "q-status", "Waiting…");
        row.append(name, size, progress, status);
        list.appendChild(row);
        var item = { file: file, row: row, progress: progress, status: status };
        total++;
        var why = problem(file);
        if (why) fail(item, why);
        else queue.push(item);
      });
      announce();
      pump();
    }

    function pump() {
      while (active < PARALLEL && queue.length) send(queue.shift());
    }

    function send(item) {
      active++;
      var xhr = new XMLHttpRequest();
      var body = new FormData();
      body.append("file", item.file, item.file.name);
      xhr.open("POST", url);
      xhr.responseType = "json";
      xhr.setRequestHeader("Accept", "application/json");
      item.status.textContent = "Uploading…";
      xhr.upload.onprogress = function (event) {
        if (event.lengthComputable) {
          var percent = Math.round((event.loaded / event.total) * 100);
          item.progress.value = percent;
          item.status.textContent = "Uploading… " + percent + "%";
        }
      };
      xhr.onload = function () {
        active--;
        var reply = xhr.response;
        if (xhr.status >= 200 && xhr.status < 300 && reply && reply.data) {
          item.progress.value = 100;
          item.row.classList.add("done");
          item.status.textContent = "";
          item.status.append("Uploaded · ");
          var link = el("a", "", "View file");
          link.href = "/files/" + encodeURIComponent(reply.data.id);
          item.status.appendChild(link);
          finished++;
          announce();
        } else {
          var message = reply && reply.error && reply.error.message;
          if (message) {
            message = message.charAt(0).toUpperCase() + message.slice(1);
          } else {
            message = xhr.status >= 500 || xhr.status === 0
              ? "The file service is unavailable (" + xhr.status + "). Try again in a moment."
              : "Upload failed (" + xhr.status + ").";
          }
          fail(item, message);
        }
        pump();
      };
      xhr.onerror = function () {
        active--;
        fail(item, "Network error: the upload did not reach the server.");
        pump();
      };
      xhr.send(body);
    }

    input.addEventListener("change", function () {
      add(input.files);
      input.value = "";
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      add(input.files);
      input.value = "";
    });

    var depth = 0;
    dropzone.addEventListener("dragenter", function (event) {
      event.preventDefault();
      depth++;
      dropzone.classList.add("is-dragging");
    });
    dropzone.addEventListener("dragover", function (event) {
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
    });
    dropzone.addEventListener("dragleave", function () {
      depth = Math.max(0, depth - 1);
      if (!depth) dropzone.classList.remove("is-dragging");
    });
    dropzone.addEventListener("drop", function (event) {
      event.preventDefault();
      depth = 0;
      dropzone.classList.remove("is-dragging");
      if (event.dataTransfer) add(event.dataTransfer.files);
    });
    // A file dropped beside the zone must not replace the page.
    window.addEventListener("dragover", function (event) { event.preventDefault(); });
    window.addEventListener("drop", function (event) { event.preventDefault(); });
  }

  // ---- File list: "select all" and a live count of the selection.
  function setupSelection(form) {
    var all = form.querySelector("[data-check-all]");
    var count = form.querySelector("[data-selection-count]");
    var boxes = form.querySelectorAll("input[name=ids]");
    function update() {
      var checked = form.querySelectorAll("input[name=ids]:checked").length;
      if (all) {
        all.checked = checked === boxes.length && checked > 0;
        all.indeterminate = checked > 0 && checked < boxes.length;
      }
      if (count) count.textContent = checked ? checked + " selected" : "";
    }
    if (all) all.addEventListener("change", function () {
      boxes.forEach(function (box) { box.checked = all.checked; });
      update();
    });
    boxes.forEach(function (box) { box.addEventListener("change", update); });
    update();
  }

  // ---- Copy to clipboard.
  function setupCopy(button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    var status = document.querySelector("[data-copy-status]");
    button.addEventListener("click", function () {
      var text = target ? target.textContent : "";
      var say = function (message) { if (status) status.textContent = message; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(
          function () { say("Copied to the clipboard."); },
          function () { selectText(target); say("Press Ctrl+C (⌘C) to copy the selected text."); }
        );
      } else {
        selectText(target);
        say("Press Ctrl+C (⌘C) to copy the selected text.");
      }
    });
  }

  function selectText(node) {
    if (!node) return;
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  ready(function () {
    document.querySelectorAll(".js-only[hidden]").forEach(function (node) { node.hidden = false; });
    var upload = document.getElementById("upload-form");
    if (upload) setupUpload(upload);
    document.querySelectorAll("[data-selection-form]").forEach(setupSelection);
    document.querySelectorAll("[data-copy-target]").forEach(setupCopy);
  });
})();
