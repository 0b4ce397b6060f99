// abm-sync admin page: run triggers and live refresh. No framework, no build step.
//
// The server renders every view. While a run is queued or running, this script re-fetches the
// same page and swaps in the regions marked data-live, so the table, charts and banners always
// come from the server's templates (and their escaping) rather than from a second renderer here.
"use strict";

(function () {
  const POLL_MS = 1500;
  const FINAL_STATES = { succeeded: "ok", failed: "error", paused: "warn", cancelled: "warn" };
  let timer = null;
  let followed = null; // the run this page queued, announced when it ends

  function toast(message, kind, link) {
    const box = document.getElementById("toast");
    if (!box) return;
    box.replaceChildren();
    box.className = "toast toast-" + kind;
    box.append(document.createTextNode(message));
    if (link) {
      const a = document.createElement("a");
      a.href = link.href;
      a.textContent = link.text;
      box.append(" ", a);
    }
    box.hidden = false;
    clearTimeout(box._hide);
    box._hide = setTimeout(() => { box.hidden = true; }, 8000);
  }

  function anyActive(root) {
    return root.querySelector('[data-live][data-active="1"]') !== null;
  }

  // runsOnly: ask for the run regions only (the dashboard skips its portfolio queries), used
  // while following a run; the full refresh once it has finished brings the charts up to date.
  async function refresh(runsOnly) {
    const headers = { Accept: "text/html" };
    if (runsOnly) headers["X-ABM-Refresh"] = "runs";
    const response = await fetch(window.location.href, { credentials: "same-origin", headers: headers });
    if (response.status === 401) {
      window.location.reload(); // signed out (session expired): show the sign-in form
      return false;
    }
    if (!response.ok) return true;
    const next = new DOMParser().parseFromString(await response.text(), "text/html");
    document.querySelectorAll("[data-live][id]").forEach((region) => {
      const fresh = next.getElementById(region.id);
      if (fresh) region.replaceWith(document.importNode(fresh, true));
    });
    return anyActive(document);
  }

  function poll() {
    if (timer !== null) return;
    timer = setTimeout(async function tick() {
      let again = true;
      try {
        again = await refresh(true);
        if (!again) {
          await refresh(false);
          announceEnd();
        }
      } catch (err) {
        again = true; // the server restarting is not a reason to stop watching
      }
      timer = again ? setTimeout(tick, POLL_MS) : null;
    }, POLL_MS);
  }

  function announceEnd() {
    if (followed === null) return;
    const badge = document.querySelector('[data-run-id="' + followed + '"] [data-state]');
    const state = badge ? badge.dataset.state : null;
    if (state && FINAL_STATES[state]) {
      toast("Run #" + followed + " " + state + ".", FINAL_STATES[state],
        { href: "/runs/" + followed, text: "Open it" });
    }
    followed = null;
  }

  function optionsOf(form) {
    const options = JSON.parse(form.dataset.run || "{}");
    const crm = form.querySelector('[name="crms"]');
    if (crm && crm.value) options.crms = [crm.value];
    const accounts = form.querySelector('[name="accounts"]');
    if (accounts) {
      options.accounts = accounts.value.split(/[\s,]+/).filter(Boolean);
    }
    const queue = document.getElementById("queue-toggle");
    if (queue && queue.checked) options.queue = true;
    return options;
  }

  async function trigger(event) {
    event.preventDefault();
    const form = event.currentTarget;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const options = optionsOf(form);
    if (options.accounts && options.accounts.length === 0) {
      toast("Enter the CRM id of the account to resync.", "error");
      return;
    }
    const button = form.querySelector('button[type="submit"]');
    if (button) button.disabled = true;
    try {
      const response = await fetch("/api/runs", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(options),
      });
      const body = await response.json().catch(() => ({}));
      if (response.status === 202) {
        followed = body.run_id;
        toast("Run #" + body.run_id + " queued.", "ok", { href: "/runs/" + body.run_id, text: "Open it" });
      } else if (response.status === 409) {
        toast("Run #" + body.running_run_id + " is already " + body.state + ".", "warn",
          { href: "/runs/" + body.running_run_id, text: "Open it" });
      } else if (response.status === 401) {
        window.location.reload();
        return;
      } else {
        toast(body.error || "The run could not be started (HTTP " + response.status + ").", "error");
      }
      await refresh(true);
      poll();
    } catch (err) {
      toast("The admin server did not answer: " + err.message, "error");
    } finally {
      if (button) button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    // The buttons are served disabled: a form submitted before this listener exists would reload
    // the page and queue nothing, so a click that early must not look like it worked.
    document.querySelectorAll("form[data-run]").forEach((form) => {
      form.addEventListener("submit", trigger);
      form.querySelectorAll("button[data-needs-script]").forEach((button) => { button.disabled = false; });
    });
    if (anyActive(document)) poll();
  });
})();
