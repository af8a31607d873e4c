// Solves the sign-up form's ALTCHA challenge (a SHA-256 proof of work) in this browser,
// then lets the form be sent. Served by newsletter serve itself: no third party is asked.
"use strict";
(async () => {
  const form = document.querySelector("form[data-altcha]");
  if (!form) return;
  const challenge = JSON.parse(form.dataset.altcha);
  const field = form.querySelector("input[name=altcha]");
  const button = form.querySelector("button[type=submit]");
  const status = form.querySelector(".altcha-status");
  button.disabled = true;
  status.textContent = status.dataset.checking;  // the page's words, in its language
  const encoder = new TextEncoder();
  for (let number = 0; number <= challenge.maxNumber; number++) {
    const digest = await crypto.subtle.digest("SHA-256", encoder.encode(challenge.salt + number));
    const hex = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
    if (hex === challenge.challenge) {
      field.value = btoa(JSON.stringify({algorithm: challenge.algorithm, challenge: hex, number,
                                         salt: challenge.salt, signature: challenge.signature}));
      button.disabled = false;
      status.textContent = "";
      return;
    }
  }
  status.textContent = status.dataset.failed;
})();
