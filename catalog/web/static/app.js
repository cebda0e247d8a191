// catalog web UI: small progressive enhancements; every page works without them.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // The project switcher submits on change.
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }

  // Copy buttons: copy data-copy to the clipboard, say so for a moment.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const text = button.dataset.copy;
      try {
        await navigator.clipboard.writeText(text);
      } catch (err) {
        // No clipboard API (plain http on another host): select a temporary field.
        const field = document.createElement("textarea");
        field.value = text;
        document.body.appendChild(field);
        field.select();
        document.execCommand("copy");
        field.remove();
      }
      const label = button.textContent;
      button.textContent = "Copied";
      button.classList.add("copied");
      setTimeout(() => { button.textContent = label; button.classList.remove("copied"); }, 1500);
    });
  }

  // "Back" links go back when there is somewhere to go back to.
  for (const link of document.querySelectorAll("a[data-back]")) {
    link.addEventListener("click", (event) => {
      if (history.length > 1) { event.preventDefault(); history.back(); }
    });
  }

  // Forms with data-confirm ask first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});
