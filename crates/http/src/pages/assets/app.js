// Stride's one script. Pages work without it; it only enhances them:
// - sign-up preselects the browser's time zone;
// - photo uploads show their progress (an XHR instead of a plain form post).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  for (const select of document.querySelectorAll("select[data-detect-timezone]")) {
    if (zone && select.value === "UTC" && [...select.options].some((o) => o.value === zone)) {
      select.value = zone;
    }
  }

  for (const form of document.querySelectorAll("form.upload")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const progress = form.querySelector("progress");
      const status = form.querySelector(".upload-status");
      const button = form.querySelector("button");
      const request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) {
          progress.hidden = false;
          progress.value = Math.round((e.loaded / e.total) * 100);
          status.textContent = `Uploading… ${progress.value}%`;
        }
      });
      request.addEventListener("load", () => {
        if (request.status < 400) {
          window.location.assign(request.responseURL);
        } else {
          // The server's error page names the rejected file: its message is shown as text,
          // never as markup (a file name is the uploader's to choose).
          const page = new DOMParser().parseFromString(request.responseText, "text/html");
          const message = page.querySelector("p.error");
          status.textContent = message ? message.textContent : `The upload was refused (${request.status}).`;
          status.classList.add("error");
          button.disabled = false;
        }
      });
      request.addEventListener("error", () => {
        status.textContent = "The upload failed: check your connection and try again.";
        button.disabled = false;
      });
      button.disabled = true;
      status.textContent = "Processing…";
      request.send(new FormData(form));
    });
  }
});
